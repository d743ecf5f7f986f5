//! What the SDK measures, recorded through the `metrics` facade crate.
//!
//! The producer and the consumer call these functions; the outbox (and an application
//! with its own sending path) can call them too. Every metric is a no-op until the
//! application installs a recorder: [`PrometheusMetrics::install`](super::PrometheusMetrics::install)
//! for the built-in `/metrics`, or any other `metrics` recorder.
//!
//! | name | kind | labels | meaning |
//! |---|---|---|---|
//! | `event_bus_events_produced_total` | counter | `event_type`, `topic` | handed to the producer (`send*`, `enqueue`) |
//! | `event_bus_events_delivered_total` | counter | `event_type`, `topic` | acknowledged by the broker |
//! | `event_bus_events_failed_total` | counter | `event_type`, `topic` | not delivered (queue full, timeout, broker error) |
//! | `event_bus_events_deferred_total` | counter | `event_type`, `topic` | stored in the outbox instead |
//! | `event_bus_outbox_relayed_total` | counter | `event_type`, `topic` | published from the outbox by the relay |
//! | `event_bus_outbox_backlog` | gauge | — | events waiting in the outbox |
//! | `event_bus_outbox_oldest_age_seconds` | gauge | — | how long the oldest of them has waited (0 when none) |
//! | `event_bus_outbox_parked` | gauge | — | outbox rows the relay gave up on (`event-bus outbox parked`); each holds back its key |
//! | `event_bus_events_consumed_total` | counter | `group`, `topic`, `event_type` | records read by a consumer |
//! | `event_bus_receiver_successes_total` | counter | `receiver`, `event_type` | receiver calls that succeeded |
//! | `event_bus_receiver_failures_total` | counter | `receiver`, `event_type` | receiver calls that failed (each try) |
//! | `event_bus_receiver_retries_total` | counter | `receiver`, `event_type` | receiver calls that were retries |
//! | `event_bus_dlq_records_total` | counter | `group`, `topic`, `error_kind` | records written to a dead-letter topic |
//! | `event_bus_records_skipped_total` | counter | `group`, `topic` | records skipped and committed: their event type has no receiver here (unknown-type policy `skip`) |
//! | `event_bus_commit_duration_seconds` | histogram | `group`, `mode` | offset commit calls (`sync`: until the broker answered; `async`: the hand-off) |
//! | `event_bus_commit_failures_total` | counter | `group`, `mode` | offset commits refused |
//! | `event_bus_consumer_lag` | gauge | `group`, `topic`, `partition` | high watermark minus the consumer's position, sampled (see [`set_lag_sampling`]) |
//! | `event_bus_poll_errors_total` | counter | `group` | poll failures (each backoff) |
//! | `event_bus_dlq_write_failures_total` | counter | `group`, `failure` | dead-letter writes that failed (`failure`: the classifier's verdict) |
//! | `event_bus_dlq_stuck` | gauge | `group` | 1 while a dead letter cannot be written (past the consumer's threshold), else 0 |
//! | `event_bus_consumer_registry_unavailable` | gauge | `group` | 1 while records wait because the schema registry is not usable, else 0 |
//! | `event_bus_consumer_registry_waits_total` | counter | `group` | backoff waits of records on the schema registry |
//! | `event_bus_receiver_dependency_waits_total` | counter | `event_type` | backoff waits of records whose failing receivers all reported an outage (`ReceiverError::unavailable`), attempts not counted |
//! | `event_bus_inbox_handled_total` | counter | `receiver` | events a transactional receiver handled and committed with its inbox row |
//! | `event_bus_inbox_duplicates_total` | counter | `receiver` | deliveries the inbox skipped: that receiver had handled the event |
//! | `event_bus_inbox_pruned_total` | counter | — | inbox rows deleted by retention (`event-bus inbox prune`) |
//! | `event_bus_inbox_rows` | gauge | — | inbox rows, as last counted by `inbox status` or a prune |
//!
//! The per-event counters (produced, delivered, consumed, receiver calls) keep their
//! handles per label set and recorder, so a call costs a hash lookup rather than a
//! registration; the cache starts over when another recorder comes into force, so a
//! recorder may be installed at any time.
//!
//! An event that goes through the emergency outbox is counted as produced and failed on
//! the direct try, deferred, then produced and delivered again when the relay sends it.
//! Event types come from the application's registered types, so label values stay few;
//! consumed records of a type unknown here are counted as `event_type="unknown"`.
//!
//! ```
//! use std::time::Duration;
//! use event_bus_kafka::observability::metrics::{self, names};
//!
//! // The outbox relay reports its backlog after each pass:
//! metrics::record_outbox_status(12, Some(Duration::from_secs(3)));
//! metrics::record_deferred("org.example.shop.order.placed.v1", "prod-orders");
//! assert_eq!(names::OUTBOX_BACKLOG, "event_bus_outbox_backlog");
//! ```

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex, PoisonError};
use std::time::Duration;

