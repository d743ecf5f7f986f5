//! The dead-letter topic: the original key, value and headers, plus why it failed.
//!
//! Convention: records of topic `T` go to `T.dlq` (configurable, see
//! [`DlqTopic`](super::DlqTopic)). Added headers all start with `dlq_`; headers of an
//! earlier DLQ pass are replaced, not stacked, so a record redriven and failing again
//! carries only its latest failure.

use std::time::Duration;

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;

use super::record::RecordView;

/// Names of the headers the consumer adds to a dead letter.
pub mod headers {
    /// Prefix shared by every DLQ header; such headers are replaced on a new pass.
    pub const PREFIX: &str = "dlq_";
    /// Topic the record was read from.
    pub const ORIGINAL_TOPIC: &str = "dlq_original_topic";
    /// Its partition.
    pub const ORIGINAL_PARTITION: &str = "dlq_original_partition";
    /// Its offset.
    pub const ORIGINAL_OFFSET: &str = "dlq_original_offset";
    /// Its timestamp (milliseconds since the epoch), when it had one.
    pub const ORIGINAL_TIMESTAMP: &str = "dlq_original_timestamp";
    /// The consumer group that gave up.
    pub const CONSUMER_GROUP: &str = "dlq_consumer_group";
    /// A stable name of the failure: `receiver_failed`, `invalid_headers`, …
    pub const ERROR_KIND: &str = "dlq_error_kind";
    /// The failure's message(s).
    pub const ERROR_MESSAGE: &str = "dlq_error_message";
    /// Comma-separated names of the receivers that still failed.
    pub const FAILED_RECEIVERS: &str = "dlq_failed_receivers";
    /// Tries made per failed receiver.
    pub const ATTEMPTS: &str = "dlq_attempts";
    /// When the record was dead-lettered (RFC 3339, UTC).
    pub const TIME: &str = "dlq_time";
    /// Set by a redrive: only these receivers (comma-separated) run again.
    pub const REDRIVE_RECEIVERS: &str = "redrive_receivers";
}

/// Why a record is being dead-lettered.
pub(crate) struct DeadLetter<'a> {
    pub record: &'a RecordView<'a>,
    pub error_kind: &'a str,
    pub error_message: String,
    pub failed_receivers: Vec<String>,
    pub attempts: u32,
}

/// Sends dead letters and waits for the broker's acknowledgement.
pub(crate) struct DeadLetterSender {
    producer: FutureProducer,
    group: String,
    timeout: Duration,
}

impl DeadLetterSender {
    pub fn new(producer: FutureProducer, group: String, timeout: Duration) -> Self {
        Self {
            producer,
            group,
            timeout,
        }
    }

    /// Sends one dead letter to `topic`; `Ok` only after the broker acknowledged it.
    pub async fn send(
        &self,
        topic: &str,
        letter: &DeadLetter<'_>,
    ) -> Result<(i32, i64), rdkafka::error::KafkaError> {
        let headers = dead_letter_headers(letter, &self.group);
        let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic).headers(headers);
        if let Some(value) = letter.record.value {
            record = record.payload(value);
        }
        if let Some(key) = letter.record.key {
            record = record.key(key);
        }
        self.producer
            .send(record, Timeout::After(self.timeout))
            .await
            .map(|d| (d.partition, d.offset))
            .map_err(|(e, _)| e)
    }
}

/// The original headers (minus any earlier `dlq_*` and redrive marks), then the DLQ's.
fn dead_letter_headers(letter: &DeadLetter<'_>, group: &str) -> OwnedHeaders {
    let record = letter.record;
    let mut out = OwnedHeaders::new();
    for (name, value) in &record.headers {
        if !name.starts_with(headers::PREFIX) && *name != headers::REDRIVE_RECEIVERS {
            out = out.insert(Header {
                key: name,
                value: *value,
            });
        }
    }
    let partition = record.partition.to_string();
    let offset = record.offset.to_string();
    let timestamp = record.timestamp.map(|t| t.to_string());
    let receivers = letter.failed_receivers.join(",");
    let attempts = letter.attempts.to_string();
    let time = event_bus_core::headers::format_time(&chrono::Utc::now());
    let mut added: Vec<(&str, &str)> = vec![
        (headers::ORIGINAL_TOPIC, record.topic),
        (headers::ORIGINAL_PARTITION, &partition),
        (headers::ORIGINAL_OFFSET, &offset),
        (headers::CONSUMER_GROUP, group),
        (headers::ERROR_KIND, letter.error_kind),
        (headers::ERROR_MESSAGE, &letter.error_message),
        (headers::FAILED_RECEIVERS, &receivers),
        (headers::ATTEMPTS, &attempts),
        (headers::TIME, &time),
    ];
    if let Some(ts) = &timestamp {
        added.push((headers::ORIGINAL_TIMESTAMP, ts));
    }
    for (key, value) in added {
        out = out.insert(Header {
            key,
            value: Some(value.as_bytes()),
        });
    }
    out
}
