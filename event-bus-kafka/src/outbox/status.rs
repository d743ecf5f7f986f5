//! What the outbox holds: for `event-bus outbox status`, health checks and metrics.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::lane::Lane;
use super::row::OutboxId;

/// A snapshot of the outbox.
///
/// ```
/// use event_bus_kafka::outbox::OutboxStatus;
/// let status = OutboxStatus::default();
/// assert_eq!(status.pending, 0);
/// assert!(status.is_empty());
/// status.log(); // structured `tracing` event with the same figures
/// status.record_metrics(); // event_bus_outbox_backlog, event_bus_outbox_oldest_age_seconds
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OutboxStatus {
    /// Events waiting to be published.
    pub pending: u64,
    /// When the oldest waiting event was stored.
    pub oldest_created_at: Option<DateTime<Utc>>,
    /// How long the oldest waiting event has waited.
    pub oldest_age: Option<Duration>,
    /// How many keys have a failing head row (each holds back its later events).
    pub failing_keys_total: u64,
    /// The failing keys, oldest first, up to the requested limit. Parked rows are not
    /// counted here but in [`parked`](Self::parked).
    pub failing_keys: Vec<FailingKey>,
    /// Rows the relay gave up on (`event-bus outbox parked`); each holds back the later
    /// events of its key until retried or dropped.
    pub parked: u64,
    /// When the oldest parked row was parked.
    pub oldest_parked_at: Option<DateTime<Utc>>,
}

impl OutboxStatus {
    /// Whether nothing waits.
    ///
    /// See the type's example.
    pub fn is_empty(&self) -> bool {
        self.pending == 0
    }

    /// Records the backlog, the oldest age and the parked rows as metrics
    /// (`event_bus_outbox_backlog`, `event_bus_outbox_oldest_age_seconds`,
    /// `event_bus_outbox_parked`; see [`observability::metrics`](crate::observability::metrics)).
    ///
    /// See the type's example.
    pub fn record_metrics(&self) {
        crate::observability::metrics::record_outbox_status(self.pending, self.oldest_age);
        crate::observability::metrics::record_outbox_parked(self.parked);
    }

    /// Emits the figures as one `tracing` event (target `event_bus::outbox`), for log
    /// based metrics; one more event per failing key.
    ///
    /// See the type's example.
    pub fn log(&self) {
        tracing::info!(
            target: "event_bus::outbox",
            pending = self.pending,
            oldest_age_ms = self.oldest_age.map(|a| a.as_millis() as u64),
            failing_keys = self.failing_keys_total,
            parked = self.parked,
            "outbox status"
        );
        if self.parked > 0 {
            tracing::warn!(
                target: "event_bus::outbox",
                parked = self.parked,
                oldest_parked_at = self.oldest_parked_at.map(|at| at.to_rfc3339()),
                "outbox rows are parked; their keys wait: see `event-bus outbox parked`, then `retry` or `drop`"
            );
        }
        for key in &self.failing_keys {
            tracing::warn!(
                target: "event_bus::outbox",
                topic = %key.topic,
                key = key.key_text.as_deref().unwrap_or(""),
                lane = %key.lane,
                row_id = key.head_id.0,
                attempts = key.attempts,
                waiting = key.waiting,
                last_error = key.last_error.as_deref().unwrap_or(""),
                "outbox key is failing"
            );
        }
    }
}

/// A key whose oldest waiting event keeps failing, holding back `waiting - 1` later
/// events of the same key.
///
/// ```
/// use event_bus_kafka::outbox::{FailingKey, Lane, OutboxId};
/// let key = FailingKey {
///     lane: Lane(7), topic: "orders".into(), key_text: Some("o-1".into()), head_id: OutboxId(12),
///     attempts: 3, last_error: Some("timed out".into()), next_attempt_at: chrono::Utc::now(), waiting: 5,
/// };
/// assert_eq!(key.waiting, 5);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct FailingKey {
    /// The lane.
    pub lane: Lane,
    /// The topic.
    pub topic: String,
    /// The key as text.
    pub key_text: Option<String>,
    /// The failing row (the oldest of the key).
    pub head_id: OutboxId,
    /// Its failed attempts.
    pub attempts: i32,
    /// Its last error.
    pub last_error: Option<String>,
    /// When it is retried.
    pub next_attempt_at: DateTime<Utc>,
    /// Events of the key waiting, the failing one included.
    pub waiting: u64,
}

/// The age of something created at `created_at`, zero if in the future.
pub(crate) fn age(created_at: DateTime<Utc>) -> Duration {
    (Utc::now() - created_at).to_std().unwrap_or(Duration::ZERO)
}