use ::metrics::{
    counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Unit,
};
use ::metrics::{Counter, Key, Label, Level, Metadata};

mod fixed_counter;
pub(crate) use fixed_counter::FixedCounter;

/// Metric names, all prefixed `event_bus_`.
///
/// ```
/// use event_bus_kafka::observability::metrics::names;
/// assert!(names::ALL.iter().all(|n| n.starts_with("event_bus_")));
/// ```
pub mod names {
    /// Events handed to the producer.
    pub const EVENTS_PRODUCED: &str = "event_bus_events_produced_total";
    /// Events acknowledged by the broker.
    pub const EVENTS_DELIVERED: &str = "event_bus_events_delivered_total";
    /// Events the producer could not deliver.
    pub const EVENTS_FAILED: &str = "event_bus_events_failed_total";
    /// Events stored in the outbox instead of going to the broker.
    pub const EVENTS_DEFERRED: &str = "event_bus_events_deferred_total";
    /// Events the outbox relay published.
    pub const OUTBOX_RELAYED: &str = "event_bus_outbox_relayed_total";
    /// Events waiting in the outbox (gauge).
    pub const OUTBOX_BACKLOG: &str = "event_bus_outbox_backlog";
    /// Age of the oldest event waiting in the outbox, in seconds (gauge).
    pub const OUTBOX_OLDEST_AGE: &str = "event_bus_outbox_oldest_age_seconds";
    /// Outbox rows parked by the relay (gauge).
    pub const OUTBOX_PARKED: &str = "event_bus_outbox_parked";
    /// Records read by a consumer.
    pub const EVENTS_CONSUMED: &str = "event_bus_events_consumed_total";
    /// Receiver calls that succeeded.
    pub const RECEIVER_SUCCESSES: &str = "event_bus_receiver_successes_total";
    /// Receiver calls that failed (every try).
    pub const RECEIVER_FAILURES: &str = "event_bus_receiver_failures_total";
    /// Receiver calls that were retries.
    pub const RECEIVER_RETRIES: &str = "event_bus_receiver_retries_total";
    /// Records written to a dead-letter topic.
    pub const DLQ_RECORDS: &str = "event_bus_dlq_records_total";
    /// Records skipped because their event type has no receiver here.
    pub const RECORDS_SKIPPED: &str = "event_bus_records_skipped_total";
    /// Offset commit duration in seconds (histogram).
    pub const COMMIT_DURATION: &str = "event_bus_commit_duration_seconds";
    /// Offset commits refused.
    pub const COMMIT_FAILURES: &str = "event_bus_commit_failures_total";
    /// Records between a partition's high watermark and the consumer's position (gauge).
    pub const CONSUMER_LAG: &str = "event_bus_consumer_lag";
    /// Consumer poll failures.
    pub const POLL_ERRORS: &str = "event_bus_poll_errors_total";
    /// Dead-letter writes that failed.
    pub const DLQ_WRITE_FAILURES: &str = "event_bus_dlq_write_failures_total";
    /// 1 while a consumer is stuck on its dead-letter topic (gauge).
    pub const DLQ_STUCK: &str = "event_bus_dlq_stuck";
    /// 1 while a consumer's records wait for an unusable schema registry (gauge).
    pub const REGISTRY_UNAVAILABLE: &str = "event_bus_consumer_registry_unavailable";
    /// Backoff waits of consumer records on the schema registry.
    pub const REGISTRY_WAITS: &str = "event_bus_consumer_registry_waits_total";
    /// Backoff waits of records whose failing receivers all reported an outage.
    pub const DEPENDENCY_WAITS: &str = "event_bus_receiver_dependency_waits_total";
    /// Events a transactional receiver handled, committed with their inbox row.
    pub const INBOX_HANDLED: &str = "event_bus_inbox_handled_total";
    /// Deliveries the inbox skipped as duplicates.
    pub const INBOX_DUPLICATES: &str = "event_bus_inbox_duplicates_total";
    /// Inbox rows deleted by retention.
    pub const INBOX_PRUNED: &str = "event_bus_inbox_pruned_total";
    /// Inbox rows, as last counted (gauge).
    pub const INBOX_ROWS: &str = "event_bus_inbox_rows";

