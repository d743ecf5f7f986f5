//! The consumer, and the registry client under it, when the schema registry is not
//! usable: a real Apache Kafka broker and the embedded registry with its fault modes on
//! (401, 429, 503, a proxy's HTML page, a proxy's 404 page).
//!
//! Only the registry's own word that a schema id does not exist (404 with error code
//! 40403) makes a record undecodable for good; every other answer makes the records
//! wait, in place, until the registry answers again. A record without a `ce_type` is
//! invalid headers and is dead-lettered.
//!
//! The `tracing` subscriber and the `metrics` recorder are process-wide: each test
//! reads only the log lines and series of its own consumer group.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use event_bus_examples::openedx::{SessionLoginCompleted, UserData};
use event_bus_kafka::consumer::dlq::headers as dlq;
use event_bus_kafka::consumer::{ConsumerConfig, EventConsumer, PollPolicy, Shutdown};
use event_bus_kafka::failure::{of_registry, Failure};
use event_bus_kafka::observability::metrics::names;
use event_bus_kafka::observability::{ConsumerHealth, HealthReport, PrometheusMetrics};
use event_bus_kafka::prelude::*;
use event_bus_kafka::registry::{RegistryClient, RegistryError};
use event_bus_testkit::records::read_topic;
use event_bus_testkit::registry::{EmbeddedRegistry, Fault};
use event_bus_tests::stack::{Stack, WAIT};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tracing::field::{Field, Visit};
use tracing::{Event as TracingEvent, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

/// The start of the line the consumer logs (warn) when the registry becomes unusable.
const UNUSABLE: &str = "the schema registry is not usable";
/// The start of the line it logs (info) when the registry answers again.
const USABLE_AGAIN: &str = "the schema registry answers again";

// ---------------------------------------------------------------------------------
// Log lines per consumer group
// ---------------------------------------------------------------------------------

/// Registry state-change lines by group: (warnings, infos).
#[derive(Default)]
struct RegistryLines(Mutex<HashMap<String, (usize, usize)>>);

impl RegistryLines {
    /// The process-wide counts, installing the subscriber on first use.
    fn installed() -> &'static RegistryLines {
        static LINES: OnceLock<&'static RegistryLines> = OnceLock::new();
        LINES.get_or_init(|| {
            let lines: &'static RegistryLines = Box::leak(Box::default());
            let _ = tracing_subscriber::registry()
                .with(Counting(lines))
                .try_init();
            lines
        })
    }

    fn of(&self, group: &str) -> (usize, usize) {
        self.0
            .lock()
            .map(|l| l.get(group).copied().unwrap_or_default())
            .unwrap_or_default()
    }
}

#[derive(Default)]
struct Fields {
    message: String,
    group: String,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => self.message = format!("{value:?}"),
            "group" => self.group = format!("{value:?}").trim_matches('"').to_owned(),
            _ => {}
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message = value.to_owned(),
            "group" => self.group = value.to_owned(),
            _ => {}
        }
    }
}

