//! A broker outage as loop state: the loop goes on serving its receivers, commits and
//! shutdown while it backs off and probes the brokers, and ends only after too many
//! failed probes in a row.

use std::time::Duration;

use backon::ExponentialBackoff;
use tokio::time::Instant;

use super::backoff::jittered;
use super::config::PollPolicy;
use super::error::ConsumerError;

/// An outage in progress: failures in a row, the backoff, and when to probe next.
#[derive(Debug)]
pub(crate) struct Outage {
    policy: PollPolicy,
    backoff: ExponentialBackoff,
    consecutive: u32,
    last: String,
    probe_at: Instant,
}

/// What the loop does after a failure.
#[derive(Debug)]
pub(crate) enum NextStep {
    /// Probe again after this delay.
    BackOff(Duration),
    /// Too many failures in a row: stop.
    GiveUp(ConsumerError),
}

impl Outage {
    /// An outage that began with `error`.
    pub fn begin(policy: &PollPolicy, error: String) -> (Self, NextStep) {
        let mut outage = Self {
            backoff: jittered(policy.initial_backoff, policy.max_backoff),
            policy: policy.clone(),
            consecutive: 0,
            last: String::new(),
            probe_at: Instant::now(),
        };
        let step = outage.failed(error);
        (outage, step)
    }

    /// Another failure (a probe that got no answer).
    pub fn failed(&mut self, error: String) -> NextStep {
        self.consecutive += 1;
        self.last = error;
        let max = self.policy.max_consecutive_errors;
        if max > 0 && self.consecutive >= max {
            return NextStep::GiveUp(ConsumerError::TooManyPollFailures {
                count: self.consecutive,
                last: std::mem::take(&mut self.last),
            });
        }
        let delay = self.backoff.next().unwrap_or(self.policy.max_backoff);
        self.probe_at = Instant::now() + delay;
        NextStep::BackOff(delay)
    }

    /// Failures in a row so far.
    pub fn consecutive(&self) -> u32 {
        self.consecutive
    }

    /// The last failure.
    pub fn last(&self) -> &str {
        &self.last
    }

    /// When to probe the brokers next.
    pub fn probe_at(&self) -> Instant {
        self.probe_at
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{NextStep, Outage};
    use crate::consumer::{ConsumerError, PollPolicy};

    #[test]
    fn delays_grow_then_the_outage_gives_up() {
        let policy = PollPolicy {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            max_consecutive_errors: 4,
            probe_timeout: Duration::from_secs(1),
        };
        let (mut outage, first) = Outage::begin(&policy, "down".into());
        let mut delays = Vec::new();
        let mut step = first;
        loop {
            match step {
                NextStep::BackOff(delay) => delays.push(delay),
                NextStep::GiveUp(ConsumerError::TooManyPollFailures { count, last }) => {
                    assert_eq!((count, last.as_str()), (4, "still down"));
                    break;
                }
                NextStep::GiveUp(other) => panic!("unexpected {other:?}"),
            }
            step = outage.failed("still down".into());
        }
        assert_eq!(delays.len(), 3);
        assert!(delays.windows(2).all(|w| w[1] > w[0]), "{delays:?}");
    }
}
