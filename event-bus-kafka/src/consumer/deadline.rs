//! A record's receivers run against its deadline without a timer when they finish at
//! once.
//!
//! `tokio::time::timeout_at` builds its timer entry before the first poll, even for a
//! future that is ready on that poll, as the receivers of most records are: the entry
//! and its drop cost a record about 650 instructions. [`within_deadline`] polls the
//! future first and arms the timer only when the future has to wait.

use std::future::{poll_fn, Future};
use std::pin::pin;
use std::task::Poll;

use tokio::time::{sleep_until, Instant, Sleep};

/// The deadline passed before the future finished.
///
/// ```
/// let passed = event_bus_kafka::consumer::DeadlinePassed;
/// assert_eq!(passed.to_string(), "the deadline passed before the work finished");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the deadline passed before the work finished")]
pub struct DeadlinePassed;

/// Runs `future` to its end, or until `deadline`, as `tokio::time::timeout_at`
/// does; a future that is ready on its first poll never arms a timer.
///
/// ```
/// use event_bus_kafka::consumer::{within_deadline, DeadlinePassed};
/// use tokio::time::{Duration, Instant};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let soon = Instant::now() + Duration::from_millis(20);
/// assert_eq!(within_deadline(soon, async { 7 }).await, Ok(7));
/// let never = std::future::pending::<()>();
/// assert_eq!(within_deadline(soon, never).await, Err(DeadlinePassed));
/// # }
/// ```
pub async fn within_deadline<F: Future>(
    deadline: Instant,
    future: F,
) -> Result<F::Output, DeadlinePassed> {
    let mut future = pin!(future);
    let mut timer = pin!(None::<Sleep>);
    poll_fn(|cx| {
        if let Poll::Ready(output) = future.as_mut().poll(cx) {
            return Poll::Ready(Ok(output));
        }
        if timer.is_none() {
            timer.set(Some(sleep_until(deadline)));
        }
        match timer.as_mut().as_pin_mut() {
            Some(timer) => timer.poll(cx).map(|()| Err(DeadlinePassed)),
            None => Poll::Pending,
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::Duration;

    #[tokio::test]
    async fn a_future_that_waits_still_meets_its_deadline_or_not() {
        let far = Instant::now() + Duration::from_secs(60);
        let quick = tokio::time::sleep(Duration::from_millis(1));
        assert_eq!(within_deadline(far, quick).await, Ok(()));
        let near = Instant::now() + Duration::from_millis(10);
        let never = std::future::pending::<()>();
        assert_eq!(within_deadline(near, never).await, Err(DeadlinePassed));
        assert!(Instant::now() >= near);
    }

    #[tokio::test]
    async fn a_deadline_already_passed_still_lets_a_ready_future_finish() {
        let passed = Instant::now();
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert_eq!(within_deadline(passed, async { "done" }).await, Ok("done"));
    }
}