    /// Every name above.
    pub const ALL: [&str; 27] = [
        EVENTS_PRODUCED,
        EVENTS_DELIVERED,
        EVENTS_FAILED,
        EVENTS_DEFERRED,
        OUTBOX_RELAYED,
        OUTBOX_BACKLOG,
        OUTBOX_OLDEST_AGE,
        OUTBOX_PARKED,
        EVENTS_CONSUMED,
        RECEIVER_SUCCESSES,
        RECEIVER_FAILURES,
        RECEIVER_RETRIES,
        DLQ_RECORDS,
        RECORDS_SKIPPED,
        COMMIT_DURATION,
        COMMIT_FAILURES,
        CONSUMER_LAG,
        POLL_ERRORS,
        DLQ_WRITE_FAILURES,
        DLQ_STUCK,
        REGISTRY_UNAVAILABLE,
        REGISTRY_WAITS,
        DEPENDENCY_WAITS,
        INBOX_HANDLED,
        INBOX_DUPLICATES,
        INBOX_PRUNED,
        INBOX_ROWS,
    ];
}

/// Label names.
///
/// ```
/// assert_eq!(event_bus_kafka::observability::metrics::labels::EVENT_TYPE, "event_type");
/// ```
pub mod labels {
    /// The `ce_type`.
    pub const EVENT_TYPE: &str = "event_type";
    /// The full topic name (prefix applied).
    pub const TOPIC: &str = "topic";
    /// The partition number.
    pub const PARTITION: &str = "partition";
    /// The consumer group.
    pub const GROUP: &str = "group";
    /// The receiver's name.
    pub const RECEIVER: &str = "receiver";
    /// Why a record was dead-lettered (`receiver_failed`, `invalid_headers`, …).
    pub const ERROR_KIND: &str = "error_kind";
    /// `sync` or `async` (offset commits).
    pub const MODE: &str = "mode";
    /// What the failure classifier made of an error (`unavailable`, `transient`,
    /// `too_large`, `permanent`).
    pub const FAILURE: &str = "failure";
}

/// The `event_type` label of consumed records whose type is not registered here.
pub const UNKNOWN_EVENT_TYPE: &str = "unknown";

