//! Publishing one claimed batch: every row queued to librdkafka at once, in id order,
//! then the acknowledgements sorted into what to delete, what to retry and what to park.
//!
//! Whether a failure is worth retrying is the classifier's call
//! ([`failure::of_kafka`]); this module only counts attempts against the
//! [`ParkPolicy`]: a broker outage never parks anything, a transient refusal parks after
//! many attempts, a record too large or refused for good after a few.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use futures::future::join_all;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

use super::config::RelayConfig;
use super::lane::Lane;
use super::row::{BatchOutcome, OutboxId, OutboxRow, RowFailure, UnreadableRow};
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
    /// What the classifier makes of it.
    pub(crate) failure: Failure,
}

impl RowError {
    fn from_kafka(error: &KafkaError) -> Self {
        Self {
            message: error.to_string(),
            failure: failure::of_kafka(error),
        }
    }

    /// Whether it says the broker is unreachable (rather than refusing this record).
    pub(crate) fn broker_unavailable(&self) -> bool {
        self.failure == Failure::Unavailable
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

/// When the relay gives up on a failing row and parks it: after how many failed
/// attempts, by the classifier's verdict. `None` never parks.
///
/// - [`Failure::Unavailable`]: never. The broker is down or unreachable; that is no
///   fault of the row, and every key would be parked by an outage.
/// - [`Failure::Transient`]: after `transient` attempts (librdkafka has already
///   retried each attempt within its delivery timeout).
/// - [`Failure::TooLarge`], [`Failure::Permanent`] and unreadable rows: after
///   `permanent` attempts (a few, not one: a topic created a moment late or an ACL
///   granted a moment late should not need a person).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ParkPolicy {
    pub(crate) transient: Option<u32>,
    pub(crate) permanent: Option<u32>,
}

impl ParkPolicy {
    pub(crate) fn of(config: &RelayConfig) -> Self {
        Self {
            transient: config.park_after_attempts,
            permanent: config.park_permanent_after_attempts,
        }
    }

    /// The park reason for a row that has now failed `attempts` times with `error`
    /// classified as `failure`, or `None` to keep retrying.
    pub(crate) fn reason(&self, failure: Failure, attempts: i32, error: &str) -> Option<String> {
        let limit = match failure {
            Failure::Unavailable => None,
            Failure::Transient => self.transient,
            Failure::TooLarge | Failure::Permanent => self.permanent,
        }?;
        let attempts = u32::try_from(attempts).unwrap_or(0);
        (attempts >= limit).then(|| {
            let what = match failure {
                Failure::TooLarge => "too large for the topic",
                Failure::Permanent => "refused for good",
                Failure::Unavailable | Failure::Transient => "still failing",
            };
            format!("{what} ({failure}) after {attempts} attempts: {error}")
        })
    }
}

/// How long to wait for room in librdkafka's queue before failing a row.
const QUEUE_FULL_WAIT: Duration = Duration::from_millis(5);

/// Queues every row (in id order; a row whose lane already failed in this batch is held
/// back), then waits for all acknowledgements. librdkafka keeps the order of a
/// partition's records and the idempotent producer keeps it across retries, so rows of
/// one key reach the partition in id order.
///
/// A row behind an unreadable row of its lane is held back too.
pub(crate) async fn publish(
    kafka: &KafkaProducer,
    rows: &[OutboxRow],
    unreadable: &[UnreadableRow],
    queue_timeout: Duration,
) -> Vec<RowResult> {
    let mut results = vec![RowResult::HeldBack; rows.len()];
    let mut failed_lanes: HashSet<Lane> = HashSet::new();
    let blocked = first_unreadable(unreadable);
    let mut in_flight = Vec::with_capacity(rows.len());
    for (index, row) in rows.iter().enumerate() {
        let behind_unreadable = blocked.get(&row.lane).is_some_and(|id| *id < row.id);
        if failed_lanes.contains(&row.lane) || behind_unreadable {
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
                failure: failure::of_kafka(&KafkaError::Canceled),
            }),
            Err(error) => RowResult::Failed(RowError::from_kafka(&error)),
        };
    }
    results
}

