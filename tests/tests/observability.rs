//! Observability against a real Apache Kafka broker and the embedded registry:
//! `/metrics` scraped over HTTP moves by exactly what the test caused, `/healthz`
//! follows the consumer loop, and the W3C trace context produced in one place is the
//! parent of the consumer's span.
//!
//! The `metrics` recorder and the `tracing` subscriber are process-wide, and `cargo
//! test` runs this binary's tests in one process: every metric assertion lives in one
//! test and compares scrapes before and after (deltas) on labels only it uses (its own
//! topic, group and receiver names); spans are told apart by their `ce_id`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use event_bus_examples::openedx::{SessionLoginCompleted, UserData};
use event_bus_kafka::consumer::{EventConsumer, Shutdown, StatsSnapshot};
use event_bus_kafka::observability::metrics::{self as bus_metrics, names};
use event_bus_kafka::observability::trace::{self, TraceContext, TraceContextLayer};
use event_bus_kafka::observability::{ObservabilityConfig, ObservabilityServer, PrometheusMetrics};
use event_bus_kafka::prelude::*;
use event_bus_tests::stack::{Stack, WAIT};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Instrument, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// The stack of these tests: prefix and group made from `name`, producers are
/// "observability-test".
async fn start_stack(name: &str) -> Stack {
    Stack::start(name, name)
        .await
        .with_service_name("observability-test")
}

fn consumer(stack: &Stack, bus: EventBus) -> EventConsumer {
    EventConsumer::new(stack.consumer_config(), Arc::new(bus)).expect("consumer")
}

fn login(n: i64) -> SessionLoginCompleted {
    let mut user = UserData::example();
    user.id = n;
    user.pii.username = format!("user-{n}");
    SessionLoginCompleted { user }
}

/// Waits until `done` holds (or WAIT passes); says whether it held.
async fn wait_for(mut done: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    while !done() {
        if started.elapsed() > WAIT {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    true
}

// ---------------------------------------------------------------------------------
// Metrics and health
// ---------------------------------------------------------------------------------

async fn get(url: &str) -> (u16, String) {
    let response = reqwest::get(url).await.expect("HTTP GET");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

/// The sum of the samples of `name` whose labels include every pair of `labels` (0
/// when there is none), from a Prometheus text exposition.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (series_name, series_labels) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let matches = series_name == name
                && labels.iter().all(|(k, v)| {
                    series_labels
                        .split(',')
                        .any(|pair| pair == format!("{k}=\"{v}\""))
                });
            matches.then(|| value.parse::<f64>().ok()).flatten()
        })
        .sum()
}

/// Whether a series of `name` with these labels appears at all.
fn has_series(text: &str, name: &str, labels: &[(&str, &str)]) -> bool {
    text.lines().any(|line| {
        line.starts_with(name)
            && line[name.len()..].starts_with('{')
            && labels
                .iter()
                .all(|(k, v)| line.contains(&format!("{k}=\"{v}\"")))
    })
}

