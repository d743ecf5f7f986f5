//! Publishing one claimed batch: every row queued to librdkafka at once, in id order,
//! then the acknowledgements sorted into what to delete and what to retry.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use futures::future::join_all;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

use super::lane::Lane;
use super::row::{BatchOutcome, OutboxRow, RowFailure};
use crate::failure::{self, Failure};
use crate::producer::KafkaProducer;

/// What happened to one row of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RowResult {
    /// The broker acknowledged it.
    Delivered,
    /// It failed (librdkafka's error).
    Failed(RowError),
    /// Not sent: an earlier row of its lane failed in this batch.
    HeldBack,
}

/// Why a row was not published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RowError {
    /// librdkafka's error, for `last_error`.
    pub(crate) message: String,
    /// Whether it says the broker is unreachable (rather than refusing this record).
    pub(crate) broker_unavailable: bool,
}

impl RowError {
    fn from_kafka(error: &KafkaError) -> Self {
        Self {
            message: error.to_string(),
            broker_unavailable: failure::of_kafka(error) == Failure::Unavailable,
        }
    }

    #[cfg(test)]
    pub(crate) fn timed_out() -> Self {
        Self::from_kafka(&KafkaError::MessageProduction(
            RDKafkaErrorCode::MessageTimedOut,
        ))
    }
}

/// Backoff of failing rows: exponential from `min` to `max`, with jitter.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RetryPolicy {
    builder: ExponentialBuilder,
}

impl RetryPolicy {
    pub(crate) fn new(min: Duration, max: Duration) -> Self {
        Self {
            builder: ExponentialBuilder::default()
                .with_min_delay(min)
                .with_max_delay(max.max(min))
                .with_factor(2.0)
                .with_jitter()
                .without_max_times(),
        }
    }

    /// The delay before attempt `attempt + 1`, after `attempt` (≥ 1) failures.
    pub(crate) fn delay(&self, attempt: i32) -> Duration {
        // Past 64 doublings every delay is the maximum anyway.
        let steps = usize::try_from(attempt.clamp(1, 64)).unwrap_or(1);
        self.builder.build().nth(steps - 1).unwrap_or_default()
    }
}

/// How long to wait for room in librdkafka's queue before failing a row.
const QUEUE_FULL_WAIT: Duration = Duration::from_millis(5);

/// Queues every row (in id order; a row whose lane already failed in this batch is held
/// back), then waits for all acknowledgements. librdkafka keeps the order of a
/// partition's records and the idempotent producer keeps it across retries, so rows of
/// one key reach the partition in id order.
pub(crate) async fn publish(
    kafka: &KafkaProducer,
    rows: &[OutboxRow],
    queue_timeout: Duration,
) -> Vec<RowResult> {
    let mut results = vec![RowResult::HeldBack; rows.len()];
    let mut failed_lanes: HashSet<Lane> = HashSet::new();
    let mut in_flight = Vec::with_capacity(rows.len());
    for (index, row) in rows.iter().enumerate() {
        if failed_lanes.contains(&row.lane) {
            continue;
        }
        let started = Instant::now();
        loop {
            match kafka.queue(&row.record) {
                Ok(delivery) => {
                    in_flight.push((index, delivery));
                    break;
                }
                Err(KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull))
                    if started.elapsed() < queue_timeout =>
                {
                    tokio::time::sleep(QUEUE_FULL_WAIT).await;
                }
                Err(error) => {
                    results[index] = RowResult::Failed(RowError::from_kafka(&error));
                    failed_lanes.insert(row.lane);
                    break;
                }
            }
        }
    }
    let (indexes, deliveries): (Vec<usize>, Vec<_>) = in_flight.into_iter().unzip();
    for (index, report) in indexes.into_iter().zip(join_all(deliveries).await) {
        results[index] = match report {
            Ok(_) => RowResult::Delivered,
            Err(KafkaError::Canceled) => RowResult::Failed(RowError {
                message: "the producer shut down before the broker acknowledged".to_owned(),
                broker_unavailable: false,
            }),
            Err(error) => RowResult::Failed(RowError::from_kafka(&error)),
        };
    }
    results
}

/// The evaluation of one batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Evaluation {
    /// What to write back.
    pub(crate) outcome: BatchOutcome,
    /// Rows not sent or not counted because an earlier row of their key failed.
    pub(crate) held_back: u64,
    /// Rows the broker acknowledged although an earlier row of their key failed
    /// (librdkafka timed the earlier one out first): on the topic ahead of it.
    pub(crate) ahead_of_failure: u64,
}

