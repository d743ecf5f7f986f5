//! Publishing one claimed batch: every row queued to librdkafka at once, in id order,
//! then the acknowledgements sorted into what to delete, what to retry and what to park.
//!
//! Whether a failure is worth retrying is the classifier's call
//! ([`failure::of_kafka`]); this module only counts attempts against the
//! [`ParkPolicy`]: a broker outage never parks anything, a transient refusal parks after
//! many attempts, a record too large or refused for good after a few.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use chrono::Utc;
use futures::future::join_all;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

use super::config::RelayConfig;
use super::lane::Lane;
use super::row::{BatchOutcome, OutboxId, OutboxRow, RowFailure, UnreadableRow};
use crate::failure::{self, Failure};
use crate::producer::{KafkaProducer, Placement};

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
    /// Whether the verdict is about this row alone: the broker answered for a produce
    /// batch, so a "too large" or "refused" answer may be about another row of the same
    /// batch until the row is sent again by itself ([`confirm_refusals`]). A row refused
    /// before it was queued (librdkafka's own checks) is judged alone.
    pub(crate) alone: bool,
}

impl RowError {
    fn from_kafka(error: &KafkaError) -> Self {
        Self {
            message: error.to_string(),
            failure: failure::of_kafka(error),
            alone: false,
        }
    }

    /// Whether the verdict is a refusal of the record (too large, refused for good) that
    /// was not yet confirmed by sending the row by itself.
    fn needs_confirmation(&self) -> bool {
        !self.alone && matches!(self.failure, Failure::TooLarge | Failure::Permanent)
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
/// attempts that count, by the classifier's verdict. `None` never parks.
///
/// An attempt counts only when it says something about the row itself: not in a batch
/// where any row found the broker unavailable (an outage, or a client that is itself
/// dead, fails every key alike; the relay backs off), and a "too large" or "refused"
/// verdict only once the row, sent by itself, got it (the broker answers for a whole
/// produce batch; see [`confirm_refusals`]).
///
/// - [`Failure::Unavailable`]: never parked.
/// - [`Failure::Transient`]: after `transient` counted attempts (librdkafka has already
///   retried each attempt within its delivery timeout).
/// - [`Failure::TooLarge`], [`Failure::Permanent`]: after `permanent` counted attempts
///   (a few, not one) *and* `permanent_after` since the first of them, so a topic
///   created or an ACL granted a moment late needs no person.
/// - Unreadable rows: after `permanent` counted attempts (waiting does not mend them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ParkPolicy {
    pub(crate) transient: Option<u32>,
    pub(crate) permanent: Option<u32>,
    pub(crate) permanent_after: Duration,
}

/// A failed attempt, as parking looks at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Attempt {
    /// The classifier's verdict.
    pub(crate) failure: Failure,
    /// Whether this attempt counts towards parking.
    pub(crate) counted: bool,
    /// Counted attempts, this one included.
    pub(crate) park_attempts: i32,
    /// Time since the first counted attempt failed (zero when this is the first).
    pub(crate) failing_for: Duration,
    /// Whether the row could not be read (it is not sent at all).
    pub(crate) unreadable: bool,
}

impl ParkPolicy {
    pub(crate) fn of(config: &RelayConfig) -> Self {
        Self {
            transient: config.park_after_attempts,
            permanent: config.park_permanent_after_attempts,
            permanent_after: config.park_permanent_after,
        }
    }

