//! Inbox throughput: events per second through a no-op *transactional* receiver on a
//! PostgreSQL inbox against a plain no-op receiver, same broker, same topic, same run
//! (issue 16: "report the ratio and the batching you chose").
//!
//! # What it measures
//!
//! One Apache Kafka node (KRaft, broker and controller in one JVM, started here with a
//! heap of 1024 MiB, on the same cores as the benchmark), the embedded schema registry
//! and a fresh PostgreSQL database on the local server. A topic is filled once with
//! `BENCH_EVENTS` `SessionLoginCompleted` events, one user per event, so every record
//! has a key of its own and `max_in_flight` can run that many side by side. Then, for
//! each `max_in_flight` in `BENCH_IN_FLIGHT`, runs alternate between two sides (the
//! order reverses every round), each an `EventConsumer` reading the whole topic in a
//! fresh group with one receiver:
//!
//! - **plain**: a receiver that does nothing.
//! - **inbox**: the same receiver made transactional through `Inbox::receiver` on a
//!   `PostgresInbox`: per event the inbox begins a transaction, inserts the row
//!   (group, receiver, `ce_id`) with `ON CONFLICT DO NOTHING`, runs the receiver (it
//!   writes nothing), checks that the transaction can commit (`SELECT 1`, which
//!   fails if a statement in it failed) and commits. The pool has `max_in_flight + BENCH_POOL_SPARE`
//!   connections, so no event waits for one.
//! - **tx-only** (a reference, no Kafka): `max_in_flight` tasks on the same pool run
//!   what the inbox does per event and nothing else (`BEGIN`, the store's
//!   `mark_handled` of a fresh id and `check_committable`, `COMMIT`), `BENCH_EVENTS`
//!   times in all. It is what
//!   PostgreSQL gives at that concurrency, so inbox/tx-only says how much of the
//!   database's rate the consumer keeps.
//!
//! **Batching: none.** One transaction per event and receiver, as the inbox works
//! today; throughput comes from running `max_in_flight` events (of different keys) at
//! once, each on its own pooled connection. So the inbox side pays, per event, four
//! round trips to PostgreSQL and one durable commit (a WAL flush, unless
//! `BENCH_SYNCHRONOUS_COMMIT=off`).
//!
//! Both sides reach their receiver through the same boxed async closure, which stamps
//! the time once the receiver returned (for the inbox: after the commit). A run's rate
//! is `(records − 1) / (last stamp − first stamp)`, so the group join and the first
//! record's registry lookup are left out. After every run the group's committed
//! offsets must add up to `BENCH_EVENTS`, and after an inbox run the inbox must hold
//! one row per event for the group, with every event counted as handled and none as a
//! duplicate; the table is then emptied (not timed), so every inbox run starts from
//! the same table. A delivery that failed and was retried (the machine overloaded, a
//! connection lost) stays in the run's time; the run's line says how many, and the
//! consumer's warning, printed on stderr, says why.
//!
//! It is a benchmark, not a test: nothing asserts a duration. It fails only if a run
//! does not see every record, the offsets or inbox rows are wrong, or a service cannot
//! start.
//!
//! # Running it
//!
//! ```text
//! scripts/install-test-deps   # once: Apache Kafka's jars (and Java), PostgreSQL
//! cargo bench -p event-bus-tests --bench inbox_throughput
//! BENCH_EVENTS=5000 BENCH_IN_FLIGHT=1,16,64 cargo bench -p event-bus-tests --bench inbox_throughput
//! ```
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `BENCH_EVENTS` | events on the topic, read whole by every run | 20000 |
//! | `BENCH_ROUNDS` | measured runs per side and `max_in_flight` | 3 |
//! | `BENCH_IN_FLIGHT` | comma-separated `max_in_flight` values | `1,64` |
//! | `BENCH_SIDES` | comma-separated sides, in round order: `plain`, `inbox`, `tx-only` | all three |
//! | `BENCH_WARMUP` | `0`: no discarded warm-up run of each side per `max_in_flight` | 1 |
//! | `BENCH_POOL_SPARE` | connections in the inbox's pool beyond `max_in_flight` | 4 |
//! | `BENCH_SYNCHRONOUS_COMMIT` | PostgreSQL `synchronous_commit` of the inbox's connections | the server's |
//! | `EVENT_BUS_TEST_POSTGRES_URL` | administrative PostgreSQL URL | `postgres://postgres@127.0.0.1:5432/postgres` |
//! | `EVENT_BUS_TEST_KAFKA_LIBS` | the folder of Kafka's jars (default: where `install-test-deps` puts them) | — |
//!
//! With the defaults it takes a few minutes on two cores (plus the build), most of it
//! in the inbox runs with `max_in_flight = 1`. `cargo test` and `cargo nextest` build
//! this target but never run it: without `--bench` it prints a note and exits, and it
//! lists no tests.

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use event_bus_core::{Event, EventBus, Receiver};
use event_bus_examples::openedx::{SessionLoginCompleted, UserData};
use event_bus_kafka::config::{KafkaConfig, ProducerConfig, RegistryConfig};
use event_bus_kafka::consumer::{ConsumerConfig, EventConsumer, Shutdown};
use event_bus_kafka::inbox::{
    Inbox, InboxEntry, InboxStore, PostgresInbox, ReceiverCounts, TransactionalFn,
};
use event_bus_kafka::producer::Producer;
use event_bus_testkit::kafka::KafkaCluster;
use event_bus_testkit::postgres::TestDatabase;
use event_bus_testkit::registry::EmbeddedRegistry;
use event_bus_testkit::topics::{unique_group, unique_topic};
use event_bus_tests::bench_support::{
    broker_and_runtime, check_committed, env_list, env_number, load_average, median, run_benchmark,
    BenchResult, BROKER_HEAP_MB,
};
use sqlx::postgres::PgPoolOptions;
use sqlx::Postgres;
use tokio::sync::Notify;
use uuid::Uuid;

