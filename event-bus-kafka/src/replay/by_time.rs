//! Time → offset, exactly: the broker's `offsets_for_times` answer, refined by
//! reading forward to the first record whose timestamp is at or after the time.
//!
//! Kafka answers exactly. Other brokers answer coarser — Tansu at batch granularity,
//! or with the earliest offset for any time — which is safe (nothing is skipped) but
//! may replay far more than asked. Reading forward from the broker's answer and
//! skipping only records *seen* to be older than the time keeps it safe and makes it
//! exact. On Kafka that reads one record per partition.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};

use super::admin::Blocking;
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
        let mut found = self.offsets_for_times(wanted)?;
        let mut scans: BTreeMap<(String, i32), Scan> = BTreeMap::new();
        for (topic, partition, millis) in wanted {
            let key = (topic.clone(), *partition);
            if let Some(Some(offset)) = found.get(&key) {
                let (_, end) = self.watermarks(topic, *partition)?;
                if *offset < end {
                    scans.insert(
                        key,
                        Scan {
                            millis: *millis,
                            position: *offset,
                            end,
                            read: 0,
                        },
                    );
                }
            }
        }
        if scans.is_empty() {
            return Ok(found);
        }
        for (key, scan) in self.scan(scans)? {
            let refined = (scan.position < scan.end).then_some(scan.position);
            if found.get(&key).copied().flatten() != refined {
                tracing::debug!(
                    topic = %key.0,
                    partition = key.1,
                    broker = ?found.get(&key).copied().flatten(),
                    refined = ?refined,
                    records_read = scan.read,
                    "refined the broker's offset-by-time answer"
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
            .map_err(|e| ReplayError::Client(Box::new(e)))?;
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