    /// The park reason for a row whose `attempt` failed with `error`, or `None` to keep
    /// retrying.
    pub(crate) fn reason(&self, attempt: &Attempt, error: &str) -> Option<String> {
        if !attempt.counted {
            return None;
        }
        let limit = match attempt.failure {
            Failure::Unavailable => None,
            Failure::Transient => self.transient,
            Failure::TooLarge | Failure::Permanent => self.permanent,
        }?;
        let attempts = u32::try_from(attempt.park_attempts).unwrap_or(0);
        if attempts < limit {
            return None;
        }
        let refusal = matches!(attempt.failure, Failure::TooLarge | Failure::Permanent);
        if refusal && !attempt.unreadable && attempt.failing_for < self.permanent_after {
            return None;
        }
        let after = match attempts {
            1 => "1 attempt".to_owned(),
            n => format!("{n} attempts"),
        };
        if attempt.unreadable {
            return Some(format!("{error} (parked after {after})"));
        }
        let what = match attempt.failure {
            Failure::TooLarge => "too large for the topic",
            Failure::Permanent => "refused for good",
            Failure::Unavailable | Failure::Transient => "still failing",
        };
        let failure = attempt.failure;
        let over = if refusal {
            format!(" over {} s", attempt.failing_for.as_secs())
        } else {
            String::new()
        };
        Some(format!("{what} ({failure}) after {after}{over}: {error}"))
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
        match queue(kafka, row, queue_timeout).await {
            Ok(delivery) => in_flight.push((index, delivery)),
            Err(error) => {
                results[index] = RowResult::Failed(error);
                failed_lanes.insert(row.lane);
            }
        }
    }
    let (indexes, deliveries): (Vec<usize>, Vec<_>) = in_flight.into_iter().unzip();
    for (index, report) in indexes.into_iter().zip(join_all(deliveries).await) {
        results[index] = delivery_result(report);
    }
    confirm_refusals(kafka, rows, &mut results, queue_timeout).await;
    results
}

/// A delivery report as a row result.
fn delivery_result(report: Result<Placement, KafkaError>) -> RowResult {
    match report {
        Ok(_) => RowResult::Delivered,
        Err(KafkaError::Canceled) => RowResult::Failed(RowError {
            message: "the producer shut down before the broker acknowledged".to_owned(),
            failure: failure::of_kafka(&KafkaError::Canceled),
            alone: false,
        }),
        Err(error) => RowResult::Failed(RowError::from_kafka(&error)),
    }
}

/// Sends again, by itself, each row the broker refused as too large or for good within
/// the batch, and takes that answer as the row's verdict. The broker answers for a
/// whole produce batch (the rows of one partition librdkafka sent together): a topic
/// whose `max.message.bytes` is below the producer's batch size refuses the batch of
/// a 5 kB row *and* the 10-byte rows of other keys sent with it, all as "too large".
///
/// Rows are taken in id order and one at a time, each awaited, so key order holds: a
/// lane's later row is sent only once its earlier one is delivered, and the walk of a
/// lane stops at its first row that fails again (the confirmed verdict), is held back
/// or failed otherwise. A failure that says the broker is unavailable stops it all:
/// the batch is an outage batch and counts towards no parking anyway.
async fn confirm_refusals(
    kafka: &KafkaProducer,
    rows: &[OutboxRow],
    results: &mut [RowResult],
    queue_timeout: Duration,
) {
    if !results
        .iter()
        .any(|r| matches!(r, RowResult::Failed(e) if e.needs_confirmation()))
    {
        return;
    }
    let mut stopped: HashSet<Lane> = HashSet::new();
    for (row, result) in rows.iter().zip(results.iter_mut()) {
        if stopped.contains(&row.lane) {
            continue;
        }
        match result {
            RowResult::Delivered => {}
            RowResult::Failed(error) if error.needs_confirmation() => {
                let again = send_alone(kafka, row, queue_timeout).await;
                let unavailable = matches!(&again, RowResult::Failed(e) if e.broker_unavailable());
                if !matches!(again, RowResult::Delivered) {
                    stopped.insert(row.lane);
                }
                *result = again;
                if unavailable {
                    return;
                }
            }
            RowResult::Failed(_) | RowResult::HeldBack => {
                stopped.insert(row.lane);
            }
        }
    }
}

