//! Model-based test of the outbox's per-key order (issue 19): random programs of sends,
//! broker outages, database errors, relay batches, two relays at once and relay crashes,
//! run on the real stores (a fresh PostgreSQL database, or a fresh SQLite file, per case)
//! and a real Apache Kafka broker of the test's own.
//!
//! The model is what the application was told: every send the SDK acknowledged
//! (`OutboxProducer::send` returned `Delivered` or `Deferred`, or the transaction holding
//! `TransactionalOutbox::enqueue` committed), in send order per key. At the end the
//! broker is up, a relay drains the outbox, every producer is flushed, and the topic is
//! read back. What must hold:
//!
//! - every acknowledged event is on the topic;
//! - per key, the *first* occurrences of its events come in send order;
//! - nothing is on the topic that was not sent.
//!
//! Duplicates are allowed (at-least-once: a send that timed out may have reached the
//! broker and is relayed as well; a relay that dies between the broker's acknowledgement
//! and its delete publishes the rows again); they are counted and reported.
//!
//! **The outage is a hung broker**: `BrokerDown` stops the broker process with SIGSTOP,
//! at once or a few milliseconds into the next step (a send or a relay batch in flight),
//! and `BrokerUp` lets it run on (SIGCONT). A closed port only ever makes records fail
//! before they are sent, which keeps order trivially; librdkafka's mock cluster drops
//! connections, so requests in flight fail at once and are retried. A hung broker
//! leaves produce requests in flight until their records time out, so the SDK gets
//! the answer that matters for order and duplicates: "timed out, may or may not be
//! written" (written later when the broker wakes, or fenced by the producer's new
//! epoch). An outage lasts at most [`MAX_OUTAGE`] (the broker's session timeout is 4 s;
//! a longer pause only adds its re-registration to every case's time).
//!
//! Database errors: on PostgreSQL a relay's connections are terminated
//! (`pg_terminate_backend`) at a random moment of its run; on SQLite a trigger makes the
//! relay's delete fail from a random moment on. A crash aborts a relay task at a random
//! moment (its claimed batch is dropped mid-flight; records it queued may still be
//! written). On PostgreSQL the second relay, the failing relay and the crashing relay
//! are other processes in all but name: their own pools and producers.
//!
//! `PROPTEST_CASES` raises the number of cases (25 per store by default).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use event_bus_core::prelude::*;
use event_bus_kafka::outbox::{
    EmergencyConfig, OutboxProducer, OutboxStore, PostgresOutbox, Relay, RelayConfig, SendOutcome,
    SqliteOutbox, TransactionalOutbox, TransactionalStore,
};
use event_bus_kafka::prelude::*;
use event_bus_kafka::producer::EncodedRecord;
use event_bus_testkit::kafka::KafkaCluster;
use event_bus_testkit::postgres::TestDatabase;
use event_bus_testkit::registry::EmbeddedRegistry;
use event_bus_testkit::topics::unique_topic;
use event_bus_tests::outbox_support::{self, ce_id, reader_from_beginning};
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, TestCaseError, TestRunner};
use rdkafka::consumer::Consumer;
use rdkafka::message::Message;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Keys per case.
const KEYS: usize = 3;
/// Cases per store unless `PROPTEST_CASES` says otherwise.
const DEFAULT_CASES: u32 = 25;
/// The delivery timeout of every producer: a direct send or a relay batch to the hung
/// broker fails after this long.
const DELIVERY_TIMEOUT: Duration = Duration::from_millis(400);
/// The longest outage: the broker is woken after this long.
const MAX_OUTAGE: Duration = Duration::from_millis(2500);
/// How long the final drain may take before the case fails (rows left are lost).
const DRAIN_DEADLINE: Duration = Duration::from_secs(30);
/// How long a whole case may take before it fails as hung.
const CASE_DEADLINE: Duration = Duration::from_secs(90);
/// How long each producer may take to send what it holds at the end of a case.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(10);

/// The test event: `seq` numbers the events of one key in send order.
#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(
    type = "org.example.test.outbox.model.stepped.v1",
    topic = "outbox-model",
    key = "key"
)]
struct ModelStep {
    key: String,
    seq: i64,
}

