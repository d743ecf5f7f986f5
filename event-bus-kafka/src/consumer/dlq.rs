//! The dead-letter topic: the original key, value and headers, plus why it failed.
//!
//! Convention: records of topic `T` go to `T.dlq` (configurable, see
//! [`DlqTopic`](super::DlqTopic)). Added headers all start with `dlq_`; headers of an
//! earlier DLQ pass are replaced, not stacked, so a record redriven and failing again
//! carries only its latest failure.
//!
//! A record too large for the dead-letter topic goes there as a stub: its key and
//! headers, no value, [`headers::VALUE_DROPPED`] and [`headers::ORIGINAL_VALUE_SIZE`].
//! The error message header is cut at [`MAX_ERROR_MESSAGE_BYTES`].
//!
//! A redrive (`event-bus dlq redrive --receivers-only`) marks the record it
//! republishes with [`headers::REDRIVE_RECEIVERS`] and [`headers::REDRIVE_GROUP`]: a
//! consumer of that group runs only those receivers, consumers of other groups run all
//! of theirs. The redrive strips the old `dlq_*` headers before it adds its marks, and a
//! new dead-letter pass strips the marks again.

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
    /// Set by a redrive: only these receivers (comma-separated) run again, in the
    /// group named by [`REDRIVE_GROUP`].
    pub const REDRIVE_RECEIVERS: &str = "redrive_receivers";
    /// Set by a redrive with [`REDRIVE_RECEIVERS`]: the consumer group the receiver
    /// names belong to. Consumers of other groups ignore the receiver names.
    pub const REDRIVE_GROUP: &str = "dlq_redrive_group";
    /// On a stub written instead of a record too large for the dead-letter topic:
    /// `true`, the value was dropped (key and headers are the original ones).
    pub const VALUE_DROPPED: &str = "dlq_value_dropped";
    /// On such a stub: the size of the dropped value, in bytes.
    pub const ORIGINAL_VALUE_SIZE: &str = "dlq_original_value_size";
}

/// The longest `dlq_error_message` written, in bytes; a longer message is cut on a
/// character boundary and ends with [`CUT_MARK`].
pub const MAX_ERROR_MESSAGE_BYTES: usize = 4096;

/// What ends an error message that was cut.
pub const CUT_MARK: &str = " …[cut]";

/// `message` cut to at most `max` bytes (the mark included) on a character boundary,
/// with [`CUT_MARK`] at the end when it was cut.
///
/// ```
/// use event_bus_kafka::consumer::dlq::{cap_message, CUT_MARK};
/// assert_eq!(cap_message("short", 100), "short");
/// let long = "é".repeat(100);
/// let capped = cap_message(&long, 51);
/// assert!(capped.len() <= 51 && capped.ends_with(CUT_MARK));
/// ```
pub fn cap_message(message: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if message.len() <= max {
        return message.into();
    }
    let mut end = max.saturating_sub(CUT_MARK.len());
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{CUT_MARK}", &message[..end]).into()
}

