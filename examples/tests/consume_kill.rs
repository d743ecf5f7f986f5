//! Issue 6: the `consume_events` process is killed with SIGKILL three times while
//! 5 000 events flow; every event still reaches every receiver at least once. The
//! duplicates (events handled again after a crash, before their offset was committed)
//! are counted and printed.
//!
//! The consumer is the example binary, run as a child process against the shared
//! Apache Kafka cluster and an embedded registry served by this test process; its receivers
//! append `receiver<TAB>ce_id` to a file, which survives the kills.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use event_bus_core::Event;
use event_bus_examples::openedx::{SessionLoginCompleted, UserData};
use event_bus_examples::receivers::{AuditReceiver, CountingReceiver, RECEIVED_LOG_ENV};
use event_bus_kafka::prelude::*;
use event_bus_testkit::kafka::KafkaCluster;
use event_bus_testkit::registry::EmbeddedRegistry;
use event_bus_testkit::topics::{unique_group, unique_topic};
use tokio::task::JoinSet;
use uuid::Uuid;

const EVENTS: usize = 5_000;
const BATCH: usize = 100;
const PAUSE_BETWEEN_BATCHES: Duration = Duration::from_millis(700);
const KILLS: usize = 3;
/// How long a consumer runs after its first delivery before it is killed: long
/// enough to have caught up with the backlog and committed (every second) while
/// events flow, so each kill lands in the steady flow.
const RUN_BEFORE_KILL: Duration = Duration::from_millis(2_500);
const PARTITIONS: i32 = 3;
const RECEIVERS: [&str; 2] = [AuditReceiver::NAME, CountingReceiver::NAME];

struct Consumer {
    child: Child,
    number: usize,
}

struct Setup {
    broker: &'static KafkaCluster,
    registry_url: String,
    prefix: String,
    group: String,
    dir: PathBuf,
}

impl Setup {
    fn received_log(&self) -> PathBuf {
        self.dir.join("received.log")
    }

    fn output_log(&self, number: usize) -> PathBuf {
        self.dir.join(format!("consumer-{number}.log"))
    }

    fn spawn_consumer(&self, number: usize) -> Consumer {
        let output = File::create(self.output_log(number)).expect("consumer log file");
        let errors = output.try_clone().expect("consumer log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_consume_events"));
        for (name, _) in std::env::vars().filter(|(n, _)| n.starts_with("EVENT_BUS_")) {
            command.env_remove(name);
        }
        let child = command
            .args([
                "--topic",
                SessionLoginCompleted::TOPIC,
                "--group",
                &self.group,
                "--extra",
                r#"{"session.timeout.ms": "6000", "heartbeat.interval.ms": "1000", "reconnect.backoff.max.ms": "1000"}"#,
            ])
            .env("EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS", self.broker.bootstrap_servers())
            .env("EVENT_BUS_SCHEMA_REGISTRY_URL", &self.registry_url)
            .env("EVENT_BUS_TOPIC_PREFIX", &self.prefix)
            .env(RECEIVED_LOG_ENV, self.received_log())
            .env("RUST_LOG", "warn,event_bus_kafka=info")
            // Parallel tests: a free port each, not the default 0.0.0.0:9464.
            .env("EVENT_BUS_OBSERVABILITY_ADDRESS", "127.0.0.1:0")
            .stdin(Stdio::null())
            .stdout(output)
            .stderr(errors)
            .spawn()
            .expect("consume_events starts");
        Consumer { child, number }
    }

    fn output_tail(&self, number: usize) -> String {
        let text = std::fs::read_to_string(self.output_log(number)).unwrap_or_default();
        let start = text.len().saturating_sub(3_000);
        let start = (start..text.len())
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(0);
        text[start..].to_owned()
    }
}

/// `(receiver, ce_id)` lines of the received log.
fn read_received(path: &Path) -> Vec<(String, Uuid)> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let (receiver, id) = line.split_once('\t')?;
            Some((receiver.to_owned(), Uuid::parse_str(id).ok()?))
        })
        .collect()
}

fn login(n: usize) -> SessionLoginCompleted {
    let mut user = UserData::example();
    user.id = n as i64;
    user.pii.username = format!("learner-{}", n % 97);
    SessionLoginCompleted { user }
}

/// Sends `EVENTS` events in batches of `BATCH` concurrent sends, pausing between
/// batches; returns every acknowledged `ce_id`.
async fn produce(producer: Producer) -> Vec<Uuid> {
    let mut ids = Vec::with_capacity(EVENTS);
    for batch in 0..EVENTS / BATCH {
        let mut sends = JoinSet::new();
        for n in batch * BATCH..(batch + 1) * BATCH {
            let producer = producer.clone();
            sends.spawn(async move { producer.send(&login(n)).await });
        }
        while let Some(sent) = sends.join_next().await {
            ids.push(
                sent.expect("send task")
                    .expect("event acknowledged")
                    .event_id,
            );
        }
        tokio::time::sleep(PAUSE_BETWEEN_BATCHES).await;
    }
    ids
}