/// Upper bounds (seconds) of the commit-duration histogram buckets.
pub const COMMIT_DURATION_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// Registers descriptions and units of every metric with the installed recorder, so
/// `/metrics` shows `# HELP` lines. [`PrometheusMetrics::install`](super::PrometheusMetrics::install)
/// calls it; call it yourself after installing another recorder.
///
/// ```
/// event_bus_kafka::observability::metrics::describe_all(); // no recorder: no-op
/// ```
pub fn describe_all() {
    describe_counter!(
        names::EVENTS_PRODUCED,
        Unit::Count,
        "Events handed to the producer."
    );
    describe_counter!(
        names::EVENTS_DELIVERED,
        Unit::Count,
        "Events acknowledged by the broker."
    );
    describe_counter!(
        names::EVENTS_FAILED,
        Unit::Count,
        "Events the producer could not deliver."
    );
    describe_counter!(
        names::EVENTS_DEFERRED,
        Unit::Count,
        "Events stored in the outbox instead of the broker."
    );
    describe_counter!(
        names::OUTBOX_RELAYED,
        Unit::Count,
        "Events the outbox relay published."
    );
    describe_gauge!(
        names::OUTBOX_BACKLOG,
        Unit::Count,
        "Events waiting in the outbox."
    );
    describe_gauge!(
        names::OUTBOX_OLDEST_AGE,
        Unit::Seconds,
        "How long the oldest event in the outbox has waited."
    );
    describe_gauge!(
        names::OUTBOX_PARKED,
        Unit::Count,
        "Outbox rows the relay gave up on; each holds back the later events of its key."
    );
    describe_counter!(
        names::EVENTS_CONSUMED,
        Unit::Count,
        "Records read by a consumer."
    );
    describe_counter!(
        names::RECEIVER_SUCCESSES,
        Unit::Count,
        "Receiver calls that succeeded."
    );
    describe_counter!(
        names::RECEIVER_FAILURES,
        Unit::Count,
        "Receiver calls that failed, every try."
    );
    describe_counter!(
        names::RECEIVER_RETRIES,
        Unit::Count,
        "Receiver calls that were retries."
    );
    describe_counter!(
        names::DLQ_RECORDS,
        Unit::Count,
        "Records written to a dead-letter topic."
    );
    describe_counter!(
        names::RECORDS_SKIPPED,
        Unit::Count,
        "Records skipped and committed: their event type has no receiver here."
    );
    describe_histogram!(
        names::COMMIT_DURATION,
        Unit::Seconds,
        "Offset commit calls (sync: until answered; async: the hand-off)."
    );
    describe_counter!(
        names::COMMIT_FAILURES,
        Unit::Count,
        "Offset commits refused."
    );
    describe_gauge!(
        names::CONSUMER_LAG,
        Unit::Count,
        "Records between the high watermark and the consumer's position."
    );
    describe_counter!(names::POLL_ERRORS, Unit::Count, "Consumer poll failures.");
    describe_counter!(
        names::DLQ_WRITE_FAILURES,
        Unit::Count,
        "Dead-letter writes that failed, by the failure classifier's verdict."
    );
    describe_gauge!(
        names::DLQ_STUCK,
        Unit::Count,
        "1 while a consumer cannot write a dead letter past its threshold."
    );
    describe_gauge!(
        names::REGISTRY_UNAVAILABLE,
        Unit::Count,
        "1 while a consumer's records wait because the schema registry is not usable."
    );
    describe_counter!(
        names::REGISTRY_WAITS,
        Unit::Count,
        "Backoff waits of consumer records on the schema registry."
    );
    describe_counter!(
        names::DEPENDENCY_WAITS,
        Unit::Count,
        "Backoff waits of records whose failing receivers all reported an outage of something they need."
    );
    describe_counter!(
        names::INBOX_HANDLED,
        Unit::Count,
        "Events a transactional receiver handled, committed with their inbox row."
    );
    describe_counter!(
        names::INBOX_DUPLICATES,
        Unit::Count,
        "Deliveries the inbox skipped because the receiver had handled the event."
    );
    describe_counter!(
        names::INBOX_PRUNED,
        Unit::Count,
        "Inbox rows deleted by retention."
    );
    describe_gauge!(
        names::INBOX_ROWS,
        Unit::Count,
        "Inbox rows, as last counted by a status or a prune."
    );
}

/// An event was handed to the producer.
///
/// ```
/// event_bus_kafka::observability::metrics::record_produced("org.example.a.b.created.v1", "dev-a");
/// ```
pub fn record_produced(event_type: &str, topic: &str) {
    PRODUCED.increment([event_type, topic]);
}

/// The broker acknowledged an event.
///
/// ```
/// event_bus_kafka::observability::metrics::record_delivered("org.example.a.b.created.v1", "dev-a");
/// ```
pub fn record_delivered(event_type: &str, topic: &str) {
    DELIVERED.increment([event_type, topic]);
}

/// An event could not be delivered.
///
/// ```
/// event_bus_kafka::observability::metrics::record_failed("org.example.a.b.created.v1", "dev-a");
/// ```
pub fn record_failed(event_type: &str, topic: &str) {
    counter!(names::EVENTS_FAILED, labels::EVENT_TYPE => event_type.to_owned(), labels::TOPIC => topic.to_owned())
        .increment(1);
}