/// How long one run may take to see every record (group join included).
const RUN_TIMEOUT: Duration = Duration::from_secs(600);
/// How long filling the topic may wait for the broker's acknowledgements.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(60);
/// The receiver's name, in the inbox rows too.
const RECEIVER: &str = "noop";

/// What the benchmark is asked to do (from `BENCH_*` variables).
#[derive(Debug, Clone)]
struct Settings {
    events: usize,
    rounds: usize,
    in_flight: Vec<usize>,
    /// The sides to run, in the order of a round (reversed every other round).
    sides: Vec<Side>,
    warm_up: bool,
    pool_spare: u32,
    synchronous_commit: Option<String>,
}

impl Settings {
    fn from_env() -> BenchResult<Self> {
        Ok(Self {
            events: env_number("BENCH_EVENTS", 20_000)?.max(2),
            rounds: env_number("BENCH_ROUNDS", 3)?.max(1),
            in_flight: env_list(
                "BENCH_IN_FLIGHT",
                vec![1, 64],
                |n| n.parse::<usize>().ok().filter(|n| *n > 0),
                "a positive number",
            )?,
            sides: env_list(
                "BENCH_SIDES",
                Side::ALL.to_vec(),
                |name| Side::ALL.into_iter().find(|side| side.name() == name),
                "one of plain, inbox, tx-only",
            )?,
            warm_up: env_number("BENCH_WARMUP", 1)? != 0,
            pool_spare: env_number("BENCH_POOL_SPARE", 4)?,
            synchronous_commit: std::env::var("BENCH_SYNCHRONOUS_COMMIT")
                .ok()
                .filter(|v| !v.trim().is_empty()),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    /// A no-op receiver.
    Plain,
    /// The same no-op receiver, in the inbox's transaction.
    Inbox,
    /// The inbox's transactions alone, without Kafka (a reference).
    TxOnly,
}

impl Side {
    const ALL: [Side; 3] = [Side::Plain, Side::Inbox, Side::TxOnly];

    fn name(self) -> &'static str {
        match self {
            Side::Plain => "plain",
            Side::Inbox => "inbox",
            Side::TxOnly => "tx-only",
        }
    }
}

/// Stamps every record once its receiver returned.
#[derive(Debug)]
struct Stamps {
    base: Instant,
    /// Nanoseconds after `base` (+1, so 0 means "not yet") of the first and last record.
    first: AtomicU64,
    last: AtomicU64,
    seen: AtomicU64,
    expected: u64,
    all_seen: Notify,
}

impl Stamps {
    fn new(expected: usize) -> Self {
        Self {
            base: Instant::now(),
            first: AtomicU64::new(0),
            last: AtomicU64::new(0),
            seen: AtomicU64::new(0),
            expected: expected as u64,
            all_seen: Notify::new(),
        }
    }

    fn stamp(&self) {
        let now = self.base.elapsed().as_nanos() as u64 + 1;
        let _ = self
            .first
            .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
        self.last.fetch_max(now, Ordering::Relaxed);
        if self.seen.fetch_add(1, Ordering::Relaxed) + 1 == self.expected {
            self.all_seen.notify_one();
        }
    }

    fn seen(&self) -> u64 {
        self.seen.load(Ordering::Relaxed)
    }

    /// Records per second after the first one.
    fn rate(&self) -> f64 {
        let window = self
            .last
            .load(Ordering::Relaxed)
            .saturating_sub(self.first.load(Ordering::Relaxed));
        self.seen().saturating_sub(1) as f64 / (window as f64 / 1e9).max(f64::EPSILON)
    }
}

/// One timed run.
#[derive(Debug, Clone, Copy)]
struct Run {
    side: Side,
    in_flight: usize,
    rate: f64,
    /// Inbox deliveries that failed and were retried (their cause is logged).
    failed: u64,
}

struct Bench {
    settings: Settings,
    broker: KafkaCluster,
    registry: EmbeddedRegistry,
    db: TestDatabase,
    /// The topic prefix and full topic name.
    prefix: String,
    topic: String,
}

fn main() -> ExitCode {
    run_benchmark("inbox_throughput", bench_main)
}

/// `" (N failed and retried)"` when N > 0.
fn retried(failed: u64) -> String {
    match failed {
        0 => String::new(),
        n => format!(" ({n} failed and retried)"),
    }
}

fn bench_main() -> BenchResult<()> {
    // Warnings (a failed inbox delivery and its cause) to stderr; RUST_LOG for more.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                // librdkafka's CONFWARN about the consumer options its DLQ producer
                // ignores would drown the rest.
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,librdkafka=error")),
        )
        .init();
    let settings = Settings::from_env()?;
    // A broker of its own (not the test run's shared one).
    let (broker, runtime) = broker_and_runtime()?;
    runtime.block_on(async move {
        let registry = EmbeddedRegistry::start().await?;
        let db = TestDatabase::create().await?;
        let prefix = unique_topic("ibench");
        let topic = format!("{prefix}-{}", SessionLoginCompleted::TOPIC);
        let bench = Bench {
            settings,
            broker,
            registry,
            db,
            prefix,
            topic,
        };
        let result = bench.run().await;
        bench.db.drop_database().await?;
        result
    })
}

impl Bench {
    async fn run(&self) -> BenchResult<()> {
        let s = &self.settings;
        println!("{}", self.header().await?);
        let fill = self.fill().await?;
        eprintln!(
            "topic {}: {} events, filled in {:.1} s",
            self.topic,
            s.events,
            fill.as_secs_f64()
        );
        let mut runs = Vec::new();
        for &in_flight in &s.in_flight {
            let inbox = Inbox::new(self.inbox_store(in_flight).await?);
            // A discarded warm-up run of each side: connections opened, caches filled.
            for &side in s.sides.iter().filter(|_| s.warm_up) {
                let run = self.run_once(side, in_flight, &inbox).await?;
                eprintln!(
                    "  max_in_flight {in_flight:>3} warm-up {:<7} {:>8.0} events/s (discarded){}",
                    side.name(),
                    run.rate,
                    retried(run.failed),
                );
            }
            for round in 0..s.rounds {
                let mut order = s.sides.clone();
                if round % 2 == 1 {
                    order.reverse();
                }
                for side in order {
                    let run = self.run_once(side, in_flight, &inbox).await?;
                    eprintln!(
                        "  max_in_flight {in_flight:>3} round {} {:<7} {:>8.0} events/s{}",
                        round + 1,
                        side.name(),
                        run.rate,
                        retried(run.failed),
                    );
                    runs.push(run);
                }
            }
            inbox.store().pool().close().await;
        }
        println!("{}", self.report(&runs));
        Ok(())
    }

