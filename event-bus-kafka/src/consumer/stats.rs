//! Counters a running consumer keeps, for tests, health probes and metrics.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::offsets::OldestRecord;
use super::registry_wait::{RegistryOutage, RegistryStatus};

/// Live counters of one consumer loop. Cheap to read from another task.
///
/// ```
/// let stats = event_bus_kafka::consumer::ConsumerStats::default();
/// assert_eq!(stats.snapshot().records_handled, 0);
/// ```
#[derive(Debug, Default)]
pub struct ConsumerStats {
    records_handled: AtomicU64,
    records_dead_lettered: AtomicU64,
    records_skipped: AtomicU64,
    receiver_failures: AtomicU64,
    poll_errors: AtomicU64,
    commits: AtomicU64,
    assignments: AtomicU64,
    revocations: AtomicU64,
    last_poll_millis: AtomicU64,
    running: AtomicU64,
    backoffs: Mutex<Vec<Duration>>,
    oldest_in_progress: Mutex<Option<OldestRecord>>,
    dlq_stuck: Mutex<StuckWriters>,
    registry: RegistryStatus,
}

/// The dead-letter writes past the stuck threshold now, and the latest one's details.
#[derive(Debug, Default)]
struct StuckWriters {
    count: u64,
    latest: Option<DlqStuck>,
}

/// A dead letter the consumer has been trying to write for a while (see
/// [`DlqPolicy`](super::DlqPolicy)): the loop holds the record's partition until it
/// goes through.
///
/// ```
/// let stuck = event_bus_kafka::consumer::DlqStuck {
///     dlq_topic: "orders.dlq".into(), since_millis: 0, failed_writes: 5,
///     last_error: "Message production error: MessageTimedOut".into(),
///     stuck_records: 1,
/// };
/// assert_eq!(stuck.failed_writes, 5);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct DlqStuck {
    /// The dead-letter topic it cannot write to.
    pub dlq_topic: String,
    /// Since when the write has been tried (milliseconds since the epoch).
    pub since_millis: u64,
    /// Failed writes of the record so far.
    pub failed_writes: u32,
    /// The last write's error (empty while the first write is still waiting).
    pub last_error: String,
    /// Dead letters of the loop stuck now (the fields above are of the one that
    /// failed last); the flag goes when none is left.
    pub stuck_records: u64,
}

/// A copy of the counters at one moment.
///
/// ```
/// let snap = event_bus_kafka::consumer::ConsumerStats::default().snapshot();
/// assert!(snap.poll_backoffs.is_empty());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Records finished: every receiver succeeded, or dead-lettered, or skipped.
    pub records_handled: u64,
    /// Records sent to the dead-letter topic.
    pub records_dead_lettered: u64,
    /// Records skipped (event type without receivers here).
    pub records_skipped: u64,
    /// Receiver failures, retries included.
    pub receiver_failures: u64,
    /// Poll failures seen.
    pub poll_errors: u64,
    /// Offset commits the broker confirmed.
    pub commits: u64,
    /// Rebalances that gave this member partitions (the first join counts).
    pub assignments: u64,
    /// Rebalances that took partitions from this member (leaving the group at the
    /// end counts, and so does being dropped from the group for polling too late).
    pub revocations: u64,
    /// When the loop last polled librdkafka (milliseconds since the epoch; 0 =
    /// never): stamped when a poll finds nothing waiting, and on each commit tick
    /// after a poll that took records. The loop polls at least every commit interval,
    /// also while receivers run long (it pauses its partitions then), so an old stamp
    /// means a stuck loop.
    pub last_poll_millis: u64,
    /// Whether the loop is running.
    pub running: bool,
    /// The poll-failure backoff delays taken so far, in order (the last 100).
    pub poll_backoffs: Vec<Duration>,
    /// The record in progress for the longest time, as of the last commit tick.
    pub oldest_in_progress: Option<OldestRecord>,
    /// Set while a dead letter cannot be written (see [`DlqStuck`]).
    pub dlq_stuck: Option<DlqStuck>,
    /// Backoff waits of records on the schema registry while it was not usable.
    pub registry_waits: u64,
}

const MAX_BACKOFFS_KEPT: usize = 100;

pub(crate) fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

