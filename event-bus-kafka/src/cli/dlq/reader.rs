//! Reading a range of a dead-letter topic, partition by partition: each partition's
//! range is cut by offsets and times (and `--start`), the reader seeks to its start and
//! stops at its end (as the topic is now), when a page is full, or when a partition
//! sends nothing for [`IDLE`] before its end; the page then says where the next one
//! starts (see [`paging`](super::paging)).

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Message, OwnedMessage};

use crate::record_headers::header_pairs;
use rdkafka::{Offset, TopicPartitionList};

use super::paging::{IdleStop, NextPage, StartAt};
use super::{progress, DlqError, Selection};
use crate::cli::OutputFormat;
use crate::config::KafkaConfig;
use crate::consumer::dlq::{headers, is_dlq_header};
use crate::replay::OffsetAdmin;

/// How long to wait for the next record before giving up on reaching the end. A
/// partition whose last offsets are transaction markers never delivers them: the
/// consumer's position past them tells that case apart from records not delivered.
pub(crate) const IDLE: Duration = Duration::from_secs(10);

/// One dead letter, owned.
#[derive(Debug, Clone)]
pub(crate) struct DeadLetter {
    pub message: OwnedMessage,
}

impl DeadLetter {
    /// The first value of header `name` as text (lossy), if present.
    pub fn header(&self, name: &str) -> Option<String> {
        let headers = self.message.headers()?;
        header_pairs(headers.as_borrowed())
            .into_iter()
            .find(|(key, _)| key == name)
            .and_then(|(_, value)| value)
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
            .filter(|(name, _)| !is_dlq_header(name))
            .collect()
    }
}

/// The offsets of one partition to read: `start..end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Range {
    pub partition: i32,
    pub start: i64,
    pub end: i64,
}

/// What a read found: the records, where the next page starts when `--limit` (or an
/// idle partition) cut it short, and the idle partition if one did.
#[derive(Debug, Default)]
pub(crate) struct Page {
    pub letters: Vec<DeadLetter>,
    pub next: Option<NextPage>,
    pub idle: Option<IdleStop>,
}

/// How reading one partition's range ended.
#[derive(Debug, PartialEq, Eq)]
enum RangeEnd {
    /// Every offset up to the range's end was read.
    Done,
    /// The page filled up; the next record is at this offset.
    Full(i64),
    /// Nothing came for [`IDLE`] before the end; the first offset not read.
    Idle(i64),
}

/// The ranges `select` asks for, per partition of `topic` that has records there.
async fn ranges(
    admin: &OffsetAdmin,
    topic: &str,
    select: &Selection,
) -> Result<Vec<Range>, DlqError> {
    let offsets = admin.lag(&[topic.to_owned()]).await?;
    let named = select.starts.iter().map(|s| &s.partition);
    for partition in select.partitions.iter().chain(named) {
        if !offsets.iter().any(|p| p.partition == *partition) {
            return Err(DlqError::NoPartition {
                topic: topic.to_owned(),
                partition: *partition,
                count: offsets.len(),
            });
        }
    }
    let since = match select.since {
        Some(time) => Some(admin.offsets_for_time(topic, time).await?),
        None => None,
    };
    let until = match select.until {
        Some(time) => Some(admin.offsets_for_time(topic, time).await?),
        None => None,
    };
    let at = |found: &Option<Vec<(i32, i64)>>, partition: i32| {
        found.as_ref().and_then(|f| {
            f.iter()
                .find(|(p, _)| *p == partition)
                .map(|(_, offset)| *offset)
        })
    };
    let mut ranges: Vec<Range> = offsets
        .iter()
        .filter(|p| select.partitions.is_empty() || select.partitions.contains(&p.partition))
        .map(|p| {
            let resume = select
                .starts
                .iter()
                .filter(|s| s.partition == p.partition)
                .map(|s| s.offset)
                .max();
            let start = [
                Some(p.earliest),
                select.from_offset,
                at(&since, p.partition),
                resume,
            ]
            .into_iter()
            .flatten()
            .max()
            .unwrap_or(p.earliest);
            let end = [
                Some(p.latest),
                select.to_offset.map(|o| o.saturating_add(1)),
                at(&until, p.partition),
            ]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(p.latest);
            Range {
                partition: p.partition,
                start,
                end,
            }
        })
        .filter(|r| r.start < r.end)
        .collect();
    ranges.sort_by_key(|r| r.partition);
    Ok(ranges)
}

