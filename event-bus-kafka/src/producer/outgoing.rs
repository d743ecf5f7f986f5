//! An encoded event on its way to the broker, before its headers are materialised.
//!
//! `send` and `enqueue` hand the headers to librdkafka straight from the metadata,
//! which copies them anyway; an [`EncodedRecord`] with owned header strings is built
//! only when the record must outlive the call (the outbox, `EventEncoder::encode`).

use std::fmt;
use std::sync::Arc;

use super::buffers;
use super::encoder::record_headers;
use super::kafka_client::{Ticket, TicketedRecord};
use super::record::{ticketed_record, EncodedRecord};
use crate::observability::metrics::FixedCounter;
use event_bus_core::{EventKey, EventMetadata};
use rdkafka::message::{Header, OwnedHeaders};

/// Key, value and metadata of one event, encoded for `topic`.
pub(crate) struct OutgoingRecord {
    pub topic: Arc<str>,
    /// The produced-events counter of this topic and type.
    pub produced: Arc<FixedCounter>,
    pub key: Option<Vec<u8>>,
    pub value: Vec<u8>,
    pub metadata: EventMetadata,
    pub event_type: &'static str,
    pub key_value: Option<EventKey>,
}

impl OutgoingRecord {
    /// The rdkafka record carrying `ticket`, its headers written from the metadata.
    pub fn ticketed(&self, ticket: Ticket) -> TicketedRecord<'_> {
        let mut headers = Some(OwnedHeaders::new_with_capacity(12));
        self.metadata.for_each_header(|name, value| {
            headers = headers.take().map(|h| {
                h.insert(Header {
                    key: name,
                    value: Some(value.as_bytes()),
                })
            });
        });
        ticketed_record(
            &self.topic,
            self.key.as_deref(),
            &self.value,
            // Always `Some`: the option only lets the closure move the headers along.
            headers.unwrap_or_default(),
            ticket,
        )
    }

    /// The labels logs, spans and metrics use.
    pub fn labels(&self) -> RecordLabels<'_> {
        RecordLabels {
            topic: &self.topic,
            event_type: self.event_type,
            event_id: self.metadata.id,
            key: KeyText::Key(self.key_value.as_ref()),
            traceparent: self.metadata.traceparent.as_deref(),
        }
    }

    /// The self-contained record, with owned header strings (its key and value
    /// buffers move into it, not back to the spare ones).
    pub fn into_encoded(mut self) -> EncodedRecord {
        let headers = record_headers(&self.metadata);
        EncodedRecord {
            topic: self.topic.as_ref().to_owned(),
            key: self.key.take(),
            value: std::mem::take(&mut self.value),
            headers,
            event_type: self.event_type.to_owned(),
            event_id: self.metadata.id,
            key_text: self.key_value.take().map(|k| k.to_string()),
        }
    }
}

impl Drop for OutgoingRecord {
    /// librdkafka copied the key and value when the record was queued: their buffers
    /// go back for the next record of this thread.
    fn drop(&mut self) {
        buffers::give_back(std::mem::take(&mut self.value));
        if let Some(key) = self.key.take() {
            buffers::give_back(key);
        }
    }
}

/// What identifies a produced record in logs, spans and metrics.
#[derive(Clone, Copy)]
pub(crate) struct RecordLabels<'a> {
    pub topic: &'a str,
    pub event_type: &'a str,
    pub event_id: uuid::Uuid,
    pub key: KeyText<'a>,
    pub traceparent: Option<&'a str>,
}

/// A record's key as logs show it: text already made, or a key formatted on demand.
#[derive(Clone, Copy)]
pub(crate) enum KeyText<'a> {
    Text(Option<&'a str>),
    Key(Option<&'a EventKey>),
}

impl fmt::Display for KeyText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Text(text) => f.write_str(text.unwrap_or("")),
            Self::Key(Some(key)) => key.fmt(f),
            Self::Key(None) => Ok(()),
        }
    }
}

impl EncodedRecord {
    /// The labels logs, spans and metrics use.
    pub(crate) fn labels(&self) -> RecordLabels<'_> {
        RecordLabels {
            topic: &self.topic,
            event_type: &self.event_type,
            event_id: self.event_id,
            key: KeyText::Text(self.key_text.as_deref()),
            traceparent: self
                .header(event_bus_core::headers::names::TRACEPARENT)
                .and_then(|v| std::str::from_utf8(v).ok()),
        }
    }
}