/// An event was stored in the outbox instead of going to the broker (for the outbox).
///
/// ```
/// event_bus_kafka::observability::metrics::record_deferred("org.example.a.b.created.v1", "dev-a");
/// ```
pub fn record_deferred(event_type: &str, topic: &str) {
    counter!(names::EVENTS_DEFERRED, labels::EVENT_TYPE => event_type.to_owned(), labels::TOPIC => topic.to_owned())
        .increment(1);
}

/// The outbox relay published an event (for the outbox).
///
/// ```
/// event_bus_kafka::observability::metrics::record_outbox_relayed("org.example.a.b.created.v1", "dev-a");
/// ```
pub fn record_outbox_relayed(event_type: &str, topic: &str) {
    counter!(names::OUTBOX_RELAYED, labels::EVENT_TYPE => event_type.to_owned(), labels::TOPIC => topic.to_owned())
        .increment(1);
}

/// The outbox holds `pending` events, the oldest waiting for `oldest_age` (for the
/// outbox: call it after each relay pass or status query).
///
/// ```
/// use std::time::Duration;
/// event_bus_kafka::observability::metrics::record_outbox_status(0, None);
/// event_bus_kafka::observability::metrics::record_outbox_status(3, Some(Duration::from_millis(1500)));
/// ```
pub fn record_outbox_status(pending: u64, oldest_age: Option<Duration>) {
    gauge!(names::OUTBOX_BACKLOG).set(pending as f64);
    gauge!(names::OUTBOX_OLDEST_AGE).set(oldest_age.map_or(0.0, |age| age.as_secs_f64()));
}

/// The outbox holds `parked` rows the relay gave up on (for the outbox, with
/// [`record_outbox_status`]).
///
/// ```
/// event_bus_kafka::observability::metrics::record_outbox_parked(2);
/// ```
pub fn record_outbox_parked(parked: u64) {
    gauge!(names::OUTBOX_PARKED).set(parked as f64);
}

/// A consumer of `group` read a record of `event_type` from `topic`.
///
/// ```
/// event_bus_kafka::observability::metrics::record_consumed("g", "dev-a", "org.example.a.b.created.v1");
/// ```
pub fn record_consumed(group: &str, topic: &str, event_type: &str) {
    CONSUMED.increment([group, topic, event_type]);
}

/// One receiver call's result; `attempt` > 1 also counts a retry.
///
/// ```
/// event_bus_kafka::observability::metrics::record_receiver_call("mailer", "org.example.a.b.created.v1", 2, false);
/// ```
pub fn record_receiver_call(receiver: &str, event_type: &str, attempt: u32, succeeded: bool) {
    let calls = if succeeded {
        &RECEIVER_SUCCESSES
    } else {
        &RECEIVER_FAILURES
    };
    calls.increment([receiver, event_type]);
    if attempt > 1 {
        RECEIVER_RETRIES.increment([receiver, event_type]);
    }
}

/// A record of `topic` was written to a dead-letter topic by `group`.
///
/// ```
/// event_bus_kafka::observability::metrics::record_dead_letter("g", "dev-a", "receiver_failed");
/// ```
pub fn record_dead_letter(group: &str, topic: &str, error_kind: &str) {
    counter!(
        names::DLQ_RECORDS,
        labels::GROUP => group.to_owned(),
        labels::TOPIC => topic.to_owned(),
        labels::ERROR_KIND => error_kind.to_owned()
    )
    .increment(1);
}

/// A consumer of `group` skipped a record of `topic`: its event type has no receiver
/// here (the unknown-type policy `skip`); its offset is committed like a handled one.
///
/// ```
/// event_bus_kafka::observability::metrics::record_skipped("g", "dev-a");
/// ```
pub fn record_skipped(group: &str, topic: &str) {
    counter!(
        names::RECORDS_SKIPPED,
        labels::GROUP => group.to_owned(),
        labels::TOPIC => topic.to_owned()
    )
    .increment(1);
}

/// A dead-letter write of `group` failed; `failure` is the classifier's verdict
/// ([`crate::failure::Failure::as_str`]).
///
/// ```
/// event_bus_kafka::observability::metrics::record_dlq_write_failure("g", "unavailable");
/// ```
pub fn record_dlq_write_failure(group: &str, failure: &'static str) {
    counter!(
        names::DLQ_WRITE_FAILURES,
        labels::GROUP => group.to_owned(),
        labels::FAILURE => failure
    )
    .increment(1);
}

