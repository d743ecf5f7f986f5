//! One relay per SQLite outbox file, across processes: two `event-bus outbox relay`
//! processes on one file, against a real broker. Only the lease holder publishes; when
//! it is killed (SIGKILL) the other takes over once the lease expires; every event is
//! published and each key's events stay in order. A holder paused (SIGSTOP) past its
//! lease's expiry publishes nothing once resumed.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use event_bus_core::prelude::*;
use event_bus_kafka::outbox::{OutboxStore, SqliteOutbox};
use event_bus_kafka::prelude::*;
use event_bus_testkit::kafka::KafkaCluster;
use event_bus_testkit::registry::EmbeddedRegistry;
use event_bus_testkit::topics::unique_topic;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// How long the test waits for anything (a hang is a failure, not a measurement).
const WAIT: Duration = Duration::from_secs(60);
const KEYS: i64 = 3;
const PER_KEY_AND_ROUND: i64 = 100;

/// A step of a key: `seq` numbers the events of one key in the order they were stored.
#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(
    type = "org.example.test.outbox.lease.step.v1",
    topic = "lease-steps",
    key = "key"
)]
struct LeaseStep {
    key: String,
    seq: i64,
}

/// A relay process whose log goes to a file.
struct RelayProcess {
    child: Child,
    log: PathBuf,
}

