//! Time → offset, exactly: the broker's `offsets_for_times` answer, checked, then
//! refined by reading forward to the first record whose timestamp is at or after the
//! time.
//!
//! Kafka answers exactly. Other brokers answer coarser — at batch granularity, or
//! with the earliest offset for any time — which is safe (nothing is skipped) but may
//! replay far more than asked. Reading forward from the broker's answer and skipping
//! only records *seen* to be older than the time keeps it safe and makes it exact. On
//! Kafka that reads one record per partition.
//!
//! Some brokers have no time index at all (librdkafka's mock cluster answers "end"
//! for every time) or fail the lookup. The answer is checked against the records
//! around it first, and when it cannot be trusted the offset is found by reading:
//! see `by_reading`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};

use super::admin::Blocking;
use super::by_reading::{self, BrokerAnswer, RecordReader};
use super::error::ReplayError;

/// At most this many records are read per partition; past it, the offset reached so
/// far is used (every record before it was seen to be older than the time).
pub(crate) const MAX_SCAN: u64 = 100_000;

/// Where one partition's scan stands.
struct Scan {
    millis: i64,
    /// The first offset not yet known to hold an older record.
    position: i64,
    /// The end offset: reaching it means no record at or after the time.
    end: i64,
    read: u64,
}

impl Blocking {
    /// Per partition of `wanted` (`(topic, partition, millis)`), the first offset whose
    /// record's timestamp is at or after `millis` (`None`: no such record yet).
    pub fn first_offsets_at(
        &self,
        wanted: &[(String, i32, i64)],
    ) -> Result<BTreeMap<(String, i32), Option<i64>>, ReplayError> {
        if wanted.is_empty() {
            return Ok(BTreeMap::new());
        }
        let answers = match self.offsets_for_times(wanted) {
            Ok(answers) => answers,
            Err(error) => {
                tracing::warn!(
                    bootstrap_servers = %self.bootstrap_servers,
                    error = %error,
                    partitions = wanted.len(),
                    "the broker cannot look up offsets by time; finding them by reading records"
                );
                let reason = match &error {
                    ReplayError::TimestampLookup { source, .. } => source.to_string(),
                    other => other.to_string(),
                };
                wanted
                    .iter()
                    .map(|(t, p, _)| ((t.clone(), *p), BrokerAnswer::Failed(reason.clone())))
                    .collect()
            }
        };
        let mut reader = RecordReader::new(self);
        let mut found = BTreeMap::new();
        let mut scans: BTreeMap<(String, i32), Scan> = BTreeMap::new();
        for (topic, partition, millis) in wanted {
            let key = (topic.clone(), *partition);
            let answer = answers.get(&key).cloned().unwrap_or_else(|| {
                BrokerAnswer::Failed("the broker's answer left this partition out".to_owned())
            });
            let (low, high) = self.watermarks(topic, *partition)?;
            let resolved = by_reading::resolve(
                &mut reader,
                topic,
                *partition,
                *millis,
                (low, high),
                &answer,
            )?;
            if let Some(reason) = &resolved.fallback {
                tracing::info!(
                    topic = %topic,
                    partition = *partition,
                    time_ms = *millis,
                    broker_answer = %answer,
                    reason = %reason,
                    low_watermark = low,
                    high_watermark = high,
                    found = ?resolved.offset,
                    records_read = resolved.reads,
                    "found the offset of a time by reading records: the broker's by-time answer cannot be trusted"
                );
            }
            if let Some(offset) = resolved.offset {
                if offset < high {
                    scans.insert(
                        key.clone(),
                        Scan {
                            millis: *millis,
                            position: offset,
                            end: high,
                            read: 0,
                        },
                    );
                }
            }
            found.insert(key, resolved.offset);
        }
        if scans.is_empty() {
            return Ok(found);
        }
        for (key, scan) in self.scan(scans)? {
            let refined = (scan.position < scan.end).then_some(scan.position);
            let before = found.get(&key).copied().flatten();
            if before != refined {
                tracing::debug!(
                    topic = %key.0,
                    partition = key.1,
                    before = ?before,
                    refined = ?refined,
                    records_read = scan.read,
                    "refined the offset of a time by reading forward"
                );
            }
            found.insert(key, refined);
        }
        Ok(found)
    }

    /// Reads every partition forward from its position until a record at or after its
    /// time, its end, [`MAX_SCAN`] records, or the deadline.
    fn scan(
        &self,
        mut scans: BTreeMap<(String, i32), Scan>,
    ) -> Result<BTreeMap<(String, i32), Scan>, ReplayError> {
        let reader: BaseConsumer = self
            .kafka
            .client_config(&[
                ("enable.auto.commit", "false"),
                ("enable.auto.offset.store", "false"),
                ("enable.partition.eof", "false"),
            ])
            .set("group.id", "event-bus-replay-time-scan")
            .create()
            .map_err(|e| {
                ReplayError::Client(Box::new(crate::config::secret::redact_kafka_error(e)))
            })?;
        let mut assignment = TopicPartitionList::new();
        for ((topic, partition), scan) in &scans {
            assignment
                .add_partition_offset(topic, *partition, Offset::Offset(scan.position))
                .map_err(self.kafka_error("building the assignment of the time scan"))?;
        }
        reader
            .assign(&assignment)
            .map_err(self.kafka_error("assigning partitions for the time scan"))?;
        let mut open: Vec<(String, i32)> = scans.keys().cloned().collect();
        let deadline = Instant::now() + self.timeout * 3;
        while !open.is_empty() && Instant::now() < deadline {
            let Some(message) = reader.poll(Duration::from_millis(100)) else {
                continue;
            };
            let message = message.map_err(self.kafka_error("reading records for the time scan"))?;
            let key = (message.topic().to_owned(), message.partition());
            let Some(scan) = scans.get_mut(&key) else {
                continue;
            };
            if !open.contains(&key) || message.offset() < scan.position {
                continue;
            }
            scan.read += 1;
            match message.timestamp().to_millis() {
                // Seen to be older: safe to skip.
                Some(ts) if ts < scan.millis => scan.position = message.offset() + 1,
                // At or after the time, or without a timestamp: start here.
                _ => scan.position = message.offset(),
            }
            let older = message
                .timestamp()
                .to_millis()
                .is_some_and(|ts| ts < scan.millis);
            if !older || scan.position >= scan.end || scan.read >= MAX_SCAN {
                open.retain(|k| k != &key);
            }
        }
        if !open.is_empty() {
            tracing::warn!(
                partitions = open.len(),
                "the time scan did not finish in time; using the offsets reached (earlier, so nothing is skipped)"
            );
        }
        Ok(scans)
    }
}
