//! What an outbox row holds, and what the relay reports back about a claimed batch.

use std::time::Duration;

use chrono::{DateTime, Utc};

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
///     park_attempts: 0,
///     first_failed_at: None,
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
    /// Of the failed attempts, those that count towards parking: not those of a batch
    /// that found the broker unavailable, nor a refusal the broker gave a whole produce
    /// batch (see [`RelayConfig`](super::RelayConfig)).
    pub park_attempts: i32,
    /// When the first attempt that counts towards parking failed (`None`: none has).
    pub first_failed_at: Option<DateTime<Utc>>,
}

/// A row whose publication failed: it stays, with `attempts + 1`, `error` as the last
/// error, and is not retried before `retry_in` has passed. With `park` set the relay gave
/// up on it: it is parked with that reason and not retried until a person asks
/// (`event-bus outbox retry`); its key's later rows wait behind it.
///
/// ```
/// use event_bus_kafka::outbox::{OutboxId, RowFailure};
/// let f = RowFailure {
///     id: OutboxId(3),
///     error: "timed out".into(),
///     retry_in: std::time::Duration::from_secs(1),
///     counted: false,
///     park: None,
/// };
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
    /// Whether the attempt counts towards parking ([`OutboxRow::park_attempts`]; the
    /// first counted one sets [`OutboxRow::first_failed_at`]).
    pub counted: bool,
    /// Park the row with this reason instead of retrying it.
    pub park: Option<String>,
}

/// A claimed row that cannot be decoded (a column edited by hand, headers that are not
/// the stored JSON form, …). It fails in its own lane like a row the broker refused for
/// good: its key's later rows in the batch are held back, other keys publish.
///
/// ```
/// use event_bus_kafka::outbox::{Lane, OutboxId, UnreadableRow};
/// let row = UnreadableRow {
///     id: OutboxId(4), lane: Lane(9), attempts: 0, park_attempts: 0,
///     reason: "event_id is not a UUID".into(),
/// };
/// assert_eq!(row.lane, Lane(9));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnreadableRow {
    /// The row id.
    pub id: OutboxId,
    /// Its lane (read on its own, so the row's key can be held back).
    pub lane: Lane,
    /// Failed attempts so far (0 when the column itself is unreadable).
    pub attempts: i32,
    /// Of those, the ones that count towards parking (see [`OutboxRow::park_attempts`]).
    pub park_attempts: i32,
    /// What is wrong with it.
    pub reason: String,
}

/// A parked row as `event-bus outbox parked` lists it.
///
/// ```
/// use event_bus_kafka::outbox::{OutboxId, ParkedRow};
/// let row = ParkedRow {
///     id: OutboxId(7), topic: "orders".into(), key_text: Some("o-1".into()),
///     event_type: "org.example.order.placed.v1".into(), event_id: "0b6f…".into(),
///     attempts: 3, parked_at: chrono::Utc::now(), reason: "too large".into(),
///     created_at: chrono::Utc::now(), waiting_behind: 4,
/// };
/// assert_eq!(row.id, OutboxId(7));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParkedRow {
    /// The row id.
    pub id: OutboxId,
    /// The topic.
    pub topic: String,
    /// The key as text, if it has one.
    pub key_text: Option<String>,
    /// `ce_type`.
    pub event_type: String,
    /// `ce_id` (as stored: text, in case it is what made the row unreadable).
    pub event_id: String,
    /// Failed attempts before it was parked.
    pub attempts: i32,
    /// When it was parked.
    pub parked_at: DateTime<Utc>,
    /// Why.
    pub reason: String,
    /// When it was stored.
    pub created_at: DateTime<Utc>,
    /// Later events of its key waiting behind it.
    pub waiting_behind: u64,
}

/// Which parked rows an operation means: every criterion given must match; none given
/// means every parked row.
///
/// ```
/// use event_bus_kafka::outbox::{OutboxId, ParkedFilter};
/// let all = ParkedFilter::default();
/// assert!(all.is_everything());
/// let some = ParkedFilter { ids: vec![OutboxId(3)], ..Default::default() };
/// assert!(!some.is_everything());
/// let key = ParkedFilter::default().with_topic("orders").with_key("o-1");
/// assert_eq!(key.key.as_deref(), Some("o-1"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParkedFilter {
    /// Only these rows (none: any).
    pub ids: Vec<OutboxId>,
    /// Only rows of this topic.
    pub topic: Option<String>,
    /// Only rows whose key text is this.
    pub key: Option<String>,
}

impl ParkedFilter {
    /// Only rows of `topic`.
    ///
    /// See the type's example.
    pub fn with_topic(mut self, topic: impl Into<String>) -> Self {
        self.topic = Some(topic.into());
        self
    }

    /// Only rows whose key text is `key`.
    ///
    /// See the type's example.
    pub fn with_key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Whether no criterion is set (every parked row).
    ///
    /// See the type's example.
    pub fn is_everything(&self) -> bool {
        self.ids.is_empty() && self.topic.is_none() && self.key.is_none()
    }

    /// The ids as the JSON array the SQLite store binds (empty: any id).
    #[cfg(feature = "sqlite")]
    pub(crate) fn ids_json(&self) -> String {
        serde_json::Value::from(self.ids.iter().map(|id| id.0).collect::<Vec<_>>()).to_string()
    }
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

/// A row as a store reads it, before it is checked.
pub(crate) trait StoredRow: Sized {
    /// The row, or why it cannot be one.
    fn into_row(self) -> Result<OutboxRow, OutboxError>;
}

/// Decodes claimed rows one by one: a row that cannot be decoded becomes an
/// [`UnreadableRow`] of its lane instead of failing the claim. Only a row whose id or
/// lane cannot be read fails it (there is nothing to hold back or to record).
pub(crate) fn decode_claimed<R, T>(
    fetched: &[R],
) -> Result<(Vec<OutboxRow>, Vec<UnreadableRow>), OutboxError>
where
    R: sqlx::Row,
    T: for<'r> sqlx::FromRow<'r, R> + StoredRow,
    &'static str: sqlx::ColumnIndex<R>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i32: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let mut rows = Vec::with_capacity(fetched.len());
    let mut unreadable = Vec::new();
    for raw in fetched {
        let decoded = T::from_row(raw)
            .map_err(|e| e.to_string())
            .and_then(|stored| {
                stored.into_row().map_err(|e| match e {
                    OutboxError::CorruptRow { reason, .. } => reason,
                    other => other.to_string(),
                })
            });
        match decoded {
            Ok(row) => rows.push(row),
            Err(reason) => {
                let corrupt = |what: &str, e: sqlx::Error| OutboxError::CorruptRow {
                    id: raw.try_get::<i64, _>("id").unwrap_or(-1),
                    reason: format!("its {what} cannot be read ({e}); first problem: {reason}"),
                };
                let id: i64 = raw.try_get("id").map_err(|e| corrupt("id", e))?;
                let lane: i64 = raw.try_get("lane").map_err(|e| corrupt("lane", e))?;
                unreadable.push(UnreadableRow {
                    id: OutboxId(id),
                    lane: Lane(lane),
                    attempts: raw.try_get("attempts").unwrap_or(0),
                    park_attempts: raw.try_get("park_attempts").unwrap_or(0),
                    reason,
                });
            }
        }
    }
    Ok((rows, unreadable))
}