/// How a send reaches the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SendPath {
    /// `OutboxProducer::send` (emergency mode): direct, or deferred to the outbox.
    Emergency,
    /// `TransactionalOutbox::enqueue` in a transaction that commits.
    Transactional,
}

/// One step of a program.
#[derive(Debug, Clone)]
enum Step {
    /// The key's next event, sent and awaited.
    Send { key: usize, path: SendPath },
    /// The broker hangs (SIGSTOP) `after_ms` from now: at once, or during the next step
    /// (a send or a relay batch in flight).
    BrokerDown { after_ms: u64 },
    /// The broker runs again (SIGCONT).
    BrokerUp,
    /// One batch of the application's relay, at most `batch` rows and keys.
    RelayRun { batch: usize },
    /// Two relays drain at once, `batch` rows and keys per claim.
    TwoRelays { batch: usize },
    /// A relay drains and a database error hits it `after_ms` into its run.
    DbError { after_ms: u64 },
    /// A relay task runs and is aborted `after_ms` after it started.
    Crash { after_ms: u64 },
}

fn step() -> impl Strategy<Value = Step> {
    let path = prop_oneof![
        2 => Just(SendPath::Emergency),
        1 => Just(SendPath::Transactional),
    ];
    prop_oneof![
        8 => (0..KEYS, path).prop_map(|(key, path)| Step::Send { key, path }),
        1 => prop_oneof![Just(0), 1..60u64].prop_map(|after_ms| Step::BrokerDown { after_ms }),
        1 => Just(Step::BrokerUp),
        2 => (1..4usize).prop_map(|batch| Step::RelayRun { batch }),
        1 => (1..4usize).prop_map(|batch| Step::TwoRelays { batch }),
        1 => (0..40u64).prop_map(|after_ms| Step::DbError { after_ms }),
        1 => (0..60u64).prop_map(|after_ms| Step::Crash { after_ms }),
    ]
}

fn program() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(step(), 1..16)
}

/// The relays' settings: `batch` rows and keys per claim, short retry delays (a case
/// lasts seconds), the default parking rules (an outage never parks).
fn relay_config(batch: usize) -> RelayConfig {
    RelayConfig::default()
        .with_batch_size(batch)
        .with_max_lanes_per_batch(batch)
        .with_poll_interval(Duration::from_millis(100))
        .with_retry_delays(Duration::from_millis(20), Duration::from_millis(200))
}

/// What lives as long as the test: the broker, the registry, the topic and the
/// producers (of the application, of the two other relays and of the crashing relay).
struct World {
    broker: Arc<KafkaCluster>,
    _registry: EmbeddedRegistry,
    topic: String,
    app: Producer,
    relay_a: Producer,
    relay_b: Producer,
    crashing: Producer,
    outage: Arc<Mutex<Outage>>,
    /// Outages that start during a step.
    pending_outages: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    cases: AtomicUsize,
    totals: Mutex<Totals>,
}

/// The broker's outages: whether it hangs now, and how many there were.
#[derive(Debug, Default)]
struct Outage {
    on: bool,
    count: u64,
}

/// What all cases did, for the report.
#[derive(Debug, Default)]
struct Totals {
    cases: u64,
    sends: u64,
    delivered: u64,
    deferred: BTreeMap<&'static str, u64>,
    enqueued: u64,
    refused: u64,
    relay_errors: u64,
    crashes: u64,
    duplicates: u64,
    most_duplicates: u64,
    slowest_case: Duration,
}

impl World {
    async fn start(broker: KafkaCluster, name: &str) -> Self {
        let registry = EmbeddedRegistry::start().await.expect("registry");
        let config = outbox_support::producer_config(
            broker.bootstrap_servers(),
            Some("200"),
            &registry,
            "outbox-order-model",
            &unique_topic(name),
            DELIVERY_TIMEOUT,
        );
        let topic = config.full_topic(ModelStep::TOPIC);
        broker.create_topic(&topic, 2).await.expect("topic");
        let producer = || Producer::new(config.clone()).expect("producer");
        let app = producer();
        app.register::<ModelStep>().await.expect("schemas");
        Self {
            topic,
            relay_a: producer(),
            relay_b: producer(),
            crashing: producer(),
            app,
            broker: Arc::new(broker),
            _registry: registry,
            outage: Arc::default(),
            pending_outages: Mutex::default(),
            cases: AtomicUsize::new(0),
            totals: Mutex::new(Totals::default()),
        }
    }

