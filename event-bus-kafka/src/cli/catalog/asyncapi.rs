//! The catalog as an AsyncAPI 3.0 document (JSON): one channel per topic, one message
//! per event type with its Avro schema as the payload, the CloudEvents headers and the
//! key in the message, and the operations of this binary (send for the types it
//! declares, receive for the types it has receivers for).

use serde_json::{json, Map, Value};

use super::model::{Catalog, CatalogEvent};
use super::wire::{headers, Key};

/// The AsyncAPI version written.
pub(crate) const ASYNCAPI_VERSION: &str = "3.0.0";

/// The payload's schema format: Avro, as AsyncAPI names it.
pub(crate) const AVRO_SCHEMA_FORMAT: &str = "application/vnd.apache.avro;version=1.9.0";

/// The version of AsyncAPI's Kafka bindings used.
const KAFKA_BINDING_VERSION: &str = "0.5.0";

/// The whole document.
pub(crate) fn document(catalog: &Catalog) -> Value {
    let mut channels = Map::new();
    for (topic, events) in catalog.topics() {
        channels.insert(topic.to_string(), channel(topic, &events));
    }
    let mut operations = Map::new();
    let mut messages = Map::new();
    for event in &catalog.events {
        messages.insert(event.event_type.to_string(), message(event));
        if event.sent {
            operations.insert(format!("send-{}", event.event_type), send(event));
        }
        if !event.receivers.is_empty() {
            operations.insert(format!("receive-{}", event.event_type), receive(event));
        }
    }
    json!({
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": catalog.title,
            "version": catalog.version,
            "description": description(catalog),
        },
        "defaultContentType": event_bus_core::headers::AVRO_CONTENT_TYPE,
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    })
}

fn description(catalog: &Catalog) -> String {
    let prefix = match &catalog.topic_prefix {
        Some(prefix) => format!(" Topics carry the prefix `{prefix}-`."),
        None => String::new(),
    };
    format!(
        "The event types of this application on Apache Kafka, written by `event-bus \
         catalog`. Values are Avro in Confluent framing (magic byte 0, 4-byte schema id, \
         Avro binary), registered under TopicRecordNameStrategy subjects with \
         FULL_TRANSITIVE compatibility; metadata travels in CloudEvents headers.{prefix} \
         Send operations are the types this binary declares it sends; receive \
         operations are the types it has receivers for, named in each operation."
    )
}

/// `#/channels/<topic>`: JSON Pointer escapes `~` and `/` (neither is legal in a
/// Kafka topic name, so this is only belt and braces).
fn pointer(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

fn channel(topic: &str, events: &[&CatalogEvent]) -> Value {
    let mut messages = Map::new();
    for event in events {
        messages.insert(
            event.event_type.to_string(),
            json!({"$ref": format!("#/components/messages/{}", pointer(event.event_type))}),
        );
    }
    json!({
        "address": topic,
        "title": topic,
        "description": format!(
            "Kafka topic `{topic}`: {} event type(s), told apart by the `ce_type` header.",
            events.len()
        ),
        "messages": messages,
        "bindings": {"kafka": {"topic": topic, "bindingVersion": KAFKA_BINDING_VERSION}},
    })
}

fn operation_refs(event: &CatalogEvent) -> (Value, Value) {
    let topic = pointer(&event.topic);
    (
        json!({"$ref": format!("#/channels/{topic}")}),
        json!([{"$ref": format!("#/channels/{topic}/messages/{}", pointer(event.event_type))}]),
    )
}

fn send(event: &CatalogEvent) -> Value {
    let (channel, messages) = operation_refs(event);
    json!({
        "action": "send",
        "channel": channel,
        "messages": messages,
        "summary": format!("This binary sends `{}` events.", event.event_type),
    })
}

fn receive(event: &CatalogEvent) -> Value {
    let (channel, messages) = operation_refs(event);
    json!({
        "action": "receive",
        "channel": channel,
        "messages": messages,
        "summary": format!(
            "Receivers in this binary: {}.",
            event.receivers.join(", ")
        ),
        "description": "`consume-events` hands every event of this type to each receiver; \
                        a failing receiver is retried with backoff, then the record goes to \
                        the dead-letter topic. The offset is committed only after that.",
        "x-receivers": event.receivers,
    })
}

fn message(event: &CatalogEvent) -> Value {
    let mut message = json!({
        "name": event.event_type,
        "title": event.event_type,
        "contentType": event_bus_core::headers::AVRO_CONTENT_TYPE,
        "headers": headers_schema(event),
        "payload": {"schemaFormat": AVRO_SCHEMA_FORMAT, "schema": event.schema_json},
        "bindings": {"kafka": kafka_message_binding(event.key.as_ref())},
        "x-value-subject": event.value_subject,
        "x-minor-version": event.minor_version,
    });
    if let (Some(doc), Some(object)) = (event.doc(), message.as_object_mut()) {
        object.insert("summary".into(), Value::from(doc));
    }
    message
}

fn headers_schema(event: &CatalogEvent) -> Value {
    let all = headers(event.event_type, event.minor_version);
    let required: Vec<&str> = all.iter().filter(|h| h.always).map(|h| h.name).collect();
    let mut properties = Map::new();
    for header in all {
        let mut schema = header.schema;
        if let Some(object) = schema.as_object_mut() {
            object.insert("description".into(), Value::from(header.description));
        }
        properties.insert(header.name.to_string(), schema);
    }
    json!({
        "type": "object",
        "description": "CloudEvents headers (Kafka binding, UTF-8 text). The SDK's \
                        producer writes all the required ones; its consumer needs only \
                        `ce_id` and `ce_type`.",
        "required": required,
        "properties": properties,
    })
}

fn kafka_message_binding(key: Option<&Key>) -> Value {
    let key_schema = match key {
        Some(key) => json!({"type": key.json_type(), "description": key.description()}),
        None => json!({
            "type": "null",
            "description": "No key: the event type declares no key field, so Kafka \
                            spreads its events over the partitions.",
        }),
    };
    json!({
        "key": key_schema,
        "schemaIdLocation": "payload",
        "schemaIdPayloadEncoding": "confluent",
        "schemaLookupStrategy": "TopicRecordNameStrategy",
        "bindingVersion": KAFKA_BINDING_VERSION,
    })
}
