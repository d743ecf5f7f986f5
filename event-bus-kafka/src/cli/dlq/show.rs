//! `event-bus dlq show`.

use std::io::{self, Write};

use rdkafka::message::Message;
use serde_json::{json, Value};

use super::reader::{read_to_end, DeadLetter};
use super::{DlqError, ShowArgs};
use crate::cli::offsets::{connection, full_topic};
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
        "dead_lettered_at": letter.header(headers::TIME),
        "ce_id": letter.header("ce_id"),
        "ce_type": letter.header("ce_type"),
        "headers": all_headers,
    })
}

fn write_text(out: &mut (dyn Write + Send), topic: &str, letters: &[DeadLetter]) -> io::Result<()> {
    if letters.is_empty() {
        return writeln!(out, "{topic} has no dead letters");
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
    }
    writeln!(out, "{} dead letter(s)", letters.len())
}

pub(super) async fn run(
    args: &ShowArgs,
    format: OutputFormat,
    out: &mut (dyn Write + Send),
) -> Result<(), DlqError> {
    let (kafka, env) = connection(&args.connection)?;
    let topic = full_topic(&env, &args.topic);
    let letters = read_to_end(&kafka, &topic, args.max).await?;
    match format {
        OutputFormat::Text => write_text(out, &topic, &letters)?,
        OutputFormat::Json => {
            let document = json!({
                "topic": topic,
                "count": letters.len(),
                "records": letters.iter().map(letter_json).collect::<Vec<_>>(),
            });
            serde_json::to_writer_pretty(&mut *out, &document).map_err(io::Error::from)?;
            writeln!(out)?;
        }
    }
    Ok(())
}
