//! Writing one dead letter, with what the failure classifier says about each failed
//! write:
//!
//! - retryable ([`Failure::Unavailable`], [`Failure::Transient`]): back off and write
//!   again; past the [`DlqPolicy`] threshold the consumer shows as stuck on its
//!   dead-letter topic (stats, `/healthz`, the `event_bus_dlq_stuck` gauge) until a
//!   dead letter goes through;
//! - [`Failure::TooLarge`]: write a stub instead (key and headers, no value, a header
//!   saying so and one with the value's size); if even that is too large, it is
//!   permanent;
//! - [`Failure::Permanent`]: stop with [`ConsumerError::DeadLetterRefused`]; the record
//!   stays uncommitted.

use std::sync::Arc;
use std::time::Duration;

use super::backoff::jittered;
use super::config::DlqPolicy;
use super::dlq::{DeadLetter, DeadLetterSender};
use super::error::ConsumerError;
use super::shutdown::{RecordStop, StopCause};
use super::stats::{now_millis, ConsumerStats, DlqStuck};
use crate::failure::{self, Failure};
use crate::observability::metrics;

/// How a dead letter ended.
pub(crate) enum Written {
    /// The broker acknowledged it (`stub`: without the record's value), at this
    /// partition and offset of the dead-letter topic.
    Done {
        partition: i32,
        offset: i64,
        stub: bool,
    },
    /// Shutdown or a revoke cut the retries short; the record stays uncommitted.
    Stopped(StopCause),
    /// The dead-letter topic refused it for good: the loop must stop.
    Refused(ConsumerError),
}

/// Writes dead letters for one consumer loop.
pub(crate) struct DeadLetterWriter {
    sender: DeadLetterSender,
    policy: DlqPolicy,
    initial_backoff: Duration,
    max_backoff: Duration,
    stats: Arc<ConsumerStats>,
    group: String,
}

impl DeadLetterWriter {
    /// A writer sending with `sender`, retrying with delays between `initial_backoff`
    /// and `max_backoff`, reporting to `stats`.
    pub fn new(
        sender: DeadLetterSender,
        policy: DlqPolicy,
        (initial_backoff, max_backoff): (Duration, Duration),
        stats: Arc<ConsumerStats>,
        group: String,
    ) -> Self {
        Self {
            sender,
            policy,
            initial_backoff,
            max_backoff,
            stats,
            group,
        }
    }

    /// Writes `letter` to `topic` until the broker acknowledges it, the topic refuses
    /// it for good, or `stop` cuts it short.
    pub async fn write(
        &self,
        topic: &str,
        letter: &DeadLetter<'_>,
        stop: &RecordStop<'_>,
    ) -> Written {
        let stuck_at = tokio::time::Instant::now() + self.policy.stuck_after;
        let mut state = DlqStuck {
            dlq_topic: topic.to_owned(),
            since_millis: now_millis(),
            failed_writes: 0,
            last_error: String::new(),
        };
        let mut stuck = false;
        let mut stub = false;
        let mut backoff = jittered(self.initial_backoff, self.max_backoff);
        loop {
            // The partition's new owner decides on the record now: no second letter.
            if !stop.assignment.is_current() {
                return Written::Stopped(StopCause::Revoked);
            }
            let send = self.sender.send(topic, letter, stub);
            tokio::pin!(send);
            let result = loop {
                tokio::select! {
                    result = &mut send => break result,
                    _ = tokio::time::sleep_until(stuck_at), if !stuck => {
                        stuck = true;
                        self.mark_stuck(&state);
                    }
                }
            };
            let error = match result {
                Ok((partition, offset)) => {
                    if stuck || self.stats.dlq_stuck().is_some() {
                        tracing::info!(dlq_topic = %topic, "dead letters go through again");
                        self.stats.set_dlq_stuck(None);
                        metrics::record_dlq_stuck(&self.group, false);
                    }
                    return Written::Done {
                        partition,
                        offset,
                        stub,
                    };
                }
                Err(error) => error,
            };
            let verdict = failure::of_kafka(&error);
            metrics::record_dlq_write_failure(&self.group, verdict.as_str());
            let record = letter.record;
            match verdict {
                Failure::TooLarge if !stub => {
                    tracing::warn!(
                        topic = record.topic, partition = record.partition, offset = record.offset,
                        dlq_topic = %topic, value_bytes = record.value.map_or(0, <[u8]>::len), error = %error,
                        "record too large for the dead-letter topic; writing it without its value"
                    );
                    stub = true;
                }
                Failure::TooLarge | Failure::Permanent => {
                    tracing::error!(
                        topic = record.topic, partition = record.partition, offset = record.offset,
                        dlq_topic = %topic, failure = %verdict, error = %error,
                        "the dead-letter topic refused the record for good; stopping the consumer (the record stays uncommitted)"
                    );
                    return Written::Refused(ConsumerError::DeadLetterRefused {
                        dlq_topic: topic.to_owned(),
                        topic: record.topic.to_owned(),
                        partition: record.partition,
                        offset: record.offset,
                        failure: verdict,
                        source: Box::new(error),
                    });
                }
                Failure::Unavailable | Failure::Transient => {
                    state.failed_writes += 1;
                    state.last_error = error.to_string();
                    if stuck || state.failed_writes >= self.policy.stuck_after_attempts {
                        stuck = true;
                        self.mark_stuck(&state);
                    }
                    let delay = backoff.next().unwrap_or(self.max_backoff);
                    tracing::warn!(
                        dlq_topic = %topic, failure = %verdict, error = %error,
                        failed_writes = state.failed_writes, delay_ms = delay.as_millis() as u64,
                        "dead-letter write failed; retrying (the record stays uncommitted)"
                    );
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        cause = stop.stopped() => return Written::Stopped(cause),
                    }
                }
            }
        }
    }

    /// Shows the loop as stuck on its dead-letter topic (logged on the first mark).
    fn mark_stuck(&self, state: &DlqStuck) {
        if self.stats.dlq_stuck().is_none() {
            tracing::error!(
                dlq_topic = %state.dlq_topic, failed_writes = state.failed_writes, last_error = %state.last_error,
                "stuck on the dead-letter topic: a dead letter cannot be written; its partition waits"
            );
        }
        self.stats.set_dlq_stuck(Some(state.clone()));
        metrics::record_dlq_stuck(&self.group, true);
    }
}