    /// Hangs the broker (SIGSTOP) `after` from now (at once when zero), for at most
    /// [`MAX_OUTAGE`].
    fn broker_down(&self, after: Duration) {
        let (broker, outage) = (self.broker.clone(), self.outage.clone());
        if after.is_zero() {
            pause(broker, outage);
            return;
        }
        let pending = tokio::spawn(async move {
            tokio::time::sleep(after).await;
            pause(broker, outage);
        });
        self.pending_outages
            .lock()
            .expect("pending outages")
            .push(pending);
    }

    /// Waits for the outages still to start, then ends the outage.
    async fn settle(&self) {
        let pending = std::mem::take(&mut *self.pending_outages.lock().expect("pending outages"));
        for outage in pending {
            outage.await.expect("outage task");
        }
        self.broker_up();
    }

    /// Lets the broker run again (SIGCONT).
    fn broker_up(&self) {
        wake(&self.broker, &self.outage, None);
    }

    /// Waits until every producer has nothing queued or in flight.
    async fn flush(&self) {
        for producer in [&self.app, &self.relay_a, &self.relay_b, &self.crashing] {
            let kafka = producer.kafka().clone();
            tokio::task::spawn_blocking(move || kafka.flush(FLUSH_TIMEOUT))
                .await
                .expect("flush thread")
                .expect("producer flushed");
        }
    }

    /// Every record of the topic: (partition, offset, `ce_id`), up to the end.
    async fn read_topic(&self) -> Vec<(i32, i64, Uuid)> {
        let (bootstrap, topic) = (
            self.broker.bootstrap_servers().to_owned(),
            self.topic.clone(),
        );
        tokio::task::spawn_blocking(move || {
            let consumer = reader_from_beginning(
                &bootstrap,
                "outbox-order-model-reader",
                &topic,
                Duration::from_secs(10),
            );
            let mut ends = HashMap::new();
            for partition in 0..2 {
                let (_, high) = consumer
                    .fetch_watermarks(&topic, partition, Duration::from_secs(10))
                    .expect("watermarks");
                ends.insert(partition, high);
            }
            let deadline = Instant::now() + Duration::from_secs(30);
            let mut next: HashMap<i32, i64> = HashMap::new();
            let mut records = Vec::new();
            while ends
                .iter()
                .any(|(p, high)| next.get(p).copied().unwrap_or(0) < *high)
            {
                assert!(Instant::now() < deadline, "topic not read to its end");
                if let Some(message) = consumer.poll(Duration::from_millis(100)) {
                    let message = message.expect("consume");
                    next.insert(message.partition(), message.offset() + 1);
                    records.push((message.partition(), message.offset(), ce_id(&message)));
                }
            }
            records.sort_unstable();
            records
        })
        .await
        .expect("reader thread")
    }
}

/// Hangs the broker unless it hangs already; a task wakes it after [`MAX_OUTAGE`], whatever
/// step runs then (a drain retries for as long as the broker hangs).
fn pause(broker: Arc<KafkaCluster>, state: Arc<Mutex<Outage>>) {
    let mut outage = state.lock().expect("outage");
    if outage.on {
        return;
    }
    broker.pause_node(0).expect("SIGSTOP the broker");
    outage.on = true;
    outage.count += 1;
    let this = outage.count;
    drop(outage);
    tokio::spawn(async move {
        tokio::time::sleep(MAX_OUTAGE).await;
        wake(&broker, &state, Some(this));
    });
}

/// Ends the outage (only outage number `only`, when given).
fn wake(broker: &KafkaCluster, outage: &Mutex<Outage>, only: Option<u64>) {
    let mut outage = outage.lock().expect("outage");
    if outage.on && only.is_none_or(|n| n == outage.count) {
        broker.resume_node(0).expect("SIGCONT the broker");
        outage.on = false;
    }
}