/// Sorts results per lane: a lane's first failure is recorded (attempt counted, backoff
/// set); its later rows that failed or were held back stay untouched; its later rows that
/// were nevertheless delivered are deleted (re-sending them would only add duplicates)
/// and counted as published ahead of the failure.
pub(crate) fn evaluate(
    rows: &[OutboxRow],
    results: &[RowResult],
    retry: &RetryPolicy,
) -> Evaluation {
    let mut evaluation = Evaluation::default();
    let mut failed_lanes: HashSet<Lane> = HashSet::new();
    for (row, result) in rows.iter().zip(results) {
        let lane_failed = failed_lanes.contains(&row.lane);
        match result {
            RowResult::Delivered => {
                if lane_failed {
                    evaluation.ahead_of_failure += 1;
                    tracing::warn!(
                        row_id = row.id.0,
                        topic = %row.record.topic,
                        key = row.record.key_text.as_deref().unwrap_or(""),
                        ce_id = %row.record.event_id,
                        "outbox event published ahead of an earlier failed event of its key"
                    );
                }
                evaluation.outcome.delivered.push(row.id);
            }
            RowResult::Failed(RowError { message: error, .. }) if !lane_failed => {
                failed_lanes.insert(row.lane);
                let retry_in = retry.delay(row.attempts.saturating_add(1));
                tracing::warn!(
                    row_id = row.id.0,
                    topic = %row.record.topic,
                    key = row.record.key_text.as_deref().unwrap_or(""),
                    ce_id = %row.record.event_id,
                    attempts = row.attempts.saturating_add(1),
                    retry_in_ms = retry_in.as_millis() as u64,
                    error = %error,
                    "outbox event not published; its key waits for the retry"
                );
                evaluation.outcome.failed.push(RowFailure {
                    id: row.id,
                    error: error.clone(),
                    retry_in,
                });
            }
            RowResult::Failed(_) | RowResult::HeldBack => {
                failed_lanes.insert(row.lane);
                evaluation.held_back += 1;
            }
        }
    }
    evaluation
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::OutboxId;
    use crate::producer::EncodedRecord;

    fn row(id: i64, lane: i64) -> OutboxRow {
        OutboxRow {
            id: OutboxId(id),
            lane: Lane(lane),
            record: EncodedRecord {
                topic: "t".into(),
                key: Some(vec![lane as u8]),
                value: vec![],
                headers: vec![],
                event_type: "e".into(),
                event_id: uuid::Uuid::nil(),
                key_text: None,
            },
            created_at: chrono::Utc::now(),
            attempts: 2,
            last_error: None,
            next_attempt_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn a_failure_holds_back_its_lane_only() {
        let rows = [row(1, 1), row(2, 2), row(3, 1), row(4, 2), row(5, 1)];
        let results = [
            RowResult::Failed(RowError::timed_out()),
            RowResult::Delivered,
            RowResult::Failed(RowError::timed_out()),
            RowResult::Delivered,
            RowResult::HeldBack,
        ];
        let retry = RetryPolicy::new(Duration::from_millis(100), Duration::from_secs(1));
        let evaluation = evaluate(&rows, &results, &retry);
        assert_eq!(evaluation.outcome.delivered, vec![OutboxId(2), OutboxId(4)]);
        assert_eq!(evaluation.outcome.failed.len(), 1);
        assert_eq!(evaluation.outcome.failed[0].id, OutboxId(1));
        assert_eq!(evaluation.held_back, 2);
        assert_eq!(evaluation.ahead_of_failure, 0);
    }

    #[test]
    fn delivered_after_a_failure_is_deleted_and_counted() {
        let rows = [row(1, 1), row(2, 1)];
        let results = [
            RowResult::Failed(RowError::timed_out()),
            RowResult::Delivered,
        ];
        let retry = RetryPolicy::new(Duration::from_millis(100), Duration::from_secs(1));
        let evaluation = evaluate(&rows, &results, &retry);
        assert_eq!(evaluation.outcome.delivered, vec![OutboxId(2)]);
        assert_eq!(evaluation.ahead_of_failure, 1);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let retry = RetryPolicy::new(Duration::from_millis(100), Duration::from_secs(1));
        let first = retry.delay(1);
        assert!(
            first >= Duration::from_millis(100) && first <= Duration::from_millis(200),
            "{first:?}"
        );
        let third = retry.delay(3);
        assert!(third >= Duration::from_millis(400), "{third:?}");
        let late = retry.delay(1_000);
        assert!(
            late >= Duration::from_secs(1) && late <= Duration::from_secs(2),
            "{late:?}"
        );
    }
}