/// The records of `topic` that `select` asks for, ordered by partition then offset;
/// at most `select.limit` of them.
pub(crate) async fn read(
    kafka: &KafkaConfig,
    topic: &str,
    select: &Selection,
    format: OutputFormat,
) -> Result<Page, DlqError> {
    let admin = OffsetAdmin::new(kafka, "event-bus-dlq-reader")?;
    let ranges = ranges(&admin, topic, select).await?;
    if ranges.is_empty() || select.limit == Some(0) {
        return Ok(Page::default());
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
            source: Box::new(crate::config::secret::redact_kafka_error(source)),
        })?;
    let total: i64 = ranges.iter().map(|r| r.end - r.start).sum();
    let total = select.limit.map_or(total, |limit| {
        total.min(i64::try_from(limit).unwrap_or(i64::MAX))
    });
    let bar = progress::bar(format, "reading", u64::try_from(total).unwrap_or(0));
    let topic = topic.to_owned();
    let select = select.clone();
    let read = tokio::task::spawn_blocking(move || {
        let mut page = Page::default();
        // The partitions read to their end: the next page starts them there.
        let mut done: Vec<StartAt> = Vec::new();
        let next_page = |done: &[StartAt], partition: i32, offset: i64| {
            let cut = StartAt { partition, offset };
            Some(NextPage::after(&select.starts, done, cut))
        };
        for range in &ranges {
            if select
                .limit
                .is_some_and(|limit| page.letters.len() >= limit)
            {
                page.next = next_page(&done, range.partition, range.start);
                break;
            }
            match read_range(&consumer, &topic, *range, &select, &mut page, &bar)? {
                RangeEnd::Done => done.push(StartAt {
                    partition: range.partition,
                    offset: range.end,
                }),
                RangeEnd::Full(next) => {
                    page.next = next_page(&done, range.partition, next);
                    break;
                }
                RangeEnd::Idle(next) => {
                    page.idle = Some(IdleStop {
                        partition: range.partition,
                        offset: next,
                        end: range.end,
                    });
                    page.next = next_page(&done, range.partition, next);
                    break;
                }
            }
        }
        bar.finish_and_clear();
        Ok(page)
    });
    read.await
        .map_err(|e| DlqError::Interrupted(e.to_string()))?
}

/// Reads one partition's range into `page`, until its end, a full page or an idle
/// wait.
fn read_range(
    consumer: &BaseConsumer,
    topic: &str,
    range: Range,
    select: &Selection,
    page: &mut Page,
    bar: &indicatif::ProgressBar,
) -> Result<RangeEnd, DlqError> {
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, range.partition, Offset::Offset(range.start))
        .and_then(|()| consumer.assign(&assignment))
        .map_err(|source| DlqError::Kafka {
            operation: "assigning the dead-letter topic",
            source: Box::new(source),
        })?;
    let since = select.since.map(|t| t.timestamp_millis());
    let until = select.until.map(|t| t.timestamp_millis());
    let mut last = Instant::now();
    // The first offset not read yet.
    let mut next = range.start;
    loop {
        match consumer.poll(Duration::from_millis(200)) {
            None if last.elapsed() > IDLE => {
                let ended = idle_end(range, next, position(consumer, topic, range.partition));
                if let RangeEnd::Idle(at) = ended {
                    tracing::warn!(
                        topic = %topic, partition = range.partition, stopped_at = at, end_offset = range.end,
                        "no record for {} s before the end offset; the page stops there", IDLE.as_secs()
                    );
                }
                return Ok(ended);
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
                let offset = message.offset();
                if message.partition() != range.partition || offset < range.start {
                    continue;
                }
                if offset >= range.end {
                    return Ok(RangeEnd::Done);
                }
                next = offset + 1;
                bar.inc(1);
                // Producer timestamps need not grow with offsets: the range seeks by
                // time, and each record is checked too.
                let time = message.timestamp().to_millis();
                let in_time = time
                    .is_none_or(|t| since.is_none_or(|s| t >= s) && until.is_none_or(|u| t < u));
                if in_time {
                    page.letters.push(DeadLetter {
                        message: message.detach(),
                    });
                }
                let full = select
                    .limit
                    .is_some_and(|limit| page.letters.len() >= limit);
                if offset + 1 >= range.end {
                    return Ok(RangeEnd::Done);
                }
                if full {
                    return Ok(RangeEnd::Full(offset + 1));
                }
            }
        }
    }
}

/// The consumer's position in `partition` (past transaction markers it skipped).
fn position(consumer: &BaseConsumer, topic: &str, partition: i32) -> Option<i64> {
    let positions = consumer.position().ok()?;
    match positions.find_partition(topic, partition)?.offset() {
        Offset::Offset(offset) => Some(offset),
        _ => None,
    }
}

/// How a read of `range` that waited [`IDLE`] in vain ends: done when the consumer's
/// `position` reached the end (only markers were left), else cut at the first offset
/// not read (`next`, or the position when it is further).
fn idle_end(range: Range, next: i64, position: Option<i64>) -> RangeEnd {
    let at = position.map_or(next, |p| p.max(next));
    if at >= range.end {
        RangeEnd::Done
    } else {
        RangeEnd::Idle(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idle_partition_ends_the_range_only_when_nothing_but_markers_is_left() {
        let range = Range {
            partition: 0,
            start: 10,
            end: 20,
        };
        // Records 15..20 never came: the range is not complete, resume at 15.
        assert_eq!(idle_end(range, 15, Some(15)), RangeEnd::Idle(15));
        assert_eq!(idle_end(range, 15, None), RangeEnd::Idle(15));
        // Nothing read at all: resume at the start.
        assert_eq!(idle_end(range, 10, None), RangeEnd::Idle(10));
        // The consumer skipped the markers up to the end: done.
        assert_eq!(idle_end(range, 18, Some(20)), RangeEnd::Done);
    }
}