/// Whether `group` is stuck on its dead-letter topic now.
///
/// ```
/// event_bus_kafka::observability::metrics::record_dlq_stuck("g", false);
/// ```
pub fn record_dlq_stuck(group: &str, stuck: bool) {
    gauge!(names::DLQ_STUCK, labels::GROUP => group.to_owned()).set(if stuck { 1.0 } else { 0.0 });
}

/// Whether the records of `group` wait now because the schema registry is not usable
/// (set on each change, not per record).
///
/// ```
/// event_bus_kafka::observability::metrics::record_registry_unavailable("g", false);
/// ```
pub fn record_registry_unavailable(group: &str, unavailable: bool) {
    gauge!(names::REGISTRY_UNAVAILABLE, labels::GROUP => group.to_owned()).set(if unavailable {
        1.0
    } else {
        0.0
    });
}

/// A record of `group` waits once more for the schema registry (one backoff).
///
/// ```
/// event_bus_kafka::observability::metrics::record_registry_wait("g");
/// ```
pub fn record_registry_wait(group: &str) {
    counter!(names::REGISTRY_WAITS, labels::GROUP => group.to_owned()).increment(1);
}

/// A record of `event_type` waits once more because every receiver still failing
/// reported an outage (`ReceiverError::unavailable`).
///
/// ```
/// event_bus_kafka::observability::metrics::record_dependency_wait("org.example.a.b.created.v1");
/// ```
pub fn record_dependency_wait(event_type: &str) {
    counter!(names::DEPENDENCY_WAITS, labels::EVENT_TYPE => event_type.to_owned()).increment(1);
}

/// An offset commit call of `mode` (`"sync"` or `"async"`) took `duration`; refused
/// commits are counted too.
///
/// ```
/// use std::time::Duration;
/// event_bus_kafka::observability::metrics::record_commit("g", "sync", Duration::from_millis(3), true);
/// ```
pub fn record_commit(group: &str, mode: &'static str, duration: Duration, succeeded: bool) {
    histogram!(names::COMMIT_DURATION, labels::GROUP => group.to_owned(), labels::MODE => mode)
        .record(duration.as_secs_f64());
    if !succeeded {
        counter!(names::COMMIT_FAILURES, labels::GROUP => group.to_owned(), labels::MODE => mode)
            .increment(1);
    }
}

/// `group` is `lag` records behind on `topic`/`partition` (negative values count as 0).
///
/// ```
/// event_bus_kafka::observability::metrics::record_consumer_lag("g", "dev-a", 0, 42);
/// ```
pub fn record_consumer_lag(group: &str, topic: &str, partition: i32, lag: i64) {
    gauge!(
        names::CONSUMER_LAG,
        labels::GROUP => group.to_owned(),
        labels::TOPIC => topic.to_owned(),
        labels::PARTITION => partition.to_string()
    )
    .set(lag.max(0) as f64);
}

/// A transactional receiver handled an event: its writes and its inbox row committed
/// (for the inbox).
///
/// ```
/// event_bus_kafka::observability::metrics::record_inbox_handled("ledger");
/// ```
pub fn record_inbox_handled(receiver: &str) {
    INBOX_HANDLED.increment([receiver]);
}

/// The inbox skipped a delivery to `receiver`: it had handled the event (for the inbox).
///
/// ```
/// event_bus_kafka::observability::metrics::record_inbox_duplicate("ledger");
/// ```
pub fn record_inbox_duplicate(receiver: &str) {
    INBOX_DUPLICATES.increment([receiver]);
}

/// Retention deleted `rows` inbox rows (for the inbox).
///
/// ```
/// event_bus_kafka::observability::metrics::record_inbox_pruned(500);
/// ```
pub fn record_inbox_pruned(rows: u64) {
    counter!(names::INBOX_PRUNED).increment(rows);
}

