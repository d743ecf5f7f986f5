//! Dispatch with retries of the receivers that failed, and only those.

use std::collections::BTreeMap;
use std::sync::Arc;

use event_bus_core::dispatch::{DecodedEvent, DeliveryContext};
use event_bus_core::{EventBus, ReceiverError};

use super::backoff::jittered;
use super::config::RetryPolicy;
use super::record::RecordView;
use super::shutdown::{RecordStop, StopCause};
use crate::observability::metrics;

/// What became of one event's dispatch.
pub(crate) enum RetryOutcome {
    /// Every receiver succeeded (some perhaps after retries).
    Succeeded,
    /// These receivers still fail after the policy's tries.
    Exhausted {
        failures: BTreeMap<String, ReceiverError>,
        attempts: u32,
    },
    /// Shutdown or the partition's revoke came while waiting to retry.
    Stopped(StopCause),
}

pub(crate) struct RetryRun<'a> {
    pub bus: &'a EventBus,
    pub policy: &'a RetryPolicy,
    pub stop: &'a RecordStop<'a>,
    pub record: &'a RecordView<'a>,
    /// The event's type, as the bus names it.
    pub event_type: &'a str,
    /// When the receivers still running are given up as failed.
    pub deadline: tokio::time::Instant,
    /// When the record's handling began.
    pub started: tokio::time::Instant,
}

impl RetryRun<'_> {
    /// Runs the receivers (all, or `only`), retrying the failed ones.
    pub async fn run(
        &self,
        event: DecodedEvent,
        ctx: DeliveryContext,
        only: Option<Vec<String>>,
    ) -> RetryOutcome {
        let event_type = self.event_type;
        let mut ctx = Arc::new(ctx);
        // Built on the first retry only: most events never need it.
        let mut delays = None;
        let mut pending = only;
        let mut failures: BTreeMap<String, ReceiverError> = BTreeMap::new();
        // Every try (the context's `attempt`), and the tries the retry policy counts:
        // a try whose every failure is an outage of a dependency
        // (`ReceiverError::unavailable`) is a wait, not an attempt.
        let mut attempt = 1;
        let mut counted = 1;
        let mut budget_start = self.started.into_std();
        let mut deadline = self.deadline;
        let try_budget = self.deadline.saturating_duration_since(self.started);
        loop {
            if ctx.attempt != attempt {
                // Copies the context only when a receiver still holds the last one.
                Arc::make_mut(&mut ctx).attempt = attempt;
            }
            let dispatch = self.bus.dispatch_decoded(
                event_type,
                event.clone(),
                Arc::clone(&ctx),
                pending.as_deref(),
            );
            let Ok(report) = super::within_deadline(deadline, dispatch).await else {
                return self.timed_out(&ctx, pending, failures, attempt);
            };
            for outcome in &report.outcomes {
                metrics::record_receiver_call(
                    &outcome.receiver,
                    event_type,
                    attempt,
                    outcome.result.is_ok(),
                );
                match &outcome.result {
                    Ok(()) => {
                        failures.remove(outcome.receiver.as_ref());
                    }
                    Err(error) => {
                        self.log_failure(&ctx, &outcome.receiver, counted, error);
                        failures.insert(outcome.receiver.clone().into_owned(), error.clone());
                    }
                }
            }
            if failures.is_empty() {
                return RetryOutcome::Succeeded;
            }
            let waiting = failures.values().all(ReceiverError::is_unavailable);
            let retryable: Vec<String> = failures
                .iter()
                .filter(|(_, e)| e.is_retryable())
                .map(|(name, _)| name.clone())
                .collect();
            if !waiting {
                let out_of_time = budget_start.elapsed() >= self.policy.max_elapsed;
                if retryable.is_empty() || counted >= self.policy.max_attempts || out_of_time {
                    return RetryOutcome::Exhausted {
                        failures,
                        attempts: attempt,
                    };
                }
            }
            let delay = delays
                .get_or_insert_with(|| jittered(self.policy.initial_delay, self.policy.max_delay))
                .next()
                .unwrap_or(self.policy.max_delay);
            if !waiting && tokio::time::Instant::now() + delay >= deadline {
                // No time left for another try.
                return RetryOutcome::Exhausted {
                    failures,
                    attempts: attempt,
                };
            }
            if waiting {
                metrics::record_dependency_wait(event_type);
            }
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                cause = self.stop.stopped() => return RetryOutcome::Stopped(cause),
            }
            if waiting {
                // A wait spends neither the attempts, nor the time budget, nor the
                // record deadline: the next try gets all of them afresh.
                budget_start = std::time::Instant::now();
                deadline = tokio::time::Instant::now() + try_budget;
            } else {
                counted += 1;
            }
            pending = Some(retryable);
            attempt += 1;
        }
    }

    /// The record deadline passed while receivers ran: the ones called in this try
    /// (whether or not some of them were about to succeed) count as failed, with an
    /// error that is not retried.
    fn timed_out(
        &self,
        ctx: &DeliveryContext,
        pending: Option<Vec<String>>,
        mut failures: BTreeMap<String, ReceiverError>,
        attempt: u32,
    ) -> RetryOutcome {
        let called = pending.unwrap_or_else(|| {
            self.bus
                .receiver_names(self.event_type)
                .into_iter()
                .map(str::to_owned)
                .collect()
        });
        for receiver in called {
            let error = ReceiverError::permanent(format!(
                "did not finish within the record deadline (record_timeout, {} ms)",
                self.policy_deadline_millis()
            ));
            self.log_failure(ctx, &receiver, attempt, &error);
            failures.insert(receiver, error);
        }
        RetryOutcome::Exhausted {
            failures,
            attempts: attempt,
        }
    }

    fn policy_deadline_millis(&self) -> u128 {
        self.deadline
            .saturating_duration_since(self.started)
            .as_millis()
    }

    fn log_failure(
        &self,
        ctx: &DeliveryContext,
        receiver: &str,
        attempt: u32,
        error: &ReceiverError,
    ) {
        let record = self.record;
        let waiting_for_dependency = error.is_unavailable();
        let will_retry =
            waiting_for_dependency || (error.is_retryable() && attempt < self.policy.max_attempts);
        tracing::warn!(
            topic = record.topic,
            partition = record.partition,
            offset = record.offset,
            ce_id = %ctx.metadata.id,
            ce_type = %ctx.metadata.event_type,
            receiver,
            attempt,
            max_attempts = self.policy.max_attempts,
            will_retry,
            waiting_for_dependency,
            error = %error,
            "receiver failed"
        );
    }
}