#[tokio::test]
async fn metrics_move_by_exactly_what_the_test_caused_and_healthz_follows_the_loop() {
    const EVENTS: i64 = 5;
    const FAILING_USER: i64 = 3;
    let prometheus = PrometheusMetrics::install().expect("recorder (the only one here)");
    // Sample lag often so the test sees it settle; consumers read this when they start.
    bus_metrics::set_lag_sampling(Some(Duration::from_millis(200)));

    let stack = start_stack("obsm").await;
    let event_type = SessionLoginCompleted::EVENT_TYPE;
    let (ok_calls, picky_calls) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut bus = EventBus::new();
    let ok2 = Arc::clone(&ok_calls);
    bus.connect_fn("metrics-ok", move |_: &SessionLoginCompleted, _| {
        ok2.fetch_add(1, Ordering::SeqCst);
        Ok(())
    })
    .expect("connect");
    let picky2 = Arc::clone(&picky_calls);
    bus.connect_fn("metrics-picky", move |login: &SessionLoginCompleted, _| {
        picky2.fetch_add(1, Ordering::SeqCst);
        if login.user.id == FAILING_USER {
            Err(ReceiverError::new("cannot take this user"))
        } else {
            Ok(())
        }
    })
    .expect("connect");
    let consumer = consumer(&stack, bus);
    let stats = consumer.stats();

    let config = ObservabilityConfig {
        address: "127.0.0.1:0".parse().expect("address"),
        max_poll_gap: Duration::from_secs(30),
    };
    let server = ObservabilityServer::builder(config)
        .metrics(prometheus)
        .consumer("logins", Arc::clone(&stats))
        .start()
        .await
        .expect("server");
    let base = format!("http://{}", server.local_addr());

    let (status, body) = get(&format!("{base}/healthz")).await;
    assert_eq!(status, 503, "not running yet: {body}");
    assert!(body.contains(r#""status":"not_running""#), "{body}");
    let (status, before) = get(&format!("{base}/metrics")).await;
    assert_eq!(status, 200);

    let producer = stack.producer();
    for n in 1..=EVENTS {
        producer.send(&login(n)).await.expect("sent");
    }

    let (trigger, shutdown) = Shutdown::new();
    let task = tokio::spawn(consumer.run(shutdown));
    assert!(
        wait_for(|| stats.snapshot().records_handled >= EVENTS as u64).await,
        "consumer handled {:?}",
        stats.snapshot()
    );
    let (status, body) = get(&format!("{base}/healthz")).await;
    assert_eq!(status, 200, "running: {body}");
    assert!(body.contains(r#""status":"healthy""#), "{body}");

    // Lag: sampled every 200 ms; everything is handled, so it settles at 0.
    let lag_labels = [
        ("group", stack.group.as_str()),
        ("topic", stack.topic.as_str()),
        ("partition", "0"),
    ];
    let started = Instant::now();
    let mut last = String::new();
    while started.elapsed() < WAIT {
        last = get(&format!("{base}/metrics")).await.1;
        if has_series(&last, names::CONSUMER_LAG, &lag_labels)
            && sample(&last, names::CONSUMER_LAG, &lag_labels) == 0.0
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        has_series(&last, names::CONSUMER_LAG, &lag_labels),
        "no lag gauge in\n{last}"
    );
    assert_eq!(sample(&last, names::CONSUMER_LAG, &lag_labels), 0.0);

    trigger.trigger();
    let summary: StatsSnapshot = task.await.expect("task").expect("loop ends cleanly");
    assert_eq!(summary.records_dead_lettered, 1);

    let (status, body) = get(&format!("{base}/healthz")).await;
    assert_eq!(status, 503, "stopped: {body}");
    assert!(body.contains(r#""status":"not_running""#), "{body}");

    let (status, after) = get(&format!("{base}/metrics")).await;
    assert_eq!(status, 200);
    let delta = |name: &str, labels: &[(&str, &str)]| {
        sample(&after, name, labels) - sample(&before, name, labels)
    };
    let topic = stack.topic.as_str();
    let group = stack.group.as_str();
    let produced = [("event_type", event_type), ("topic", topic)];
    assert_eq!(delta(names::EVENTS_PRODUCED, &produced), EVENTS as f64);
    assert_eq!(delta(names::EVENTS_DELIVERED, &produced), EVENTS as f64);
    assert_eq!(delta(names::EVENTS_FAILED, &produced), 0.0);
    assert_eq!(
        delta(
            names::EVENTS_CONSUMED,
            &[
                ("group", group),
                ("topic", topic),
                ("event_type", event_type)
            ]
        ),
        EVENTS as f64
    );
    let ok = [("receiver", "metrics-ok"), ("event_type", event_type)];
    let picky = [("receiver", "metrics-picky"), ("event_type", event_type)];
    assert_eq!(delta(names::RECEIVER_SUCCESSES, &ok), EVENTS as f64);
    assert_eq!(delta(names::RECEIVER_FAILURES, &ok), 0.0);
    assert_eq!(
        delta(names::RECEIVER_RETRIES, &ok),
        0.0,
        "a receiver that succeeded is not retried"
    );
    assert_eq!(
        delta(names::RECEIVER_SUCCESSES, &picky),
        (EVENTS - 1) as f64
    );
    assert_eq!(
        delta(names::RECEIVER_FAILURES, &picky),
        3.0,
        "three tries of the failing event"
    );
    assert_eq!(delta(names::RECEIVER_RETRIES, &picky), 2.0);
    assert_eq!(picky_calls.load(Ordering::SeqCst), EVENTS as usize + 2);
    assert_eq!(ok_calls.load(Ordering::SeqCst), EVENTS as usize);
    assert_eq!(
        delta(
            names::DLQ_RECORDS,
            &[
                ("group", group),
                ("topic", topic),
                ("error_kind", "receiver_failed")
            ]
        ),
        1.0
    );
    assert_eq!(delta(names::POLL_ERRORS, &[("group", group)]), 0.0);
    let commits = delta(
        &format!("{}_count", names::COMMIT_DURATION),
        &[("group", group)],
    );
    assert!(commits >= 1.0, "commit latency recorded: {commits}");
    assert!(
        after.contains(&format!("# TYPE {} histogram", names::COMMIT_DURATION)),
        "{after}"
    );
    server.stop().await;
}

// ---------------------------------------------------------------------------------
// Trace context
// ---------------------------------------------------------------------------------

/// A closed span's name and fields, as recorded.
#[derive(Debug, Clone)]
struct ClosedSpan {
    name: &'static str,
    fields: HashMap<String, String>,
}

impl ClosedSpan {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

#[derive(Default)]
struct SpanFields(HashMap<String, String>);

impl Visit for SpanFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), value.to_string());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), value.to_string());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

/// Records every span's fields and keeps them when the span closes.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<ClosedSpan>>>);

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = SpanFields::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(fields);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            if let Some(fields) = span.extensions_mut().get_mut::<SpanFields>() {
                values.record(fields);
            }
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(&id) {
            let fields = span
                .extensions()
                .get::<SpanFields>()
                .map(|f| f.0.clone())
                .unwrap_or_default();
            if let Ok(mut closed) = self.0.lock() {
                closed.push(ClosedSpan {
                    name: span.name(),
                    fields,
                });
            }
        }
    }
}

/// The process-wide subscriber: the SDK's trace-context layer and the capture.
fn captured() -> &'static Capture {
    static CAPTURE: OnceLock<Capture> = OnceLock::new();
    CAPTURE.get_or_init(|| {
        let capture = Capture::default();
        let subscriber = tracing_subscriber::registry()
            .with(TraceContextLayer::default())
            .with(capture.clone());
        tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
        capture
    })
}

