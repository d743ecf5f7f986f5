//! What the inbox holds: for `event-bus inbox status`, metrics and retention.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

/// The rows of one receiver in one consumer group.
///
/// ```
/// let rows = event_bus_kafka::inbox::ReceiverRows {
///     consumer_group: "billing".into(),
///     receiver: "invoice".into(),
///     rows: 12,
///     oldest_handled_at: None,
/// };
/// assert_eq!(rows.rows, 12);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReceiverRows {
    /// The consumer group (`""` for local dispatch).
    pub consumer_group: String,
    /// The receiver.
    pub receiver: String,
    /// Its rows.
    pub rows: u64,
    /// When the oldest of them was handled.
    pub oldest_handled_at: Option<DateTime<Utc>>,
}

/// A snapshot of the inbox.
///
/// ```
/// use event_bus_kafka::inbox::InboxStatus;
/// let status = InboxStatus::default();
/// assert_eq!(status.rows, 0);
/// status.log(); // one structured `tracing` event
/// status.record_metrics(); // event_bus_inbox_rows
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct InboxStatus {
    /// Rows (events handled and remembered), over every group and receiver.
    pub rows: u64,
    /// When the oldest row was written.
    pub oldest_handled_at: Option<DateTime<Utc>>,
    /// How old the oldest row is.
    pub oldest_age: Option<Duration>,
    /// Rows per consumer group and receiver, by group then receiver.
    pub receivers: Vec<ReceiverRows>,
}

impl InboxStatus {
    /// Sets the `event_bus_inbox_rows` gauge (see
    /// [`observability::metrics`](crate::observability::metrics)).
    ///
    /// See the type's example.
    pub fn record_metrics(&self) {
        crate::observability::metrics::record_inbox_rows(self.rows);
    }

    /// Emits the figures as one `tracing` event (target `event_bus::inbox`).
    ///
    /// See the type's example.
    pub fn log(&self) {
        tracing::info!(
            target: "event_bus::inbox",
            rows = self.rows,
            oldest_age_s = self.oldest_age.map(|age| age.as_secs()),
            receivers = self.receivers.len(),
            "inbox status"
        );
    }
}

/// How long ago `then` was (zero if in the future: clocks differ).
pub(crate) fn age(then: DateTime<Utc>) -> Duration {
    (Utc::now() - then).to_std().unwrap_or_default()
}

/// One row of the stores' per-receiver query: group, receiver, row count, oldest
/// `handled_at` in Unix milliseconds.
pub(crate) type ReceiverRowTuple = (String, String, i64, Option<i64>);

impl InboxStatus {
    /// The status made of the stores' per-receiver rows (ordered by group, then
    /// receiver).
    pub(crate) fn from_rows(rows: Vec<ReceiverRowTuple>) -> Self {
        let receivers: Vec<ReceiverRows> = rows
            .into_iter()
            .map(|(consumer_group, receiver, rows, oldest_ms)| ReceiverRows {
                consumer_group,
                receiver,
                rows: u64::try_from(rows).unwrap_or(0),
                oldest_handled_at: oldest_ms.and_then(DateTime::from_timestamp_millis),
            })
            .collect();
        let oldest_handled_at = receivers.iter().filter_map(|r| r.oldest_handled_at).min();
        Self {
            rows: receivers.iter().map(|r| r.rows).sum(),
            oldest_handled_at,
            oldest_age: oldest_handled_at.map(age),
            receivers,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_are_summed_over_receivers() {
        let rows = |receiver: &str, rows, oldest_ms| {
            ("g".to_owned(), receiver.to_owned(), rows, oldest_ms)
        };
        let status = InboxStatus::from_rows(vec![rows("a", 2, Some(50_000)), rows("b", 3, None)]);
        assert_eq!(status.rows, 5);
        assert_eq!(status.oldest_handled_at, DateTime::from_timestamp(50, 0));
        assert!(status.oldest_age.is_some());
        assert_eq!(status.receivers[1].oldest_handled_at, None);
        assert_eq!(InboxStatus::from_rows(Vec::new()), InboxStatus::default());
    }
}
