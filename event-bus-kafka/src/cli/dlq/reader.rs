//! Reading a dead-letter topic from its start to its end as it is now.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message, OwnedMessage};
use rdkafka::{Offset, TopicPartitionList};

use super::DlqError;
use crate::config::KafkaConfig;
use crate::consumer::dlq::headers;
use crate::replay::OffsetAdmin;

/// How long to wait for the next record before giving up on reaching the end (a
/// partition whose last offsets are transaction markers never delivers them).
const IDLE: Duration = Duration::from_secs(10);

/// One dead letter, owned.
#[derive(Debug, Clone)]
pub(crate) struct DeadLetter {
    pub message: OwnedMessage,
}

impl DeadLetter {
    /// The first value of header `name` as text (lossy), if present.
    pub fn header(&self, name: &str) -> Option<String> {
        let headers = self.message.headers()?;
        headers
            .iter()
            .find(|h| h.key == name)
            .and_then(|h| h.value)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }

    pub fn original_topic(&self) -> Option<String> {
        self.header(headers::ORIGINAL_TOPIC)
            .filter(|t| !t.trim().is_empty())
    }

    /// `dlq_failed_receivers`, split (empty when the failure was not a receiver's).
    pub fn failed_receivers(&self) -> Vec<String> {
        self.header(headers::FAILED_RECEIVERS)
            .map(|names| {
                names
                    .split(',')
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The headers to republish: the original ones, without `dlq_*` and without an
    /// earlier redrive mark.
    pub fn original_headers(&self) -> Vec<(String, Option<Vec<u8>>)> {
        super::super::tail::header_pairs(&self.message)
            .into_iter()
            .filter(|(name, _)| {
                !name.starts_with(headers::PREFIX) && name != headers::REDRIVE_RECEIVERS
            })
            .collect()
    }
}

/// Every record of `topic` from the start to the end offsets it has now (at most
/// `max`), ordered by partition then offset.
pub(crate) async fn read_to_end(
    kafka: &KafkaConfig,
    topic: &str,
    max: Option<usize>,
) -> Result<Vec<DeadLetter>, DlqError> {
    let admin = OffsetAdmin::new(kafka, "event-bus-dlq-reader")?;
    let offsets = admin.lag(&[topic.to_owned()]).await?;
    let mut remaining: BTreeMap<i32, i64> = offsets
        .iter()
        .filter(|p| p.earliest < p.latest)
        .map(|p| (p.partition, p.latest))
        .collect();
    if remaining.is_empty() || max == Some(0) {
        return Ok(Vec::new());
    }
    let mut assignment = TopicPartitionList::new();
    for p in offsets
        .iter()
        .filter(|p| remaining.contains_key(&p.partition))
    {
        assignment
            .add_partition_offset(topic, p.partition, Offset::Offset(p.earliest))
            .map_err(|source| DlqError::Kafka {
                operation: "building the assignment",
                source: Box::new(source),
            })?;
    }
    let consumer: BaseConsumer = kafka
        .client_config(&[
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("enable.partition.eof", "false"),
        ])
        .set(
            "group.id",
            format!("event-bus-dlq-{}", uuid::Uuid::new_v4().simple()),
        )
        .create()
        .map_err(|source| DlqError::Kafka {
            operation: "creating the Kafka consumer",
            source: Box::new(source),
        })?;
    consumer
        .assign(&assignment)
        .map_err(|source| DlqError::Kafka {
            operation: "assigning the dead-letter topic",
            source: Box::new(source),
        })?;
    let topic = topic.to_owned();
    let read = tokio::task::spawn_blocking(move || {
        let mut letters = Vec::new();
        let mut last = Instant::now();
        while !remaining.is_empty() && max.is_none_or(|max| letters.len() < max) {
            match consumer.poll(Duration::from_millis(200)) {
                None if last.elapsed() > IDLE => {
                    tracing::warn!(
                        topic = %topic,
                        partitions = ?remaining.keys().collect::<Vec<_>>(),
                        "no record for a while before the end offsets; stopping there"
                    );
                    break;
                }
                None => {}
                Some(Err(source)) => {
                    return Err(DlqError::Kafka {
                        operation: "reading the dead-letter topic",
                        source: Box::new(source),
                    })
                }
                Some(Ok(message)) => {
                    last = Instant::now();
                    let (partition, offset) = (message.partition(), message.offset());
                    let Some(end) = remaining.get(&partition).copied() else {
                        continue;
                    };
                    if offset < end {
                        letters.push(DeadLetter {
                            message: message.detach(),
                        });
                    }
                    if offset + 1 >= end {
                        remaining.remove(&partition);
                    }
                }
            }
        }
        letters.sort_by_key(|l| (l.message.partition(), l.message.offset()));
        Ok(letters)
    });
    read.await
        .map_err(|e| DlqError::Interrupted(e.to_string()))?
}
