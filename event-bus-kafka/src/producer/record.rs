//! An event encoded for Kafka: what the producer sends and what the outbox stores.

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::BaseRecord;

use super::kafka_client::{Ticket, TicketedRecord};
use uuid::Uuid;

/// One event, ready for the broker: topic, framed key and value, headers.
///
/// ```
/// use event_bus_kafka::producer::EncodedRecord;
/// let record = EncodedRecord {
///     topic: "orders".into(),
///     key: Some(vec![0, 0, 0, 0, 1, 2, b'a']),
///     value: vec![0, 0, 0, 0, 2],
///     headers: vec![("ce_id".into(), b"x".to_vec())],
///     event_type: "org.example.shop.order.placed.v1".into(),
///     event_id: uuid::Uuid::nil(),
///     key_text: Some("a".into()),
/// };
/// assert_eq!(record.header("ce_id"), Some(&b"x"[..]));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedRecord {
    /// Topic on the broker (prefix applied).
    pub topic: String,
    /// Confluent-framed Avro key, if the event has one.
    pub key: Option<Vec<u8>>,
    /// Confluent-framed Avro value.
    pub value: Vec<u8>,
    /// Headers, in order.
    pub headers: Vec<(String, Vec<u8>)>,
    /// `ce_type`.
    pub event_type: String,
    /// `ce_id`.
    pub event_id: Uuid,
    /// The key as text, for logs and per-key ordering.
    pub key_text: Option<String>,
}

impl EncodedRecord {
    /// The value of header `name`, if present.
    ///
    /// See the type's example.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_slice())
    }

    /// The rdkafka record borrowing this one's bytes, carrying `ticket`.
    pub(crate) fn ticketed(&self, ticket: Ticket) -> TicketedRecord<'_> {
        let mut headers = OwnedHeaders::new_with_capacity(self.headers.len());
        for (name, value) in &self.headers {
            headers = headers.insert(Header {
                key: name,
                value: Some(value.as_slice()),
            });
        }
        ticketed_record(
            &self.topic,
            self.key.as_deref(),
            &self.value,
            headers,
            ticket,
        )
    }
}

/// The rdkafka record of `topic`, `key`, `value` and `headers`, carrying `ticket`.
pub(super) fn ticketed_record<'a>(
    topic: &'a str,
    key: Option<&'a [u8]>,
    value: &'a [u8],
    headers: OwnedHeaders,
    ticket: Ticket,
) -> TicketedRecord<'a> {
    let record = BaseRecord::with_opaque_to(topic, ticket)
        .payload(value)
        .headers(headers);
    match key {
        Some(key) => record.key(key),
        None => record,
    }
}
