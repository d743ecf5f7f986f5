//! Back-pressure: the maximum backlog, checked without counting the table per insert.

use std::future::Future;
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
#[derive(Debug)]
pub(crate) struct BacklogLimit {
    max: u64,
    estimate: AtomicU64,
    counted_at: Mutex<Option<Instant>>,
}

impl BacklogLimit {
    pub(crate) fn new(max: u64) -> Self {
        Self {
            max,
            estimate: AtomicU64::new(0),
            counted_at: Mutex::new(None),
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
        let counted_at = self.counted_at.lock().map(|at| *at).unwrap_or(None);
        let over = self.estimate.load(Ordering::Relaxed).saturating_add(n) > self.max;
        let recount = match counted_at {
            None => true,
            Some(at) if over => at.elapsed() >= FULL_RECHECK,
            Some(at) => at.elapsed() >= TRUSTED_FOR,
        };
        if recount {
            let exact = count().await?;
            self.estimate.store(exact, Ordering::Relaxed);
            if let Ok(mut at) = self.counted_at.lock() {
                *at = Some(Instant::now());
            }
        }
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

    #[tokio::test]
    async fn a_full_estimate_is_recounted() {
        let limit = BacklogLimit::new(1);
        limit.admit(1, || async { Ok(0) }).await.expect("counted");
        limit.added(5); // another process drained it meanwhile
        tokio::time::sleep(FULL_RECHECK).await;
        limit.admit(1, || async { Ok(0) }).await.expect("recounted");
    }
}