/// The stores of one case: the application's, and those of the other relays (on
/// PostgreSQL pools of their own, named after them; on SQLite clones of the
/// application's, since one process relays a file).
struct Stores<S> {
    app: Arc<S>,
    relay_a: Arc<S>,
    relay_b: Arc<S>,
    crashing: Arc<S>,
}

/// What differs between the stores: opening a case's database, a transaction, the
/// database error.
trait Backend {
    type Store: TransactionalStore;
    /// What the case's database needs until it is removed.
    type Cleanup;

    async fn open(&self) -> (Stores<Self::Store>, Self::Cleanup);

    async fn begin(
        store: &Self::Store,
    ) -> sqlx::Transaction<'static, <Self::Store as TransactionalStore>::Database>;

    /// Runs a relay whose database fails `after` into its run; returns whether the run
    /// ended with an error.
    async fn db_error(stores: &Stores<Self::Store>, producer: &Producer, after: Duration) -> bool;

    async fn close(stores: Stores<Self::Store>, cleanup: Self::Cleanup);
}

struct Postgres;

impl Backend for Postgres {
    type Store = PostgresOutbox;
    type Cleanup = TestDatabase;

    async fn open(&self) -> (Stores<PostgresOutbox>, TestDatabase) {
        let db = TestDatabase::create().await.expect("database");
        let app = outbox_support::pg_store(&db, 8, None).await;
        let own = |name: &'static str| {
            let options = db.connect_options().clone().application_name(name);
            async move {
                let pool = sqlx::postgres::PgPoolOptions::new()
                    .max_connections(4)
                    .connect_with(options)
                    .await
                    .expect("relay pool");
                Arc::new(PostgresOutbox::new(pool))
            }
        };
        let stores = Stores {
            app: Arc::new(app),
            relay_a: own("relay-a").await,
            relay_b: own("relay-b").await,
            crashing: own("relay-crashing").await,
        };
        (stores, db)
    }

    async fn begin(store: &PostgresOutbox) -> sqlx::Transaction<'static, sqlx::Postgres> {
        store.pool().begin().await.expect("begin")
    }

    async fn db_error(
        stores: &Stores<PostgresOutbox>,
        producer: &Producer,
        after: Duration,
    ) -> bool {
        let relay = Relay::new(stores.relay_a.clone(), producer.clone(), relay_config(2));
        let run = tokio::spawn(async move { relay.drain().await });
        tokio::time::sleep(after).await;
        sqlx::query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND application_name = 'relay-a'",
        )
        .execute(stores.app.pool())
        .await
        .expect("terminate the relay's connections");
        run.await.expect("relay task").is_err()
    }

    async fn close(stores: Stores<PostgresOutbox>, db: TestDatabase) {
        for store in [stores.app, stores.relay_a, stores.relay_b, stores.crashing] {
            store.pool().close().await;
        }
        db.drop_database().await.expect("drop");
    }
}

struct Sqlite;

/// The SQLite database error: triggers that make the relay's writes fail (deleting
/// published rows, recording failed attempts).
const FAILING_WRITES: [(&str, &str); 2] = [
    ("model_delete_fails", "DELETE"),
    ("model_update_fails", "UPDATE"),
];

/// The SQLite file of a case, removed (with its WAL files) at the end.
struct SqliteFile(std::path::PathBuf);

impl Drop for SqliteFile {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut path = self.0.clone().into_os_string();
            path.push(suffix);
            let _ = std::fs::remove_file(path);
        }
    }
}

impl Backend for Sqlite {
    type Store = SqliteOutbox;
    type Cleanup = SqliteFile;

    async fn open(&self) -> (Stores<SqliteOutbox>, SqliteFile) {
        let file = SqliteFile(
            std::env::temp_dir().join(format!("outbox-order-model-{}.db", Uuid::new_v4())),
        );
        let store = SqliteOutbox::connect(&format!("sqlite:{}", file.0.display()))
            .await
            .expect("sqlite");
        store.migrate().await.expect("migrate");
        let store = Arc::new(store);
        let stores = Stores {
            app: store.clone(),
            relay_a: store.clone(),
            relay_b: store.clone(),
            crashing: store,
        };
        (stores, file)
    }

