//! Dead-letter writes by the failure classifier's verdict: a record too large for the
//! dead-letter topic goes there as a stub, a topic that refuses records for good stops
//! the loop uncommitted, retryable failures show "stuck on DLQ" past the threshold and
//! recover; long error messages are capped; the consumer and `event-bus dlq show`
//! agree on the topic.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use event_bus_examples::openedx::SessionLoginCompleted;
use event_bus_kafka::config::EnvSource;
use event_bus_kafka::consumer::dlq::{headers as dlq, CUT_MARK, MAX_ERROR_MESSAGE_BYTES};
use event_bus_kafka::consumer::{
    ConsumerConfig, ConsumerError, DlqTopic, EventConsumer, PollPolicy, Shutdown,
};
use event_bus_kafka::failure::Failure;
use event_bus_kafka::observability::{ConsumerHealth, HealthStatus};
use event_bus_kafka::prelude::*;
use event_bus_testkit::kafka::TopicSpec;
use event_bus_testkit::mock_cluster::MockKafkaCluster;
use event_bus_testkit::records::read_topic;
use event_bus_testkit::registry::EmbeddedRegistry;
use event_bus_testkit::topics::{unique_group, unique_topic};
use event_bus_tests::filler::incompressible_text;
use event_bus_tests::stack::{login, Stack, WAIT};
use rdkafka::message::{Headers, Message, OwnedMessage};
use rdkafka::types::{RDKafkaApiKey, RDKafkaErrorCode};
use tracing::field::{Field, Visit};
use tracing::{Event as TracingEvent, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

/// The start of the line the consumer logs when its first dead letter gets stuck.
const STUCK: &str = "stuck on the dead-letter topic";
/// The line it logs when the last stuck dead letter went through.
const THROUGH_AGAIN: &str = "dead letters go through again";

/// Counts of the consumer's "stuck" and "go through again" lines, per DLQ topic.
#[derive(Default)]
struct StuckLines(std::sync::Mutex<std::collections::HashMap<String, (usize, usize)>>);

impl StuckLines {
    /// The process-wide counts, installing the subscriber on first use.
    fn installed() -> &'static StuckLines {
        static LINES: std::sync::OnceLock<&'static StuckLines> = std::sync::OnceLock::new();
        LINES.get_or_init(|| {
            let lines: &'static StuckLines = Box::leak(Box::default());
            let _ = tracing_subscriber::registry()
                .with(CountStuckLines(lines))
                .try_init();
            lines
        })
    }

    /// (stuck lines, through-again lines) about `dlq_topic`.
    fn of(&self, dlq_topic: &str) -> (usize, usize) {
        self.0
            .lock()
            .map(|l| l.get(dlq_topic).copied().unwrap_or_default())
            .unwrap_or_default()
    }
}

#[derive(Default)]
struct LineFields {
    message: String,
    dlq_topic: String,
}

impl Visit for LineFields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let text = format!("{value:?}");
        match field.name() {
            "message" => self.message = text,
            "dlq_topic" => self.dlq_topic = text.trim_matches('"').to_owned(),
            _ => {}
        }
    }
}

