//! Liveness of consumer loops, from their [`ConsumerStats`], and the whole `/healthz`
//! answer (consumers and [relays](super::RelayHealth)).

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

#[cfg(any(feature = "postgres", feature = "sqlite"))]
use super::relay_health::{RelayHealth, RelayHealthReport};
use crate::consumer::ConsumerStats;

/// The default longest silence of a running loop before it counts as stuck. The loop
/// wakes at least every commit interval (1 s by default), and a poll-failure backoff
/// waits at most `PollPolicy::max_backoff` (30 s) plus a probe.
pub const DEFAULT_MAX_POLL_GAP: Duration = Duration::from_secs(60);

/// The health check of one consumer loop: healthy while it runs and has polled within
/// `max_poll_gap`.
///
/// ```
/// use std::sync::Arc;
/// use event_bus_kafka::consumer::ConsumerStats;
/// use event_bus_kafka::observability::{ConsumerHealth, HealthStatus};
///
/// let stats = Arc::new(ConsumerStats::default());
/// let health = ConsumerHealth::new("orders", stats);
/// // Not started yet (or stopped): unhealthy.
/// assert_eq!(health.check().status, HealthStatus::NotRunning);
/// ```
#[derive(Debug, Clone)]
pub struct ConsumerHealth {
    name: String,
    stats: Arc<ConsumerStats>,
    max_poll_gap: Duration,
}

/// What a check found.
///
/// ```
/// use event_bus_kafka::observability::HealthStatus;
/// assert!(HealthStatus::Healthy.is_healthy());
/// assert!(!HealthStatus::NotRunning.is_healthy());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    /// Running and polling.
    Healthy,
    /// The loop has not started, or has stopped.
    NotRunning,
    /// Running, but it has not polled within the bound.
    Stalled,
}

impl HealthStatus {
    /// Whether this is [`HealthStatus::Healthy`].
    ///
    /// See the type's example.
    pub fn is_healthy(self) -> bool {
        self == Self::Healthy
    }
}

/// One consumer's check result, as `/healthz` shows it.
///
/// ```
/// use std::sync::Arc;
/// use event_bus_kafka::{consumer::ConsumerStats, observability::ConsumerHealth};
/// let report = ConsumerHealth::new("orders", Arc::new(ConsumerStats::default())).check();
/// assert_eq!(report.name, "orders");
/// assert_eq!(report.since_last_poll_ms, None);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsumerHealthReport {
    /// The name given to [`ConsumerHealth::new`].
    pub name: String,
    /// The verdict.
    pub status: HealthStatus,
    /// Whether the loop runs.
    pub running: bool,
    /// Milliseconds since the loop last polled (`None`: never).
    pub since_last_poll_ms: Option<u64>,
    /// The bound it is held to, in milliseconds.
    pub max_poll_gap_ms: u64,
    /// The record in progress for the longest time (as of the loop's last commit
    /// tick): a receiver running long shows here while the loop itself stays healthy.
    pub oldest_in_progress: Option<RecordInProgress>,
    /// Set while a dead letter cannot be written ("stuck on DLQ", past the consumer's
    /// [`DlqPolicy`](crate::consumer::DlqPolicy) threshold): the dead-letter topic,
    /// the last error and how many records wait for it. Cleared when no write is
    /// stuck any more.
    ///
    /// Like `registry_unavailable`, it leaves the status as it is (`healthy` while
    /// the loop polls): the fault is in the dead-letter topic's cluster, which a
    /// restart of this service does not fix; a restart would only redo the records
    /// and rebalance the group. The loop keeps polling, and the stuck records' keys
    /// wait while others flow. Alert on this field or on the gauge
    /// `event_bus_dlq_stuck` instead.
    pub stuck_on_dlq: Option<crate::consumer::DlqStuck>,
    /// Set while records wait because the schema registry is not usable (down,
    /// refusing the credentials, rate limiting, or a proxy answering in its place);
    /// cleared when a waiting record gets an answer.
    ///
    /// It leaves the status as it is (`healthy` while the loop polls): restarting the
    /// service does not bring a registry back, and a restart loop would only add
    /// rebalances and cold schema caches to the outage. The loop itself is fine: it
    /// keeps polling, commits what is finished and keeps the waiting records'
    /// positions. Alert on this field or on the gauge
    /// `event_bus_consumer_registry_unavailable` instead.
    pub registry_unavailable: Option<crate::consumer::RegistryOutage>,
}

