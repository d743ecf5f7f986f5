//! When two schemas count as the same version.

use apache_avro::Schema;
use serde_json::Value;

/// Same Parsing Canonical Form, and the same attributes that form drops but schema
/// resolution or tools use: field defaults, aliases, enum defaults, logical types and
/// custom attributes. Key order, whitespace, `doc` and the spelling of names
/// (`"UserData"` or `"ns.UserData"`, `"string"` or `{"type":"string"}`) do not count.
pub(super) fn same_schema(a: &Schema, b: &Schema) -> bool {
    if a.canonical_form() != b.canonical_form() {
        return false;
    }
    match (serde_json::to_value(a), serde_json::to_value(b)) {
        (Ok(a), Ok(b)) => without_docs(a) == without_docs(b),
        _ => true,
    }
}

/// Removes every `doc` attribute; default values (data, not schema) are kept as they are.
fn without_docs(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(key, _)| key != "doc")
                .map(|(key, value)| {
                    let value = if key == "default" {
                        value
                    } else {
                        without_docs(value)
                    };
                    (key, value)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(without_docs).collect()),
        other => other,
    }
}