/// The first unreadable row of each lane.
fn first_unreadable(unreadable: &[UnreadableRow]) -> HashMap<Lane, OutboxId> {
    let mut first: HashMap<Lane, OutboxId> = HashMap::new();
    for row in unreadable {
        first
            .entry(row.lane)
            .and_modify(|id| *id = (*id).min(row.id))
            .or_insert(row.id);
    }
    first
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
    /// Failed rows parked now (also in `outcome.failed`, with `park` set).
    pub(crate) parked: u64,
}

/// One claimed row in id order: readable (with its result) or not.
enum Claimed<'a> {
    Row(&'a OutboxRow, &'a RowResult),
    Unreadable(&'a UnreadableRow),
}

impl Claimed<'_> {
    fn id(&self) -> OutboxId {
        match self {
            Self::Row(row, _) => row.id,
            Self::Unreadable(row) => row.id,
        }
    }
}

/// Sorts results per lane: a lane's first failure is recorded (attempt counted, backoff
/// set, parked when the [`ParkPolicy`] says so); its later rows that failed or were held
/// back stay untouched; its later rows that were nevertheless delivered are deleted
/// (re-sending them would only add duplicates) and counted as published ahead of the
/// failure. An unreadable row is a permanent failure of its lane.
pub(crate) fn evaluate(
    rows: &[OutboxRow],
    results: &[RowResult],
    unreadable: &[UnreadableRow],
    retry: &RetryPolicy,
    park: &ParkPolicy,
) -> Evaluation {
    let mut claimed: Vec<Claimed<'_>> = rows
        .iter()
        .zip(results)
        .map(|(row, result)| Claimed::Row(row, result))
        .chain(unreadable.iter().map(Claimed::Unreadable))
        .collect();
    claimed.sort_by_key(Claimed::id);
    let mut evaluation = Evaluation::default();
    let mut failed_lanes: HashSet<Lane> = HashSet::new();
    for entry in claimed {
        match entry {
            Claimed::Unreadable(row) => {
                if !failed_lanes.insert(row.lane) {
                    evaluation.held_back += 1;
                    continue;
                }
                let attempts = row.attempts.saturating_add(1);
                let error = format!("unreadable row: {}", row.reason);
                let parked = record_failure(
                    &mut evaluation,
                    row.id,
                    attempts,
                    Failure::Permanent,
                    &error,
                    retry,
                    park,
                );
                tracing::warn!(
                    row_id = row.id.0,
                    lane = %row.lane,
                    attempts,
                    parked,
                    error = %error,
                    "outbox row cannot be read; its key waits"
                );
            }
            Claimed::Row(row, RowResult::Delivered) => {
                if failed_lanes.contains(&row.lane) {
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
            Claimed::Row(row, RowResult::Failed(error)) if !failed_lanes.contains(&row.lane) => {
                failed_lanes.insert(row.lane);
                let attempts = row.attempts.saturating_add(1);
                let parked = record_failure(
                    &mut evaluation,
                    row.id,
                    attempts,
                    error.failure,
                    &error.message,
                    retry,
                    park,
                );
                let what = if parked {
                    "outbox event parked; its key waits until `event-bus outbox retry` or `drop`"
                } else {
                    "outbox event not published; its key waits for the retry"
                };
                tracing::warn!(
                    row_id = row.id.0,
                    topic = %row.record.topic,
                    key = row.record.key_text.as_deref().unwrap_or(""),
                    ce_id = %row.record.event_id,
                    attempts,
                    parked,
                    failure = %error.failure,
                    error = %error.message,
                    "{what}"
                );
            }
            Claimed::Row(row, RowResult::Failed(_) | RowResult::HeldBack) => {
                failed_lanes.insert(row.lane);
                evaluation.held_back += 1;
            }
        }
    }
    evaluation
}

/// Adds the failure of row `id` (now failed `attempts` times) to the outcome; returns
/// whether it is parked.
fn record_failure(
    evaluation: &mut Evaluation,
    id: OutboxId,
    attempts: i32,
    failure: Failure,
    error: &str,
    retry: &RetryPolicy,
    park: &ParkPolicy,
) -> bool {
    let park = park.reason(failure, attempts, error);
    let parked = park.is_some();
    if parked {
        evaluation.parked += 1;
    }
    evaluation.outcome.failed.push(RowFailure {
        id,
        error: error.to_owned(),
        retry_in: retry.delay(attempts),
        park,
    });
    parked
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::OutboxId;
    use crate::producer::EncodedRecord;

    const PARK: ParkPolicy = ParkPolicy {
        transient: Some(10),
        permanent: Some(3),
    };

    fn failed(code: RDKafkaErrorCode) -> RowResult {
        RowResult::Failed(RowError::from_kafka(&KafkaError::MessageProduction(code)))
    }

    #[test]
    fn an_outage_never_parks_a_refusal_parks_at_its_limit() {
        let rows = [row(1, 1), row(2, 2), row(3, 3)];
        // Every row has failed twice already: this is attempt 3.
        let results = [
            failed(RDKafkaErrorCode::MessageTimedOut),
            failed(RDKafkaErrorCode::MessageSizeTooLarge),
            failed(RDKafkaErrorCode::NotLeaderForPartition),
        ];
        let retry = RetryPolicy::new(Duration::from_millis(100), Duration::from_secs(1));
        let evaluation = evaluate(&rows, &results, &[], &retry, &PARK);
        let parked: Vec<_> = evaluation
            .outcome
            .failed
            .iter()
            .map(|f| (f.id.0, f.park.is_some()))
            .collect();
        assert_eq!(parked, vec![(1, false), (2, true), (3, false)]);
        assert_eq!(evaluation.parked, 1);
        let reason = evaluation.outcome.failed[1].park.as_deref().unwrap_or("");
        assert!(
            reason.contains("too large") && reason.contains("3 attempts"),
            "{reason}"
        );
        let never = ParkPolicy {
            transient: None,
            permanent: None,
        };
        assert_eq!(never.reason(Failure::TooLarge, 1_000, "x"), None);
        assert!(PARK.reason(Failure::Transient, 10, "x").is_some());
        assert!(PARK.reason(Failure::Transient, 9, "x").is_none());
        assert!(PARK.reason(Failure::Unavailable, 1_000, "x").is_none());
    }

    #[test]
    fn an_unreadable_row_fails_its_own_lane_only() {
        let rows = [row(1, 1), row(3, 1), row(4, 2)];
        let unreadable = [UnreadableRow {
            id: OutboxId(2),
            lane: Lane(1),
            attempts: 2,
            reason: "bad headers".into(),
        }];
        let results = [
            RowResult::Delivered,
            RowResult::HeldBack,
            RowResult::Delivered,
        ];
        let retry = RetryPolicy::new(Duration::from_millis(100), Duration::from_secs(1));
        let evaluation = evaluate(&rows, &results, &unreadable, &retry, &PARK);
        assert_eq!(evaluation.outcome.delivered, vec![OutboxId(1), OutboxId(4)]);
        assert_eq!(evaluation.outcome.failed.len(), 1);
        assert_eq!(evaluation.outcome.failed[0].id, OutboxId(2));
        assert!(
            evaluation.outcome.failed[0].park.is_some(),
            "third attempt of a permanent failure"
        );
        assert_eq!(evaluation.held_back, 1);
        assert_eq!(
            first_unreadable(&unreadable).get(&Lane(1)),
            Some(&OutboxId(2))
        );
    }

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
        let evaluation = evaluate(&rows, &results, &[], &retry, &PARK);
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
        let evaluation = evaluate(&rows, &results, &[], &retry, &PARK);
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