/// A record in progress, as `/healthz` shows it.
///
/// ```
/// let record = event_bus_kafka::observability::RecordInProgress {
///     topic: "orders".into(), partition: 2, offset: 41, running_ms: 12_000,
/// };
/// assert_eq!(serde_json::to_value(&record).unwrap()["running_ms"], 12_000);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordInProgress {
    /// Its topic.
    pub topic: String,
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// How long ago the loop took it, in milliseconds.
    pub running_ms: u64,
}

impl ConsumerHealth {
    /// A check of the loop whose counters are `stats` (from `EventConsumer::stats`),
    /// shown as `name`, with the [`DEFAULT_MAX_POLL_GAP`].
    ///
    /// See the type's example.
    pub fn new(name: impl Into<String>, stats: Arc<ConsumerStats>) -> Self {
        Self {
            name: name.into(),
            stats,
            max_poll_gap: DEFAULT_MAX_POLL_GAP,
        }
    }

    /// Sets the longest silence allowed of a running loop.
    ///
    /// ```
    /// use std::{sync::Arc, time::Duration};
    /// use event_bus_kafka::{consumer::ConsumerStats, observability::ConsumerHealth};
    /// let health = ConsumerHealth::new("orders", Arc::new(ConsumerStats::default()))
    ///     .with_max_poll_gap(Duration::from_secs(10));
    /// assert_eq!(health.check().max_poll_gap_ms, 10_000);
    /// ```
    pub fn with_max_poll_gap(mut self, max_poll_gap: Duration) -> Self {
        self.max_poll_gap = max_poll_gap;
        self
    }

    /// The name shown in reports.
    ///
    /// See the type's example.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Checks the loop now.
    ///
    /// See the type's example.
    pub fn check(&self) -> ConsumerHealthReport {
        let running = self.stats.is_running();
        let since_last_poll = self.stats.since_last_poll();
        let status = match since_last_poll {
            _ if !running => HealthStatus::NotRunning,
            Some(gap) if gap <= self.max_poll_gap => HealthStatus::Healthy,
            _ => HealthStatus::Stalled,
        };
        ConsumerHealthReport {
            name: self.name.clone(),
            status,
            running,
            since_last_poll_ms: since_last_poll.map(|d| d.as_millis() as u64),
            max_poll_gap_ms: self.max_poll_gap.as_millis() as u64,
            oldest_in_progress: self
                .stats
                .oldest_in_progress()
                .map(|oldest| RecordInProgress {
                    topic: oldest.topic,
                    partition: oldest.partition,
                    offset: oldest.offset,
                    running_ms: oldest.age.as_millis() as u64,
                }),
            stuck_on_dlq: self.stats.dlq_stuck(),
            registry_unavailable: self.stats.registry_unavailable(),
        }
    }
}

/// Every registered check's result: healthy when all are (and when there are none).
///
/// ```
/// use std::sync::Arc;
/// use event_bus_kafka::{consumer::ConsumerStats, observability::{ConsumerHealth, HealthReport}};
/// assert!(HealthReport::of(&[]).is_healthy());
/// let stopped = ConsumerHealth::new("orders", Arc::new(ConsumerStats::default()));
/// let report = HealthReport::of(&[stopped]);
/// assert!(!report.is_healthy());
/// assert!(report.to_json().contains(r#""status":"not_running""#));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HealthReport {
    /// `healthy` or `unhealthy`.
    pub status: &'static str,
    /// One entry per consumer.
    pub consumers: Vec<ConsumerHealthReport>,
    /// One entry per outbox relay (left out of the JSON when there are none; only with a
    /// database feature, `postgres` or `sqlite`).
    #[cfg(any(feature = "postgres", feature = "sqlite"))]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub relays: Vec<RelayHealthReport>,
}

