//! A borrowed view of one Kafka record.

use rdkafka::message::{BorrowedMessage, Message};

use crate::record_headers::{header_pairs, HeaderPair};

/// The parts of a record the loop reads, borrowed from the message.
#[derive(Debug, Clone)]
pub(crate) struct RecordView<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub timestamp: Option<i64>,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    /// In record order; a name that is not UTF-8 is read lossily.
    pub headers: Vec<HeaderPair<'a>>,
}

impl<'a> RecordView<'a> {
    pub fn of(message: &'a BorrowedMessage<'a>) -> Self {
        let headers = message.headers().map(header_pairs).unwrap_or_default();
        Self {
            topic: message.topic(),
            partition: message.partition(),
            offset: message.offset(),
            timestamp: message.timestamp().to_millis(),
            key: message.key(),
            value: message.payload(),
            headers,
        }
    }

    /// The key as text for logs: UTF-8 after the Confluent header when it decodes,
    /// otherwise empty.
    pub fn key_text(&self) -> String {
        self.key
            .and_then(|k| event_bus_core::codec::unframe(k).ok())
            .and_then(|(_, datum)| datum.get(1..))
            .and_then(|rest| std::str::from_utf8(rest).ok())
            .map(str::to_owned)
            .unwrap_or_default()
    }
}
