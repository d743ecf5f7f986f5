//! Liveness of outbox relays, from their [`RelayMonitor`]: the relay part of `/healthz`.
//!
//! A relay is healthy while its loop runs and has finished a pass (a claim and the
//! publishing that followed) within the bound, or while it waits, as a standby, for a
//! SQLite file's relay lease that another relay holds. It is unhealthy before it starts,
//! after it stops, and when its loop has gone quiet for longer than the bound: then it is
//! stuck, and a restart helps.
//!
//! Database errors in a row and a failing broker are shown but leave the status as it is:
//! a restart brings neither back and the loop already retries with backoff. It ends by
//! itself (exit code 3 for the supervisor) on an error only a person can fix, and after
//! `EVENT_BUS_OUTBOX_MAX_CONSECUTIVE_ERRORS` failed passes when that is set. Alert on the
//! report's fields, or on `event_bus_outbox_backlog` and
//! `event_bus_outbox_oldest_age_seconds`, instead.

use std::time::Duration;

use serde::Serialize;

use super::health::HealthStatus;
use crate::outbox::{RelayMonitor, RelayPhase};

/// The health check of one outbox relay.
///
/// ```
/// use event_bus_kafka::observability::{HealthStatus, RelayHealth};
/// use event_bus_kafka::outbox::RelayMonitor;
/// let health = RelayHealth::new("outbox", RelayMonitor::default());
/// // Not started yet (or stopped): unhealthy.
/// assert_eq!(health.check().status, HealthStatus::NotRunning);
/// ```
#[derive(Debug, Clone)]
pub struct RelayHealth {
    name: String,
    monitor: RelayMonitor,
    max_pass_gap: Duration,
}

/// One relay's check result, as `/healthz` shows it.
///
/// ```
/// use event_bus_kafka::{observability::RelayHealth, outbox::RelayMonitor};
/// let report = RelayHealth::new("outbox", RelayMonitor::default()).check();
/// assert_eq!(report.name, "outbox");
/// assert_eq!(report.since_last_pass_ms, None);
/// assert_eq!(report.published, 0);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RelayHealthReport {
    /// The name given to [`RelayHealth::new`].
    pub name: String,
    /// The verdict.
    pub status: HealthStatus,
    /// Where the loop is: `not_started`, `waiting_for_lease`, `running` or `stopped`.
    pub phase: RelayPhase,
    /// Milliseconds since the loop last finished a pass (`None`: never).
    pub since_last_pass_ms: Option<u64>,
    /// The bound it is held to, in milliseconds: the configured gap, or twice the
    /// relay's poll interval when that is longer.
    pub max_pass_gap_ms: u64,
    /// Passes in a row that failed with a database error (shown, not judged: see the
    /// module documentation).
    pub database_errors_in_a_row: u32,
    /// The last of those errors, while they go on.
    pub last_database_error: Option<String>,
    /// Milliseconds the broker has been failing, as the relay's batches found it.
    pub broker_failing_ms: Option<u64>,
    /// Events published so far.
    pub published: u64,
    /// Failed publishing attempts so far.
    pub failed: u64,
    /// Rows parked so far (`event-bus outbox parked`).
    pub parked: u64,
}

impl RelayHealth {
    /// A check of the relay watched by `monitor` (from
    /// [`Relay::monitor`](crate::outbox::Relay::monitor)), shown as `name`, with the
    /// [`DEFAULT_MAX_POLL_GAP`](super::DEFAULT_MAX_POLL_GAP) as its bound.
    ///
    /// See the type's example.
    pub fn new(name: impl Into<String>, monitor: RelayMonitor) -> Self {
        Self {
            name: name.into(),
            monitor,
            max_pass_gap: super::DEFAULT_MAX_POLL_GAP,
        }
    }

    /// Sets the longest silence allowed of a running relay loop (raised to twice the
    /// relay's poll interval if that is longer, so an idle relay never looks stuck).
    ///
    /// ```
    /// use std::time::Duration;
    /// use event_bus_kafka::{observability::RelayHealth, outbox::RelayMonitor};
    /// let health = RelayHealth::new("outbox", RelayMonitor::default())
    ///     .with_max_pass_gap(Duration::from_secs(10));
    /// assert_eq!(health.check().max_pass_gap_ms, 10_000);
    /// ```
    pub fn with_max_pass_gap(mut self, max_pass_gap: Duration) -> Self {
        self.max_pass_gap = max_pass_gap;
        self
    }

    /// The name shown in reports.
    ///
    /// See the type's example.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Checks the relay now.
    ///
    /// See the type's example.
    pub fn check(&self) -> RelayHealthReport {
        let monitor = &self.monitor;
        let bound = monitor.poll_interval().map_or(self.max_pass_gap, |poll| {
            self.max_pass_gap.max(poll.saturating_mul(2))
        });
        let phase = monitor.phase();
        let since_last_pass = monitor.since_last_pass();
        let status = match phase {
            RelayPhase::WaitingForLease => HealthStatus::Healthy,
            RelayPhase::Running if since_last_pass.is_some_and(|gap| gap <= bound) => {
                HealthStatus::Healthy
            }
            RelayPhase::Running => HealthStatus::Stalled,
            _ => HealthStatus::NotRunning,
        };
        let errors_in_a_row = monitor.errors_in_a_row();
        let totals = monitor.totals();
        RelayHealthReport {
            name: self.name.clone(),
            status,
            phase,
            since_last_pass_ms: since_last_pass.map(millis),
            max_pass_gap_ms: millis(bound),
            database_errors_in_a_row: errors_in_a_row,
            last_database_error: monitor.last_error(),
            broker_failing_ms: monitor.broker_failing_for().map(millis),
            published: totals.published,
            failed: totals.failed,
            parked: totals.parked,
        }
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::{BrokerHealth, RelayStats};

    #[test]
    fn healthy_while_running_and_passing_or_standing_by() {
        let monitor = RelayMonitor::default();
        let health = RelayHealth::new("r", monitor.clone()).with_max_pass_gap(Duration::ZERO);
        monitor.waiting_for_lease();
        assert_eq!(health.check().status, HealthStatus::Healthy, "a standby");
        monitor.started(Duration::from_millis(1), &BrokerHealth::default());
        std::thread::sleep(Duration::from_millis(10));
        assert_eq!(health.check().status, HealthStatus::Stalled);
        let health = health.with_max_pass_gap(Duration::from_secs(3600));
        monitor.failed(&"connection refused", &RelayStats::default());
        let report = health.check();
        assert_eq!(
            report.status,
            HealthStatus::Healthy,
            "errors are shown, not judged"
        );
        assert_eq!(report.database_errors_in_a_row, 1);
        assert_eq!(
            report.last_database_error.as_deref(),
            Some("connection refused")
        );
        drop(monitor.stopped_on_drop());
        assert_eq!(health.check().status, HealthStatus::NotRunning);
    }
}
