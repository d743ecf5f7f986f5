//! What a running relay shows to health probes: whether its loop runs, when it last
//! finished a pass, its database errors in a row, the broker as its batches found it,
//! and its totals so far.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::health::BrokerHealth;
use super::relay::RelayStats;

/// Where a relay's loop is.
///
/// ```
/// use event_bus_kafka::outbox::{RelayMonitor, RelayPhase};
/// assert_eq!(RelayMonitor::default().phase(), RelayPhase::NotStarted);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RelayPhase {
    /// The relay has not been run yet.
    NotStarted,
    /// Waiting for the SQLite file's relay lease while another relay holds it (a
    /// standby: it takes over once the holder stops or its lease expires).
    WaitingForLease,
    /// Claiming and publishing.
    Running,
    /// The loop has ended (shut down, drained, or stopped by an error).
    Stopped,
}

impl RelayPhase {
    fn from_code(code: u8) -> Self {
        match code {
            1 => Self::WaitingForLease,
            2 => Self::Running,
            3 => Self::Stopped,
            _ => Self::NotStarted,
        }
    }

    fn code(self) -> u8 {
        match self {
            Self::NotStarted => 0,
            Self::WaitingForLease => 1,
            Self::Running => 2,
            Self::Stopped => 3,
        }
    }
}

/// Live state of one relay loop, cheap to read from another task: give it to
/// [`Relay::with_monitor`](super::Relay::with_monitor) (or read
/// [`Relay::monitor`](super::Relay::monitor)), then watch it, for example on
/// `/healthz` with `ObservabilityServerBuilder::relay`.
///
/// The loop stamps a pass after every claim, whether it found rows, found none or failed;
/// between two passes it sleeps at most its poll interval (or a database-error backoff of
/// at most 30 s), plus the time one batch takes to publish.
///
/// ```
/// use event_bus_kafka::outbox::{RelayMonitor, RelayPhase};
/// let monitor = RelayMonitor::default();
/// assert_eq!(monitor.since_last_pass(), None);
/// assert_eq!(monitor.errors_in_a_row(), 0);
/// assert_eq!(monitor.totals().published, 0);
/// // Clones watch the same relay.
/// let watcher = monitor.clone();
/// assert_eq!(watcher.phase(), RelayPhase::NotStarted);
/// ```
#[derive(Debug, Clone, Default)]
pub struct RelayMonitor {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    phase: AtomicU8,
    last_pass: Mutex<Option<Instant>>,
    poll_interval_millis: AtomicU64,
    errors_in_a_row: AtomicU32,
    last_error: Mutex<Option<String>>,
    totals: Mutex<RelayStats>,
    broker: Mutex<Option<BrokerHealth>>,
}

impl RelayMonitor {
    /// Where the loop is now.
    ///
    /// See the type's example.
    pub fn phase(&self) -> RelayPhase {
        RelayPhase::from_code(self.inner.phase.load(Ordering::Relaxed))
    }

    /// How long ago the loop last finished a pass (a claim and what followed), or `None`
    /// if it never did.
    ///
    /// See the type's example.
    pub fn since_last_pass(&self) -> Option<Duration> {
        self.inner
            .last_pass
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .map(|at| at.elapsed())
    }

    /// The relay's poll interval (its longest idle sleep), known once it runs.
    ///
    /// ```
    /// assert_eq!(event_bus_kafka::outbox::RelayMonitor::default().poll_interval(), None);
    /// ```
    pub fn poll_interval(&self) -> Option<Duration> {
        match self.inner.poll_interval_millis.load(Ordering::Relaxed) {
            0 => None,
            millis => Some(Duration::from_millis(millis)),
        }
    }

    /// Passes in a row that ended with a database error (0 after a pass that worked).
    ///
    /// See the type's example.
    pub fn errors_in_a_row(&self) -> u32 {
        self.inner.errors_in_a_row.load(Ordering::Relaxed)
    }

