//! `event-bus dlq redrive`.

use std::collections::VecDeque;
use std::io::{self, IsTerminal, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use serde_json::{json, Value};

use super::reader::{read_to_end, DeadLetter};
use super::{DlqError, RedriveArgs};
use crate::cli::offsets::{connection, full_topic};
use crate::cli::OutputFormat;
use crate::consumer::dlq::headers;

/// Records sent but not yet acknowledged, at most.
const IN_FLIGHT: usize = 256;

/// What happens to one dead letter.
struct Item<'a> {
    letter: &'a DeadLetter,
    /// Where it goes (`None`: no `dlq_original_topic`, skipped).
    target: Option<String>,
    /// The `redrive_receivers` mark, with --receivers-only and failed receivers.
    receivers: Option<Vec<String>>,
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
        if let Some(mark) = &mark {
            out = out.insert(Header {
                key: headers::REDRIVE_RECEIVERS,
                value: Some(mark.as_bytes()),
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
            "delivered": self.delivered.map(|(partition, offset)| json!({"partition": partition, "offset": offset})),
            "skipped": self.target.is_none().then_some("no dlq_original_topic header"),
        })
    }
}

fn progress_bar(len: usize) -> ProgressBar {
    if !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(len as u64), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("redrive {bar:40} {pos}/{len} records ({per_sec}, eta {eta})")
    {
        bar.set_style(style);
    }
    bar
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
) -> Result<usize, DlqError> {
    let bar = progress_bar(items.iter().filter(|i| i.target.is_some()).count());
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
            writeln!(out, "{place}  SKIPPED: no dlq_original_topic header")?;
            continue;
        };
        let receivers = match (&item.receivers, args.receivers_only) {
            (Some(r), _) => format!("receivers: {}", r.join(",")),
            (None, true) => "receivers: all (the failure was not a receiver's)".to_string(),
            (None, false) => "receivers: all".to_string(),
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

pub(super) async fn run(
    args: &RedriveArgs,
    format: OutputFormat,
    out: &mut (dyn Write + Send),
) -> Result<(), DlqError> {
    let (kafka, env) = connection(&args.connection)?;
    let dlq_topic = full_topic(&env, &args.topic);
    let letters = read_to_end(&kafka, &dlq_topic, args.max).await?;
    let mut items: Vec<Item<'_>> = letters
        .iter()
        .map(|letter| {
            let failed = letter.failed_receivers();
            Item {
                letter,
                target: letter.original_topic(),
                receivers: (args.receivers_only && !failed.is_empty()).then_some(failed),
                delivered: None,
            }
        })
        .collect();
    let skipped = items.iter().filter(|i| i.target.is_none()).count();
    let redrivable = items.len() - skipped;
    let mut sent = 0;
    if args.execute && redrivable > 0 {
        let producer: FutureProducer = kafka
            .client_config(&[("enable.idempotence", "true"), ("acks", "all")])
            .create()
            .map_err(|source| DlqError::Kafka {
                operation: "creating the Kafka producer",
                source: Box::new(source),
            })?;
        sent = send_all(&producer, &mut items, &dlq_topic).await?;
        tracing::info!(dlq_topic = %dlq_topic, sent, skipped, receivers_only = args.receivers_only, "dead letters redriven");
    }
    match format {
        OutputFormat::Text => {
            write_text(out, &items, args)?;
            if args.execute {
                writeln!(out, "Redrove {sent} record(s) from {dlq_topic}.")?;
            } else {
                writeln!(
                    out,
                    "Dry run: nothing was sent. Run again with --execute to republish {redrivable} record(s)."
                )?;
            }
        }
        OutputFormat::Json => {
            let document = json!({
                "dlq_topic": dlq_topic,
                "executed": args.execute,
                "receivers_only": args.receivers_only,
                "redriven": if args.execute { sent } else { 0 },
                "would_redrive": redrivable,
                "skipped": skipped,
                "records": items.iter().map(Item::json).collect::<Vec<_>>(),
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
