//! `event-bus dlq show`.

use std::io::{self, Write};

use rdkafka::message::Message;
use serde_json::{json, Value};

use super::reader::{read, DeadLetter, Page, IDLE};
use super::{DlqError, ShowArgs};
use crate::cli::offsets::connection;
use crate::cli::tail::{header_json, header_pairs};
use crate::cli::OutputFormat;
use crate::consumer::dlq::headers;

/// One dead letter as JSON: place, origin, failure, event id and type, all headers.
pub(super) fn letter_json(letter: &DeadLetter) -> Value {
    let message = &letter.message;
    let number = |name: &str| {
        letter
            .header(name)
            .and_then(|v| v.trim().parse::<i64>().ok())
    };
    let all_headers: serde_json::Map<String, Value> = header_pairs(message)
        .into_iter()
        .map(|(name, value)| {
            let value = header_json(value.as_deref());
            (name, value)
        })
        .collect();
    json!({
        "topic": message.topic(),
        "partition": message.partition(),
        "offset": message.offset(),
        "timestamp_ms": message.timestamp().to_millis(),
        "original": {
            "topic": letter.original_topic(),
            "partition": number(headers::ORIGINAL_PARTITION),
            "offset": number(headers::ORIGINAL_OFFSET),
            "timestamp_ms": number(headers::ORIGINAL_TIMESTAMP),
        },
        "consumer_group": letter.header(headers::CONSUMER_GROUP),
        "error_kind": letter.header(headers::ERROR_KIND),
        "error_message": letter.header(headers::ERROR_MESSAGE),
        "failed_receivers": letter.failed_receivers(),
        "attempts": number(headers::ATTEMPTS),
        "value_dropped": letter.header(headers::VALUE_DROPPED).is_some(),
        "original_value_size": number(headers::ORIGINAL_VALUE_SIZE),
        "dead_lettered_at": letter.header(headers::TIME),
        "ce_id": letter.header("ce_id"),
        "ce_type": letter.header("ce_type"),
        "headers": all_headers,
    })
}

fn write_text(out: &mut (dyn Write + Send), topic: &str, page: &Page) -> io::Result<()> {
    let letters = &page.letters;
    if letters.is_empty() {
        writeln!(out, "{topic} has no dead letters in the selected range")?;
        return write_next_page(out, page);
    }
    for letter in letters {
        let m = &letter.message;
        let or_unknown = |v: Option<String>| v.unwrap_or_else(|| "?".to_string());
        writeln!(
            out,
            "{}[{}]@{}  from {}[{}]@{}  {}  receivers: {}  attempts: {}  at {}",
            m.topic(),
            m.partition(),
            m.offset(),
            or_unknown(letter.original_topic()),
            or_unknown(letter.header(headers::ORIGINAL_PARTITION)),
            or_unknown(letter.header(headers::ORIGINAL_OFFSET)),
            or_unknown(letter.header(headers::ERROR_KIND)),
            {
                let failed = letter.failed_receivers();
                if failed.is_empty() {
                    "-".to_string()
                } else {
                    failed.join(",")
                }
            },
            or_unknown(letter.header(headers::ATTEMPTS)),
            or_unknown(letter.header(headers::TIME)),
        )?;
        writeln!(
            out,
            "    ce_type {}  ce_id {}  group {}",
            or_unknown(letter.header("ce_type")),
            or_unknown(letter.header("ce_id")),
            or_unknown(letter.header(headers::CONSUMER_GROUP)),
        )?;
        if let Some(message) = letter.header(headers::ERROR_MESSAGE) {
            writeln!(out, "    error: {message}")?;
        }
        if letter.header(headers::VALUE_DROPPED).is_some() {
            writeln!(
                out,
                "    value dropped: it was {} bytes, too large for the dead-letter topic",
                or_unknown(letter.header(headers::ORIGINAL_VALUE_SIZE))
            )?;
        }
    }
    writeln!(out, "{} dead letter(s)", letters.len())?;
    write_next_page(out, page)
}

/// Where the next page starts, when `--limit` or an idle partition cut this one
/// short: the exact `--start` arguments to add to the same command.
pub(super) fn write_next_page(out: &mut (dyn Write + Send), page: &Page) -> io::Result<()> {
    if let Some(idle) = &page.idle {
        writeln!(out, "{}", idle.message(IDLE.as_secs()))?;
    }
    match &page.next {
        Some(next) => writeln!(
            out,
            "More in the range. Next page: the same command with {} (partitions not named \
             start at the range's start).",
            next.args()
        ),
        None => Ok(()),
    }
}

/// The next page as JSON (`{"start": [{"partition", "offset"}, …], "args": "--start …"}`)
/// or null, and the idle partition that cut the page short (or null).
pub(super) fn next_page_json(page: &Page) -> (Value, Value) {
    (
        page.next.as_ref().map_or(Value::Null, |next| next.json()),
        page.idle.as_ref().map_or(Value::Null, |idle| idle.json()),
    )
}

pub(super) async fn run(
    args: &ShowArgs,
    format: OutputFormat,
    out: &mut (dyn Write + Send),
) -> Result<(), DlqError> {
    let (kafka, env) = connection(&args.connection)?;
    let topic = args.select.dlq_topic_name(&env)?;
    let page = read(&kafka, &topic, &args.select, format).await?;
    match format {
        OutputFormat::Text => write_text(out, &topic, &page)?,
        OutputFormat::Json => {
            let (next_page, incomplete) = next_page_json(&page);
            let document = json!({
                "topic": topic,
                "count": page.letters.len(),
                "records": page.letters.iter().map(letter_json).collect::<Vec<_>>(),
                "next_page": next_page,
                "incomplete": incomplete,
            });
            serde_json::to_writer_pretty(&mut *out, &document).map_err(io::Error::from)?;
            writeln!(out)?;
        }
    }
    Ok(())
}