struct Counting(&'static RegistryLines);

impl<S: Subscriber> Layer<S> for Counting {
    fn on_event(&self, event: &TracingEvent<'_>, _ctx: Context<'_, S>) {
        if !event.metadata().target().starts_with("event_bus_kafka") {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let level = *event.metadata().level();
        let warning = level == tracing::Level::WARN && fields.message.starts_with(UNUSABLE);
        let info = level == tracing::Level::INFO && fields.message.starts_with(USABLE_AGAIN);
        if warning || info {
            if let Ok(mut lines) = self.0 .0.lock() {
                let entry = lines.entry(fields.group).or_default();
                if warning {
                    entry.0 += 1;
                } else {
                    entry.1 += 1;
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------

/// A login with its own key (`user.pii.username`), so records run side by side.
fn login(n: i64) -> SessionLoginCompleted {
    let mut user = UserData::example();
    user.id = n;
    user.pii.username = format!("user-{n}");
    SessionLoginCompleted { user }
}

/// Up to 8 records at once; registry waits of 50–400 ms.
fn consumer_config(stack: &Stack) -> ConsumerConfig {
    let mut config = stack.consumer_config();
    config.max_in_flight = 8;
    config.poll = PollPolicy {
        initial_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(400),
        ..PollPolicy::default()
    };
    config
}

/// The user ids the receiver saw, in order.
fn recording_bus() -> (EventBus, Arc<Mutex<Vec<i64>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = Arc::clone(&seen);
    let mut bus = EventBus::new();
    bus.connect_fn("seen", move |login: &SessionLoginCompleted, _| {
        seen2.lock().expect("seen").push(login.user.id);
        Ok(())
    })
    .expect("connect");
    (bus, seen)
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < WAIT, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The sum of the samples of `name` carrying `group="{group}"`, from a Prometheus text
/// exposition (`None` when there is no such series).
fn sample(text: &str, name: &str, group: &str) -> Option<f64> {
    let label = format!("group=\"{group}\"");
    let values: Vec<f64> = text
        .lines()
        .filter(|line| line.starts_with(name) && line[name.len()..].starts_with('{'))
        .filter(|line| line.contains(&label))
        .filter_map(|line| line.rsplit_once(' ')?.1.parse().ok())
        .collect();
    (!values.is_empty()).then(|| values.iter().sum())
}

async fn raw_producer(stack: &Stack) -> FutureProducer {
    stack
        .broker
        .producer_config()
        .create()
        .expect("raw producer")
}

/// The error kinds of the first `expected` dead letters of the stack's DLQ topic.
fn dead_letter_kinds(stack: &Stack, expected: usize, timeout: Duration) -> Vec<String> {
    read_topic(
        stack.broker.bootstrap_servers(),
        &stack.dlq_topic,
        expected,
        timeout,
    )
    .expect("read the DLQ topic")
    .iter()
    .map(|letter| {
        letter
            .headers()
            .and_then(|h| {
                h.iter()
                    .find(|x| x.key == dlq::ERROR_KIND)
                    .and_then(|x| x.value.map(|v| String::from_utf8_lossy(v).into_owned()))
            })
            .unwrap_or_default()
    })
    .collect()
}

// ---------------------------------------------------------------------------------
// The consumer while the registry is not usable
// ---------------------------------------------------------------------------------

/// Runs the consumer through `fault`: records already there and records arriving
/// meanwhile wait in place (nothing dead-lettered, nothing committed), `/healthz` and
/// the gauge show it, one warning is logged; once the fault clears every record is
/// handled exactly once and one info line says so.
async fn records_wait_out(fault: Fault, error_says: &str) {
    let lines = RegistryLines::installed();
    let prometheus = PrometheusMetrics::install().expect("recorder (the only one here)");
    let stack = Stack::start("rf", "rf").await;
    let group = stack.group.clone();
    let producer = stack.producer();
    for n in 1..=3 {
        producer
            .send(&login(n))
            .await
            .expect("sent before the fault");
    }
    let faults = stack.registry.faults();
    faults.fail_until_cleared(fault);

    let (bus, seen) = recording_bus();
    let consumer = EventConsumer::new(consumer_config(&stack), Arc::new(bus)).expect("consumer");
    let stats = consumer.stats();
    let health = ConsumerHealth::new("logins", Arc::clone(&stats));
    let (trigger, shutdown) = Shutdown::new();
    let task = tokio::spawn(consumer.run(shutdown));

    wait_for("the records to wait for the registry", || {
        stats
            .registry_unavailable()
            .is_some_and(|outage| outage.waiting_records == 3)
            && stats.snapshot().registry_waits >= 6
    })
    .await;
    // The producer has its ids cached: these arrive while the registry is faulty.
    for n in 4..=5 {
        producer
            .send(&login(n))
            .await
            .expect("sent during the fault");
    }
    wait_for("the records that arrived to wait too", || {
        stats
            .registry_unavailable()
            .is_some_and(|outage| outage.waiting_records == 5)
    })
    .await;
    let waits_before = stats.snapshot().registry_waits;
    wait_for("more waits", || {
        stats.snapshot().registry_waits >= waits_before + 5
    })
    .await;

    let during = stats.snapshot();
    assert_eq!(during.records_handled, 0, "{during:?}");
    assert_eq!(during.records_dead_lettered, 0, "{during:?}");
    assert!(seen.lock().expect("seen").is_empty());
    assert_eq!(stack.committed(), None, "no offset past a waiting record");
    let report = health.check();
    assert!(report.status.is_healthy(), "{report:?}");
    let outage = report
        .registry_unavailable
        .expect("/healthz shows the flag");
    assert!(
        outage.error.contains(error_says),
        "the error says `{error_says}`: {outage:?}"
    );
    assert!(HealthReport::of(std::slice::from_ref(&health))
        .to_json()
        .contains(r#""registry_unavailable":{"#));
    let metrics = prometheus.render();
    assert_eq!(
        sample(&metrics, names::REGISTRY_UNAVAILABLE, &group),
        Some(1.0),
        "{metrics}"
    );
    assert!(
        sample(&metrics, names::REGISTRY_WAITS, &group).unwrap_or_default() >= 10.0,
        "{metrics}"
    );
    assert!(
        faults.faulted() >= 10,
        "the registry was asked again and again"
    );
    assert_eq!(
        lines.of(&group),
        (1, 0),
        "one warning for the change, whatever the records and retries"
    );

    faults.clear();
    wait_for("every record after the fault", || {
        seen.lock().expect("seen").len() >= 5 && stack.committed() == Some(5)
    })
    .await;
    // A moment for any duplicate to show.
    tokio::time::sleep(Duration::from_millis(300)).await;
    trigger.trigger();
    let summary = task.await.expect("task").expect("clean stop");

    let mut ids = seen.lock().expect("seen").clone();
    ids.sort_unstable();
    assert_eq!(ids, vec![1, 2, 3, 4, 5], "each record handled exactly once");
    assert_eq!(summary.records_handled, 5);
    assert_eq!(summary.records_dead_lettered, 0);
    assert_eq!(stack.committed(), Some(5));
    assert_eq!(health.check().registry_unavailable, None);
    let metrics = prometheus.render();
    assert_eq!(
        sample(&metrics, names::REGISTRY_UNAVAILABLE, &group),
        Some(0.0),
        "{metrics}"
    );
    assert_eq!(lines.of(&group), (1, 1), "one line per state change");
    assert!(dead_letter_kinds(&stack, 1, Duration::from_secs(2)).is_empty());
}

#[tokio::test]
async fn records_wait_while_the_registry_answers_401() {
    records_wait_out(Fault::Unauthorized, "HTTP 401").await;
}

#[tokio::test]
async fn records_wait_while_the_registry_answers_429() {
    records_wait_out(Fault::TooManyRequests, "HTTP 429").await;
}

#[tokio::test]
async fn records_wait_while_the_registry_answers_503() {
    records_wait_out(Fault::Unavailable, "HTTP 503").await;
}

#[tokio::test]
async fn records_wait_while_a_proxy_answers_200_with_a_web_page() {
    records_wait_out(Fault::HtmlPage, "not JSON").await;
}

#[tokio::test]
async fn records_wait_while_a_proxy_answers_404_with_a_web_page() {
    records_wait_out(Fault::NotFoundPage, "404").await;
}

// ---------------------------------------------------------------------------------
// Verdicts: unknown schema id, missing or empty `ce_type`
// ---------------------------------------------------------------------------------

/// Record headers as `(name, value)` text pairs.
type HeaderPairs<'a> = &'a [(&'a str, &'a str)];

fn headers(pairs: HeaderPairs<'_>) -> OwnedHeaders {
    pairs.iter().fold(OwnedHeaders::new(), |h, (k, v)| {
        h.insert(Header {
            key: k,
            value: Some(v.as_bytes()),
        })
    })
}

/// A 404 with 40403 is the registry's word: that record is dead-lettered as
/// `unknown_schema_id` at once (no wait, no registry warning) and the next is handled.
/// Records without a `ce_type` or with an empty one are `invalid_headers`, not skipped.
#[tokio::test]
async fn unknown_schema_ids_and_untyped_records_are_dead_lettered() {
    let lines = RegistryLines::installed();
    let stack = Stack::start("rv", "rv").await;
    let producer = stack.producer();
    let ids = producer
        .encoder()
        .register::<SessionLoginCompleted>(None)
        .await
        .expect("registered");
    let datum = login(1).to_avro_datum().expect("datum");
    let framed = event_bus_core::codec::frame(ids.value_id, &datum);
    let unknown_id = event_bus_core::codec::frame(999_999, &datum);
    let metadata = EventMetadata::new(SessionLoginCompleted::EVENT_TYPE).to_headers();
    let typed: Vec<(&str, &str)> = metadata.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let untyped: Vec<(&str, &str)> = typed
        .iter()
        .copied()
        .filter(|(k, _)| *k != "ce_type")
        .collect();
    let empty_type: Vec<(&str, &str)> = typed
        .iter()
        .map(|&(k, v)| if k == "ce_type" { (k, "") } else { (k, v) })
        .collect();
    let raw = raw_producer(&stack).await;
    let records: [(&[u8], HeaderPairs); 3] = [
        (&unknown_id, &typed),
        (&framed, &untyped),
        (&framed, &empty_type),
    ];
    for (value, pairs) in records {
        raw.send(
            FutureRecord::<[u8], [u8]>::to(&stack.topic)
                .payload(value)
                .headers(headers(pairs)),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(e, _)| e)
        .expect("sent");
    }
    producer.send(&login(2)).await.expect("a valid event after");

    let (bus, seen) = recording_bus();
    let consumer = EventConsumer::new(consumer_config(&stack), Arc::new(bus)).expect("consumer");
    let stats = consumer.stats();
    let (trigger, shutdown) = Shutdown::new();
    let task = tokio::spawn(consumer.run(shutdown));
    wait_for("all four records", || {
        stats.snapshot().records_handled >= 4 && stack.committed() == Some(4)
    })
    .await;
    trigger.trigger();
    let summary = task.await.expect("task").expect("clean stop");

    assert_eq!(summary.records_dead_lettered, 3, "{summary:?}");
    assert_eq!(summary.records_skipped, 0, "nothing silently skipped");
    assert_eq!(summary.registry_waits, 0, "a verdict is not waited on");
    assert_eq!(*seen.lock().expect("seen"), vec![2]);
    assert_eq!(
        dead_letter_kinds(&stack, 3, WAIT),
        ["unknown_schema_id", "invalid_headers", "invalid_headers"]
    );
    assert_eq!(lines.of(&stack.group), (0, 0));
}

// ---------------------------------------------------------------------------------
// The registry client's answers
// ---------------------------------------------------------------------------------

/// Each answer becomes the right error, and only the registry's 40403 is a verdict.
#[tokio::test]
async fn the_registry_client_maps_each_answer_to_its_error() {
    let registry = EmbeddedRegistry::start().await.expect("registry");
    let id = registry
        .store()
        .register("pings-value", r#""string""#)
        .expect("registered");
    let client = || RegistryClient::new(RegistryConfig::new(registry.url())).expect("client");

    for (fault, status) in [
        (Fault::Unauthorized, 401),
        (Fault::TooManyRequests, 429),
        (Fault::Unavailable, 503),
    ] {
        registry.faults().fail_next(fault, 1);
        let error = client().schema_by_id(id).await.expect_err("faulty answer");
        assert!(
            matches!(&error, RegistryError::Http { status: s, code, .. } if *s == status && *code == u32::from(status)),
            "{fault:?}: {error:?}"
        );
        assert_eq!(of_registry(&error), Failure::Unavailable, "{fault:?}");
    }

    registry.faults().fail_next(Fault::HtmlPage, 1);
    let error = client().schema_by_id(id).await.expect_err("HTML page");
    assert!(
        matches!(error, RegistryError::BadResponse { .. }),
        "{error:?}"
    );
    assert!(error.is_retryable());

    registry.faults().fail_next(Fault::NotFoundPage, 1);
    let error = client().schema_by_id(id).await.expect_err("404 page");
    assert!(
        matches!(error, RegistryError::NotFound { code, .. } if code != 40403),
        "a 404 without the registry's body is not 40403: {error:?}"
    );
    assert!(error.is_retryable());

    let error = client()
        .schema_by_id(id + 1000)
        .await
        .expect_err("no such id");
    assert!(
        matches!(error, RegistryError::NotFound { code: 40403, .. }),
        "{error:?}"
    );
    assert_eq!(of_registry(&error), Failure::Permanent);

    // The faults were one request each: the schema is served again.
    client().schema_by_id(id).await.expect("served");
    assert_eq!(registry.faults().faulted(), 5);
    assert_eq!(registry.faults().requests(), 7);
}