    async fn begin(store: &SqliteOutbox) -> sqlx::Transaction<'static, sqlx::Sqlite> {
        store.pool().begin().await.expect("begin")
    }

    async fn db_error(stores: &Stores<SqliteOutbox>, producer: &Producer, after: Duration) -> bool {
        let relay = Relay::new(stores.relay_a.clone(), producer.clone(), relay_config(2));
        let run = tokio::spawn(async move { relay.drain().await });
        tokio::time::sleep(after).await;
        let pool = stores.app.pool();
        for (name, event) in FAILING_WRITES {
            sqlx::query(&format!(
                "CREATE TRIGGER {name} BEFORE {event} ON event_bus_outbox \
                 BEGIN SELECT RAISE(ABORT, 'injected by the model test'); END"
            ))
            .execute(pool)
            .await
            .expect("trigger");
        }
        let failed = run.await.expect("relay task").is_err();
        for (name, _) in FAILING_WRITES {
            sqlx::query(&format!("DROP TRIGGER {name}"))
                .execute(pool)
                .await
                .expect("drop trigger");
        }
        failed
    }

    async fn close(stores: Stores<SqliteOutbox>, file: SqliteFile) {
        stores.app.pool().close().await;
        drop(file);
    }
}

/// One event the program sent.
#[derive(Debug)]
struct Sent {
    key: usize,
    seq: i64,
    /// Whether the SDK acknowledged it (it must then reach the topic).
    acked: bool,
}

/// One case: the model (what was sent) and the SDK objects the steps use.
struct Case<'w, B: Backend> {
    world: &'w World,
    stores: Stores<B::Store>,
    producer: OutboxProducer<B::Store>,
    outbox: TransactionalOutbox<B::Store>,
    prefix: String,
    sent: HashMap<Uuid, Sent>,
    next_seq: [i64; KEYS],
    log: Log,
}

/// What each step did, with the time since the case started: for the failure message,
/// and printed as it happens when `OUTBOX_MODEL_TRACE` is set.
#[derive(Debug, Clone)]
struct Log {
    started: Instant,
    lines: Arc<Mutex<Vec<String>>>,
    trace: bool,
}

impl Log {
    fn new() -> Self {
        Self {
            started: Instant::now(),
            lines: Arc::default(),
            trace: std::env::var_os("OUTBOX_MODEL_TRACE").is_some(),
        }
    }

    fn push(&self, line: impl Into<String>) {
        let line = format!(
            "{:>6} ms {}",
            self.started.elapsed().as_millis(),
            line.into()
        );
        if self.trace {
            eprintln!("{line}");
        }
        self.lines.lock().expect("log").push(line);
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().expect("log").clone()
    }
}

impl<'w, B: Backend> Case<'w, B> {
    async fn send(&mut self, key: usize, path: SendPath) {
        let seq = self.next_seq[key];
        self.next_seq[key] += 1;
        let event = ModelStep {
            key: format!("{}-k{key}", self.prefix),
            seq,
        };
        let record = self
            .world
            .app
            .encoder()
            .encode(&event, None, None)
            .await
            .expect("encode");
        let acked = match path {
            SendPath::Emergency => self.send_direct(&record).await,
            SendPath::Transactional => self.enqueue(&record).await,
        };
        self.sent.insert(record.event_id, Sent { key, seq, acked });
    }

    async fn send_direct(&mut self, record: &EncodedRecord) -> bool {
        let outcome = self.producer.send_encoded(record).await;
        let mut totals = self.world.totals.lock().expect("totals");
        totals.sends += 1;
        match outcome {
            Ok(SendOutcome::Delivered(_)) => {
                totals.delivered += 1;
                self.log.push("delivered");
                true
            }
            Ok(SendOutcome::Deferred { reason, .. }) => {
                *totals.deferred.entry(reason.as_str()).or_default() += 1;
                self.log.push(format!("deferred ({})", reason.as_str()));
                true
            }
            Err(error) => {
                totals.refused += 1;
                self.log.push(format!("refused: {error}"));
                false
            }
        }
    }

