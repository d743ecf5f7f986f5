//! Issue 16: the `exactly_once_effect` service (consume a login, then write one row and
//! enqueue one `LoginCounted` in the inbox's transaction, relayed to Kafka in the same
//! process) is killed with SIGKILL three times while 5 000 logins flow, against the
//! shared Apache Kafka cluster, an embedded registry and a PostgreSQL database of its
//! own. At the end: exactly 5 000 business rows and 5 000 inbox rows, each learner's
//! logins numbered 1, 2, … without a gap or a repeat, and exactly one `LoginCounted`
//! `ce_id` per login on the derived topic (a relay killed between the broker's
//! acknowledgement and its delete may publish a row twice, with the same `ce_id`).
//!
//! Duplicates are provoked and must be filtered: the service commits offsets only
//! every 4 s, and each kill comes once a fresh process has counted 600 new logins,
//! whatever its commit timer says, so the logins it counted since its last commit (or
//! since it started) reach the next process again. The inbox skips each with a debug
//! line (`duplicate delivery skipped`), written to the process's log file before it
//! can be killed; the test counts those lines across all runs and requires more than
//! zero. Four records run in flight, so the redeliveries meet many keys at once.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use event_bus_core::Event;
use event_bus_examples::openedx::{SessionLoginCompleted, UserData};
use event_bus_kafka::prelude::*;
use event_bus_testkit::kafka::KafkaCluster;
use event_bus_testkit::postgres::TestDatabase;
use event_bus_testkit::registry::EmbeddedRegistry;
use event_bus_testkit::topics::{unique_group, unique_topic};
use serde_json::Value;
use uuid::Uuid;

const EVENTS: usize = 5_000;
/// Logins sent at once, then a pause: about 35 s of steady flow for the kills.
const BURST: usize = 100;
const PAUSE_BETWEEN_BURSTS: Duration = Duration::from_millis(700);
const KILLS: usize = 3;
/// Logins a fresh process must have counted before it is killed: the kills spread
/// over the flow, each process commits some of its work and not the rest.
const COUNTED_BEFORE_KILL: i64 = 600;
const COMMIT_INTERVAL_MS: &str = "4000";
const MAX_IN_FLIGHT: &str = "4";
const PARTITIONS: i32 = 3;
/// Learners the logins are spread over (the record keys).
const LEARNERS: usize = 97;
/// The receiver name the service records in the inbox.
const RECEIVER: &str = "login-counter";
/// The derived event's type.
const LOGIN_COUNTED: &str = "org.example.learning.login.counted.v1";
/// The derived event's topic, before the prefix.
const DERIVED_TOPIC: &str = "learner-login-counts";
/// What the inbox logs (at debug) for each duplicate it skips.
const DUPLICATE_LINE: &str = "duplicate delivery skipped";
/// The longest wait for any one step; reaching it fails the test.
const DEADLINE: Duration = Duration::from_secs(120);

/// One run of the service; killed (SIGKILL) when dropped, so a failing test leaves no
/// process behind.
struct Service {
    child: Child,
    run: usize,
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

struct Setup {
    broker: &'static KafkaCluster,
    registry_url: String,
    prefix: String,
    group: String,
    db: TestDatabase,
    dir: PathBuf,
}

impl Setup {
    /// The service binary with this test's broker, registry, prefix, group and
    /// database, and no other EVENT_BUS_* variable of the test process.
    fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_exactly_once_effect"));
        for (name, _) in std::env::vars().filter(|(n, _)| n.starts_with("EVENT_BUS_")) {
            command.env_remove(name);
        }
        command
            .env(
                "EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS",
                self.broker.bootstrap_servers(),
            )
            .env("EVENT_BUS_SCHEMA_REGISTRY_URL", &self.registry_url)
            .env("EVENT_BUS_TOPIC_PREFIX", &self.prefix)
            .env("EVENT_BUS_CONSUMER_GROUP", &self.group)
            .env("EVENT_BUS_OUTBOX_DATABASE_URL", self.db.url())
            .stdin(Stdio::null());
        command
    }

