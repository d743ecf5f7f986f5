//! Time → offset by reading records, for brokers without a time index.
//!
//! Some brokers cannot answer a by-time lookup (ListOffsets with a timestamp):
//! librdkafka's mock cluster answers "end" for every time, others fail. When the
//! broker's answer cannot be trusted, the first offset at or after a time is found by
//! a binary search over the partition's offsets: read the record at the middle offset
//! (assign, poll one record), compare its timestamp with the time, halve the range.
//! That costs about `log2(records)` reads per partition (about 20 for a million
//! records).
//!
//! # When the broker's answer is not trusted
//!
//! Per partition, with `[low, high)` its watermarks and `t` the time:
//!
//! - the lookup failed (the whole request or this partition's entry): search;
//! - the answer is "end" (none) while the partition holds records: the record at
//!   `high − 1` is read; at or after `t` (or without a timestamp, or unreadable), the
//!   answer would skip it: search. Older: "end" is right;
//! - the answer is an offset outside `[low, high]`: search;
//! - the answer is an offset `o` inside it: the record at `o − 1` is read; at or after
//!   `t` (or without a timestamp), the answer skips it: search below it. Otherwise the
//!   answer is kept (and refined by reading forward, see `by_time`).
//!
//! # The assumption, and what stays safe without it
//!
//! A binary search assumes timestamps do not decrease along a partition's offsets.
//! With `LogAppendTime` the broker guarantees it; with the producer-assigned
//! `CreateTime` (Kafka's default, and this SDK's producers) it holds in practice,
//! since one producer appends to a partition in send order and clocks of producers
//! sharing a partition differ by far less than the time between a replay's target
//! and the records around it. Where it does not hold the search stays safe in this
//! sense: it never lands after a record it read whose timestamp is at or after the
//! time (or that has none), so such a record is always replayed; only records the
//! search never read, lying between two records it read as older, can be missed.

use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Message, Offset, TopicPartitionList};

use super::admin::Blocking;
use super::error::ReplayError;

/// The broker's answer to a by-time lookup for one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BrokerAnswer {
    /// An offset.
    Offset(i64),
    /// "No record at or after the time": the end of the partition.
    End,
    /// The lookup failed; the reason, for the log.
    Failed(String),
}

impl std::fmt::Display for BrokerAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Offset(offset) => write!(f, "offset {offset}"),
            Self::End => f.write_str("end"),
            Self::Failed(reason) => write!(f, "failed: {reason}"),
        }
    }
}

/// What reading from an offset found: the first record at or after it, or the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Read {
    /// The first readable record at or after the offset asked for (offsets in between
    /// hold no readable record: compacted away, or transaction markers).
    Record {
        /// Its offset.
        offset: i64,
        /// Its timestamp in milliseconds, `None` when it has none.
        millis: Option<i64>,
    },
    /// No readable record from the offset asked for to the end of the partition.
    End,
}

impl Read {
    /// Whether this is a record that a replay from `millis` must not skip: at or after
    /// the time, or without a timestamp (it cannot be shown to be older).
    fn is_at_or_after(&self, millis: i64) -> bool {
        match self {
            Read::Record { millis: ts, .. } => ts.is_none_or(|ts| ts >= millis),
            Read::End => false,
        }
    }
}

/// Reads the first record at or after an offset of a partition.
pub(crate) trait ReadAt {
    /// The first readable record of `topic[partition]` at or after `offset`, or
    /// [`Read::End`].
    fn read_at(&mut self, topic: &str, partition: i32, offset: i64) -> Result<Read, ReplayError>;
}

/// What resolving one partition's time found, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Resolved {
    /// The first offset at or after the time (`None`: no record at or after it).
    pub offset: Option<i64>,
    /// Why the broker's answer was not used, when it was not.
    pub fallback: Option<String>,
    /// Records read to decide and to search.
    pub reads: u32,
}

