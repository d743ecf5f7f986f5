//! `event-bus dlq redrive`.

use std::collections::{BTreeMap, VecDeque};
use std::io::{self, Write};
use std::time::Duration;

use indicatif::ProgressBar;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use serde_json::{json, Value};

use super::reader::{read, DeadLetter};
use super::show::{next_page_json, write_next_page};
use super::{groups, progress, DlqError, RedriveArgs};
use crate::cli::offsets::connection;
use crate::cli::OutputFormat;
use crate::config::KafkaConfig;
use crate::consumer::dlq::headers;

/// Records sent but not yet acknowledged, at most.
const IN_FLIGHT: usize = 256;

/// What happens to one dead letter.
struct Item<'a> {
    letter: &'a DeadLetter,
    /// Where it goes (`None`: skipped, see `skipped`).
    target: Option<String>,
    /// Why it is not redriven: no `dlq_original_topic`, or a stub without its value
    /// (republishing it would turn the event into a tombstone).
    skipped: Option<String>,
    /// The `redrive_receivers` mark, with --receivers-only and failed receivers.
    receivers: Option<Vec<String>>,
    /// The `dlq_redrive_group` mark: the group the receivers failed in.
    group: Option<String>,
    /// Where it landed, once sent.
    delivered: Option<(i32, i64)>,
}

impl Item<'_> {
    fn headers(&self) -> OwnedHeaders {
        let original = self.letter.original_headers();
        let mark = self.receivers.as_ref().map(|r| r.join(","));
        let mut out = OwnedHeaders::new_with_capacity(original.len() + 1);
        for (name, value) in &original {
            out = out.insert(Header {
                key: name,
                value: value.as_deref(),
            });
        }
        if let (Some(mark), Some(group)) = (&mark, &self.group) {
            out = out
                .insert(Header {
                    key: headers::REDRIVE_RECEIVERS,
                    value: Some(mark.as_bytes()),
                })
                .insert(Header {
                    key: headers::REDRIVE_GROUP,
                    value: Some(group.as_bytes()),
                });
        }
        out
    }

    fn json(&self) -> Value {
        let m = &self.letter.message;
        json!({
            "dlq_partition": m.partition(),
            "dlq_offset": m.offset(),
            "ce_id": self.letter.header("ce_id"),
            "ce_type": self.letter.header("ce_type"),
            "target_topic": self.target,
            "redrive_receivers": self.receivers,
            "redrive_group": self.group,
            "delivered": self.delivered.map(|(partition, offset)| json!({"partition": partition, "offset": offset})),
            "skipped": self.skipped,
        })
    }
}

/// Waits for the oldest record in flight and notes where it landed.
async fn settle(
    items: &mut [Item<'_>],
    pending: &mut VecDeque<(usize, DeliveryFuture)>,
    dlq_topic: &str,
    sent: usize,
    bar: &ProgressBar,
) -> Result<(), DlqError> {
    let Some((index, future)) = pending.pop_front() else {
        return Ok(());
    };
    let item = &mut items[index];
    let failed = |source: KafkaError, item: &Item<'_>| DlqError::Send {
        dlq_topic: dlq_topic.to_owned(),
        partition: item.letter.message.partition(),
        offset: item.letter.message.offset(),
        target: item.target.clone().unwrap_or_default(),
        sent,
        source: Box::new(source),
    };
    match future.await {
        Ok(Ok(delivery)) => {
            item.delivered = Some((delivery.partition, delivery.offset));
            bar.inc(1);
            Ok(())
        }
        Ok(Err((source, _))) => Err(failed(source, item)),
        Err(_) => Err(failed(KafkaError::Canceled, item)),
    }
}