    async fn enqueue(&mut self, record: &EncodedRecord) -> bool {
        let mut tx = B::begin(&self.stores.app).await;
        let stored = self.outbox.enqueue_encoded(&mut tx, record).await;
        let committed = match stored {
            Ok(_) => tx.commit().await.map_err(|e| e.to_string()),
            Err(error) => Err(error.to_string()),
        };
        let mut totals = self.world.totals.lock().expect("totals");
        totals.sends += 1;
        match committed {
            Ok(()) => {
                totals.enqueued += 1;
                self.log.push("enqueued");
                true
            }
            Err(error) => {
                totals.refused += 1;
                self.log.push(format!("not enqueued: {error}"));
                false
            }
        }
    }

    async fn run(&mut self, step: &Step) {
        self.log.push(format!("{step:?}:"));
        match *step {
            Step::Send { key, path } => self.send(key, path).await,
            Step::BrokerDown { after_ms } => {
                self.world.broker_down(Duration::from_millis(after_ms))
            }
            Step::BrokerUp => self.world.broker_up(),
            Step::RelayRun { batch } => {
                let result = self.producer.relay(relay_config(batch)).run_once().await;
                self.relay_result("relay", result.map(|r| r.published));
            }
            Step::TwoRelays { batch } => {
                let a = Relay::new(
                    self.stores.relay_a.clone(),
                    self.world.relay_a.clone(),
                    relay_config(batch),
                );
                let b = Relay::new(
                    self.stores.relay_b.clone(),
                    self.world.relay_b.clone(),
                    relay_config(batch),
                );
                let (a, b) = tokio::join!(a.drain(), b.drain());
                self.relay_result("relay a", a.map(|s| s.published));
                self.relay_result("relay b", b.map(|s| s.published));
            }
            Step::DbError { after_ms } => {
                let failed = B::db_error(
                    &self.stores,
                    &self.world.relay_a,
                    Duration::from_millis(after_ms),
                )
                .await;
                if failed {
                    self.world.totals.lock().expect("totals").relay_errors += 1;
                }
                self.log.push(format!("relay failed: {failed}"));
            }
            Step::Crash { after_ms } => {
                let handle = Relay::new(
                    self.stores.crashing.clone(),
                    self.world.crashing.clone(),
                    relay_config(2),
                )
                .spawn();
                tokio::time::sleep(Duration::from_millis(after_ms)).await;
                let finished = handle.is_finished();
                handle.abort();
                self.world.totals.lock().expect("totals").crashes += 1;
                self.log.push(format!("aborted (had ended: {finished})"));
            }
        }
    }

    fn relay_result(
        &mut self,
        name: &str,
        result: Result<u64, event_bus_kafka::outbox::OutboxError>,
    ) {
        match result {
            Ok(published) => self.log.push(format!("{name} published {published}")),
            Err(error) => {
                self.world.totals.lock().expect("totals").relay_errors += 1;
                self.log.push(format!("{name} failed: {error}"));
            }
        }
    }