/// Resolves one partition's time: keeps the broker's `answer` when it can be trusted,
/// otherwise searches `[low, high)` (the watermarks) by reading. See the module docs
/// for when the answer is trusted.
pub(crate) fn resolve(
    reader: &mut impl ReadAt,
    topic: &str,
    partition: i32,
    millis: i64,
    (low, high): (i64, i64),
    answer: &BrokerAnswer,
) -> Result<Resolved, ReplayError> {
    let mut reads = 0;
    if high <= low {
        // Nothing to replay, whatever the broker said.
        return Ok(Resolved {
            offset: None,
            fallback: None,
            reads,
        });
    }
    let (reason, known) = match answer {
        BrokerAnswer::Failed(reason) => (format!("the broker's lookup failed ({reason})"), None),
        BrokerAnswer::Offset(o) if *o < low || *o > high => (
            format!(
                "the broker answered offset {o}, outside the partition's offsets {low}..{high}"
            ),
            None,
        ),
        BrokerAnswer::Offset(o) if *o == low => {
            return Ok(Resolved {
                offset: Some(*o),
                fallback: None,
                reads,
            })
        }
        BrokerAnswer::End | BrokerAnswer::Offset(_) => {
            let (answer_offset, check) = match answer {
                BrokerAnswer::Offset(o) if *o < high => (Some(*o), *o - 1),
                _ => (None, high - 1),
            };
            let read = reader.read_at(topic, partition, check)?;
            reads += 1;
            match read {
                Read::Record { offset, .. } if offset == check && read.is_at_or_after(millis) => (
                    match answer_offset {
                        Some(o) => format!(
                            "the broker answered offset {o}, but the record before it is at or after the time"
                        ),
                        None => "the broker answered \"end\", but the partition's last record is at or after the time".to_owned(),
                    },
                    Some(check),
                ),
                // The answer is consistent with the record just before it (or nothing
                // readable lies right before it): keep it.
                Read::Record { offset, .. } if offset < high && answer_offset.is_some() => {
                    return Ok(Resolved {
                        offset: answer_offset,
                        fallback: None,
                        reads,
                    })
                }
                Read::End if answer_offset.is_some() => {
                    return Ok(Resolved {
                        offset: answer_offset,
                        fallback: None,
                        reads,
                    })
                }
                // "End", and the last record is older than the time.
                Read::Record { offset, .. } if offset == check => {
                    return Ok(Resolved {
                        offset: None,
                        fallback: None,
                        reads,
                    })
                }
                // "End", and the last offset holds no readable record (a transaction
                // marker), or records arrived since: the last record is not known.
                _ => (
                    "the broker answered \"end\", and the partition's last record cannot be checked"
                        .to_owned(),
                    None,
                ),
            }
        }
    };
    let (offset, searched) = search(reader, topic, partition, millis, (low, high), known)?;
    Ok(Resolved {
        offset,
        fallback: Some(reason),
        reads: reads + searched,
    })
}

/// Binary search of `[low, high)` for the first offset whose record is at or after
/// `millis`; `known` is an offset already read whose record is at or after it (the
/// search then looks below it). Returns the offset (`None`: no record at or after
/// the time) and how many records it read.
///
/// The result is never after an offset the search read whose record is at or after
/// the time (or has no timestamp): the upper bound only moves down to such records,
/// the lower bound only moves past records read as older.
pub(crate) fn search(
    reader: &mut impl ReadAt,
    topic: &str,
    partition: i32,
    millis: i64,
    (low, high): (i64, i64),
    known: Option<i64>,
) -> Result<(Option<i64>, u32), ReplayError> {
    // Every readable record before `lo` was read (or, by the assumption, is) older
    // than the time. From `hi` on, the first readable record is at or after the time
    // when `hi_found`; when not, there is none up to `high`.
    let mut lo = low;
    let (mut hi, mut hi_found) = match known {
        Some(k) if (low..high).contains(&k) => (k, true),
        _ => (high, false),
    };
    // Set once any record read is at or after the time: the answer is then an offset.
    let mut seen_at_or_after = hi_found;
    let mut reads = 0;
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let read = reader.read_at(topic, partition, mid)?;
        reads += 1;
        match read {
            Read::Record { offset, .. } if offset < hi => {
                if read.is_at_or_after(millis) {
                    // Nothing readable in [mid, offset): starting at mid is starting
                    // at this record.
                    hi = mid;
                    hi_found = true;
                    seen_at_or_after = true;
                } else {
                    lo = offset + 1;
                }
            }
            // Nothing readable in [mid, hi): what follows hi follows mid.
            Read::Record { offset, .. } => {
                seen_at_or_after |= read.is_at_or_after(millis) && offset < high;
                hi = mid;
            }
            Read::End => {
                hi = mid;
                hi_found = false;
            }
        }
    }
    Ok(((hi_found || seen_at_or_after).then_some(hi), reads))
}

/// Reads single records of partitions with one consumer outside any group (it never
/// subscribes, so it never joins one), assigning the partition at the offset to read.
/// The consumer is created on the first read.
pub(crate) struct RecordReader {
    config: ClientConfig,
    consumer: Option<BaseConsumer>,
    bootstrap_servers: String,
    timeout: Duration,
}