/// Sends every item with a target, in order, with up to [`IN_FLIGHT`] unacknowledged
/// (the idempotent producer keeps their order per partition).
async fn send_all(
    producer: &FutureProducer,
    items: &mut [Item<'_>],
    dlq_topic: &str,
    format: OutputFormat,
) -> Result<usize, DlqError> {
    let targets = items.iter().filter(|i| i.target.is_some()).count();
    let bar = progress::bar(format, "redrive", targets as u64);
    let mut pending: VecDeque<(usize, DeliveryFuture)> = VecDeque::new();
    let mut sent = 0;
    for index in 0..items.len() {
        let Some(target) = items[index].target.clone() else {
            continue;
        };
        let letter = items[index].letter;
        let headers = items[index].headers();
        loop {
            let mut record: FutureRecord<'_, [u8], [u8]> =
                FutureRecord::to(&target).headers(headers.clone());
            if let Some(value) = letter.message.payload() {
                record = record.payload(value);
            }
            if let Some(key) = letter.message.key() {
                record = record.key(key);
            }
            match producer.send_result(record) {
                Ok(future) => {
                    pending.push_back((index, future));
                    break;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    if pending.is_empty() {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    } else {
                        settle(items, &mut pending, dlq_topic, sent, &bar).await?;
                        sent += 1;
                    }
                }
                Err((source, _)) => {
                    return Err(DlqError::Send {
                        dlq_topic: dlq_topic.to_owned(),
                        partition: letter.message.partition(),
                        offset: letter.message.offset(),
                        target,
                        sent,
                        source: Box::new(source),
                    })
                }
            }
        }
        if pending.len() >= IN_FLIGHT {
            settle(items, &mut pending, dlq_topic, sent, &bar).await?;
            sent += 1;
        }
    }
    while !pending.is_empty() {
        settle(items, &mut pending, dlq_topic, sent, &bar).await?;
        sent += 1;
    }
    bar.finish_and_clear();
    Ok(sent)
}

fn write_text(
    out: &mut (dyn Write + Send),
    items: &[Item<'_>],
    args: &RedriveArgs,
) -> io::Result<()> {
    for item in items {
        let m = &item.letter.message;
        let place = format!("{}[{}]@{}", m.topic(), m.partition(), m.offset());
        let Some(target) = &item.target else {
            let why = item
                .skipped
                .as_deref()
                .unwrap_or("no dlq_original_topic header");
            writeln!(out, "{place}  SKIPPED: {why}")?;
            continue;
        };
        let receivers = match (&item.receivers, &item.group, args.receivers_only) {
            (Some(r), Some(group), _) => {
                format!(
                    "receivers: {} in group {group}, all in other groups",
                    r.join(",")
                )
            }
            (_, _, true) if item.letter.failed_receivers().is_empty() => {
                "receivers: all (the failure was not a receiver's)".to_string()
            }
            (_, _, true) => {
                "receivers: all (no dlq_consumer_group header to scope them)".to_string()
            }
            _ => "receivers: all".to_string(),
        };
        let landed = item
            .delivered
            .map(|(p, o)| format!("{target}[{p}]@{o}"))
            .unwrap_or_else(|| target.clone());
        writeln!(
            out,
            "{place}  → {landed}  {receivers}  ce_id {}",
            item.letter.header("ce_id").unwrap_or_else(|| "?".into())
        )?;
    }
    Ok(())
}

/// Per target topic, the groups that read it now (`Err`: the listing failed).
type Readers = BTreeMap<String, Result<Vec<String>, String>>;

/// The groups reading each target topic, asked of the broker once per topic.
async fn readers(kafka: &KafkaConfig, items: &[Item<'_>]) -> Readers {
    let mut readers = Readers::new();
    for target in items.iter().filter_map(|i| i.target.as_ref()) {
        if !readers.contains_key(target) {
            let groups = groups::reading(kafka, target).await;
            readers.insert(target.clone(), groups);
        }
    }
    readers
}

/// Which groups see the records of each target topic again.
fn write_readers(out: &mut (dyn Write + Send), readers: &Readers) -> io::Result<()> {
    for (target, groups) in readers {
        match groups {
            Ok(groups) if !groups.is_empty() => writeln!(
                out,
                "Read again by every group subscribed to {target}: now {} (and any group \
                 not running now, when it next runs).",
                groups.join(", ")
            )?,
            Ok(_) => writeln!(
                out,
                "Read again by every group subscribed to {target} (none is running now)."
            )?,
            Err(reason) => writeln!(
                out,
                "Read again by every group subscribed to {target} (the groups could not be \
                 listed: {reason})."
            )?,
        }
    }
    Ok(())
}

fn readers_json(readers: &Readers) -> Value {
    readers
        .iter()
        .map(|(target, groups)| {
            let groups = match groups {
                Ok(groups) => json!({ "running_groups": groups }),
                Err(reason) => json!({ "running_groups": null, "error": reason }),
            };
            (target.clone(), groups)
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// Why `letter` cannot be redriven, if it cannot: it names no original topic, or it is
/// a stub whose value was dropped (too large for the dead-letter topic), which would
/// land on the original topic as a tombstone.
fn skip_reason(letter: &DeadLetter) -> Option<String> {
    let Some(topic) = letter.original_topic() else {
        return Some("no dlq_original_topic header".to_owned());
    };
    let dropped = letter
        .header(headers::VALUE_DROPPED)
        .is_some_and(|v| v.trim() != "false");
    dropped.then(|| {
        let at = |name| letter.header(name).unwrap_or_else(|| "?".to_owned());
        format!(
            "value dropped; copy it from {topic}[{}]@{}",
            at(headers::ORIGINAL_PARTITION),
            at(headers::ORIGINAL_OFFSET)
        )
    })
}

/// The marks of one dead letter: the receivers to run again and their group, with
/// --receivers-only when it failed in receivers of a known group.
fn marks(letter: &DeadLetter, receivers_only: bool) -> (Option<Vec<String>>, Option<String>) {
    let failed = letter.failed_receivers();
    let group = letter
        .header(headers::CONSUMER_GROUP)
        .filter(|g| !g.trim().is_empty());
    match group {
        Some(group) if receivers_only && !failed.is_empty() => (Some(failed), Some(group)),
        _ => (None, None),
    }
}

pub(super) async fn run(
    args: &RedriveArgs,
    format: OutputFormat,
    out: &mut (dyn Write + Send),
) -> Result<(), DlqError> {
    let (kafka, env) = connection(&args.connection)?;
    let dlq_topic = args.select.dlq_topic_name(&env)?;
    let page = read(&kafka, &dlq_topic, &args.select, format).await?;
    let mut items: Vec<Item<'_>> = page
        .letters
        .iter()
        .map(|letter| {
            let (receivers, group) = marks(letter, args.receivers_only);
            let skipped = skip_reason(letter);
            Item {
                letter,
                target: letter.original_topic().filter(|_| skipped.is_none()),
                skipped,
                receivers,
                group,
                delivered: None,
            }
        })
        .collect();
    let skipped = items.iter().filter(|i| i.target.is_none()).count();
    let redrivable = items.len() - skipped;
    let readers = if args.execute {
        Readers::new()
    } else {
        readers(&kafka, &items).await
    };
    let mut sent = 0;
    if args.execute && redrivable > 0 {
        let producer: FutureProducer =
            kafka
                .producer_client_config(&[])
                .create()
                .map_err(|source| DlqError::Kafka {
                    operation: "creating the Kafka producer",
                    source: Box::new(crate::config::secret::redact_kafka_error(source)),
                })?;
        sent = send_all(&producer, &mut items, &dlq_topic, format).await?;
        tracing::info!(dlq_topic = %dlq_topic, sent, skipped, receivers_only = args.receivers_only, "dead letters redriven");
    }
    match format {
        OutputFormat::Text => {
            write_text(out, &items, args)?;
            if args.execute {
                writeln!(out, "Redrove {sent} record(s) from {dlq_topic}.")?;
            } else {
                write_readers(out, &readers)?;
                writeln!(
                    out,
                    "Dry run: nothing was sent. Run again with --execute to republish {redrivable} record(s)."
                )?;
            }
            write_next_page(out, &page)?;
        }
        OutputFormat::Json => {
            let (next_page, incomplete) = next_page_json(&page);
            let document = json!({
                "dlq_topic": dlq_topic,
                "executed": args.execute,
                "receivers_only": args.receivers_only,
                "redriven": if args.execute { sent } else { 0 },
                "would_redrive": redrivable,
                "skipped": skipped,
                "read_again_by": readers_json(&readers),
                "records": items.iter().map(Item::json).collect::<Vec<_>>(),
                "next_page": next_page,
                "incomplete": incomplete,
            });
            serde_json::to_writer_pretty(&mut *out, &document).map_err(io::Error::from)?;
            writeln!(out)?;
        }
    }
    if skipped > 0 {
        return Err(DlqError::NotRedriven {
            skipped,
            redriven: if args.execute { sent } else { redrivable },
        });
    }
    Ok(())
}
