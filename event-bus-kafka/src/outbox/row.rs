//! What an outbox row holds, and what the relay reports back about a claimed batch.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::error::OutboxError;
use super::lane::Lane;
use crate::producer::EncodedRecord;

/// The id of an outbox row: ascending in insertion order, never reused.
///
/// ```
/// let id = event_bus_kafka::outbox::OutboxId(42);
/// assert_eq!(id.to_string(), "42");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OutboxId(pub i64);

impl std::fmt::Display for OutboxId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One waiting event: the record the producer would have sent, and its retry state.
///
/// ```
/// use event_bus_kafka::outbox::{Lane, OutboxId, OutboxRow};
/// use event_bus_kafka::producer::EncodedRecord;
/// let record = EncodedRecord { topic: "t".into(), key: None, value: vec![0], headers: vec![],
///     event_type: "x".into(), event_id: uuid::Uuid::nil(), key_text: None };
/// let row = OutboxRow {
///     id: OutboxId(1),
///     lane: Lane::of(&record),
///     record,
///     created_at: chrono::Utc::now(),
///     attempts: 0,
///     last_error: None,
///     next_attempt_at: chrono::Utc::now(),
/// };
/// assert_eq!(row.attempts, 0);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRow {
    /// The row id (publish order within the lane).
    pub id: OutboxId,
    /// The ordering lane (topic and key).
    pub lane: Lane,
    /// Topic, framed key and value, headers, `ce_id`, `ce_type`, key text.
    pub record: EncodedRecord,
    /// When the row was stored.
    pub created_at: DateTime<Utc>,
    /// Failed publish attempts so far.
    pub attempts: i32,
    /// The last publish error.
    pub last_error: Option<String>,
    /// Not published before this time (backoff after a failure).
    pub next_attempt_at: DateTime<Utc>,
}

/// A row whose publication failed: it stays, with `attempts + 1`, `error` as the last
/// error, and is not retried before `retry_in` has passed.
///
/// ```
/// use event_bus_kafka::outbox::{OutboxId, RowFailure};
/// let f = RowFailure { id: OutboxId(3), error: "timed out".into(), retry_in: std::time::Duration::from_secs(1) };
/// assert_eq!(f.id.0, 3);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowFailure {
    /// The row.
    pub id: OutboxId,
    /// Why it failed.
    pub error: String,
    /// Backoff before the next attempt.
    pub retry_in: Duration,
}

/// What happened to a claimed batch: rows to delete (the broker acknowledged them) and
/// rows that failed. Rows in neither list stay as they are.
///
/// ```
/// use event_bus_kafka::outbox::{BatchOutcome, OutboxId};
/// let outcome = BatchOutcome { delivered: vec![OutboxId(1), OutboxId(2)], failed: vec![] };
/// assert!(!outcome.is_empty());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Acknowledged by the broker: delete.
    pub delivered: Vec<OutboxId>,
    /// Failed: count the attempt, keep the error, back off.
    pub failed: Vec<RowFailure>,
}

impl BatchOutcome {
    /// Whether there is nothing to write back.
    ///
    /// ```
    /// assert!(event_bus_kafka::outbox::BatchOutcome::default().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.delivered.is_empty() && self.failed.is_empty()
    }
}

/// How headers are stored: a JSON array of `[name, value]`, the value as a string when
/// it is UTF-8 (always, for the SDK's own headers) and as `{"hex": "…"}` otherwise, so
/// rows stay readable in `psql`.
#[derive(Debug, Serialize, Deserialize)]
struct StoredHeader(String, StoredValue);

#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
enum StoredValue {
    Text(String),
    Bytes { hex: String },
}

/// Headers as the JSON text stored in the `headers` column.
pub(crate) fn headers_to_json(headers: &[(String, Vec<u8>)]) -> String {
    let stored: Vec<StoredHeader> = headers
        .iter()
        .map(|(name, value)| {
            let value = match std::str::from_utf8(value) {
                Ok(text) => StoredValue::Text(text.to_owned()),
                Err(_) => StoredValue::Bytes { hex: to_hex(value) },
            };
            StoredHeader(name.clone(), value)
        })
        .collect();
    // Serializing strings into JSON cannot fail.
    serde_json::to_string(&stored).unwrap_or_else(|_| "[]".to_owned())
}

/// Headers back from the stored JSON text of row `id`.
pub(crate) fn headers_from_json(
    id: i64,
    json: &str,
) -> Result<Vec<(String, Vec<u8>)>, OutboxError> {
    let corrupt = |reason: String| OutboxError::CorruptRow { id, reason };
    let stored: Vec<StoredHeader> = serde_json::from_str(json)
        .map_err(|e| corrupt(format!("headers are not the stored JSON form: {e}")))?;
    stored
        .into_iter()
        .map(|StoredHeader(name, value)| match value {
            StoredValue::Text(text) => Ok((name, text.into_bytes())),
            StoredValue::Bytes { hex } => from_hex(&hex)
                .map(|bytes| (name.clone(), bytes))
                .ok_or_else(|| corrupt(format!("header `{name}` has invalid hex"))),
        })
        .collect()
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn from_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip_text_and_bytes() {
        let headers = vec![
            ("ce_id".to_owned(), b"0b6f".to_vec()),
            ("bin".to_owned(), vec![0, 255, 7]),
            ("empty".to_owned(), vec![]),
        ];
        let json = headers_to_json(&headers);
        assert_eq!(
            json,
            r#"[["ce_id","0b6f"],["bin",{"hex":"00ff07"}],["empty",""]]"#
        );
        assert_eq!(headers_from_json(1, &json).expect("decodes"), headers);
    }

    #[test]
    fn corrupt_headers_name_the_row() {
        let err = headers_from_json(9, r#"[["x",{"hex":"zz"}]]"#).expect_err("bad hex");
        assert!(err.to_string().contains("row 9"), "{err}");
        assert!(headers_from_json(9, "{").is_err());
    }
}