struct CountStuckLines(&'static StuckLines);

impl<S: Subscriber> Layer<S> for CountStuckLines {
    fn on_event(&self, event: &TracingEvent<'_>, _ctx: Context<'_, S>) {
        let mut fields = LineFields::default();
        event.record(&mut fields);
        let stuck = fields.message.starts_with(STUCK);
        let through = fields.message.starts_with(THROUGH_AGAIN);
        if stuck || through {
            if let Ok(mut lines) = self.0 .0.lock() {
                let entry = lines.entry(fields.dlq_topic).or_default();
                if stuck {
                    entry.0 += 1;
                } else {
                    entry.1 += 1;
                }
            }
        }
    }
}

fn header(message: &OwnedMessage, name: &str) -> Option<String> {
    message.headers().and_then(|h| {
        h.iter()
            .find(|x| x.key == name)
            .and_then(|x| x.value.map(|v| String::from_utf8_lossy(v).into_owned()))
    })
}

async fn wait_for(what: &str, check: impl Fn() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < WAIT, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A bus whose receiver `r` fails with `message` for users whose id is in `failing`.
fn failing_bus(failing: &'static [i64], message: String) -> (EventBus, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let calls2 = Arc::clone(&calls);
    let mut bus = EventBus::new();
    bus.connect_fn("r", move |event: &SessionLoginCompleted, _| {
        calls2.fetch_add(1, Ordering::SeqCst);
        if failing.contains(&event.user.id) {
            Err(ReceiverError::permanent(message.clone()))
        } else {
            Ok(())
        }
    })
    .expect("connect");
    (bus, calls)
}

/// Runs a consumer of `config` and `bus` until it dead-lettered one record.
async fn run_until_dead_lettered(config: ConsumerConfig, bus: EventBus) {
    let consumer = EventConsumer::new(config, Arc::new(bus)).expect("consumer");
    let stats = consumer.stats();
    let (trigger, shutdown) = Shutdown::new();
    let task = tokio::spawn(consumer.run(shutdown));
    wait_for("the dead letter", || {
        stats.snapshot().records_dead_lettered == 1
    })
    .await;
    trigger.trigger();
    task.await.expect("task").expect("clean stop");
}

#[tokio::test]
async fn a_record_too_large_for_the_dlq_goes_there_as_a_stub_with_a_capped_message() {
    let stack = Stack::start("dlqbig", "dlqbig").await;
    let dlq_topic = format!("{}.small-dlq", stack.topic);
    stack
        .broker
        .create_topic_with(&TopicSpec::new(&dlq_topic, 1).with_config("max.message.bytes", "16384"))
        .await
        .expect("small dlq topic");
    let mut event = login(1);
    // Random text: the dead-letter producer compresses, and a repeated letter would
    // shrink below the topic's limit.
    event.user.pii.name = incompressible_text(40_000);
    stack.producer().send(&event).await.expect("sent");
    let original = read_topic(stack.broker.bootstrap_servers(), &stack.topic, 1, WAIT)
        .expect("read")
        .remove(0);

    let (bus, _) = failing_bus(&[1], "é".repeat(10_000));
    let mut config = stack.consumer_config();
    config.dlq_topic = DlqTopic::Fixed(dlq_topic.clone());
    run_until_dead_lettered(config, bus).await;

    let letters = read_topic(stack.broker.bootstrap_servers(), &dlq_topic, 1, WAIT).expect("read");
    let stub = &letters[0];
    assert_eq!(stub.payload(), None, "the value is dropped");
    assert_eq!(stub.key(), original.key(), "the key is kept");
    assert_eq!(header(stub, "ce_id"), header(&original, "ce_id"));
    assert_eq!(header(stub, dlq::VALUE_DROPPED).as_deref(), Some("true"));
    let size = original.payload().map_or(0, <[u8]>::len);
    assert_eq!(
        header(stub, dlq::ORIGINAL_VALUE_SIZE),
        Some(size.to_string())
    );
    let message = header(stub, dlq::ERROR_MESSAGE).expect("error message");
    assert!(
        message.len() <= MAX_ERROR_MESSAGE_BYTES,
        "{} bytes",
        message.len()
    );
    assert!(message.ends_with(CUT_MARK), "marked as cut");
    assert_eq!(stack.committed(), Some(1), "the record is done");

    let (result, out) = stack.cli(&["dlq", "show", "--dlq-topic", &dlq_topic]).await;
    result.expect("show");
    assert!(
        out.contains(&format!("value dropped: it was {size} bytes")),
        "{out}"
    );
}

#[tokio::test]
async fn a_stub_still_too_large_for_the_dlq_stops_the_loop_uncommitted() {
    let stack = Stack::start("dlqtiny", "dlqtiny").await;
    let dlq_topic = format!("{}.tiny-dlq", stack.topic);
    stack
        .broker
        .create_topic_with(&TopicSpec::new(&dlq_topic, 1).with_config("max.message.bytes", "1024"))
        .await
        .expect("tiny dlq topic");
    stack.producer().send(&login(1)).await.expect("sent");
    // The capped error message alone is larger than the topic takes, compressed too.
    let (bus, _) = failing_bus(&[1], incompressible_text(3_000));
    let mut config = stack.consumer_config();
    config.dlq_topic = DlqTopic::Fixed(dlq_topic.clone());
    let consumer = EventConsumer::new(config, Arc::new(bus)).expect("consumer");
    let (_trigger, shutdown) = Shutdown::new();
    let result = tokio::time::timeout(WAIT, consumer.run(shutdown))
        .await
        .expect("the loop stops by itself");
    match result {
        Err(err @ ConsumerError::DeadLetterRefused { .. }) => {
            let ConsumerError::DeadLetterRefused { failure, .. } = &err else {
                unreachable!()
            };
            assert_eq!(*failure, Failure::TooLarge);
            assert!(err.to_string().contains("max.message.bytes"), "{err}");
        }
        other => panic!("expected DeadLetterRefused, got {other:?}"),
    }
    assert_eq!(stack.committed(), None, "nothing committed");
}

#[tokio::test]
async fn a_dlq_topic_that_does_not_exist_stops_the_loop_and_the_record_stays_uncommitted() {
    let stack = Stack::start("dlqgone", "dlqgone")
        .await
        .with_kafka_option("allow.auto.create.topics", "false")
        .with_kafka_option("topic.metadata.propagation.max.ms", "1000");
    let producer = stack.producer();
    for n in 1..=3 {
        producer.send(&login(n)).await.expect("sent");
    }
    let missing = format!("{}.missing-dlq", stack.topic);
    let (bus, calls) = failing_bus(&[2], "refused".into());
    let mut config = stack.consumer_config();
    config.dlq_topic = DlqTopic::Fixed(missing.clone());
    let consumer = EventConsumer::new(config, Arc::new(bus)).expect("consumer");
    let (_trigger, shutdown) = Shutdown::new();
    let result = tokio::time::timeout(WAIT, consumer.run(shutdown))
        .await
        .expect("the loop stops by itself");
    match result {
        Err(ConsumerError::DeadLetterRefused {
            dlq_topic,
            topic,
            partition,
            offset,
            failure,
            ..
        }) => {
            assert_eq!(dlq_topic, missing);
            assert_eq!((topic, partition, offset), (stack.topic.clone(), 0, 1));
            assert_eq!(failure, Failure::Permanent);
        }
        other => panic!("expected DeadLetterRefused, got {other:?}"),
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "the third record never ran"
    );
    assert_eq!(
        stack.committed(),
        Some(1),
        "the first record is committed, the refused one is not"
    );
}

/// A mock cluster whose produce requests fail (retryable) until cleared, with
/// `events` sent before, and a consumer config of it whose receiver fails every one of
/// them, stuck after 2 failed dead-letter writes.
struct StuckSetup {
    cluster: MockKafkaCluster,
    _registry: EmbeddedRegistry,
    config: ConsumerConfig,
    dlq_topic: String,
}

async fn stuck_setup(name: &str, events: &[SessionLoginCompleted]) -> StuckSetup {
    let cluster = MockKafkaCluster::start(1).expect("mock cluster");
    let registry = EmbeddedRegistry::start().await.expect("registry");
    let prefix = unique_topic(name);
    let topic = format!("{prefix}-{}", SessionLoginCompleted::TOPIC);
    let dlq_topic = format!("{topic}.dlq");
    cluster.create_topic(&topic, 1).expect("topic");
    cluster.create_topic(&dlq_topic, 1).expect("dlq topic");
    let kafka = KafkaConfig::new(cluster.bootstrap_servers())
        .with_option("session.timeout.ms", "6000")
        .with_option("retry.backoff.max.ms", "100");
    let producer = Producer::new(
        ProducerConfig::new(kafka.clone(), RegistryConfig::new(registry.url()))
            .with_topic_prefix(prefix.clone()),
    )
    .expect("producer");
    for event in events {
        producer.send(event).await.expect("sent");
    }
    // Every produce request fails with a retryable error until cleared.
    cluster
        .request_errors(
            RDKafkaApiKey::Produce,
            &[RDKafkaErrorCode::NotEnoughReplicas; 4000],
        )
        .expect("inject");
    let mut config = ConsumerConfig::new(
        kafka,
        RegistryConfig::new(registry.url()),
        unique_group(name),
        [SessionLoginCompleted::TOPIC],
    )
    .with_topic_prefix(prefix);
    config.retry.max_attempts = 1;
    config.poll = PollPolicy {
        initial_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(200),
        ..PollPolicy::default()
    };
    config.dlq.write_timeout = Duration::from_millis(500);
    config.dlq.stuck_after_attempts = 2;
    StuckSetup {
        cluster,
        _registry: registry,
        config,
        dlq_topic,
    }
}

#[tokio::test]
async fn retryable_dlq_failures_show_stuck_on_health_past_the_threshold_and_recover() {
    let setup = stuck_setup("stuck", &[login(1)]).await;
    let (bus, _) = failing_bus(&[1], "down".into());
    let consumer = EventConsumer::new(setup.config, Arc::new(bus)).expect("consumer");
    let stats = consumer.stats();
    let health = ConsumerHealth::new("c", Arc::clone(&stats));
    let (trigger, shutdown) = Shutdown::new();
    let task = tokio::spawn(consumer.run(shutdown));

    wait_for("stuck on the DLQ", || health.check().stuck_on_dlq.is_some()).await;
    let report = health.check();
    // A restart does not fix the DLQ topic's cluster: the loop stays healthy.
    assert_eq!(report.status, HealthStatus::Healthy);
    let stuck = report.stuck_on_dlq.expect("details");
    assert!(stuck.failed_writes >= 2, "{stuck:?}");
    assert_eq!(stuck.dlq_topic, setup.dlq_topic, "{stuck:?}");
    assert_eq!(stats.snapshot().records_dead_lettered, 0);

    setup
        .cluster
        .clear_request_errors(RDKafkaApiKey::Produce)
        .expect("clear");
    wait_for("the dead letter", || {
        stats.snapshot().records_dead_lettered == 1
    })
    .await;
    wait_for("healthy again", || {
        health.check().status == HealthStatus::Healthy
    })
    .await;
    assert_eq!(health.check().stuck_on_dlq, None);
    trigger.trigger();
    task.await.expect("task").expect("clean stop");
}

#[tokio::test]
async fn a_stuck_dead_letter_left_unwritten_at_shutdown_clears_the_flag() {
    let setup = stuck_setup("stuckstop", &[login(1)]).await;
    let (bus, _) = failing_bus(&[1], "down".into());
    let consumer = EventConsumer::new(setup.config, Arc::new(bus)).expect("consumer");
    let stats = consumer.stats();
    let (trigger, shutdown) = Shutdown::new();
    let task = tokio::spawn(consumer.run(shutdown));
    wait_for("stuck on the DLQ", || stats.dlq_stuck().is_some()).await;
    trigger.trigger();
    task.await.expect("task").expect("clean stop");
    assert_eq!(stats.snapshot().records_dead_lettered, 0);
    assert_eq!(stats.dlq_stuck(), None, "no dead letter is stuck any more");
}

/// A login of user `n` keyed by its own user name.
fn login_keyed(n: i64) -> SessionLoginCompleted {
    let mut event = login(n);
    event.user.pii.username = format!("user-{n}");
    event
}

#[tokio::test]
async fn two_dead_letters_stuck_at_once_raise_the_flag_once_and_clear_it_once() {
    let lines = StuckLines::installed();
    // Two keys: two lanes, both in flight at once.
    let setup = stuck_setup("stuck2", &[login_keyed(1), login_keyed(2)]).await;
    let (bus, _) = failing_bus(&[1, 2], "down".into());
    let mut config = setup.config;
    config.max_in_flight = 2;
    let consumer = EventConsumer::new(config, Arc::new(bus)).expect("consumer");
    let stats = consumer.stats();
    let health = ConsumerHealth::new("c", Arc::clone(&stats));
    let (trigger, shutdown) = Shutdown::new();
    let task = tokio::spawn(consumer.run(shutdown));

    wait_for("both dead letters stuck", || {
        health
            .check()
            .stuck_on_dlq
            .is_some_and(|s| s.stuck_records == 2)
    })
    .await;
    assert_eq!(lines.of(&setup.dlq_topic), (1, 0), "one stuck line");

    setup
        .cluster
        .clear_request_errors(RDKafkaApiKey::Produce)
        .expect("clear");
    wait_for("both dead letters", || {
        stats.snapshot().records_dead_lettered == 2
    })
    .await;
    wait_for("the flag cleared", || health.check().stuck_on_dlq.is_none()).await;
    trigger.trigger();
    task.await.expect("task").expect("clean stop");
    assert_eq!(
        lines.of(&setup.dlq_topic),
        (1, 1),
        "one stuck line, one through-again line"
    );
}

#[tokio::test]
async fn the_consumer_and_dlq_show_agree_on_the_dlq_topic_from_the_same_environment() {
    let stack = Stack::start("dlqenv", "dlqenv").await;
    let custom = format!("{}-custom-dead-letters", stack.prefix);
    stack
        .broker
        .create_topic(&custom, 1)
        .await
        .expect("custom dlq");
    let env = [
        (
            "EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS",
            stack.broker.bootstrap_servers().to_owned(),
        ),
        (
            "EVENT_BUS_SCHEMA_REGISTRY_URL",
            stack.registry.url().to_string(),
        ),
        ("EVENT_BUS_CONSUMER_GROUP", stack.group.clone()),
        (
            "EVENT_BUS_CONSUMER_TOPICS",
            SessionLoginCompleted::TOPIC.to_owned(),
        ),
        ("EVENT_BUS_TOPIC_PREFIX", stack.prefix.clone()),
        ("EVENT_BUS_CONSUMER_DLQ_TOPIC", custom.clone()),
    ];
    // Each test runs in its own process (nextest), so the environment is this test's.
    for (name, value) in &env {
        std::env::set_var(name, value);
    }
    stack.producer().send(&login(1)).await.expect("sent");
    let mut config = ConsumerConfig::from_env_source(&EnvSource::from_process()).expect("env");
    config.commit_interval = Duration::from_millis(100);
    let (bus, _) = failing_bus(&[1], "fails".into());
    run_until_dead_lettered(config, bus).await;

    // Named by the consumed topic, or by nothing at all: the variable decides.
    for args in [
        vec![
            "--output",
            "json",
            "dlq",
            "show",
            "--for-topic",
            SessionLoginCompleted::TOPIC,
        ],
        vec!["--output", "json", "dlq", "show"],
    ] {
        let (result, out) = stack.cli(&args).await;
        result.expect("show");
        let shown: serde_json::Value = serde_json::from_str(&out).expect("JSON");
        assert_eq!(shown["topic"], custom.as_str(), "{args:?}");
        assert_eq!(shown["count"], 1, "{args:?}");
    }

    // Without the variable, both use `{prefix}-{topic}.dlq`.
    std::env::remove_var("EVENT_BUS_CONSUMER_DLQ_TOPIC");
    let config = ConsumerConfig::from_env_source(&EnvSource::from_process()).expect("env");
    let consumer_dlq = config.dlq_topic.for_topic(&config.full_topics()[0]);
    assert_eq!(consumer_dlq, stack.dlq_topic);
    let (result, out) = stack
        .cli(&[
            "--output",
            "json",
            "dlq",
            "show",
            "--for-topic",
            SessionLoginCompleted::TOPIC,
        ])
        .await;
    result.expect("show");
    let shown: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(shown["topic"], stack.dlq_topic.as_str());
    assert_eq!(shown["count"], 0);
}