fn closed_span(name: &str, ce_id: &str) -> Option<ClosedSpan> {
    captured()
        .0
        .lock()
        .ok()?
        .iter()
        .find(|s| s.name == name && s.field("ce_id") == Some(ce_id))
        .cloned()
}

/// What a receiver saw: its delivery's `traceparent` and the current context.
#[derive(Debug, Clone)]
struct Seen {
    received_traceparent: Option<String>,
    received_tracestate: Option<String>,
    current: Option<TraceContext>,
}

#[tokio::test]
async fn the_consumer_span_is_a_child_of_the_producer_span_across_hops() {
    captured();
    let stack = start_stack("obst").await;
    let producer = stack.producer();

    // 1. Another service's span context, set explicitly in the metadata.
    let upstream = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let mut metadata = EventMetadata::for_event::<SessionLoginCompleted>();
    metadata.traceparent = Some(upstream.to_owned());
    metadata.tracestate = Some("rojo=00f067aa0ba902b7".to_owned());
    let explicit = producer
        .send_with_metadata(&login(1), metadata)
        .await
        .expect("sent");
    // 2. No traceparent, published inside an application span that has one.
    let request = TraceContext::new_root();
    let in_request = producer
        .send(&login(2))
        .instrument(tracing::info_span!("http_request", traceparent = %request))
        .await
        .expect("sent");
    // 3. No trace anywhere: no header, no ids.
    let untraced = producer.send(&login(3)).await.expect("sent");

    // The receiver records what it sees; on event 1 it publishes a follow-up event,
    // which must continue the trace through the consumer's span.
    let seen: Arc<Mutex<HashMap<String, Seen>>> = Arc::default();
    let follow_up_id: Arc<Mutex<Option<String>>> = Arc::default();
    let mut bus = EventBus::new();
    let (seen2, follow2, republisher) = (
        Arc::clone(&seen),
        Arc::clone(&follow_up_id),
        producer.clone(),
    );
    bus.connect_async(
        "trace-recorder",
        move |login: Arc<SessionLoginCompleted>, ctx| {
            let (seen, follow, producer) = (
                Arc::clone(&seen2),
                Arc::clone(&follow2),
                republisher.clone(),
            );
            async move {
                seen.lock()
                    .map_err(|_| ReceiverError::new("poisoned"))?
                    .insert(
                        ctx.metadata.id.to_string(),
                        Seen {
                            received_traceparent: ctx.metadata.traceparent.clone(),
                            received_tracestate: ctx.metadata.tracestate.clone(),
                            current: trace::current(),
                        },
                    );
                if login.user.id == 1 {
                    let delivery = producer
                        .send(&self::login(100))
                        .await
                        .map_err(|e| ReceiverError::new(e.to_string()))?;
                    *follow.lock().map_err(|_| ReceiverError::new("poisoned"))? =
                        Some(delivery.event_id.to_string());
                }
                Ok(())
            }
        },
    )
    .expect("connect");

    let consumer = consumer(&stack, bus);
    let stats = consumer.stats();
    let (trigger, shutdown) = Shutdown::new();
    let task = tokio::spawn(consumer.run(shutdown));
    assert!(
        wait_for(|| stats.snapshot().records_handled >= 4).await,
        "handled {:?}",
        stats.snapshot()
    );
    trigger.trigger();
    let summary = task.await.expect("task").expect("loop ends cleanly");
    assert_eq!(summary.records_dead_lettered, 0);
    let seen = seen.lock().expect("seen").clone();
    let follow_up = follow_up_id
        .lock()
        .expect("id")
        .clone()
        .expect("follow-up published");

    let span = |name: &str, id: &str| {
        closed_span(name, id).unwrap_or_else(|| panic!("no {name} span for {id}"))
    };
    let upstream_ctx = TraceContext::parse(upstream).expect("valid");
    let upstream_trace = upstream_ctx.trace_id().to_string();
    let upstream_span = upstream_ctx.span_id().to_string();

    // Hop 1: the explicit context is sent unchanged and names the produce span.
    let explicit_id = explicit.event_id.to_string();
    let produce1 = span("event_bus.produce", &explicit_id);
    assert_eq!(produce1.field("trace_id"), Some(upstream_trace.as_str()));
    assert_eq!(produce1.field("span_id"), Some(upstream_span.as_str()));
    assert_eq!(
        produce1.field("parent_id"),
        None,
        "nothing was current here"
    );
    assert_eq!(
        produce1.field("partition"),
        Some("0"),
        "delivery recorded on the span"
    );
    assert_eq!(produce1.field("offset"), Some("0"));
    assert_eq!(produce1.field("key"), Some("user-1"));
    let consume1 = span("event_bus.consume", &explicit_id);
    assert_eq!(
        consume1.field("trace_id"),
        Some(upstream_trace.as_str()),
        "same trace"
    );
    assert_eq!(
        consume1.field("parent_id"),
        produce1.field("span_id"),
        "the producer's span is the parent"
    );
    let consume1_span = consume1
        .field("span_id")
        .expect("consumer span id")
        .to_owned();
    assert_ne!(consume1_span, upstream_span);
    assert_eq!(consume1.field("topic"), Some(stack.topic.as_str()));
    assert_eq!(consume1.field("partition"), Some("0"));
    assert_eq!(consume1.field("offset"), Some("0"));
    assert_eq!(consume1.field("key"), Some("user-1"));
    assert_eq!(
        consume1.field("ce_type"),
        Some(SessionLoginCompleted::EVENT_TYPE)
    );
    assert!(
        consume1
            .fields
            .values()
            .all(|v| !v.contains("foobob") && !v.contains("bob@foo")),
        "no payload (PII) in span fields"
    );

    // The receiver got the producer's context in its metadata and the consumer span's
    // context as the current one (tracestate carried along).
    let seen1 = &seen[&explicit_id];
    assert_eq!(seen1.received_traceparent.as_deref(), Some(upstream));
    assert_eq!(
        seen1.received_tracestate.as_deref(),
        Some("rojo=00f067aa0ba902b7")
    );
    let current1 = seen1
        .current
        .clone()
        .expect("a current context in the receiver");
    assert_eq!(current1.trace_id().to_string(), upstream_trace);
    assert_eq!(current1.span_id().to_string(), consume1_span);
    assert_eq!(current1.state(), Some("rojo=00f067aa0ba902b7"));

    // Hop 2: the follow-up published by the receiver is a child of the consumer span,
    // and its consumer span a child of that produce span.
    let produce_follow = span("event_bus.produce", &follow_up);
    assert_eq!(
        produce_follow.field("trace_id"),
        Some(upstream_trace.as_str())
    );
    assert_eq!(
        produce_follow.field("parent_id"),
        Some(consume1_span.as_str())
    );
    let consume_follow = span("event_bus.consume", &follow_up);
    assert_eq!(
        consume_follow.field("trace_id"),
        Some(upstream_trace.as_str())
    );
    assert_eq!(
        consume_follow.field("parent_id"),
        produce_follow.field("span_id")
    );
    assert_eq!(
        seen[&follow_up].received_tracestate.as_deref(),
        Some("rojo=00f067aa0ba902b7"),
        "tracestate travels with the trace"
    );

    // An application span with a traceparent: the event is a child of it.
    let request_id = in_request.event_id.to_string();
    let produce2 = span("event_bus.produce", &request_id);
    assert_eq!(
        produce2.field("trace_id"),
        Some(request.trace_id().to_string().as_str())
    );
    assert_eq!(
        produce2.field("parent_id"),
        Some(request.span_id().to_string().as_str())
    );
    let consume2 = span("event_bus.consume", &request_id);
    assert_eq!(
        consume2.field("trace_id"),
        Some(request.trace_id().to_string().as_str())
    );
    assert_eq!(consume2.field("parent_id"), produce2.field("span_id"));

    // No trace: no ids, no header, no current context.
    let untraced_id = untraced.event_id.to_string();
    let consume3 = span("event_bus.consume", &untraced_id);
    assert_eq!(consume3.field("trace_id"), None);
    assert_eq!(seen[&untraced_id].received_traceparent, None);
    assert!(seen[&untraced_id].current.is_none());
}