/// The inbox holds `rows` rows (for the inbox's status and prune).
///
/// ```
/// event_bus_kafka::observability::metrics::record_inbox_rows(1_200);
/// ```
pub fn record_inbox_rows(rows: u64) {
    gauge!(names::INBOX_ROWS).set(rows as f64);
}

/// A consumer of `group` failed to poll.
///
/// ```
/// event_bus_kafka::observability::metrics::record_poll_error("g");
/// ```
pub fn record_poll_error(group: &str) {
    counter!(names::POLL_ERRORS, labels::GROUP => group.to_owned()).increment(1);
}

/// Lag sampling interval in milliseconds; `UNSET` until configured, 0 = off.
static LAG_SAMPLING_MILLIS: AtomicU64 = AtomicU64::new(UNSET);
const UNSET: u64 = u64::MAX;

/// The default consumer lag sampling interval once metrics are exported.
pub const DEFAULT_LAG_SAMPLING: Duration = Duration::from_secs(15);

/// How often consumers started from now on sample their lag (`None`: never, the
/// default until a recorder is installed with
/// [`PrometheusMetrics::install`](super::PrometheusMetrics::install), which turns it on
/// every [`DEFAULT_LAG_SAMPLING`]). Sampling asks the brokers for each assigned
/// partition's high watermark (one request per partition per interval, off the loop).
/// Call it with your own recorder, or to change the interval.
///
/// ```
/// use std::time::Duration;
/// use event_bus_kafka::observability::metrics;
/// metrics::set_lag_sampling(Some(Duration::from_secs(30)));
/// assert_eq!(metrics::lag_sampling(), Some(Duration::from_secs(30)));
/// metrics::set_lag_sampling(None);
/// assert_eq!(metrics::lag_sampling(), None);
/// ```
pub fn set_lag_sampling(interval: Option<Duration>) {
    let millis = interval.map_or(0, |i| (i.as_millis() as u64).clamp(1, UNSET - 1));
    LAG_SAMPLING_MILLIS.store(millis, Ordering::Relaxed);
}

/// The lag sampling interval in force (see [`set_lag_sampling`]).
///
/// See [`set_lag_sampling`].
pub fn lag_sampling() -> Option<Duration> {
    match LAG_SAMPLING_MILLIS.load(Ordering::Relaxed) {
        0 | UNSET => None,
        millis => Some(Duration::from_millis(millis)),
    }
}

