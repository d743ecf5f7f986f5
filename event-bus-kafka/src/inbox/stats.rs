//! What an [`Inbox`](super::Inbox) did: events handled, duplicates skipped, receiver
//! failures rolled back, per receiver and in total.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use serde::Serialize;

/// One receiver's counts (or the sum over an inbox's receivers).
///
/// ```
/// let counts = event_bus_kafka::inbox::ReceiverCounts::default();
/// assert_eq!(counts.handled + counts.duplicates + counts.failed, 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ReceiverCounts {
    /// Events the receiver handled and committed with their inbox row.
    pub handled: u64,
    /// Deliveries skipped because the inbox row existed (duplicates).
    pub duplicates: u64,
    /// Deliveries that failed (the receiver's error, or the inbox's: no transaction,
    /// no inbox table, a failed commit) and were rolled back, to be retried or
    /// dead-lettered by the consumer.
    pub failed: u64,
}

/// A snapshot of an inbox's counts, since it was made. Process-local; the same
/// figures go to the `event_bus_inbox_*` metrics.
///
/// ```
/// use event_bus_kafka::inbox::InboxStats;
/// let stats = InboxStats::default();
/// assert_eq!(stats.total.duplicates, 0);
/// assert_eq!(stats.receiver("invoice").handled, 0);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct InboxStats {
    /// Over every receiver.
    pub total: ReceiverCounts,
    /// Per receiver name.
    pub receivers: BTreeMap<String, ReceiverCounts>,
}

impl InboxStats {
    /// The counts of `receiver` (zero when it has none).
    ///
    /// See the type's example.
    pub fn receiver(&self, receiver: &str) -> ReceiverCounts {
        self.receivers.get(receiver).copied().unwrap_or_default()
    }
}

/// The live counters of one receiver.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    handled: AtomicU64,
    duplicates: AtomicU64,
    failed: AtomicU64,
}

impl Counters {
    pub fn handled(&self) {
        self.handled.fetch_add(1, Ordering::Relaxed);
    }

    pub fn duplicate(&self) {
        self.duplicates.fetch_add(1, Ordering::Relaxed);
    }

    pub fn failed(&self) {
        self.failed.fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> ReceiverCounts {
        ReceiverCounts {
            handled: self.handled.load(Ordering::Relaxed),
            duplicates: self.duplicates.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
        }
    }
}

/// The counters of every receiver of one inbox, by name (a name connected to several
/// event types shares one set).
#[derive(Debug, Default)]
pub(crate) struct StatsRegistry {
    receivers: Mutex<BTreeMap<String, Arc<Counters>>>,
}

impl StatsRegistry {
    /// The counters of `receiver`, made on first use.
    pub fn counters(&self, receiver: &str) -> Arc<Counters> {
        let mut receivers = self
            .receivers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Arc::clone(receivers.entry(receiver.to_owned()).or_default())
    }

    pub fn snapshot(&self) -> InboxStats {
        let receivers = self
            .receivers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut stats = InboxStats::default();
        for (name, counters) in receivers.iter() {
            let counts = counters.snapshot();
            stats.total.handled += counts.handled;
            stats.total.duplicates += counts.duplicates;
            stats.total.failed += counts.failed;
            stats.receivers.insert(name.clone(), counts);
        }
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_shares_its_counters_and_the_total_sums_them() {
        let registry = StatsRegistry::default();
        registry.counters("a").handled();
        registry.counters("a").duplicate();
        registry.counters("b").failed();
        let stats = registry.snapshot();
        assert_eq!(stats.receiver("a").handled, 1);
        assert_eq!(stats.receiver("a").duplicates, 1);
        assert_eq!(
            stats.total,
            ReceiverCounts {
                handled: 1,
                duplicates: 1,
                failed: 1
            }
        );
    }
}