    /// The last database error while passes keep failing (`None` once one works).
    ///
    /// ```
    /// assert_eq!(event_bus_kafka::outbox::RelayMonitor::default().last_error(), None);
    /// ```
    pub fn last_error(&self) -> Option<String> {
        self.inner
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// How long the broker has been failing as the relay's batches found it (`None`:
    /// reachable, or not known yet; an idle relay sends nothing, so it learns of an outage
    /// with the next rows).
    ///
    /// ```
    /// assert_eq!(event_bus_kafka::outbox::RelayMonitor::default().broker_failing_for(), None);
    /// ```
    pub fn broker_failing_for(&self) -> Option<Duration> {
        self.inner
            .broker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .and_then(BrokerHealth::failing_for)
    }

    /// The relay's totals so far.
    ///
    /// See the type's example.
    pub fn totals(&self) -> RelayStats {
        self.inner
            .totals
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set_phase(&self, phase: RelayPhase) {
        self.inner.phase.store(phase.code(), Ordering::Relaxed);
    }

    /// The loop waits for the SQLite file's relay lease.
    pub(crate) fn waiting_for_lease(&self) {
        self.set_phase(RelayPhase::WaitingForLease);
    }

    /// The loop holds what it needs and starts claiming.
    pub(crate) fn started(&self, poll_interval: Duration, broker: &BrokerHealth) {
        let millis = u64::try_from(poll_interval.as_millis()).unwrap_or(u64::MAX);
        self.inner
            .poll_interval_millis
            .store(millis.max(1), Ordering::Relaxed);
        *self
            .inner
            .broker
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(broker.clone());
        self.stamp_pass();
        self.set_phase(RelayPhase::Running);
    }

    /// A pass ended without a database error; `totals` are the relay's so far.
    pub(crate) fn passed(&self, totals: &RelayStats) {
        self.inner.errors_in_a_row.store(0, Ordering::Relaxed);
        *self
            .inner
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
        self.stamp(totals);
    }

    /// A pass failed with `error`.
    pub(crate) fn failed(&self, error: &dyn std::fmt::Display, totals: &RelayStats) {
        self.inner.errors_in_a_row.fetch_add(1, Ordering::Relaxed);
        *self
            .inner
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(error.to_string());
        self.stamp(totals);
    }

    /// The loop has ended.
    pub(crate) fn stopped(&self) {
        self.set_phase(RelayPhase::Stopped);
    }

    /// Marks the loop stopped when the guard goes, whichever way the loop ends.
    pub(crate) fn stopped_on_drop(&self) -> StoppedOnDrop<'_> {
        StoppedOnDrop(self)
    }

    fn stamp(&self, totals: &RelayStats) {
        *self
            .inner
            .totals
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = totals.clone();
        self.stamp_pass();
    }

    fn stamp_pass(&self) {
        *self
            .inner
            .last_pass
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
    }
}

/// Marks its relay stopped when dropped (see [`RelayMonitor::stopped_on_drop`]).
#[must_use = "the relay counts as stopped as soon as the guard is dropped"]
pub(crate) struct StoppedOnDrop<'a>(&'a RelayMonitor);

impl Drop for StoppedOnDrop<'_> {
    fn drop(&mut self) {
        self.0.stopped();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_and_errors_show_as_they_happen() {
        let monitor = RelayMonitor::default();
        monitor.waiting_for_lease();
        assert_eq!(monitor.phase(), RelayPhase::WaitingForLease);
        let broker = BrokerHealth::default();
        monitor.started(Duration::from_millis(250), &broker);
        assert_eq!(monitor.phase(), RelayPhase::Running);
        assert_eq!(monitor.poll_interval(), Some(Duration::from_millis(250)));
        assert!(monitor.since_last_pass().is_some());
        let totals = RelayStats {
            published: 3,
            ..RelayStats::default()
        };
        monitor.failed(&"database is locked", &totals);
        monitor.failed(&"database is locked", &totals);
        assert_eq!(monitor.errors_in_a_row(), 2);
        assert_eq!(monitor.last_error().as_deref(), Some("database is locked"));
        monitor.passed(&totals);
        assert_eq!(monitor.errors_in_a_row(), 0);
        assert_eq!(monitor.last_error(), None);
        assert_eq!(monitor.totals().published, 3);
        broker.mark_failing();
        assert!(monitor.broker_failing_for().is_some());
        drop(monitor.stopped_on_drop());
        assert_eq!(monitor.phase(), RelayPhase::Stopped);
    }
}
