#!/usr/bin/env node
// Validates an AsyncAPI document with the real AsyncAPI parser (@asyncapi/parser, with
// the Avro schema parser registered for `application/vnd.apache.avro` payloads) and
// prints one JSON object on stdout: every diagnostic, and what the parser read from
// the document (operations, channels, messages), so a test can compare its reading
// with the producer's.
//
// The parser runs the schema parsers' own validation only on AsyncAPI 2.x documents;
// on 3.x it converts an Avro payload without checking it (an unknown type name goes
// through). So every Multi Format Schema Object with an Avro schema format is also
// handed to the Avro schema parser's `validate` (avsc underneath), and what it finds
// is reported as a diagnostic of error severity, code `avro-schema`.
//
//   NODE_PATH=<folder with node_modules> node validate.cjs <document.json>
//
// Exit code: 0 when the document parsed with no diagnostic of error severity,
// 1 when it did not, 2 on a usage or I/O error.
// scripts/install-test-deps installs the pinned packages (package-lock.json here).
'use strict';

const fs = require('fs');
const { Parser, DiagnosticSeverity } = require('@asyncapi/parser');
const { AvroSchemaParser } = require('@asyncapi/avro-schema-parser');

const SEVERITY = {
  [DiagnosticSeverity.Error]: 'error',
  [DiagnosticSeverity.Warning]: 'warning',
  [DiagnosticSeverity.Information]: 'information',
  [DiagnosticSeverity.Hint]: 'hint',
};

function diagnostic(d) {
  return {
    severity: SEVERITY[d.severity] || String(d.severity),
    code: String(d.code),
    message: d.message,
    path: d.path.join('/'),
  };
}

const AVRO_FORMATS = new Set(AvroSchemaParser().getMimeTypes());

// Every `{schemaFormat, schema}` object with an Avro format, with its JSON path.
function avroSchemas(value, path = [], found = []) {
  if (Array.isArray(value)) {
    value.forEach((item, i) => avroSchemas(item, [...path, String(i)], found));
  } else if (value && typeof value === 'object') {
    if (AVRO_FORMATS.has(value.schemaFormat) && 'schema' in value) {
      found.push({ data: value.schema, path: [...path, 'schema'] });
    }
    for (const [key, item] of Object.entries(value)) {
      avroSchemas(item, [...path, key], found);
    }
  }
  return found;
}

async function avroDiagnostics(raw) {
  const avro = AvroSchemaParser();
  const found = [];
  for (const { data, path } of avroSchemas(raw)) {
    for (const problem of await avro.validate({ data, path })) {
      found.push({
        severity: 'error',
        code: 'avro-schema',
        message: problem.message,
        path: path.join('/'),
      });
    }
  }
  return found;
}

function reading(document) {
  const operations = document.operations().all().map((operation) => ({
    id: operation.id(),
    action: operation.action(),
    channels: operation.channels().all().map((channel) => channel.address()),
    messages: operation.messages().all().map((message) => message.name()),
    receivers: operation.extensions().get('x-receivers')?.value() ?? null,
  }));
  const channels = document.channels().all().map((channel) => ({
    id: channel.id(),
    address: channel.address(),
    messages: channel.messages().all().map((message) => message.name()),
  }));
  const messages = document.components().messages().all().map((message) => ({
    name: message.name(),
    schemaFormat: message.schemaFormat(),
    payloadType: message.payload()?.type() ?? null,
    payloadProperties: Object.keys(message.payload()?.properties() ?? {}),
    headers: Object.keys(message.headers()?.properties() ?? {}),
  }));
  return { operations, channels, messages };
}

async function main() {
  const file = process.argv[2];
  if (!file) {
    process.stderr.write('usage: node validate.cjs <asyncapi document>\n');
    return 2;
  }
  let text;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    process.stderr.write(`cannot read ${file}: ${err.message}\n`);
    return 2;
  }
  let raw;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    process.stderr.write(`${file} is not JSON: ${err.message}\n`);
    return 2;
  }
  const parser = new Parser();
  parser.registerSchemaParser(AvroSchemaParser());
  const { document, diagnostics } = await parser.parse(text, { source: file });
  const all = diagnostics.map(diagnostic).concat(await avroDiagnostics(raw));
  const errors = all.filter((d) => d.severity === 'error');
  const result = {
    parsed: Boolean(document),
    errors: errors.length,
    diagnostics: all,
    document: document ? reading(document) : null,
  };
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  return document && errors.length === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`validate.cjs: ${err && err.stack ? err.stack : err}\n`);
    process.exit(2);
  },
);
