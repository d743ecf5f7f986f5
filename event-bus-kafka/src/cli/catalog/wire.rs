//! The wire contract of one event type as the catalog describes it: the CloudEvents
//! headers every record carries and the record key.

use event_bus_core::headers::{names, AVRO_CONTENT_TYPE, SPEC_VERSION};
use serde_json::{json, Value};

use crate::topic::key_subject;

/// One record header.
#[derive(Debug, Clone)]
pub(crate) struct Header {
    /// The header's name.
    pub name: &'static str,
    /// Whether the SDK's producer always writes it.
    pub always: bool,
    /// What it holds.
    pub description: &'static str,
    /// Its JSON Schema (the value is UTF-8 text).
    pub schema: Value,
}

/// The headers of an event of `event_type` whose code declares `minor_version`, in
/// the order the producer writes them.
pub(crate) fn headers(event_type: &str, minor_version: u32) -> Vec<Header> {
    let text = |extra: Value| {
        let mut schema = json!({"type": "string"});
        if let (Some(schema), Value::Object(extra)) = (schema.as_object_mut(), extra) {
            schema.extend(extra);
        }
        schema
    };
    vec![
        Header {
            name: names::SPECVERSION,
            always: true,
            description: "CloudEvents specification version.",
            schema: text(json!({"const": SPEC_VERSION})),
        },
        Header {
            name: names::CONTENT_TYPE,
            always: true,
            description: "Content type of the value (Kafka protocol binding of CloudEvents).",
            schema: text(json!({"const": AVRO_CONTENT_TYPE})),
        },
        Header {
            name: names::DATACONTENTTYPE,
            always: true,
            description: "CloudEvents data content type of the value.",
            schema: text(json!({"const": AVRO_CONTENT_TYPE})),
        },
        Header {
            name: names::TYPE,
            always: true,
            description: "The event type; consumers pick the reader schema and the \
                          receivers by it. Required by consumers.",
            schema: text(json!({"const": event_type})),
        },
        Header {
            name: names::ID,
            always: true,
            description: "Unique id of the event (a UUID), the key to deduplicate on: \
                          delivery is at least once. Required by consumers.",
            schema: text(json!({"format": "uuid"})),
        },
        Header {
            name: names::SOURCE,
            always: true,
            description: "The service that produced the event.",
            schema: text(json!({})),
        },
        Header {
            name: names::TIME,
            always: true,
            description: "When the event happened, RFC 3339 in UTC.",
            schema: text(json!({"format": "date-time"})),
        },
        Header {
            name: names::MINORVERSION,
            always: true,
            description: "Minor version of the event type's schema, a non-negative \
                          integer as text.",
            schema: text(json!({"pattern": "^[0-9]+$", "examples": [minor_version.to_string()]})),
        },
        Header {
            name: names::SOURCEHOST,
            always: true,
            description: "Host name of the producing process.",
            schema: text(json!({})),
        },
        Header {
            name: names::SOURCELIB,
            always: true,
            description: "Name and version of the library that produced the event.",
            schema: text(json!({})),
        },
        Header {
            name: names::TRACEPARENT,
            always: false,
            description: "W3C trace context of the producing span, when a trace is active.",
            schema: text(json!({"pattern": "^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$"})),
        },
        Header {
            name: names::TRACESTATE,
            always: false,
            description: "W3C trace state, when the trace has one.",
            schema: text(json!({})),
        },
    ]
}

/// The record key of an event type, when it declares a key field.
#[derive(Debug, Clone)]
pub(crate) struct Key {
    /// Dotted path of the field whose value is the key.
    pub field: &'static str,
    /// The key's Avro primitive type (`string`, `long`, `int`, `boolean`).
    pub avro_type: String,
    /// The schema registry subject of the key.
    pub subject: String,
}

impl Key {
    /// The key of an event on `full_topic`, from the key's Avro schema as the
    /// registration gives it (`{"name": "<field>", "type": "<avro type>"}`).
    pub(crate) fn new(field: &'static str, schema: &Value, full_topic: &str) -> Self {
        let avro_type = schema
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("string")
            .to_string();
        Self {
            field,
            subject: key_subject(full_topic, &avro_type),
            avro_type,
        }
    }

    /// One sentence for people: what the key is and how it is encoded.
    pub(crate) fn description(&self) -> String {
        format!(
            "The value of the event's `{}` field, Avro-encoded as `{}` in Confluent framing \
             (magic byte 0, 4-byte schema id, Avro binary), registered under subject `{}`. \
             Kafka partitions by it, so events with the same key keep their order.",
            self.field, self.avro_type, self.subject
        )
    }

    /// The JSON Schema type of the key's value.
    pub(crate) fn json_type(&self) -> &'static str {
        match self.avro_type.as_str() {
            "long" | "int" => "integer",
            "boolean" => "boolean",
            _ => "string",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_type_header_names_the_event_type_and_the_producer_writes_ten() {
        let headers = headers("org.example.thing.created.v1", 2);
        let ce_type = headers
            .iter()
            .find(|h| h.name == "ce_type")
            .expect("ce_type");
        assert_eq!(ce_type.schema["const"], "org.example.thing.created.v1");
        assert_eq!(headers.iter().filter(|h| h.always).count(), 10);
    }

    #[test]
    fn a_long_key_is_an_integer_with_its_subject() {
        let key = Key::new("user.id", &json!({"name": "id", "type": "long"}), "p-users");
        assert_eq!(key.json_type(), "integer");
        assert_eq!(key.subject, "p-users-long");
        assert!(key.description().contains("`user.id`"));
    }
}