    async fn header(&self) -> BenchResult<String> {
        let s = &self.settings;
        let server: String = sqlx::query_scalar("SHOW server_version")
            .fetch_one(self.db.pool())
            .await?;
        let synchronous_commit: String = sqlx::query_scalar("SHOW synchronous_commit")
            .fetch_one(self.db.pool())
            .await?;
        Ok(format!(
            "inbox throughput: no-op transactional receiver (PostgreSQL inbox) vs plain no-op receiver, \
             and the inbox's transactions alone (tx-only)\n\
             {} events, one key each, 1 partition; max_in_flight {:?}; sides {}; {} rounds{}; \
             one transaction per event and receiver (no batching); inbox pool max_in_flight + {}\n\
             broker: Apache Kafka {} (KRaft, 1 node, heap {BROKER_HEAP_MB} MiB) at {}; registry: embedded; \
             librdkafka {}\n\
             PostgreSQL {server}, synchronous_commit {}; load average {} on {} CPUs",
            s.events,
            s.in_flight,
            s.sides.iter().map(|side| side.name()).collect::<Vec<_>>().join(","),
            s.rounds,
            if s.warm_up { " (+1 warm-up)" } else { "" },
            s.pool_spare,
            self.broker.version(),
            self.broker.bootstrap_servers(),
            rdkafka::util::get_rdkafka_version().1,
            s.synchronous_commit
                .as_deref()
                .unwrap_or(&format!("{synchronous_commit} (server)")),
            load_average(),
            std::thread::available_parallelism().map_or(0, usize::from),
        ))
    }

