//! Parsing submitted schemas and deciding when two submissions are the same schema.

use apache_avro::Schema;
use serde_json::Value;

use super::errors::RegistryError;

/// A submitted schema, parsed, with the key that decides identity.
#[derive(Debug, Clone)]
pub(crate) struct ParsedSchema {
    /// The parsed Avro schema, used for compatibility checks.
    pub(crate) schema: Schema,
    /// Two submissions with the same identity are the same schema (same id, no new
    /// version). See [`identity_of`].
    pub(crate) identity: String,
}

/// Checks the request's `schemaType` and `references` before the text is parsed: only
/// Avro without references is supported here.
pub(crate) fn check_supported(
    schema_type: Option<&str>,
    reference_count: usize,
) -> Result<(), RegistryError> {
    if let Some(schema_type) = schema_type {
        if !schema_type.eq_ignore_ascii_case("AVRO") {
            return Err(RegistryError::InvalidSchema {
                reason: format!(
                    "schema type '{schema_type}' is not supported by the embedded registry; only AVRO is"
                ),
            });
        }
    }
    if reference_count > 0 {
        return Err(RegistryError::InvalidSchema {
            reason: "schema references are not supported by the embedded registry; inline the referenced named types".into(),
        });
    }
    Ok(())
}

/// Parses Avro schema text (JSON). Named types must be defined inline: a reference to a
/// type defined elsewhere is an invalid schema (42201).
pub(crate) fn parse_avro(text: &str) -> Result<ParsedSchema, RegistryError> {
    let schema = Schema::parse_str(text).map_err(|error| RegistryError::InvalidSchema {
        reason: error_chain(&error),
    })?;
    let identity = identity_of(&schema)?;
    Ok(ParsedSchema { schema, identity })
}

/// The identity key of a schema: its full parsed form (Parsing Canonical Form plus what
/// PCF strips but a reader depends on: defaults, aliases, docs, logical types and custom
/// properties), as JSON with sorted keys and no whitespace.
///
/// Whitespace, key order and shorthand (`"string"` vs `{"type": "string"}`) therefore do
/// not make a new version, but adding a default does. Plain PCF would treat a schema and
/// the same schema with a new default as one, keeping the old text, so the registry would
/// judge later versions against a schema without that default.
pub(crate) fn identity_of(schema: &Schema) -> Result<String, RegistryError> {
    let value = serde_json::to_value(schema).map_err(|error| RegistryError::InvalidSchema {
        reason: format!("cannot normalize the schema: {error}"),
    })?;
    let mut out = String::new();
    write_sorted(&value, &mut out);
    Ok(out)
}

fn write_sorted(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|left, right| left.0.cmp(right.0));
            out.push('{');
            for (index, (key, item)) in entries.into_iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_sorted(item, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write_sorted(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(text: &str) -> String {
        match parse_avro(text) {
            Ok(parsed) => parsed.identity,
            Err(error) => panic!("{text}: {error}"),
        }
    }

    #[test]
    fn whitespace_key_order_and_shorthand_do_not_change_identity() {
        let a = identity(r#"{"type":"record","name":"R","fields":[{"name":"a","type":"string"}]}"#);
        let b = identity(
            r#"{ "fields": [ { "type": {"type": "string"}, "name": "a" } ],
                 "name": "R", "type": "record" }"#,
        );
        assert_eq!(a, b);
    }

    #[test]
    fn a_new_default_changes_identity() {
        let a = identity(
            r#"{"type":"record","name":"R","fields":[{"name":"a","type":["null","string"]}]}"#,
        );
        let b = identity(
            r#"{"type":"record","name":"R","fields":[{"name":"a","type":["null","string"],"default":null}]}"#,
        );
        assert_ne!(a, b);
    }

    #[test]
    fn unsupported_types_and_references_are_invalid_schemas() {
        assert!(check_supported(None, 0).is_ok());
        assert!(check_supported(Some("avro"), 0).is_ok());
        assert!(matches!(
            check_supported(Some("PROTOBUF"), 0),
            Err(RegistryError::InvalidSchema { .. })
        ));
        assert!(matches!(
            check_supported(Some("AVRO"), 1),
            Err(RegistryError::InvalidSchema { .. })
        ));
    }
}