/// Turns lag sampling on with the default interval unless it was configured (when
/// [`PrometheusMetrics::install`](super::PrometheusMetrics::install) installs a recorder).
#[cfg(feature = "observability")]
pub(crate) fn default_lag_sampling_on() {
    let _ = LAG_SAMPLING_MILLIS.compare_exchange(
        UNSET,
        DEFAULT_LAG_SAMPLING.as_millis() as u64,
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
}

// ---------------------------------------------------------------------------------
// Handle cache for the per-event counters
// ---------------------------------------------------------------------------------

/// Label combinations kept per cached metric; beyond it, calls register every time
/// (correct, only slower), so odd label values cannot grow memory without bound.
const MAX_CACHED_SERIES: usize = 1024;

static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

static PRODUCED: LazyLock<CounterCache<2>> = LazyLock::new(|| {
    CounterCache::new(names::EVENTS_PRODUCED, [labels::EVENT_TYPE, labels::TOPIC])
});
static DELIVERED: LazyLock<CounterCache<2>> = LazyLock::new(|| {
    CounterCache::new(names::EVENTS_DELIVERED, [labels::EVENT_TYPE, labels::TOPIC])
});
static CONSUMED: LazyLock<CounterCache<3>> = LazyLock::new(|| {
    CounterCache::new(
        names::EVENTS_CONSUMED,
        [labels::GROUP, labels::TOPIC, labels::EVENT_TYPE],
    )
});
static RECEIVER_SUCCESSES: LazyLock<CounterCache<2>> = LazyLock::new(|| {
    CounterCache::new(
        names::RECEIVER_SUCCESSES,
        [labels::RECEIVER, labels::EVENT_TYPE],
    )
});
static RECEIVER_FAILURES: LazyLock<CounterCache<2>> = LazyLock::new(|| {
    CounterCache::new(
        names::RECEIVER_FAILURES,
        [labels::RECEIVER, labels::EVENT_TYPE],
    )
});
static RECEIVER_RETRIES: LazyLock<CounterCache<2>> = LazyLock::new(|| {
    CounterCache::new(
        names::RECEIVER_RETRIES,
        [labels::RECEIVER, labels::EVENT_TYPE],
    )
});
static INBOX_HANDLED: LazyLock<CounterCache<1>> =
    LazyLock::new(|| CounterCache::new(names::INBOX_HANDLED, [labels::RECEIVER]));
static INBOX_DUPLICATES: LazyLock<CounterCache<1>> =
    LazyLock::new(|| CounterCache::new(names::INBOX_DUPLICATES, [labels::RECEIVER]));

/// The counters of one metric by label values, registered once per recorder instead
/// of on every event (registration builds the key and looks it up in the recorder,
/// several times the cost of an increment). The cache follows the recorder in use:
/// when another one is installed (or a thread-local one is in force), it starts over.
struct CounterCache<const N: usize> {
    name: &'static str,
    label_names: [&'static str; N],
    /// foldhash: a label hash per event with SipHash cost about 300 instructions.
    hasher: foldhash::fast::RandomState,
    state: Mutex<CacheState<N>>,
}

struct CacheState<const N: usize> {
    /// Address of the recorder the handles came from.
    recorder: usize,
    len: usize,
    by_hash: HashMap<u64, Vec<([String; N], Counter)>, foldhash::fast::RandomState>,
}

impl<const N: usize> CounterCache<N> {
    fn new(name: &'static str, label_names: [&'static str; N]) -> Self {
        Self {
            name,
            label_names,
            hasher: foldhash::fast::RandomState::default(),
            state: Mutex::new(CacheState {
                recorder: 0,
                len: 0,
                by_hash: HashMap::default(),
            }),
        }
    }

    fn increment(&self, values: [&str; N]) {
        let recorder = ::metrics::with_recorder(|r| std::ptr::from_ref(r).cast::<()>().addr());
        let hash = self.hasher.hash_one(values);
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.recorder != recorder {
            state.recorder = recorder;
            state.len = 0;
            state.by_hash.clear();
        }
        let found = state.by_hash.get(&hash).and_then(|bucket| {
            bucket
                .iter()
                .find(|(cached, _)| cached.iter().zip(values).all(|(a, b)| a == b))
        });
        if let Some((_, counter)) = found {
            counter.increment(1);
            return;
        }
        let counter = self.register(values);
        counter.increment(1);
        if state.len < MAX_CACHED_SERIES {
            state.len += 1;
            state
                .by_hash
                .entry(hash)
                .or_default()
                .push((values.map(str::to_owned), counter));
        }
    }

    fn register(&self, values: [&str; N]) -> Counter {
        let labels: Vec<Label> = self
            .label_names
            .iter()
            .zip(values)
            .map(|(name, value)| Label::new(*name, value.to_owned()))
            .collect();
        let key = Key::from_parts(self.name, labels);
        ::metrics::with_recorder(|recorder| recorder.register_counter(&key, &METADATA))
    }
}

#[cfg(all(test, feature = "observability"))]
mod tests {
    use super::*;
    use metrics_exporter_prometheus::PrometheusBuilder;

    #[test]
    fn cached_counters_follow_the_recorder_in_use() {
        // Before any recorder: no-op handles get cached …
        record_consumed("g", "t", "e");
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        // … and a recorder in force afterwards still sees every call.
        ::metrics::with_local_recorder(&recorder, || {
            record_consumed("g", "t", "e");
            record_consumed("g", "t", "e");
            record_consumed("g", "t2", "e");
            record_receiver_call("r", "e", 2, false);
        });
        let text = handle.render();
        assert!(
            text.contains(
                r#"event_bus_events_consumed_total{group="g",topic="t",event_type="e"} 2"#
            ),
            "{text}"
        );
        assert!(text.contains(r#"topic="t2",event_type="e"} 1"#), "{text}");
        assert!(
            text.contains(r#"event_bus_receiver_failures_total{receiver="r",event_type="e"} 1"#)
        );
        assert!(text.contains(r#"event_bus_receiver_retries_total{receiver="r",event_type="e"} 1"#));
    }
}