    fn kafka(&self) -> KafkaConfig {
        KafkaConfig::new(self.broker.bootstrap_servers()).with_option("session.timeout.ms", "6000")
    }

    /// Fills the topic with `events` logins, one key each, through the SDK.
    async fn fill(&self) -> BenchResult<Duration> {
        let events = self.settings.events;
        self.broker.create_topic(&self.topic, 1).await?;
        let kafka = self
            .kafka()
            .with_option("linger.ms", "5")
            .with_option("batch.num.messages", "10000")
            .with_option(
                "queue.buffering.max.messages",
                (events + 1).max(100_000).to_string(),
            );
        let config = ProducerConfig::new(kafka, RegistryConfig::new(self.registry.url()))
            .with_service_name("inbox-bench")
            .with_topic_prefix(self.prefix.clone())
            .with_delivery_timeout(DELIVERY_TIMEOUT);
        let producer = Producer::new(config)?;
        let started = Instant::now();
        for n in 0..events {
            let mut user = UserData::example();
            user.id = n as i64;
            user.pii.username = format!("learner{n}");
            producer.enqueue(&SessionLoginCompleted { user }).await?;
        }
        producer.flush(DELIVERY_TIMEOUT).await?;
        if producer.in_flight() != 0 {
            return Err(format!("{} events in flight after flush", producer.in_flight()).into());
        }
        Ok(started.elapsed())
    }

    /// A migrated inbox store on the benchmark's database, with a pool of
    /// `in_flight + BENCH_POOL_SPARE` connections.
    async fn inbox_store(&self, in_flight: usize) -> BenchResult<PostgresInbox> {
        let size = u32::try_from(in_flight)?.saturating_add(self.settings.pool_spare);
        let store = match &self.settings.synchronous_commit {
            None => PostgresInbox::connect_with_pool_size(&self.db.url(), size).await?,
            Some(level) => {
                let options = self
                    .db
                    .connect_options()
                    .clone()
                    .options([("synchronous_commit", level.as_str())]);
                PostgresInbox::new(
                    PgPoolOptions::new()
                        .max_connections(size)
                        .connect_with(options)
                        .await?,
                )
            }
        };
        store.migrate().await?;
        Ok(store)
    }