    /// Brings everything up, drains the outbox, flushes the producers and checks the
    /// topic against the model; returns the number of duplicates.
    async fn finish(&mut self) -> Result<u64, String> {
        self.log.push("finish: broker up, drain");
        self.world.settle().await;
        let relay = self.producer.relay(relay_config(100));
        let deadline = Instant::now() + DRAIN_DEADLINE;
        loop {
            let drained = relay.drain().await;
            let status = self.stores.app.status(5).await.expect("status");
            if status.is_empty() {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "the outbox did not drain ({drained:?}); rows left: {status:?}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.log.push("drained; flushing the producers");
        self.world.flush().await;
        let on_topic = self.world.read_topic().await;
        self.log
            .push(format!("{} records on the topic", on_topic.len()));
        check(&self.sent, on_topic.iter().map(|(_, _, id)| *id))
    }
}

/// The invariants: every acknowledged event is on the topic, and per key the first
/// occurrences come in send order. Records of other cases (other keys) are skipped.
/// Returns the number of duplicates.
fn check(sent: &HashMap<Uuid, Sent>, on_topic: impl Iterator<Item = Uuid>) -> Result<u64, String> {
    let mut first_seen = HashSet::new();
    let mut duplicates = 0u64;
    let mut per_key: BTreeMap<usize, Vec<i64>> = BTreeMap::new();
    for id in on_topic {
        let Some(event) = sent.get(&id) else {
            continue;
        };
        if first_seen.insert(id) {
            per_key.entry(event.key).or_default().push(event.seq);
        } else {
            duplicates += 1;
        }
    }
    let mut lost: Vec<(usize, i64)> = sent
        .iter()
        .filter(|(id, event)| event.acked && !first_seen.contains(*id))
        .map(|(_, event)| (event.key, event.seq))
        .collect();
    lost.sort_unstable();
    if !lost.is_empty() {
        return Err(format!("acknowledged events lost (key, seq): {lost:?}"));
    }
    for (key, seqs) in &per_key {
        if seqs.windows(2).any(|w| w[0] >= w[1]) {
            return Err(format!(
                "key {key}: first occurrences on the topic in the order {seqs:?}"
            ));
        }
    }
    Ok(duplicates)
}

/// Runs one program as a case of its own: fresh database, its own keys.
async fn run_case<B: Backend>(world: &World, backend: &B, steps: &[Step]) -> Result<(), String> {
    let started = Instant::now();
    let number = world.cases.fetch_add(1, Ordering::Relaxed);
    let (stores, cleanup) = backend.open().await;
    let producer = OutboxProducer::new(
        world.app.clone(),
        stores.app.clone(),
        EmergencyConfig::default().with_probe_interval(Duration::from_millis(500)),
    );
    let outbox = TransactionalOutbox::new(world.app.encoder().clone(), stores.app.clone());
    let mut case = Case::<B> {
        world,
        stores,
        producer,
        outbox,
        prefix: format!("c{number}"),
        sent: HashMap::new(),
        next_seq: [0; KEYS],
        log: Log::new(),
    };
    let log = case.log.clone();
    let program = async {
        for step in steps {
            case.run(step).await;
        }
        case.finish().await
    };
    let checked = match tokio::time::timeout(CASE_DEADLINE, program).await {
        Ok(checked) => checked,
        Err(_) => {
            world.settle().await;
            Err(format!("the case did not end within {CASE_DEADLINE:?}"))
        }
    };
    let log = log.lines();
    let Case { stores, .. } = case;
    B::close(stores, cleanup).await;
    eprintln!(
        "outbox order model: case {number}, {} steps, {:?}: {}",
        steps.len(),
        started.elapsed(),
        match &checked {
            Ok(duplicates) => format!("ok, {duplicates} duplicates"),
            Err(error) => format!("FAILED: {error}"),
        }
    );
    let duplicates = checked.map_err(|error| format!("{error}\nsteps and outcomes: {log:#?}"))?;
    let mut totals = world.totals.lock().expect("totals");
    totals.cases += 1;
    totals.duplicates += duplicates;
    totals.most_duplicates = totals.most_duplicates.max(duplicates);
    totals.slowest_case = totals.slowest_case.max(started.elapsed());
    Ok(())
}

fn config() -> Config {
    let default = Config::default();
    let cases = if std::env::var_os("PROPTEST_CASES").is_some() {
        default.cases
    } else {
        DEFAULT_CASES
    };
    Config {
        cases,
        // Every shrinking step is a case of real I/O.
        max_shrink_iters: 48,
        source_file: Some(file!()),
        // Relative to the crate (the tests' working directory): tests/proptest-regressions.
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/outbox_order_model.txt",
        ))),
        ..default
    }
}