/// Queues one row; while librdkafka's queue is full it tries again for up to
/// `queue_timeout`. A refusal here is librdkafka's own check of this row alone.
async fn queue(
    kafka: &KafkaProducer,
    row: &OutboxRow,
    queue_timeout: Duration,
) -> Result<impl Future<Output = Result<Placement, KafkaError>>, RowError> {
    let started = Instant::now();
    loop {
        match kafka.queue(&row.record) {
            Ok(delivery) => return Ok(delivery),
            Err(KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull))
                if started.elapsed() < queue_timeout =>
            {
                tokio::time::sleep(QUEUE_FULL_WAIT).await;
            }
            Err(error) => {
                return Err(RowError {
                    alone: true,
                    ..RowError::from_kafka(&error)
                })
            }
        }
    }
}

/// Sends one row and waits for its delivery report; a failure is a verdict on the row
/// alone.
async fn send_alone(kafka: &KafkaProducer, row: &OutboxRow, queue_timeout: Duration) -> RowResult {
    let delivery = match queue(kafka, row, queue_timeout).await {
        Ok(delivery) => delivery,
        Err(error) => return RowResult::Failed(error),
    };
    match delivery_result(delivery.await) {
        RowResult::Failed(error) => RowResult::Failed(RowError {
            alone: true,
            ..error
        }),
        other => other,
    }
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
    // Rows that found the broker unavailable make the whole batch say nothing about
    // its rows: no attempt of it counts towards parking.
    let outage = results
        .iter()
        .any(|r| matches!(r, RowResult::Failed(e) if e.broker_unavailable()));
    let now = Utc::now();
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
                let counted = !outage;
                let attempt = Attempt {
                    failure: Failure::Permanent,
                    counted,
                    park_attempts: row.park_attempts.saturating_add(i32::from(counted)),
                    failing_for: Duration::ZERO,
                    unreadable: true,
                };
                let parked = record_failure(
                    &mut evaluation,
                    row.id,
                    attempts,
                    &attempt,
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
                let counted = !outage && !error.needs_confirmation();
                let attempt = Attempt {
                    failure: error.failure,
                    counted,
                    park_attempts: row.park_attempts.saturating_add(i32::from(counted)),
                    failing_for: row
                        .first_failed_at
                        .and_then(|first| (now - first).to_std().ok())
                        .unwrap_or_default(),
                    unreadable: false,
                };
                let parked = record_failure(
                    &mut evaluation,
                    row.id,
                    attempts,
                    &attempt,
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
                    counted,
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
    attempt: &Attempt,
    error: &str,
    retry: &RetryPolicy,
    park: &ParkPolicy,
) -> bool {
    let park = park.reason(attempt, error);
    let parked = park.is_some();
    if parked {
        evaluation.parked += 1;
    }
    evaluation.outcome.failed.push(RowFailure {
        id,
        error: error.to_owned(),
        retry_in: retry.delay(attempts),
        counted: attempt.counted,
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
        permanent_after: Duration::from_secs(30),
    };

    /// A failure as the broker reported it for the row sent by itself.
    fn failed(code: RDKafkaErrorCode) -> RowResult {
        RowResult::Failed(RowError {
            alone: true,
            ..RowError::from_kafka(&KafkaError::MessageProduction(code))
        })
    }

    /// A failure the broker reported for the whole produce batch.
    fn failed_in_batch(code: RDKafkaErrorCode) -> RowResult {
        RowResult::Failed(RowError::from_kafka(&KafkaError::MessageProduction(code)))
    }

    fn parked(evaluation: &Evaluation) -> Vec<(i64, bool, bool)> {
        evaluation
            .outcome
            .failed
            .iter()
            .map(|f| (f.id.0, f.counted, f.park.is_some()))
            .collect()
    }

    fn retry() -> RetryPolicy {
        RetryPolicy::new(Duration::from_millis(100), Duration::from_secs(1))
    }

    #[test]
    fn a_refusal_parks_at_its_limit() {
        // Every row has failed twice already, the first time a minute ago: attempt 3.
        let rows = [row(1, 1), row(2, 2)];
        let results = [
            failed(RDKafkaErrorCode::MessageSizeTooLarge),
            failed(RDKafkaErrorCode::NotLeaderForPartition),
        ];
        let evaluation = evaluate(&rows, &results, &[], &retry(), &PARK);
        assert_eq!(parked(&evaluation), vec![(1, true, true), (2, true, false)]);
        assert_eq!(evaluation.parked, 1);
        let reason = evaluation.outcome.failed[0].park.as_deref().unwrap_or("");
        assert!(
            reason.contains("too large") && reason.contains("after 3 attempts over 6"),
            "{reason}"
        );
    }

    #[test]
    fn a_batch_where_the_broker_was_unavailable_counts_nothing() {
        let rows = [row(1, 1), row(2, 2), row(3, 3)];
        let results = [
            failed(RDKafkaErrorCode::MessageSizeTooLarge),
            failed(RDKafkaErrorCode::MessageTimedOut),
            failed(RDKafkaErrorCode::UnknownTopicOrPartition),
        ];
        let evaluation = evaluate(&rows, &results, &[], &retry(), &PARK);
        assert_eq!(
            parked(&evaluation),
            vec![(1, false, false), (2, false, false), (3, false, false)]
        );
    }

    #[test]
    fn a_refusal_of_the_whole_produce_batch_counts_only_once_confirmed_alone() {
        let rows = [row(1, 1)];
        let results = [failed_in_batch(RDKafkaErrorCode::MessageSizeTooLarge)];
        let evaluation = evaluate(&rows, &results, &[], &retry(), &PARK);
        assert_eq!(parked(&evaluation), vec![(1, false, false)]);
    }

    #[test]
    fn a_refusal_parks_only_after_failing_for_a_while() {
        let mut early = row(1, 1);
        early.first_failed_at = Some(Utc::now() - chrono::Duration::seconds(2));
        let mut first = row(2, 2);
        first.park_attempts = 5;
        first.first_failed_at = None;
        let results = [
            failed(RDKafkaErrorCode::TopicAuthorizationFailed),
            failed(RDKafkaErrorCode::TopicAuthorizationFailed),
        ];
        let evaluation = evaluate(&[early, first], &results, &[], &retry(), &PARK);
        assert_eq!(
            parked(&evaluation),
            vec![(1, true, false), (2, true, false)]
        );
        let attempt = |failure, park_attempts, failing_for| Attempt {
            failure,
            counted: true,
            park_attempts,
            failing_for,
            unreadable: false,
        };
        let minute = Duration::from_secs(60);
        let never = ParkPolicy {
            transient: None,
            permanent: None,
            permanent_after: Duration::ZERO,
        };
        assert_eq!(
            never.reason(&attempt(Failure::TooLarge, 1_000, minute), "x"),
            None
        );
        assert!(PARK
            .reason(&attempt(Failure::Transient, 10, Duration::ZERO), "x")
            .is_some());
        assert!(PARK
            .reason(&attempt(Failure::Transient, 9, minute), "x")
            .is_none());
        assert!(PARK
            .reason(&attempt(Failure::Unavailable, 1_000, minute), "x")
            .is_none());
        assert!(PARK
            .reason(&attempt(Failure::Permanent, 3, minute), "x")
            .is_some());
        assert!(PARK
            .reason(&attempt(Failure::Permanent, 2, minute), "x")
            .is_none());
        let once = ParkPolicy {
            permanent: Some(1),
            ..PARK
        };
        let unreadable = Attempt {
            unreadable: true,
            ..attempt(Failure::Permanent, 1, Duration::ZERO)
        };
        assert_eq!(
            once.reason(&unreadable, "unreadable row: bad headers")
                .as_deref(),
            Some("unreadable row: bad headers (parked after 1 attempt)")
        );
    }

    #[test]
    fn an_unreadable_row_fails_its_own_lane_only() {
        let rows = [row(1, 1), row(3, 1), row(4, 2)];
        let unreadable = [UnreadableRow {
            id: OutboxId(2),
            lane: Lane(1),
            attempts: 2,
            park_attempts: 2,
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
            park_attempts: 2,
            first_failed_at: Some(Utc::now() - chrono::Duration::seconds(60)),
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