    /// A bus with the side's receiver, stamping `stamps` once it returned.
    fn bus(
        side: Side,
        inbox: &Inbox<PostgresInbox>,
        stamps: &Arc<Stamps>,
    ) -> BenchResult<EventBus> {
        let transactional = Arc::new(inbox.receiver(
            RECEIVER,
            TransactionalFn::<SessionLoginCompleted, Postgres, _>::new(|_event, _ctx, _tx| {
                Box::pin(async { Ok(()) })
            }),
        ));
        let stamps = Arc::clone(stamps);
        let mut bus = EventBus::new();
        bus.connect_async(RECEIVER, move |event: Arc<SessionLoginCompleted>, ctx| {
            let (transactional, stamps) = (Arc::clone(&transactional), Arc::clone(&stamps));
            async move {
                if side == Side::Inbox {
                    transactional.receive(&event, &ctx).await?;
                }
                stamps.stamp();
                Ok(())
            }
        })?;
        Ok(bus)
    }

    async fn run_once(
        &self,
        side: Side,
        in_flight: usize,
        inbox: &Inbox<PostgresInbox>,
    ) -> BenchResult<Run> {
        if side == Side::TxOnly {
            return self.run_tx_only(in_flight, inbox).await;
        }
        let events = self.settings.events;
        let before = inbox.stats().receiver(RECEIVER);
        let group = unique_group(&format!("ibench-{}", side.name()));
        let stamps = Arc::new(Stamps::new(events));
        let bus = Self::bus(side, inbox, &stamps)?;
        let mut config = ConsumerConfig::new(
            self.kafka(),
            RegistryConfig::new(self.registry.url()),
            group.clone(),
            [SessionLoginCompleted::TOPIC],
        )
        .with_topic_prefix(self.prefix.clone());
        config.max_in_flight = in_flight;
        let consumer = EventConsumer::new(config, Arc::new(bus))?;
        let live = consumer.stats();
        let (trigger, shutdown) = Shutdown::new();
        let task = tokio::spawn(consumer.run(shutdown));
        let all_seen = tokio::time::timeout(RUN_TIMEOUT, stamps.all_seen.notified()).await;
        // The receiver returned for the last record; let the loop mark it done, then stop.
        let handled_deadline = Instant::now() + Duration::from_secs(10);
        while live.snapshot().records_handled < events as u64 && Instant::now() < handled_deadline {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        trigger.trigger();
        let snapshot = task.await??;
        if all_seen.is_err() || snapshot.records_handled != events as u64 {
            return Err(format!(
                "{} run, max_in_flight {in_flight}: {} of {events} records seen, {} handled",
                side.name(),
                stamps.seen(),
                snapshot.records_handled
            )
            .into());
        }
        check_committed(&self.kafka(), &group, &self.topic, self.settings.events).await?;
        let failed = match side {
            Side::Inbox => self.check_inbox(inbox, &group, before).await?,
            _ => 0,
        };
        Ok(Run {
            side,
            in_flight,
            rate: stamps.rate(),
            failed,
        })
    }

    /// `in_flight` tasks share `BENCH_EVENTS` inbox transactions (begin, the store's
    /// `mark_handled` of a fresh id and `check_committable`, commit) on the inbox's
    /// pool.
    async fn run_tx_only(
        &self,
        in_flight: usize,
        inbox: &Inbox<PostgresInbox>,
    ) -> BenchResult<Run> {
        let events = self.settings.events as u64;
        let group = Arc::new(unique_group("ibench-tx-only"));
        let next = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..in_flight {
            let (store, group, next, topic) = (
                inbox.store().clone(),
                Arc::clone(&group),
                Arc::clone(&next),
                self.topic.clone(),
            );
            tasks.spawn(async move {
                loop {
                    let offset = next.fetch_add(1, Ordering::Relaxed);
                    if offset >= events {
                        return BenchResult::Ok(());
                    }
                    let entry = InboxEntry {
                        consumer_group: &group,
                        receiver: RECEIVER,
                        ce_id: Uuid::new_v4(),
                        topic: Some(&topic),
                        partition: Some(0),
                        offset: Some(offset as i64),
                    };
                    let mut tx = store.pool().begin().await?;
                    if !store.mark_handled(&mut tx, &entry).await? {
                        return Err(format!("tx-only: {} was there already", entry.ce_id).into());
                    }
                    store.check_committable(&mut tx).await?;
                    tx.commit().await?;
                }
            });
        }
        while let Some(done) = tasks.join_next().await {
            done??;
        }
        let elapsed = started.elapsed();
        self.check_rows(inbox, &group).await?;
        Ok(Run {
            side: Side::TxOnly,
            in_flight,
            rate: events as f64 / elapsed.as_secs_f64().max(f64::EPSILON),
            failed: 0,
        })
    }

    /// The inbox counted every event as handled since `before`, none as a duplicate or
    /// a failure, and holds one row per event for `group`; returns the failures
    /// (retried, so counted in the run's time; their cause is logged).
    async fn check_inbox(
        &self,
        inbox: &Inbox<PostgresInbox>,
        group: &str,
        before: ReceiverCounts,
    ) -> BenchResult<u64> {
        let after = inbox.stats().receiver(RECEIVER);
        let (handled, duplicates, failed) = (
            after.handled - before.handled,
            after.duplicates - before.duplicates,
            after.failed - before.failed,
        );
        let events = self.settings.events as u64;
        if handled != events || duplicates != 0 {
            return Err(format!(
                "inbox run of group {group}: {handled} handled, {duplicates} duplicates, \
                 {failed} failed; {events} events"
            )
            .into());
        }
        self.check_rows(inbox, group).await?;
        Ok(failed)
    }

    /// The inbox holds `BENCH_EVENTS` rows for `group`; then it is emptied (not timed),
    /// so every run starts from the same table.
    async fn check_rows(&self, inbox: &Inbox<PostgresInbox>, group: &str) -> BenchResult<()> {
        let pool = inbox.store().pool();
        let rows: i64 =
            sqlx::query_scalar("SELECT count(*) FROM event_bus.inbox WHERE consumer_group = $1")
                .bind(group)
                .fetch_one(pool)
                .await?;
        if rows != self.settings.events as i64 {
            return Err(format!(
                "group {group}: {rows} inbox rows, {} events",
                self.settings.events
            )
            .into());
        }
        sqlx::query("TRUNCATE event_bus.inbox")
            .execute(pool)
            .await?;
        Ok(())
    }

    fn report(&self, runs: &[Run]) -> String {
        let mut out = String::from(
            "\nmax_in_flight  pool  plain ev/s  inbox ev/s  tx-only ev/s  inbox/plain  inbox/tx-only  \
             µs/event added  per round inbox/plain\n",
        );
        for &in_flight in &self.settings.in_flight {
            let rates = |side: Side| -> Vec<f64> {
                runs.iter()
                    .filter(|r| r.side == side && r.in_flight == in_flight)
                    .map(|r| r.rate)
                    .collect()
            };
            let (plain, inbox, tx_only) =
                (rates(Side::Plain), rates(Side::Inbox), rates(Side::TxOnly));
            let (plain_m, inbox_m, tx_only_m) = (median(&plain), median(&inbox), median(&tx_only));
            let per_round: Vec<String> = plain
                .iter()
                .zip(&inbox)
                .map(|(p, i)| format!("{:.4}", i / p))
                .collect();
            out.push_str(&format!(
                "{in_flight:>13}  {:>4}  {plain_m:>10.0}  {inbox_m:>10.0}  {tx_only_m:>12.0}  {:>11.4}  \
                 {:>13.3}  {:>14.1}  {}\n",
                in_flight + self.settings.pool_spare as usize,
                inbox_m / plain_m,
                inbox_m / tx_only_m,
                1e6 / inbox_m - 1e6 / plain_m,
                per_round.join(", "),
            ));
        }
        out.push_str(&format!(
            "\nmedians of {} rounds (a round runs every side once); load average {} at the end",
            self.settings.rounds,
            load_average()
        ));
        out
    }
}