/// Starts the test's own broker (it is paused and resumed, so it cannot be shared) and
/// runs `f` with the world and a runtime.
fn with_world<B: Backend>(name: &str, f: impl FnOnce(&tokio::runtime::Runtime, &World)) {
    let started = Instant::now();
    let broker = KafkaCluster::start(1).expect("Apache Kafka (run scripts/install-test-deps)");
    eprintln!(
        "outbox order model: broker started in {:?}",
        started.elapsed()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let world = runtime.block_on(World::start(broker, name));
    f(&runtime, &world);
    world.broker_up();
}

/// Runs the model's random programs against backend `B`.
fn run_model<B: Backend>(name: &str, backend: B) {
    with_world::<B>(name, |runtime, world| {
        let started = Instant::now();
        let mut runner = TestRunner::new(config());
        let result = runner.run(&program(), |steps| {
            runtime
                .block_on(run_case(world, &backend, &steps))
                .map_err(TestCaseError::fail)
        });
        println!(
            "outbox order model ({name}): {:?}, {} outages, in {:?}",
            world.totals.lock().expect("totals"),
            world.outage.lock().expect("outage").count,
            started.elapsed()
        );
        if let Err(error) = result {
            panic!("{error}");
        }
    });
}

/// Replays one program (a shrunk failing case) against backend `B`.
#[allow(dead_code)]
fn replay<B: Backend>(name: &str, backend: B, steps: &[Step]) {
    with_world::<B>(name, |runtime, world| {
        if let Err(error) = runtime.block_on(run_case(world, &backend, steps)) {
            panic!("{error}");
        }
    });
}

#[test]
fn outbox_keeps_key_order_on_postgres() {
    run_model("order-model-pg", Postgres);
}

#[test]
fn outbox_keeps_key_order_on_sqlite() {
    run_model("order-model-sqlite", Sqlite);
}

/// Found by the model (SQLite, "trigger already exists" after a relay crash): a relay
/// task aborted while it takes the SQLite relay lease (`BEGIN IMMEDIATE` on the store's
/// pool) left that transaction open on a pooled connection (sqlx 0.8 starts a
/// transaction before it builds the guard that rolls it back). Later statements on
/// that connection ran inside it and never committed — a deferred send acknowledged
/// and then lost — and it held the file's write lock. Here relays are aborted at
/// every moment of their start; after each, an event stored through the store must be
/// committed (seen by a connection of its own) within the store's busy timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aborted_sqlite_relay_leaves_no_transaction_open() {
    use sqlx::Connection;

    let file = SqliteFile(
        std::env::temp_dir().join(format!("outbox-aborted-relay-{}.db", Uuid::new_v4())),
    );
    let url = format!("sqlite:{}", file.0.display());
    let store = Arc::new(SqliteOutbox::connect(&url).await.expect("sqlite"));
    store.migrate().await.expect("migrate");
    // Nothing is published (the outbox is empty when each relay starts): no broker.
    let config = ProducerConfig::new(
        KafkaConfig::new("127.0.0.1:9"),
        RegistryConfig::new("http://127.0.0.1:9"),
    );
    let producer = Producer::new(config).expect("producer");
    let mut observer = sqlx::SqliteConnection::connect(&url)
        .await
        .expect("observer");
    for attempt in 0..300u32 {
        let relay = Relay::new(store.clone(), producer.clone(), relay_config(10)).spawn();
        for _ in 0..attempt % 13 {
            tokio::task::yield_now().await;
        }
        relay.abort();
        let record = outbox_support::raw_record("t", Some("k"), 10);
        let stored = tokio::time::timeout(Duration::from_secs(15), store.insert(&record))
            .await
            .unwrap_or_else(|_| panic!("attempt {attempt}: the insert hung"))
            .unwrap_or_else(|e| panic!("attempt {attempt}: the insert failed: {e}"));
        let seen: i64 = sqlx::query_scalar("SELECT count(*) FROM event_bus_outbox WHERE id = ?1")
            .bind(stored.0)
            .fetch_one(&mut observer)
            .await
            .expect("observer query");
        assert_eq!(
            seen, 1,
            "attempt {attempt}: row {stored:?} acknowledged but not committed"
        );
        sqlx::query("DELETE FROM event_bus_outbox")
            .execute(&mut observer)
            .await
            .unwrap_or_else(|e| panic!("attempt {attempt}: cannot write the file: {e}"));
    }
}