impl RecordReader {
    /// A reader with the admin's client options; each read waits at most the admin's
    /// timeout.
    pub(crate) fn new(blocking: &Blocking) -> Self {
        let mut config = blocking.kafka.client_config(&[
            // One record is read per position: fetch little ahead of it.
            ("max.partition.fetch.bytes", "65536"),
            ("fetch.wait.max.ms", "100"),
        ]);
        config
            .set("group.id", "event-bus-replay-time-read")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            // The end of a partition is reported, so "nothing there" needs no timeout.
            .set("enable.partition.eof", "true")
            // A position deleted meanwhile reads from the first record still stored.
            .set("auto.offset.reset", "earliest");
        Self {
            config,
            consumer: None,
            bootstrap_servers: blocking.bootstrap_servers.clone(),
            timeout: blocking.timeout,
        }
    }

    fn kafka_error(&self, operation: String) -> impl FnOnce(KafkaError) -> ReplayError + '_ {
        move |source| ReplayError::Kafka {
            operation,
            bootstrap_servers: self.bootstrap_servers.clone(),
            source: Box::new(source),
        }
    }
}

impl ReadAt for RecordReader {
    fn read_at(&mut self, topic: &str, partition: i32, offset: i64) -> Result<Read, ReplayError> {
        if self.consumer.is_none() {
            let consumer = self.config.create().map_err(|e| {
                ReplayError::Client(Box::new(crate::config::secret::redact_kafka_error(e)))
            })?;
            self.consumer = Some(consumer);
        }
        let Some(consumer) = &self.consumer else {
            return Err(ReplayError::Interrupted(
                "the record reader has no consumer".to_owned(),
            ));
        };
        let assigning = format!(
            "assigning `{topic}` partition {partition} at offset {offset} to read a record"
        );
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset(topic, partition, Offset::Offset(offset))
            .map_err(self.kafka_error(assigning.clone()))?;
        consumer
            .assign(&assignment)
            .map_err(self.kafka_error(assigning))?;
        let deadline = Instant::now() + self.timeout;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(ReplayError::ReadTimedOut {
                    topic: topic.to_owned(),
                    partition,
                    offset,
                    bootstrap_servers: self.bootstrap_servers.clone(),
                    timeout: self.timeout,
                });
            }
            // Only this partition is assigned: an end-of-partition event is its own.
            match consumer.poll(remaining.min(Duration::from_millis(100))) {
                None => continue,
                Some(Err(KafkaError::PartitionEOF(p))) if p == partition => return Ok(Read::End),
                Some(Err(KafkaError::PartitionEOF(_))) => continue,
                Some(Err(source)) => {
                    return Err(self.kafka_error(format!(
                        "reading `{topic}` partition {partition} at offset {offset}"
                    ))(source))
                }
                Some(Ok(message)) => {
                    if message.topic() != topic
                        || message.partition() != partition
                        || message.offset() < offset
                    {
                        continue;
                    }
                    return Ok(Read::Record {
                        offset: message.offset(),
                        millis: message.timestamp().to_millis(),
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// A partition in memory: offset → timestamp (`None`: no timestamp); offsets
    /// missing in `[low, high)` hold no readable record.
    struct Log {
        records: BTreeMap<i64, Option<i64>>,
        high: i64,
        reads: Vec<i64>,
    }

    impl Log {
        fn dense(timestamps: &[i64]) -> Self {
            Self {
                records: timestamps
                    .iter()
                    .enumerate()
                    .map(|(offset, ts)| (offset as i64, Some(*ts)))
                    .collect(),
                high: timestamps.len() as i64,
                reads: Vec::new(),
            }
        }
    }

    impl ReadAt for Log {
        fn read_at(&mut self, _: &str, _: i32, offset: i64) -> Result<Read, ReplayError> {
            self.reads.push(offset);
            Ok(self.records.range(offset..self.high).next().map_or(
                Read::End,
                |(offset, millis)| Read::Record {
                    offset: *offset,
                    millis: *millis,
                },
            ))
        }
    }

    fn search_all(log: &mut Log, millis: i64) -> Option<i64> {
        let high = log.high;
        search(log, "t", 0, millis, (0, high), None)
            .expect("in memory")
            .0
    }

    /// The exact answer on monotonic timestamps, by definition.
    fn first_at_or_after(timestamps: &[i64], millis: i64) -> Option<i64> {
        timestamps
            .iter()
            .position(|ts| *ts >= millis)
            .map(|p| p as i64)
    }

    #[test]
    fn finds_the_first_offset_at_or_after_the_time_on_monotonic_timestamps() {
        let timestamps: Vec<i64> = (0..1000).map(|n| 1_000 + n / 3 * 10).collect();
        for millis in [0, 1_000, 1_005, 1_010, 1_500, 1_501, 4_330, 4_331, 9_999] {
            let mut log = Log::dense(&timestamps);
            assert_eq!(
                search_all(&mut log, millis),
                first_at_or_after(&timestamps, millis),
                "time {millis}"
            );
            assert!(log.reads.len() <= 11, "{} reads", log.reads.len());
        }
    }

    #[test]
    fn skips_offsets_without_records_and_reports_none_past_the_last_record() {
        let mut log = Log {
            records: [(3, Some(10)), (4, Some(20)), (9, Some(30)), (12, Some(40))].into(),
            high: 14,
            reads: Vec::new(),
        };
        // 5..=9 hold nothing readable before 9: any of them starts at record 9.
        let found = search_all(&mut log, 25).expect("a record at or after 25");
        assert!((5..=9).contains(&found), "{found}");
        assert_eq!(search_all(&mut log, 41), None);
        assert_eq!(
            search_all(&mut log, 40).map(|o| (10..=12).contains(&o)),
            Some(true)
        );
        assert_eq!(search_all(&mut log, 0).map(|o| o <= 3), Some(true));
    }

    #[test]
    fn never_lands_after_a_record_it_read_at_or_after_the_time() {
        // Non-monotonic: any pattern of old and new timestamps.
        let mut state = 7_u64;
        for round in 0..500 {
            let len = 1 + (round % 40);
            let timestamps: Vec<i64> = (0..len)
                .map(|_| {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    ((state >> 33) % 100) as i64
                })
                .collect();
            let millis = (round % 100) as i64;
            let mut log = Log::dense(&timestamps);
            let found = search_all(&mut log, millis);
            let end = log.high;
            for read in &log.reads {
                let ts = timestamps[*read as usize];
                if ts >= millis {
                    assert!(
                        found.unwrap_or(end) <= *read,
                        "{timestamps:?} from {millis}: answered {found:?} past offset {read} ({ts})"
                    );
                }
            }
        }
    }

    #[test]
    fn a_record_read_without_a_timestamp_is_not_skipped() {
        let mut log = Log {
            records: [(0, Some(1)), (1, Some(2)), (2, None), (3, Some(9))].into(),
            high: 4,
            reads: Vec::new(),
        };
        assert_eq!(search_all(&mut log, 5), Some(2));
        assert!(log.reads.contains(&2), "{:?}", log.reads);
    }

    #[test]
    fn the_broker_answer_is_kept_only_when_the_records_around_it_agree() {
        let timestamps = [10, 20, 30, 40, 50];
        let resolve_with = |answer: BrokerAnswer, millis: i64| {
            let mut log = Log::dense(&timestamps);
            resolve(&mut log, "t", 0, millis, (0, 5), &answer).expect("in memory")
        };
        // Exact answers are kept, after one read of the record before.
        let kept = resolve_with(BrokerAnswer::Offset(2), 30);
        assert_eq!(
            (kept.offset, kept.fallback.is_none(), kept.reads),
            (Some(2), true, 1)
        );
        // Coarser (earlier) answers are kept too: reading forward refines them.
        assert_eq!(resolve_with(BrokerAnswer::Offset(1), 30).offset, Some(1));
        // "End" agrees when the last record is older.
        let end = resolve_with(BrokerAnswer::End, 51);
        assert_eq!((end.offset, end.fallback), (None, None));
        // "End" while the last record is at or after the time: searched.
        let searched = resolve_with(BrokerAnswer::End, 30);
        assert_eq!(searched.offset, Some(2));
        assert!(searched.fallback.is_some());
        // Too late an answer would skip a record: searched.
        let late = resolve_with(BrokerAnswer::Offset(4), 30);
        assert_eq!(late.offset, Some(2));
        assert!(late.fallback.expect("fallback").contains("record before"));
        // Out of range, or failed: searched.
        assert_eq!(resolve_with(BrokerAnswer::Offset(9), 30).offset, Some(2));
        assert_eq!(resolve_with(BrokerAnswer::Offset(-5), 30).offset, Some(2));
        assert_eq!(
            resolve_with(BrokerAnswer::Failed("unsupported".into()), 0).offset,
            Some(0)
        );
        assert_eq!(
            resolve_with(BrokerAnswer::Failed("x".into()), 51).offset,
            None
        );
        // An empty partition needs no read.
        let mut empty = Log::dense(&[]);
        let none = resolve(&mut empty, "t", 0, 1, (7, 7), &BrokerAnswer::End).expect("in memory");
        assert_eq!((none.offset, none.reads), (None, 0));
    }
}
