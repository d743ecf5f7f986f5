//! Reading a range of a dead-letter topic, partition by partition: each partition's
//! range is cut by offsets and times, the reader seeks to its start and stops at its
//! end (as the topic is now) or when a page is full.

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message, OwnedMessage};
use rdkafka::{Offset, TopicPartitionList};

use super::{progress, DlqError, Selection};
use crate::cli::OutputFormat;
use crate::config::KafkaConfig;
use crate::consumer::dlq::{headers, is_dlq_header};
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

/// What a read found: the records, and where the next page starts when `--limit` cut
/// it short.
#[derive(Debug, Default)]
pub(crate) struct Page {
    pub letters: Vec<DeadLetter>,
    pub next: Option<(i32, i64)>,
}

/// The ranges `select` asks for, per partition of `topic` that has records there.
async fn ranges(
    admin: &OffsetAdmin,
    topic: &str,
    select: &Selection,
) -> Result<Vec<Range>, DlqError> {
    let offsets = admin.lag(&[topic.to_owned()]).await?;
    for partition in &select.partitions {
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
            let start = [
                Some(p.earliest),
                select.from_offset,
                at(&since, p.partition),
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
            source: Box::new(source),
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
        for range in &ranges {
            if select
                .limit
                .is_some_and(|limit| page.letters.len() >= limit)
            {
                page.next = Some((range.partition, range.start));
                break;
            }
            let stopped = read_range(&consumer, &topic, *range, &select, &mut page, &bar)?;
            if let Some(next) = stopped {
                page.next = Some(next);
                break;
            }
        }
        bar.finish_and_clear();
        Ok(page)
    });
    read.await
        .map_err(|e| DlqError::Interrupted(e.to_string()))?
}

/// Reads one partition's range into `page`; `Some(next position)` when the page
/// filled up before the range's end.
fn read_range(
    consumer: &BaseConsumer,
    topic: &str,
    range: Range,
    select: &Selection,
    page: &mut Page,
    bar: &indicatif::ProgressBar,
) -> Result<Option<(i32, i64)>, DlqError> {
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
    loop {
        match consumer.poll(Duration::from_millis(200)) {
            None if last.elapsed() > IDLE => {
                tracing::warn!(
                    topic = %topic, partition = range.partition,
                    "no record for a while before the end offset; stopping there"
                );
                return Ok(None);
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
                    return Ok(None);
                }
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
                    return Ok(None);
                }
                if full {
                    return Ok(Some((range.partition, offset + 1)));
                }
            }
        }
    }
}