/// The client settings of a consumer's dead-letter producer: idempotent, `acks=all`,
/// compressed with [`DEFAULT_COMPRESSION`](crate::config::DEFAULT_COMPRESSION) (as
/// every producer of the SDK: see
/// [`KafkaConfig::producer_client_config`](crate::config::KafkaConfig::producer_client_config)),
/// the options of `kafka` (a `compression.type` among them wins), and
/// `message.timeout.ms` = the policy's `write_timeout`,
/// which wins over a `message.timeout.ms` among the options (the dedicated setting
/// `EVENT_BUS_CONSUMER_DLQ_WRITE_TIMEOUT_MS` is the one that says how long a dead
/// letter may wait).
///
/// ```
/// use std::time::Duration;
/// use event_bus_kafka::config::KafkaConfig;
/// use event_bus_kafka::consumer::{dlq::dead_letter_client_config, DlqPolicy};
/// let kafka = KafkaConfig::new("b:9092")
///     .with_option("message.timeout.ms", "300000")
///     .with_option("linger.ms", "20");
/// let policy = DlqPolicy { write_timeout: Duration::from_secs(5), ..DlqPolicy::default() };
/// let client = dead_letter_client_config(&kafka, &policy);
/// assert_eq!(client.get("message.timeout.ms"), Some("5000"));
/// assert_eq!(client.get("linger.ms"), Some("20"));
/// assert_eq!(client.get("enable.idempotence"), Some("true"));
/// assert_eq!(client.get("compression.type"), Some(event_bus_kafka::config::DEFAULT_COMPRESSION));
///
/// let plain = KafkaConfig::new("b:9092").with_option("compression.type", "none");
/// let client = dead_letter_client_config(&plain, &policy);
/// assert_eq!(client.get("compression.type"), Some("none"));
/// ```
pub fn dead_letter_client_config(
    kafka: &crate::config::KafkaConfig,
    policy: &super::DlqPolicy,
) -> rdkafka::ClientConfig {
    let timeout_ms = policy.write_timeout.as_millis().to_string();
    let mut client = kafka.producer_client_config(&[]);
    if kafka
        .options
        .get("message.timeout.ms")
        .is_some_and(|given| *given != timeout_ms)
    {
        tracing::warn!(
            given = %kafka.options.get("message.timeout.ms").map_or("", String::as_str),
            used = %timeout_ms,
            "message.timeout.ms among the Kafka options is not used by the dead-letter producer: \
             EVENT_BUS_CONSUMER_DLQ_WRITE_TIMEOUT_MS (DlqPolicy::write_timeout) sets it"
        );
    }
    client.set("message.timeout.ms", timeout_ms);
    client
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

    /// Sends one dead letter to `topic` (as a stub without the value when `stub`);
    /// `Ok` only after the broker acknowledged it.
    pub async fn send(
        &self,
        topic: &str,
        letter: &DeadLetter<'_>,
        stub: bool,
    ) -> Result<(i32, i64), rdkafka::error::KafkaError> {
        let headers = dead_letter_headers(letter, &self.group, stub);
        let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic).headers(headers);
        if let Some(value) = letter.record.value.filter(|_| !stub) {
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
fn dead_letter_headers(letter: &DeadLetter<'_>, group: &str, stub: bool) -> OwnedHeaders {
    let record = letter.record;
    let mut out = OwnedHeaders::new();
    for (name, value) in &record.headers {
        if !is_dlq_header(name) {
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
    let message = cap_message(&letter.error_message, MAX_ERROR_MESSAGE_BYTES);
    let value_size = record.value.map_or(0, <[u8]>::len).to_string();
    let mut added: Vec<(&str, &str)> = vec![
        (headers::ORIGINAL_TOPIC, record.topic),
        (headers::ORIGINAL_PARTITION, &partition),
        (headers::ORIGINAL_OFFSET, &offset),
        (headers::CONSUMER_GROUP, group),
        (headers::ERROR_KIND, letter.error_kind),
        (headers::ERROR_MESSAGE, &message),
        (headers::FAILED_RECEIVERS, &receivers),
        (headers::ATTEMPTS, &attempts),
        (headers::TIME, &time),
    ];
    if let Some(ts) = &timestamp {
        added.push((headers::ORIGINAL_TIMESTAMP, ts));
    }
    if stub {
        added.push((headers::VALUE_DROPPED, "true"));
        added.push((headers::ORIGINAL_VALUE_SIZE, &value_size));
    }
    for (key, value) in added {
        out = out.insert(Header {
            key,
            value: Some(value.as_bytes()),
        });
    }
    out
}

/// Whether a header is one a dead-letter pass or a redrive added (replaced, not kept,
/// when the record is dead-lettered again or redriven).
///
/// ```
/// use event_bus_kafka::consumer::dlq::{headers, is_dlq_header};
/// assert!(is_dlq_header(headers::REDRIVE_RECEIVERS));
/// assert!(is_dlq_header(headers::REDRIVE_GROUP));
/// assert!(!is_dlq_header("ce_id"));
/// ```
pub fn is_dlq_header(name: &str) -> bool {
    name.starts_with(headers::PREFIX) || name == headers::REDRIVE_RECEIVERS
}