/// Waits until the received log has `lines` lines (or `timeout` passes); returns how
/// many it has.
async fn wait_for_lines(path: &Path, lines: usize, timeout: Duration) -> usize {
    let started = Instant::now();
    loop {
        let count = read_received(path).len();
        if count >= lines || started.elapsed() >= timeout {
            return count;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn stop_gracefully(consumer: &mut Consumer) -> Option<i32> {
    let pid = consumer.child.id().to_string();
    let sent = Command::new("kill").args(["-TERM", &pid]).status();
    assert!(sent.map(|s| s.success()).unwrap_or(false), "SIGTERM sent");
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        if let Ok(Some(status)) = consumer.child.try_wait() {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = consumer.child.kill();
    let _ = consumer.child.wait();
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_three_times_while_5000_events_flow_loses_nothing() {
    let broker = KafkaCluster::shared().expect("Apache Kafka (run scripts/install-test-deps)");
    let registry = EmbeddedRegistry::start().await.expect("registry");
    let setup = Setup {
        broker,
        registry_url: registry.url(),
        prefix: unique_topic("kill"),
        group: unique_group("kill"),
        dir: std::env::temp_dir().join(unique_topic("consume-kill")),
    };
    std::fs::create_dir_all(&setup.dir).expect("temp dir");
    let topic = format!("{}-{}", setup.prefix, SessionLoginCompleted::TOPIC);
    broker
        .create_topic(&topic, PARTITIONS)
        .await
        .expect("topic");
    broker
        .create_topic(&format!("{topic}.dlq"), 1)
        .await
        .expect("dlq topic");

    let producer = Producer::new(
        ProducerConfig::new(
            KafkaConfig::new(broker.bootstrap_servers()).with_option("linger.ms", "5"),
            RegistryConfig::new(registry.url()),
        )
        .with_topic_prefix(setup.prefix.clone())
        .with_service_name("kill-test"),
    )
    .expect("producer");
    // Register before the consumer starts, so its first record has a known schema.
    producer
        .register::<SessionLoginCompleted>()
        .await
        .expect("registered");

    let started = Instant::now();
    let mut consumer = setup.spawn_consumer(0);
    let production = tokio::spawn(produce(producer.clone()));

    let received = setup.received_log();
    let mut kill_points = Vec::new();
    for kill in 1..=KILLS {
        let before = read_received(&received).len();
        let now = wait_for_lines(&received, before + 1, Duration::from_secs(45)).await;
        assert!(
            now > before,
            "consumer {} made no progress in 45 s; its output:\n{}",
            consumer.number,
            setup.output_tail(consumer.number)
        );
        tokio::time::sleep(RUN_BEFORE_KILL).await;
        consumer.child.kill().expect("SIGKILL");
        let _ = consumer.child.wait();
        kill_points.push((started.elapsed(), read_received(&received).len()));
        consumer = setup.spawn_consumer(kill);
    }

    let ids = production.await.expect("producer task");
    assert_eq!(ids.len(), EVENTS);
    let produced_by = started.elapsed();

    // Every (receiver, event) pair, at least once.
    let deadline = Instant::now() + Duration::from_secs(60);
    let expected: HashSet<Uuid> = ids.iter().copied().collect();
    let missing = loop {
        let seen: HashSet<(String, Uuid)> = read_received(&received).into_iter().collect();
        let missing: Vec<(&str, Uuid)> = RECEIVERS
            .iter()
            .flat_map(|r| expected.iter().map(move |id| (*r, *id)))
            .filter(|(r, id)| !seen.contains(&(r.to_string(), *id)))
            .collect();
        if missing.is_empty() || Instant::now() >= deadline {
            break missing;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let finished_by = started.elapsed();
    let exit = tokio::task::spawn_blocking(move || stop_gracefully(&mut consumer))
        .await
        .expect("stop task");
    assert!(
        missing.is_empty(),
        "{} (receiver, event) deliveries missing, e.g. {:?}; last consumer's output:\n{}",
        missing.len(),
        &missing[..missing.len().min(5)],
        setup.output_tail(KILLS)
    );
    assert_eq!(
        exit,
        Some(0),
        "SIGTERM stops the consumer cleanly; its output:\n{}",
        setup.output_tail(KILLS)
    );

    let lines = read_received(&received);
    let mut per_receiver: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for receiver in RECEIVERS {
        let handled: Vec<Uuid> = lines
            .iter()
            .filter(|(r, _)| r == receiver)
            .map(|(_, id)| *id)
            .collect();
        let distinct: HashSet<Uuid> = handled.iter().copied().collect();
        assert!(
            distinct.is_subset(&expected),
            "{receiver} saw only produced events"
        );
        per_receiver.insert(receiver, (handled.len(), handled.len() - distinct.len()));
    }
    let duplicates: usize = per_receiver.values().map(|(_, d)| d).sum();
    println!(
        "SIGKILL test: {EVENTS} events, {KILLS} kills at {kill_points:?} (elapsed, log lines); \
         produced by {produced_by:?}, all delivered by {finished_by:?}; \
         deliveries and duplicates per receiver: {per_receiver:?}; duplicates in all: {duplicates}"
    );
    let _ = std::fs::remove_dir_all(&setup.dir);
}