impl HealthReport {
    /// Runs every check in `checks`.
    ///
    /// See the type's example.
    pub fn of(checks: &[ConsumerHealth]) -> Self {
        Self {
            status: "",
            consumers: checks.iter().map(ConsumerHealth::check).collect(),
            #[cfg(any(feature = "postgres", feature = "sqlite"))]
            relays: Vec::new(),
        }
        .with_status()
    }

    /// Runs every consumer and relay check.
    ///
    /// ```
    /// use event_bus_kafka::observability::{HealthReport, RelayHealth};
    /// let relay = RelayHealth::new("outbox", event_bus_kafka::outbox::RelayMonitor::default());
    /// let report = HealthReport::of_all(&[], &[relay]);
    /// assert!(!report.is_healthy(), "a relay that never ran");
    /// assert!(report.to_json().contains(r#""relays":[{"name":"outbox""#));
    /// ```
    #[cfg(any(feature = "postgres", feature = "sqlite"))]
    pub fn of_all(consumers: &[ConsumerHealth], relays: &[RelayHealth]) -> Self {
        Self {
            status: "",
            consumers: consumers.iter().map(ConsumerHealth::check).collect(),
            relays: relays.iter().map(RelayHealth::check).collect(),
        }
        .with_status()
    }

    /// Sets `status` from the checks.
    fn with_status(mut self) -> Self {
        self.status = if self.is_healthy() {
            "healthy"
        } else {
            "unhealthy"
        };
        self
    }

    /// Whether every check passed.
    ///
    /// See the type's example.
    pub fn is_healthy(&self) -> bool {
        #[cfg(any(feature = "postgres", feature = "sqlite"))]
        if !self.relays.iter().all(|r| r.status.is_healthy()) {
            return false;
        }
        self.consumers.iter().all(|c| c.status.is_healthy())
    }

    /// The report as a JSON object (the `/healthz` body).
    ///
    /// See the type's example.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| format!(r#"{{"status":"{}"}}"#, self.status))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthy_only_while_running_and_polling() {
        let stats = Arc::new(ConsumerStats::default());
        stats.set_running(true);
        let health = ConsumerHealth::new("c", Arc::clone(&stats))
            .with_max_poll_gap(Duration::from_secs(3600));
        // Running but never polled: stalled.
        assert_eq!(health.check().status, HealthStatus::Stalled);
        stats.polled();
        assert_eq!(health.check().status, HealthStatus::Healthy);
        stats.set_running(false);
        assert_eq!(health.check().status, HealthStatus::NotRunning);
    }

    #[test]
    fn stuck_on_the_dead_letter_topic_shows_while_staying_healthy() {
        let stats = Arc::new(ConsumerStats::default());
        stats.set_running(true);
        stats.polled();
        let health = ConsumerHealth::new("c", Arc::clone(&stats))
            .with_max_poll_gap(Duration::from_secs(3600));
        let stuck = crate::consumer::DlqStuck {
            dlq_topic: "t.dlq".into(),
            ..Default::default()
        };
        assert!(stats.dlq_stuck_enter(&stuck));
        assert!(!stats.dlq_stuck_enter(&stuck));
        assert_eq!(
            health.check().stuck_on_dlq.map(|s| s.stuck_records),
            Some(2)
        );
        let report = health.check();
        assert_eq!(report.status, HealthStatus::Healthy);
        let all = HealthReport::of(std::slice::from_ref(&health));
        assert!(all.is_healthy(), "a restart does not fix the DLQ topic");
        assert!(all.to_json().contains(r#""dlq_topic":"t.dlq""#));
        assert!(!stats.dlq_stuck_leave());
        assert!(health.check().stuck_on_dlq.is_some());
        assert!(stats.dlq_stuck_leave());
        assert_eq!(health.check().stuck_on_dlq, None);
    }
}