impl ConsumerStats {
    /// The counters now.
    ///
    /// See the type's example.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            records_handled: self.records_handled.load(Ordering::Relaxed),
            records_dead_lettered: self.records_dead_lettered.load(Ordering::Relaxed),
            records_skipped: self.records_skipped.load(Ordering::Relaxed),
            receiver_failures: self.receiver_failures.load(Ordering::Relaxed),
            poll_errors: self.poll_errors.load(Ordering::Relaxed),
            commits: self.commits.load(Ordering::Relaxed),
            assignments: self.assignments.load(Ordering::Relaxed),
            revocations: self.revocations.load(Ordering::Relaxed),
            last_poll_millis: self.last_poll_millis.load(Ordering::Relaxed),
            running: self.running.load(Ordering::Relaxed) == 1,
            poll_backoffs: self.backoffs.lock().map(|b| b.clone()).unwrap_or_default(),
            oldest_in_progress: self.oldest_in_progress(),
            dlq_stuck: self.dlq_stuck(),
            registry_waits: self.registry.waits(),
        }
    }

    /// Whether the loop is running now (cheaper than a snapshot; for health probes).
    ///
    /// ```
    /// let stats = event_bus_kafka::consumer::ConsumerStats::default();
    /// assert!(!stats.is_running());
    /// ```
    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::Relaxed) == 1
    }

    /// How long ago the loop last showed it is alive (see
    /// [`StatsSnapshot::last_poll_millis`]), or `None` if it never did (for health
    /// probes). Set health probes' gap well above the commit interval.
    ///
    /// ```
    /// let stats = event_bus_kafka::consumer::ConsumerStats::default();
    /// assert_eq!(stats.since_last_poll(), None);
    /// ```
    pub fn since_last_poll(&self) -> Option<Duration> {
        match self.last_poll_millis.load(Ordering::Relaxed) {
            0 => None,
            last => Some(Duration::from_millis(now_millis().saturating_sub(last))),
        }
    }

    /// The record in progress for the longest time, as of the last commit tick (for
    /// health probes: a record running long shows here while the loop stays healthy).
    ///
    /// ```
    /// let stats = event_bus_kafka::consumer::ConsumerStats::default();
    /// assert_eq!(stats.oldest_in_progress(), None);
    /// ```
    pub fn oldest_in_progress(&self) -> Option<OldestRecord> {
        self.oldest_in_progress
            .lock()
            .map(|o| o.clone())
            .unwrap_or_default()
    }

    /// The dead letter the loop cannot write, if any (for health probes): set while
    /// at least one write is past its [`DlqPolicy`](super::DlqPolicy) threshold.
    ///
    /// ```
    /// let stats = event_bus_kafka::consumer::ConsumerStats::default();
    /// assert_eq!(stats.dlq_stuck(), None);
    /// ```
    pub fn dlq_stuck(&self) -> Option<DlqStuck> {
        let writers = self
            .dlq_stuck
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        (writers.count > 0)
            .then(|| writers.latest.clone())
            .flatten()
            .map(|latest| DlqStuck {
                stuck_records: writers.count,
                ..latest
            })
    }

    /// One more dead-letter write is stuck (`state`): `true` when it is the first.
    pub(crate) fn dlq_stuck_enter(&self, state: &DlqStuck) -> bool {
        let mut writers = self
            .dlq_stuck
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        writers.count += 1;
        writers.latest = Some(state.clone());
        writers.count == 1
    }

    /// A stuck write failed again: its details are the ones shown.
    pub(crate) fn dlq_stuck_update(&self, state: &DlqStuck) {
        let mut writers = self
            .dlq_stuck
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        writers.latest = Some(state.clone());
    }

    /// A stuck write ended (written or given up): `true` when it was the last one.
    pub(crate) fn dlq_stuck_leave(&self) -> bool {
        let mut writers = self
            .dlq_stuck
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        writers.count = writers.count.saturating_sub(1);
        if writers.count == 0 {
            writers.latest = None;
            return true;
        }
        false
    }

    /// Set while records wait because the schema registry is not usable (for health
    /// probes; see [`RegistryOutage`]).
    ///
    /// ```
    /// let stats = event_bus_kafka::consumer::ConsumerStats::default();
    /// assert_eq!(stats.registry_unavailable(), None);
    /// ```
    pub fn registry_unavailable(&self) -> Option<RegistryOutage> {
        self.registry.outage()
    }

    /// The registry condition shared by the loop's records.
    pub(crate) fn registry(&self) -> &RegistryStatus {
        &self.registry
    }

    pub(crate) fn set_oldest_in_progress(&self, oldest: Option<OldestRecord>) {
        if let Ok(mut slot) = self.oldest_in_progress.lock() {
            *slot = oldest;
        }
    }

    pub(crate) fn handled(&self) {
        self.records_handled.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn dead_lettered(&self) {
        self.records_dead_lettered.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn skipped(&self) {
        self.records_skipped.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn receiver_failed(&self, count: u64) {
        self.receiver_failures.fetch_add(count, Ordering::Relaxed);
    }
    pub(crate) fn poll_error(&self, backoff: Duration) {
        self.poll_errors.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut b) = self.backoffs.lock() {
            if b.len() == MAX_BACKOFFS_KEPT {
                b.remove(0);
            }
            b.push(backoff);
        }
    }
    pub(crate) fn committed(&self) {
        self.commits.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn assigned(&self) {
        self.assignments.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn revoked(&self) {
        self.revocations.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn polled(&self) {
        self.last_poll_millis.store(now_millis(), Ordering::Relaxed);
    }
    pub(crate) fn set_running(&self, running: bool) {
        self.running.store(u64::from(running), Ordering::Relaxed);
    }
}