impl RelayProcess {
    fn start(dir: &Path, name: &str, url: &str, bootstrap: &str, registry: &str) -> Self {
        let log = dir.join(format!("{name}.log"));
        let mut command = Command::new(env!("CARGO_BIN_EXE_event-bus"));
        for (variable, _) in std::env::vars().filter(|(n, _)| n.starts_with("EVENT_BUS_")) {
            command.env_remove(variable);
        }
        let child = command
            .args(["outbox", "relay"])
            .env("EVENT_BUS_OUTBOX_DATABASE_URL", url)
            .env("EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS", bootstrap)
            .env("EVENT_BUS_SCHEMA_REGISTRY_URL", registry)
            .env("RUST_LOG", "warn,event_bus_kafka=info")
            // Parallel tests: a free port each, not the default 0.0.0.0:9464.
            .env("EVENT_BUS_OBSERVABILITY_ADDRESS", "127.0.0.1:0")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log).expect("log file"))
            .spawn()
            .expect("start event-bus outbox relay");
        Self { child, log }
    }

    fn pid(&self) -> i64 {
        i64::from(self.child.id())
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn kill(&mut self) {
        let _ = self.child.kill(); // SIGKILL
        let _ = self.child.wait();
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The process holding the lease, if any.
async fn lease_holder(store: &SqliteOutbox) -> Option<i64> {
    sqlx::query_scalar(
        "SELECT pid FROM event_bus_relay_lease WHERE name = 'relay' AND expires_at_ms > ?1",
    )
    .bind(chrono::Utc::now().timestamp_millis())
    .fetch_optional(store.pool())
    .await
    .ok()
    .flatten()
}

/// Waits (up to [`WAIT`]) until `done` says yes; `what` names it in the failure.
async fn wait_for<F, Fut>(what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + WAIT;
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Stores `PER_KEY_AND_ROUND` events per key, numbered from `first`.
async fn store_round(
    store: &SqliteOutbox,
    producer: &Producer,
    first: i64,
    sent: &mut HashMap<Uuid, (String, i64)>,
) {
    let mut records = Vec::new();
    for seq in first..first + PER_KEY_AND_ROUND {
        for k in 0..KEYS {
            let event = LeaseStep {
                key: format!("k{k}"),
                seq,
            };
            let record = producer
                .encoder()
                .encode(&event, None, None)
                .await
                .expect("encode");
            sent.insert(record.event_id, (event.key, seq));
            records.push(record);
        }
    }
    store.insert_many(&records).await.expect("stored");
}

/// Every record of the one-partition `topic`: `ce_id`s in offset order.
fn ce_ids_on(bootstrap: &str, topic: &str) -> Vec<Uuid> {
    let consumer: BaseConsumer =
        event_bus_testkit::kafka::consumer_config(bootstrap, "lease-reader")
            .create()
            .expect("consumer");
    let (_, high) = consumer
        .fetch_watermarks(topic, 0, Duration::from_secs(10))
        .expect("watermarks");
    let expected = usize::try_from(high).expect("offset");
    let records = event_bus_testkit::records::read_topic(bootstrap, topic, expected, WAIT)
        .expect("read the topic");
    assert_eq!(records.len(), expected);
    records
        .iter()
        .map(|record| {
            let headers = record.headers().expect("headers");
            let value = headers
                .iter()
                .find(|h| h.key == "ce_id")
                .and_then(|h| h.value)
                .expect("ce_id");
            std::str::from_utf8(value)
                .expect("utf-8")
                .parse()
                .expect("uuid")
        })
        .collect()
}

/// A one-partition topic, a producer to it and a migrated SQLite outbox in a new
/// directory.
struct Setup {
    broker: &'static KafkaCluster,
    registry: EmbeddedRegistry,
    topic: String,
    producer: Producer,
    dir: PathBuf,
    url: String,
    store: SqliteOutbox,
}

impl Setup {
    async fn new(name: &str) -> Self {
        let broker = KafkaCluster::shared().expect("Apache Kafka (run scripts/install-test-deps)");
        let registry = EmbeddedRegistry::start().await.expect("registry");
        let config = ProducerConfig::new(
            KafkaConfig::new(broker.bootstrap_servers()),
            RegistryConfig::new(registry.url()),
        )
        .with_service_name("outbox-lease-test")
        .with_topic_prefix(unique_topic(name));
        let topic = config.full_topic(LeaseStep::TOPIC);
        broker.create_topic(&topic, 1).await.expect("topic");
        let producer = Producer::new(config).expect("producer");
        let dir = std::env::temp_dir().join(unique_topic(&format!("outbox-{name}")));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let url = format!("sqlite:{}", dir.join("outbox.db").display());
        let store = SqliteOutbox::connect(&url).await.expect("sqlite");
        store.migrate().await.expect("migrate");
        Self {
            broker,
            registry,
            topic,
            producer,
            dir,
            url,
            store,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_relay_per_sqlite_file_and_a_killed_holder_is_replaced() {
    let Setup {
        broker,
        registry,
        topic,
        producer,
        dir,
        url,
        store,
    } = Setup::new("lease").await;
    let mut sent = HashMap::new();
    store_round(&store, &producer, 0, &mut sent).await;

    let start = |name: &str| {
        RelayProcess::start(
            &dir,
            name,
            &url,
            broker.bootstrap_servers(),
            &registry.url(),
        )
    };
    let mut first = start("first");
    wait_for("the first relay takes the lease", || async {
        lease_holder(&store).await == Some(first.pid())
    })
    .await;
    let second = start("second");
    wait_for("the second relay waits for the lease", || async {
        second.log().contains("waiting for its lease")
    })
    .await;
    wait_for("the first relay publishes the first round", || async {
        store.status(1).await.expect("status").is_empty()
    })
    .await;
    assert_eq!(lease_holder(&store).await, Some(first.pid()));
    assert!(
        !second.log().contains("lease taken"),
        "both relays held the lease: {}",
        second.log()
    );

    // The holder dies mid-round: the other takes over once the lease expires.
    store_round(&store, &producer, PER_KEY_AND_ROUND, &mut sent).await;
    first.kill();
    wait_for("the second relay takes the lease over", || async {
        lease_holder(&store).await == Some(second.pid())
    })
    .await;
    wait_for("the second relay publishes the rest", || async {
        store.status(1).await.expect("status").is_empty()
    })
    .await;

    let on_topic = tokio::task::spawn_blocking({
        let (bootstrap, topic) = (broker.bootstrap_servers().to_owned(), topic.clone());
        move || ce_ids_on(&bootstrap, &topic)
    })
    .await
    .expect("reader");
    let mut seen = HashSet::new();
    let mut per_key: HashMap<&str, Vec<i64>> = HashMap::new();
    for id in &on_topic {
        let (key, seq) = sent
            .get(id)
            .unwrap_or_else(|| panic!("unexpected record {id}"));
        if seen.insert(*id) {
            per_key.entry(key.as_str()).or_default().push(*seq);
        }
    }
    assert_eq!(seen.len(), sent.len(), "events lost");
    for (key, seqs) in &per_key {
        let expected: Vec<i64> = (0..2 * PER_KEY_AND_ROUND).collect();
        assert_eq!(seqs, &expected, "events of {key} out of order");
    }
    // A draining relay does not wait behind the holder: it says who holds the file.
    let drain = Command::new(env!("CARGO_BIN_EXE_event-bus"))
        .args(["outbox", "relay", "--drain"])
        .env("EVENT_BUS_OUTBOX_DATABASE_URL", &url)
        .env(
            "EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS",
            broker.bootstrap_servers(),
        )
        .env("EVENT_BUS_SCHEMA_REGISTRY_URL", registry.url())
        .stdin(Stdio::null())
        .output()
        .expect("run event-bus outbox relay --drain");
    let stderr = String::from_utf8_lossy(&drain.stderr);
    assert_eq!(drain.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains(&format!("another outbox relay (pid {})", second.pid())),
        "{stderr}"
    );
    drop(second);
    store.pool().close().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// The lease row: holder, pid and expiry (ms since the epoch).
async fn lease_row(store: &SqliteOutbox) -> Option<(String, i64, i64)> {
    sqlx::query_as(
        "SELECT holder, pid, expires_at_ms FROM event_bus_relay_lease WHERE name = 'relay'",
    )
    .fetch_optional(store.pool())
    .await
    .ok()
    .flatten()
}

/// Sends `signal` (`STOP`, `CONT`) to process `pid`.
fn signal(pid: i64, signal: &str) {
    let status = Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal} {pid} failed");
}

/// Records on partition 0 of `topic` (its high watermark).
fn records_on(bootstrap: &str, topic: &str) -> i64 {
    let consumer: BaseConsumer =
        event_bus_testkit::kafka::consumer_config(bootstrap, "lease-reader")
            .create()
            .expect("consumer");
    consumer
        .fetch_watermarks(topic, 0, Duration::from_secs(10))
        .expect("watermarks")
        .1
}

/// A relay paused (SIGSTOP) past its lease's expiry, while another relay took the lease,
/// must not claim nor publish anything once it resumes: it stops with "lost its lease".
/// Before the fix it only looked at a flag its renewer sets, and the renewer had not run
/// yet, so it published the waiting rows beside the new holder.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_resumed_after_its_lease_expired_publishes_nothing() {
    let Setup {
        broker,
        registry,
        topic,
        producer,
        dir,
        url,
        store,
    } = Setup::new("lease-pause").await;
    let mut sent = HashMap::new();
    store_round(&store, &producer, 0, &mut sent).await;
    let first_round = i64::try_from(sent.len()).expect("count");

    let relay = RelayProcess::start(
        &dir,
        "paused",
        &url,
        broker.bootstrap_servers(),
        &registry.url(),
    );
    wait_for("the relay publishes the first round", || async {
        lease_holder(&store).await == Some(relay.pid())
            && store.status(1).await.expect("status").is_empty()
    })
    .await;
    // Pause it right after a renewal, so it holds no write lock while stopped.
    let before = lease_row(&store).await.expect("lease").2;
    wait_for("the relay renews its lease", || async {
        lease_row(&store).await.is_some_and(|row| row.2 != before)
    })
    .await;
    signal(relay.pid(), "STOP");
    let expires_at_ms = lease_row(&store).await.expect("lease").2;
    wait_for("the paused relay's lease expires", || async {
        chrono::Utc::now().timestamp_millis() > expires_at_ms
    })
    .await;
    // Another relay takes the lease (written here, so that whatever reaches the topic
    // from now on comes from the paused relay), and new rows wait.
    sqlx::query(
        "UPDATE event_bus_relay_lease SET holder = 'another-relay', pid = ?1, expires_at_ms = ?2 \
         WHERE name = 'relay'",
    )
    .bind(i64::from(std::process::id()))
    .bind(chrono::Utc::now().timestamp_millis() + WAIT.as_millis() as i64)
    .execute(store.pool())
    .await
    .expect("take the lease over");
    store_round(&store, &producer, PER_KEY_AND_ROUND, &mut sent).await;
    let log_before_resume = relay.log().len();
    signal(relay.pid(), "CONT");

    let mut relay = relay;
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = relay.child.try_wait().expect("relay status") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the resumed relay kept running: {}",
            relay.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let log = relay.log();
    let after_resume = &log[log_before_resume.min(log.len())..];
    assert!(!status.success(), "{log}");
    assert!(after_resume.contains("lost its lease"), "{log}");
    let on_topic = tokio::task::spawn_blocking({
        let (bootstrap, topic) = (broker.bootstrap_servers().to_owned(), topic.clone());
        move || records_on(&bootstrap, &topic)
    })
    .await
    .expect("reader");
    assert_eq!(
        on_topic, first_round,
        "the resumed relay published while another relay held the lease: {log}"
    );
    let status = store.status(1).await.expect("status");
    assert_eq!(status.pending, u64::try_from(first_round).expect("count"));
    assert_eq!(
        lease_row(&store).await.map(|row| row.0).as_deref(),
        Some("another-relay"),
        "the resumed relay must leave the other relay's lease alone"
    );
    drop(relay);
    store.pool().close().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// A drain that fails gives its lease back: the next relay need not wait for it to
/// expire (before, `--drain` right after got RelayBusy naming the dead process).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_drain_releases_the_lease() {
    let Setup {
        producer,
        dir,
        store,
        ..
    } = Setup::new("lease-error").await;
    // The lease is taken, then the first claim fails.
    sqlx::query("DROP TABLE event_bus_outbox")
        .execute(store.pool())
        .await
        .expect("drop the outbox table");
    let relay = event_bus_kafka::outbox::Relay::new(
        std::sync::Arc::new(store.clone()),
        producer,
        event_bus_kafka::outbox::RelayConfig::default(),
    );
    let error = relay.drain().await.expect_err("no outbox table");
    assert!(
        error.to_string().contains("claiming"),
        "unexpected error: {error}"
    );
    assert_eq!(
        lease_row(&store).await,
        None,
        "the failed drain left its lease: {error}"
    );
    drop(relay);
    store.pool().close().await;
    let _ = std::fs::remove_dir_all(&dir);
}
