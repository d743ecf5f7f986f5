//! Back-pressure: the maximum backlog, checked without counting the table per insert.

use std::future::Future;
#[cfg(feature = "postgres")]
use std::sync::atomic::AtomicBool;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::error::OutboxError;

/// How long a counted backlog is trusted (plus local increments) before it is recounted;
/// bounds how far other processes' inserts and deletes can make the estimate drift.
const TRUSTED_FOR: Duration = Duration::from_secs(1);
/// While the limit is hit, recount at most this often, so refused senders do not each
/// run a `count(*)`.
const FULL_RECHECK: Duration = Duration::from_millis(200);

/// The backlog limit of one store: an estimate of the pending rows (the last count plus
/// this process's inserts minus its deletes), recounted at least every second and
/// whenever it says "full". Concurrent inserts may overshoot the limit by the number of
/// senders in flight; nothing is ever dropped.
///
/// A store may also recount in the background (PostgreSQL does) ([`begin_recount`](Self::begin_recount))
/// and decide meanwhile on the estimate: it then misses the other processes' inserts
/// since the last count, until the recount lands.
#[derive(Debug)]
pub(crate) struct BacklogLimit {
    max: u64,
    estimate: AtomicU64,
    counted_at: Mutex<Option<Instant>>,
    #[cfg(feature = "postgres")]
    recounting: AtomicBool,
}

impl BacklogLimit {
    pub(crate) fn new(max: u64) -> Self {
        Self {
            max,
            estimate: AtomicU64::new(0),
            counted_at: Mutex::new(None),
            #[cfg(feature = "postgres")]
            recounting: AtomicBool::new(false),
        }
    }

    pub(crate) fn max(&self) -> u64 {
        self.max
    }

    /// Ok if `n` more rows fit; `count` gives the exact pending count when needed.
    pub(crate) async fn admit<F, Fut>(&self, n: u64, count: F) -> Result<(), OutboxError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<u64, OutboxError>>,
    {
        if self.needs_count(n) {
            self.counted(count().await?);
        }
        self.check(n)
    }

    /// Whether the estimate is too old to decide on `n` more rows: never counted,
    /// counted over a second ago, or over 200 ms ago while it says "full".
    pub(crate) fn needs_count(&self, n: u64) -> bool {
        let counted_at = self.counted_at.lock().map(|at| *at).unwrap_or(None);
        let over = self.estimate.load(Ordering::Relaxed).saturating_add(n) > self.max;
        match counted_at {
            None => true,
            Some(at) if over => at.elapsed() >= FULL_RECHECK,
            Some(at) => at.elapsed() >= TRUSTED_FOR,
        }
    }

    /// The table was counted: `exact` rows pending.
    pub(crate) fn counted(&self, exact: u64) {
        self.estimate.store(exact, Ordering::Relaxed);
        if let Ok(mut at) = self.counted_at.lock() {
            *at = Some(Instant::now());
        }
    }

    /// True if the caller is to recount now (in the background), false if a recount is
    /// already running; call [`end_recount`](Self::end_recount) when it ends.
    #[cfg(feature = "postgres")]
    pub(crate) fn begin_recount(&self) -> bool {
        !self.recounting.swap(true, Ordering::AcqRel)
    }

    /// The background recount ended (counted or failed).
    #[cfg(feature = "postgres")]
    pub(crate) fn end_recount(&self) {
        self.recounting.store(false, Ordering::Release);
    }

    /// Ok if `n` more rows fit by the current estimate.
    pub(crate) fn check(&self, n: u64) -> Result<(), OutboxError> {
        let pending = self.estimate.load(Ordering::Relaxed);
        if pending.saturating_add(n) > self.max {
            tracing::warn!(
                pending,
                max_backlog = self.max,
                "outbox full; refusing the event"
            );
            return Err(OutboxError::Full {
                pending,
                max_backlog: self.max,
            });
        }
        Ok(())
    }

    /// `n` rows were stored.
    pub(crate) fn added(&self, n: u64) {
        self.estimate.fetch_add(n, Ordering::Relaxed);
    }

    /// `n` rows were deleted.
    pub(crate) fn removed(&self, n: u64) {
        let _ = self
            .estimate
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                Some(v.saturating_sub(n))
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refuses_beyond_the_limit_and_recovers_after_deletes() {
        let limit = BacklogLimit::new(2);
        limit.admit(1, || async { Ok(0) }).await.expect("empty");
        limit.added(1);
        limit.admit(1, || async { Ok(1) }).await.expect("one fits");
        limit.added(1);
        let err = limit.admit(1, || async { Ok(2) }).await.expect_err("full");
        assert!(
            matches!(
                err,
                OutboxError::Full {
                    pending: 2,
                    max_backlog: 2
                }
            ),
            "{err:?}"
        );
        limit.removed(2);
        limit
            .admit(1, || async { Ok(0) })
            .await
            .expect("room again");
    }

    #[test]
    #[cfg(feature = "postgres")]
    fn one_background_recount_at_a_time() {
        let limit = BacklogLimit::new(1);
        assert!(limit.needs_count(1), "never counted");
        assert!(limit.begin_recount());
        assert!(!limit.begin_recount(), "already running");
        limit.counted(1);
        limit.end_recount();
        assert!(!limit.needs_count(0), "just counted");
        assert!(limit.check(1).is_err(), "full by the count");
        assert!(limit.begin_recount(), "the next one may start");
    }

    #[tokio::test]
    async fn a_full_estimate_is_recounted() {
        let limit = BacklogLimit::new(1);
        limit.admit(1, || async { Ok(0) }).await.expect("counted");
        limit.added(5); // another process drained it meanwhile
        tokio::time::sleep(FULL_RECHECK).await;
        limit.admit(1, || async { Ok(0) }).await.expect("recounted");
    }
}
