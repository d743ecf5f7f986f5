//! Writing one dead letter, with what the failure classifier says about each failed
//! write:
//!
//! - retryable ([`Failure::Unavailable`], [`Failure::Transient`]): back off and write
//!   again; past the [`DlqPolicy`] threshold the consumer shows as stuck on its
//!   dead-letter topic (stats, `/healthz`, the `event_bus_dlq_stuck` gauge) while at
//!   least one write is past the threshold: the flag is raised (and logged) once when
//!   the first write gets stuck and goes (logged once) when the last one ends, written
//!   or left (revoke, shutdown, refusal);
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
            ..DlqStuck::default()
        };
        // Counts this write out of the stuck ones however it ends: written, refused,
        // stopped, or dropped by the loop (a revoke's grace cut).
        let mut stuck = StuckMark {
            writer: self,
            dlq_topic: topic,
            entered: false,
            written: false,
        };
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
                    _ = tokio::time::sleep_until(stuck_at), if !stuck.entered => stuck.mark(&state),
                    // The broker may still take a letter already queued: the record
                    // stays uncommitted, so at worst it is dead-lettered twice.
                    cause = stop.stopped() => return Written::Stopped(cause),
                }
            };
            let error = match result {
                Ok((partition, offset)) => {
                    stuck.written = true;
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
                    if stuck.entered || state.failed_writes >= self.policy.stuck_after_attempts {
                        stuck.mark(&state);
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
}

/// One dead-letter write's part in the loop's "stuck on DLQ" flag: the flag is up
/// while any write of the loop is past the threshold, and goes (logged once, gauge
/// 0) when the last such write ends, however it ends.
struct StuckMark<'a> {
    writer: &'a DeadLetterWriter,
    dlq_topic: &'a str,
    /// Whether this write counts as stuck.
    entered: bool,
    /// Whether the broker took the letter.
    written: bool,
}

impl StuckMark<'_> {
    /// Counts this write as stuck with `state` (the first stuck write of the loop
    /// logs and raises the gauge), or updates the details shown.
    fn mark(&mut self, state: &DlqStuck) {
        let stats = &self.writer.stats;
        if self.entered {
            stats.dlq_stuck_update(state);
            return;
        }
        self.entered = true;
        if stats.dlq_stuck_enter(state) {
            tracing::error!(
                dlq_topic = %state.dlq_topic, failed_writes = state.failed_writes, last_error = %state.last_error,
                "stuck on the dead-letter topic: a dead letter cannot be written; its partition waits"
            );
            metrics::record_dlq_stuck(&self.writer.group, true);
        }
    }
}

impl Drop for StuckMark<'_> {
    fn drop(&mut self) {
        if !self.entered || !self.writer.stats.dlq_stuck_leave() {
            return;
        }
        metrics::record_dlq_stuck(&self.writer.group, false);
        if self.written {
            tracing::info!(dlq_topic = %self.dlq_topic, "dead letters go through again");
        } else {
            tracing::info!(
                dlq_topic = %self.dlq_topic,
                "no dead letter waits any more (the last stuck one was left unwritten: revoke, shutdown or a refusal); its record stays uncommitted"
            );
        }
    }
}