    fn log_path(&self, run: usize) -> PathBuf {
        self.dir.join(format!("service-{run}.log"))
    }

    fn spawn(&self, run: usize) -> Service {
        let log = File::create(self.log_path(run)).expect("service log file");
        let errors = log.try_clone().expect("service log file");
        let child = self
            .command()
            .env("EVENT_BUS_CONSUMER_COMMIT_INTERVAL_MS", COMMIT_INTERVAL_MS)
            .env("EVENT_BUS_CONSUMER_MAX_IN_FLIGHT", MAX_IN_FLIGHT)
            // A killed member leaves the group after 6 s instead of librdkafka's 45 s.
            .env("EVENT_BUS_KAFKA_SESSION_TIMEOUT_MS", "6000")
            .env("EVENT_BUS_KAFKA_HEARTBEAT_INTERVAL_MS", "1000")
            .env(
                "RUST_LOG",
                "warn,exactly_once_effect=info,event_bus_kafka::inbox=debug",
            )
            .stdout(log)
            .stderr(errors)
            .spawn()
            .expect("exactly_once_effect starts");
        Service { child, run }
    }

    fn log_tail(&self, run: usize) -> String {
        let text = std::fs::read_to_string(self.log_path(run)).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// The `ce_id` of every duplicate the inbox skipped, over all runs so far.
    fn skipped_duplicates(&self, runs: usize) -> Vec<Uuid> {
        (0..runs)
            .flat_map(|run| {
                let text = std::fs::read_to_string(self.log_path(run)).unwrap_or_default();
                text.lines()
                    .filter(|line| line.contains(DUPLICATE_LINE))
                    .filter(|line| line.contains(&format!("receiver={RECEIVER}")))
                    .filter_map(|line| {
                        let id = line.split("ce_id=").nth(1)?.split_whitespace().next()?;
                        Uuid::parse_str(id).ok()
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(self.db.pool())
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Counted logins (0 until the service has created its table).
    async fn counted(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM learner_logins")
            .fetch_one(self.db.pool())
            .await
            .unwrap_or(0)
    }

    /// Every record of the derived topic, decoded by the service's own `tail` command.
    fn derived_records(&self) -> Vec<Value> {
        let output = self
            .command()
            .args(["tail", "--topic", DERIVED_TOPIC, "--from-beginning"])
            .arg("--until-end")
            .output()
            .expect("exactly_once_effect tail runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "tail failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
            .lines()
            .map(|line| serde_json::from_str(line).expect("tail prints JSON lines"))
            .collect()
    }
}

/// Polls `value` until `done` holds for it or [`DEADLINE`] passes; returns the last
/// value.
async fn wait_for<T>(value: impl AsyncFn() -> T, done: impl Fn(&T) -> bool) -> T {
    let started = Instant::now();
    loop {
        let now = value().await;
        if done(&now) || started.elapsed() >= DEADLINE {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn login(n: usize) -> SessionLoginCompleted {
    let mut user = UserData::example();
    user.id = i64::try_from(n).expect("small");
    user.pii.username = format!("learner-{}", n % LEARNERS);
    SessionLoginCompleted { user }
}

/// Sends [`EVENTS`] logins in bursts of [`BURST`], one burst per pause; returns every
/// acknowledged `ce_id`.
async fn send_logins(producer: Producer) -> Vec<Uuid> {
    let mut pace = tokio::time::interval(PAUSE_BETWEEN_BURSTS);
    let mut ids = Vec::with_capacity(EVENTS);
    for first in (0..EVENTS).step_by(BURST) {
        pace.tick().await;
        let burst = (first..first + BURST).map(|n| {
            let producer = producer.clone();
            async move { producer.send(&login(n)).await }
        });
        for sent in futures::future::join_all(burst).await {
            ids.push(sent.expect("login acknowledged").event_id);
        }
    }
    ids
}

/// SIGTERM, then the exit code (`None` if it had to be killed after 30 s).
fn stop_gracefully(mut service: Service) -> Option<i32> {
    let pid = service.child.id().to_string();
    let sent = Command::new("kill").args(["-TERM", &pid]).status();
    assert!(sent.is_ok_and(|s| s.success()), "SIGTERM sent");
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        if let Ok(Some(status)) = service.child.try_wait() {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

fn uuid_of(value: &Value) -> Uuid {
    value
        .as_str()
        .and_then(|text| Uuid::parse_str(text).ok())
        .unwrap_or_else(|| panic!("a UUID: {value}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_three_times_counts_each_of_5000_logins_once_and_emits_one_event_each() {
    let broker = KafkaCluster::shared().expect("Apache Kafka (run scripts/install-test-deps)");
    let registry = EmbeddedRegistry::start().await.expect("registry");
    let setup = Setup {
        broker,
        registry_url: registry.url(),
        prefix: unique_topic("once"),
        group: unique_group("once"),
        db: TestDatabase::create().await.expect("database"),
        dir: std::env::temp_dir().join(unique_topic("exactly-once-effect")),
    };
    std::fs::create_dir_all(&setup.dir).expect("temp dir");
    let logins = format!("{}-{}", setup.prefix, SessionLoginCompleted::TOPIC);
    for (topic, partitions) in [
        (logins.clone(), PARTITIONS),
        (format!("{logins}.dlq"), 1),
        (format!("{}-{DERIVED_TOPIC}", setup.prefix), PARTITIONS),
    ] {
        broker
            .create_topic(&topic, partitions)
            .await
            .expect("topic");
    }
    let producer = Producer::new(
        ProducerConfig::new(
            KafkaConfig::new(broker.bootstrap_servers()).with_option("linger.ms", "5"),
            RegistryConfig::new(registry.url()),
        )
        .with_topic_prefix(setup.prefix.clone())
        .with_service_name("exactly-once-test"),
    )
    .expect("producer");
    producer
        .register::<SessionLoginCompleted>()
        .await
        .expect("registered before the service reads");

    let mut service = setup.spawn(0);
    let sending = tokio::spawn(send_logins(producer.clone()));
    let mut kill_points = Vec::new();
    for run in 1..=KILLS {
        let before = setup.counted().await;
        let now = wait_for(
            async || setup.counted().await,
            |n| *n >= before + COUNTED_BEFORE_KILL,
        )
        .await;
        assert!(
            now >= before + COUNTED_BEFORE_KILL,
            "run {} counted {} logins in {DEADLINE:?}; its log:\n{}",
            service.run,
            now - before,
            setup.log_tail(service.run)
        );
        service.child.kill().expect("SIGKILL");
        let _ = service.child.wait();
        kill_points.push(setup.counted().await);
        service = setup.spawn(run);
    }

    let sent = sending.await.expect("sending task");
    assert_eq!(sent.len(), EVENTS);
    let total = i64::try_from(EVENTS).expect("small");
    let counted = wait_for(async || setup.counted().await, |n| *n >= total).await;
    assert_eq!(
        counted,
        total,
        "logins counted; last run's log:\n{}",
        setup.log_tail(KILLS)
    );
    let waiting = wait_for(
        async || setup.count("SELECT count(*) FROM event_bus.outbox").await,
        |n| *n == 0,
    )
    .await;
    assert_eq!(waiting, 0, "the relay publishes every LoginCounted");
    let exit = tokio::task::spawn_blocking(move || stop_gracefully(service))
        .await
        .expect("stop task");
    assert_eq!(
        exit,
        Some(0),
        "SIGTERM stops the service cleanly; its log:\n{}",
        setup.log_tail(KILLS)
    );

    // One business row per login, and nothing else.
    let sent: HashSet<Uuid> = sent.into_iter().collect();
    let rows: Vec<Uuid> = sqlx::query_scalar("SELECT source_ce_id FROM learner_logins")
        .fetch_all(setup.db.pool())
        .await
        .expect("business rows");
    assert_eq!(rows.len(), EVENTS, "business rows");
    assert_eq!(
        rows.iter().copied().collect::<HashSet<_>>(),
        sent,
        "one row per login"
    );
    let inbox_rows = setup
        .count("SELECT count(*) FROM event_bus.inbox WHERE receiver = 'login-counter'")
        .await;
    assert_eq!(inbox_rows, total, "inbox rows");
    // A login counted twice would give its learner a number too many.
    let numbering: Vec<(String, i64, i64, i64)> = sqlx::query_as(
        "SELECT username, count(*), count(DISTINCT login_number), max(login_number) \
         FROM learner_logins GROUP BY username",
    )
    .fetch_all(setup.db.pool())
    .await
    .expect("numbering");
    assert_eq!(numbering.len(), LEARNERS);
    for (username, logins, distinct, highest) in &numbering {
        assert_eq!(
            (distinct, highest),
            (logins, logins),
            "{username}: logins numbered 1..={logins}"
        );
    }

    // One LoginCounted (one ce_id) per login on the topic; copies only as the same ce_id.
    // The tail command asks the registry served by this runtime: block elsewhere.
    let records = tokio::task::block_in_place(|| setup.derived_records());
    let mut source_of: HashMap<Uuid, Uuid> = HashMap::new();
    for record in &records {
        assert!(record.get("error").is_none(), "decoded: {record}");
        let ce_id = uuid_of(&record["metadata"]["id"]);
        let source = uuid_of(&record["payload"]["source_ce_id"]);
        let earlier = source_of.insert(ce_id, source);
        assert!(
            earlier.is_none_or(|s| s == source),
            "a copy of {ce_id} names the same login"
        );
    }
    assert_eq!(source_of.len(), EVENTS, "distinct LoginCounted ce_ids");
    let sources: HashSet<Uuid> = source_of.values().copied().collect();
    assert_eq!(sources, sent, "one LoginCounted per login");

    // Duplicates were delivered, and skipped by the inbox.
    let skipped = setup.skipped_duplicates(KILLS + 1);
    assert!(
        !skipped.is_empty(),
        "no duplicate reached the inbox: the kills did not provoke redeliveries"
    );
    assert!(
        skipped.iter().all(|id| sent.contains(id)),
        "only sent logins are skipped"
    );
    let per_run: BTreeMap<usize, usize> = (0..=KILLS)
        .map(|run| {
            let text = std::fs::read_to_string(setup.log_path(run)).unwrap_or_default();
            (run, text.matches(DUPLICATE_LINE).count())
        })
        .collect();
    println!(
        "exactly-once effect: {EVENTS} logins, {KILLS} SIGKILLs at {kill_points:?} counted \
         logins; duplicates skipped by the inbox per run {per_run:?} ({} in all); \
         LoginCounted records on the topic {} for {} distinct ce_ids (republished by a \
         killed relay: {})",
        skipped.len(),
        records.len(),
        source_of.len(),
        records.len() - source_of.len()
    );
    let _ = std::fs::remove_dir_all(&setup.dir);
}

/// The service's own command line knows `LoginCounted`, and its committed schema
/// history (`schemas/` at the repository root) matches the code.
#[test]
fn the_committed_schema_history_records_login_counted() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas");
    let output = Command::new(env!("CARGO_BIN_EXE_exactly_once_effect"))
        .args(["schemas", "check", "--event-type", LOGIN_COUNTED, "--dir"])
        .arg(&root)
        .env_remove("EVENT_BUS_OUTPUT")
        .output()
        .expect("exactly_once_effect schemas check runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains(&format!("ok         {LOGIN_COUNTED}")),
        "{stdout}"
    );
}
