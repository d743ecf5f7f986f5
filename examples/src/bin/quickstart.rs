//! The whole mission in one run, on the embedded default: a librdkafka mock cluster and
//! the embedded schema registry in this process, a SQLite outbox and a SQLite inbox in
//! temporary files.
//!
//! ```text
//! cargo run -p event-bus-examples --bin quickstart
//! ```
//!
//! With `EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS` and `EVENT_BUS_SCHEMA_REGISTRY_URL` set it
//! runs against that cluster and registry instead (the simulated outage needs the mock
//! cluster and is skipped there). The replay step runs on either: the mock cluster has
//! no time index, so the SDK finds the offsets of a time by reading records there.

use std::error::Error;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use event_bus_examples::openedx::{
    CourseData, CourseEnrollmentCreated, CourseEnrollmentData, SessionLoginCompleted, UserData,
};
use event_bus_kafka::consumer::{
    ConsumerConfig, EventConsumer, RetryPolicy, Shutdown, StatsSnapshot,
};
use event_bus_kafka::inbox::{database_failure, Inbox, InboxStore, SqliteInbox};
use event_bus_kafka::outbox::{
    EmergencyConfig, OutboxProducer, RelayConfig, SendOutcome, SqliteOutbox,
};
use event_bus_kafka::prelude::*;
use event_bus_kafka::registry::RegistryClient;
use event_bus_kafka::replay::ResetTarget;
use event_bus_kafka::{replay, topic};
use event_bus_testkit::mock_cluster::MockKafkaCluster;
use event_bus_testkit::records::read_topic;
use event_bus_testkit::registry::EmbeddedRegistry;
use event_bus_testkit::topics::{unique_group, unique_topic};
use rdkafka::message::{Headers, Message};

type Outcome<T = ()> = Result<T, Box<dyn Error + Send + Sync>>;

const WAIT: Duration = Duration::from_secs(60);

/// The steps the quickstart walks through.
const STEPS: u32 = 8;

/// Where the quickstart runs: the embedded stack, or a real cluster from the environment.
struct Stack {
    bootstrap_servers: String,
    registry_url: String,
    cluster: Option<MockKafkaCluster>,
    _registry: Option<EmbeddedRegistry>,
    prefix: String,
}

impl Stack {
    async fn start() -> Outcome<Self> {
        let prefix = unique_topic("quickstart");
        let from_env = (
            std::env::var("EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS").ok(),
            std::env::var("EVENT_BUS_SCHEMA_REGISTRY_URL").ok(),
        );
        if let (Some(bootstrap_servers), Some(registry_url)) = from_env {
            println!(
                "Using the cluster at {bootstrap_servers} and the registry at {} (from the environment).",
                event_bus_kafka::config::secret::redact_url(&registry_url)
            );
            return Ok(Self {
                bootstrap_servers,
                registry_url,
                cluster: None,
                _registry: None,
                prefix,
            });
        }
        let cluster = MockKafkaCluster::start(1)?;
        let registry = EmbeddedRegistry::start().await?;
        println!(
            "Embedded dev stack: mock Kafka cluster at {}, schema registry at {}.",
            cluster.bootstrap_servers(),
            registry.url()
        );
        Ok(Self {
            bootstrap_servers: cluster.bootstrap_servers().to_owned(),
            registry_url: registry.url(),
            cluster: Some(cluster),
            _registry: Some(registry),
            prefix,
        })
    }

    fn kafka(&self) -> KafkaConfig {
        KafkaConfig::new(&self.bootstrap_servers)
            .with_option("reconnect.backoff.max.ms", "500")
            .with_option("session.timeout.ms", "6000")
    }

    fn producer_config(&self) -> ProducerConfig {
        self.producer_config_for(&self.prefix)
    }

    fn producer_config_for(&self, prefix: &str) -> ProducerConfig {
        ProducerConfig::new(self.kafka(), RegistryConfig::new(&self.registry_url))
            .with_service_name("quickstart")
            .with_topic_prefix(prefix)
            .with_delivery_timeout(Duration::from_secs(2))
    }

    /// A consumer of the login topic under `prefix`, in `group`.
    fn login_consumer_config(&self, prefix: &str, group: &str) -> ConsumerConfig {
        ConsumerConfig::new(
            self.kafka(),
            RegistryConfig::new(&self.registry_url),
            group,
            [SessionLoginCompleted::TOPIC],
        )
        .with_topic_prefix(prefix)
    }

    fn create_topics(&self, topics: &[String]) -> Outcome {
        if let Some(cluster) = &self.cluster {
            for topic in topics {
                cluster.create_topic(topic, 1)?;
            }
        }
        Ok(())
    }
}

/// A SQLite database file of the quickstart's own in the temporary folder.
struct TempSqlite {
    path: std::path::PathBuf,
}

impl TempSqlite {
    fn new(name: &str) -> Self {
        Self {
            path: std::env::temp_dir().join(format!("{}.db", unique_topic(name))),
        }
    }

    fn url(&self) -> String {
        format!("sqlite:{}", self.path.display())
    }
}

impl Drop for TempSqlite {
    /// Removes the file and SQLite's journal files next to it.
    fn drop(&mut self) {
        for suffix in ["db", "db-wal", "db-shm"] {
            let _ = std::fs::remove_file(self.path.with_extension(suffix));
        }
    }
}

/// Runs a consumer of `bus` until `done` holds for its stats (or [`WAIT`] passes), then
/// shuts it down and returns its final stats.
async fn consume_until(
    config: ConsumerConfig,
    bus: Arc<EventBus>,
    done: impl Fn(&StatsSnapshot) -> bool,
) -> Outcome<StatsSnapshot> {
    let consumer = EventConsumer::new(config, bus)?;
    let live = consumer.stats();
    let (trigger, shutdown) = Shutdown::new();
    let task = tokio::spawn(consumer.run(shutdown));
    let started = std::time::Instant::now();
    while !done(&live.snapshot()) && started.elapsed() < WAIT {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    trigger.trigger();
    Ok(task.await??)
}

fn step(n: u32, title: &str) {
    println!("\n[{n}/{STEPS}] {title}");
}

fn user(id: i64, username: &str) -> UserData {
    let mut user = UserData::example();
    user.id = id;
    user.pii.username = username.to_owned();
    user
}

fn login(id: i64, username: &str) -> SessionLoginCompleted {
    SessionLoginCompleted {
        user: user(id, username),
    }
}

fn enrollment(id: i64) -> CourseEnrollmentCreated {
    CourseEnrollmentCreated {
        enrollment: CourseEnrollmentData {
            user: user(id, "ada"),
            course: CourseData {
                course_key: "course-v1:Example+Rust101+2026".into(),
                display_name: "Rust for event buses".into(),
                start: None,
                end: None,
            },
            mode: "audit".into(),
            is_active: true,
            creation_date: chrono::Utc::now(),
            created_by: None,
        },
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => {
            println!("\nDone. Every step above ran against real clients; see README.md for the next steps.");
            std::process::ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("\nquickstart failed: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Outcome {
    step(1, "Starting");
    let stack = Stack::start().await?;
    let login_topic = topic::full_topic(Some(&stack.prefix), SessionLoginCompleted::TOPIC);
    let enrollment_topic = topic::full_topic(Some(&stack.prefix), CourseEnrollmentCreated::TOPIC);
    let dlq_topic = format!("{login_topic}.dlq");
    stack.create_topics(&[
        login_topic.clone(),
        enrollment_topic.clone(),
        dlq_topic.clone(),
    ])?;

    step(2, "Registering two event types under FULL_TRANSITIVE");
    let producer = Producer::new(stack.producer_config())?;
    let registry = RegistryClient::new(RegistryConfig::new(&stack.registry_url))?;
    for (event_type, full_topic, ids) in [
        (
            SessionLoginCompleted::EVENT_TYPE,
            &login_topic,
            producer.register::<SessionLoginCompleted>().await?,
        ),
        (
            CourseEnrollmentCreated::EVENT_TYPE,
            &enrollment_topic,
            producer.register::<CourseEnrollmentCreated>().await?,
        ),
    ] {
        let subject = topic::value_subject(full_topic, event_type);
        let level = registry.compatibility(&subject).await?;
        println!(
            "  {subject}: schema id {}, key schema id {:?}, compatibility {}",
            ids.value_id,
            ids.key_id,
            level.map(|l| l.to_string()).unwrap_or_default()
        );
    }

    step(
        3,
        "Sending events; each send waits for the broker's acknowledgement",
    );
    for event in [login(1, "ada"), login(2, "grace")] {
        let delivery = producer.send(&event).await?;
        println!(
            "  login of {} delivered to {delivery}",
            event.user.pii.username
        );
    }
    let delivery = producer.send(&enrollment(1)).await?;
    println!("  enrollment delivered to {delivery}");

    step(
        4,
        "A broker outage: sends go to the emergency outbox and are relayed in key order",
    );
    broker_outage(&stack, &producer, &login_topic).await?;

    step(5, "A consumer with three receivers; one fails on one event");
    let group = unique_group("quickstart");
    let stats = consume(&stack, &group, &login_topic).await?;
    println!(
        "  handled {} records: {} dead-lettered, {} receiver still failing after its retries",
        stats.records_handled, stats.records_dead_lettered, stats.receiver_failures
    );
    let letters = read_topic(
        &stack.bootstrap_servers,
        &dlq_topic,
        1,
        Duration::from_secs(10),
    )?;
    for letter in &letters {
        let headers = letter.headers().map(|h| {
            h.iter()
                .filter(|x| x.key.starts_with("dlq_"))
                .map(|x| {
                    format!(
                        "{}={}",
                        x.key,
                        String::from_utf8_lossy(x.value.unwrap_or_default())
                    )
                })
                .collect::<Vec<_>>()
        });
        println!(
            "  dead letter at {dlq_topic}@{}: {}",
            letter.offset(),
            headers.unwrap_or_default().join(", ")
        );
    }

    step(
        6,
        "Offsets were committed only after each event was handled",
    );
    let admin = replay::OffsetAdmin::new(&stack.kafka(), &group)?;
    for p in admin.offsets(std::slice::from_ref(&login_topic)).await? {
        println!(
            "  group {group}: {}[{}] committed {:?}, end {}, lag {:?}",
            p.topic,
            p.partition,
            p.committed,
            p.latest,
            p.lag()
        );
    }

    step(7, "Replay from a timestamp");
    replay_from_timestamp(&stack).await?;

    step(
        8,
        "The inbox: one event delivered twice, its effect in the database once",
    );
    inbox_skips_duplicates(&stack).await
}

async fn broker_outage(stack: &Stack, producer: &Producer, login_topic: &str) -> Outcome {
    let Some(cluster) = &stack.cluster else {
        println!(
            "  skipped: a real cluster cannot be taken down from here (the mock cluster can)."
        );
        return Ok(());
    };
    let file = TempSqlite::new("quickstart-outbox");
    let store = Arc::new(SqliteOutbox::connect(&file.url()).await?);
    store.migrate().await?;
    println!("  outbox: SQLite at {}", file.path.display());
    let outbox = OutboxProducer::new(producer.clone(), store.clone(), EmergencyConfig::default());
    let before = read_topic(
        &stack.bootstrap_servers,
        login_topic,
        100,
        Duration::from_secs(3),
    )?
    .len();
    cluster.broker_down(1)?;
    println!("  broker 1 is down");
    let mut sent = Vec::new();
    for n in 1..=3 {
        for name in ["ann", "bob"] {
            let event = login(100 + n, name);
            let outcome = outbox.send(&event).await?;
            let shown = match &outcome {
                SendOutcome::Delivered(d) => format!("delivered to {d}"),
                SendOutcome::Deferred {
                    outbox_id, reason, ..
                } => format!("deferred to outbox row {outbox_id} ({reason:?})"),
            };
            println!("  {name} #{n}: {shown}");
            sent.push((name, 100 + n));
        }
    }
    cluster.broker_up(1)?;
    println!("  broker 1 is back; draining the outbox");
    let stats = outbox.relay(RelayConfig::default()).drain().await?;
    println!("  relay published {} events", stats.published);
    let records = read_topic(
        &stack.bootstrap_servers,
        login_topic,
        before + sent.len(),
        WAIT,
    )?;
    let mut order: std::collections::BTreeMap<String, Vec<i64>> = Default::default();
    for record in records.iter().skip(before) {
        let (_, datum) = event_bus_core::codec::unframe(record.payload().unwrap_or_default())?;
        let event = SessionLoginCompleted::from_avro_datum(datum, SessionLoginCompleted::schema())?;
        order
            .entry(event.user.pii.username)
            .or_default()
            .push(event.user.id);
    }
    for (name, ids) in &order {
        println!("  on the topic, {name}: {ids:?}");
    }
    let in_order = order
        .values()
        .all(|ids| ids.windows(2).all(|w| w[0] < w[1]));
    println!("  every key in send order: {in_order}");
    store.pool().close().await;
    Ok(())
}

async fn consume(stack: &Stack, group: &str, login_topic: &str) -> Outcome<StatsSnapshot> {
    let expected = read_topic(
        &stack.bootstrap_servers,
        login_topic,
        100,
        Duration::from_secs(3),
    )?
    .len() as u64;
    let audit = Arc::new(AtomicUsize::new(0));
    let index = Arc::new(AtomicUsize::new(0));
    let mut bus = EventBus::new();
    let audit2 = Arc::clone(&audit);
    bus.connect_fn("audit", move |_: &SessionLoginCompleted, ctx| {
        audit2.fetch_add(1, Ordering::SeqCst);
        let _ = ctx;
        Ok(())
    })?;
    let index2 = Arc::clone(&index);
    bus.connect_fn("search-index", move |_: &SessionLoginCompleted, _| {
        index2.fetch_add(1, Ordering::SeqCst);
        Ok(())
    })?;
    bus.connect_fn("crm", |event: &SessionLoginCompleted, ctx| {
        if event.user.pii.username == "grace" {
            println!("  crm failed on grace's login (attempt {})", ctx.attempt);
            return Err(ReceiverError::new("CRM answered 503"));
        }
        Ok(())
    })?;
    let mut config = stack
        .login_consumer_config(&stack.prefix, group)
        .with_retry(RetryPolicy {
            max_attempts: 3,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(400),
            max_elapsed: Duration::from_secs(10),
        });
    config.commit_interval = Duration::from_millis(200);
    let stats = consume_until(config, Arc::new(bus), |s| s.records_handled >= expected).await?;
    println!(
        "  audit saw {} events, search-index {} (each once), crm all but the dead-lettered one",
        audit.load(Ordering::SeqCst),
        index.load(Ordering::SeqCst)
    );
    Ok(stats)
}

async fn replay_from_timestamp(stack: &Stack) -> Outcome {
    let kafka = stack.kafka();
    if stack.cluster.is_some() {
        println!("  the mock cluster has no time index: the offsets of the time are found by reading records");
    }
    let prefix = unique_topic("replay");
    let full_topic = topic::full_topic(Some(&prefix), SessionLoginCompleted::TOPIC);
    stack.create_topics(std::slice::from_ref(&full_topic))?;
    let config = ProducerConfig::new(kafka.clone(), RegistryConfig::new(&stack.registry_url))
        .with_topic_prefix(prefix.clone());
    let producer = Producer::new(config)?;
    for n in 1..=5 {
        producer.send(&login(n, "ada")).await?;
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let middle = chrono::Utc::now();
    for n in 6..=10 {
        producer.send(&login(n, "ada")).await?;
    }
    println!(
        "  sent logins 1..=10; logins 6..=10 were sent after {}",
        middle.to_rfc3339()
    );
    let group = unique_group("replay");
    let first = replay_pass(stack, &prefix, &group, 10).await?;
    println!("  first pass saw {first:?}");
    let plan = replay::reset_group_to_datetime(&kafka, &group, &[full_topic], middle).await?;
    for p in plan.partitions.iter().filter(|p| p.new != p.current) {
        println!(
            "  group reset: {}[{}] from {:?} to {:?}",
            p.topic, p.partition, p.current, p.new
        );
    }
    let again = replay_pass(stack, &prefix, &group, 5).await?;
    println!("  after the reset the group saw again {again:?}");
    Ok(())
}

async fn replay_pass(
    stack: &Stack,
    prefix: &str,
    group: &str,
    expected: usize,
) -> Outcome<Vec<i64>> {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut bus = EventBus::new();
    let seen2 = Arc::clone(&seen);
    bus.connect_fn("replayed", move |event: &SessionLoginCompleted, _| {
        if let Ok(mut seen) = seen2.lock() {
            seen.push(event.user.id);
        }
        Ok(())
    })?;
    let config = stack.login_consumer_config(prefix, group);
    consume_until(config, Arc::new(bus), |_| {
        seen.lock().map(|s| s.len()).unwrap_or_default() >= expected
    })
    .await?;
    let seen = seen.lock().map(|s| s.clone()).unwrap_or_default();
    Ok(seen)
}

/// Step 8: a plain receiver and a transactional one (a SQLite inbox) on the same
/// logins. One login is sent twice with the same `ce_id`, as a producer's retry can;
/// then the group is reset to the start of the topic and reads everything again, as a
/// replay does. The plain receiver sees every delivery; the transactional one writes
/// one row per event and skips the rest.
async fn inbox_skips_duplicates(stack: &Stack) -> Outcome {
    let prefix = unique_topic("inbox");
    let login_topic = topic::full_topic(Some(&prefix), SessionLoginCompleted::TOPIC);
    stack.create_topics(std::slice::from_ref(&login_topic))?;
    let producer = Producer::new(stack.producer_config_for(&prefix))?;
    let ann = login(301, "ann");
    let metadata = producer.encoder().metadata_for::<SessionLoginCompleted>();
    let ann_id = metadata.id;
    for _ in 0..2 {
        producer.send_with_metadata(&ann, metadata.clone()).await?;
    }
    producer.send(&login(302, "bob")).await?;
    println!(
        "  sent ann's login twice with one ce_id {ann_id} (as a producer's retry can), bob's once"
    );

    let file = TempSqlite::new("quickstart-inbox");
    let store = SqliteInbox::connect(&file.url()).await?;
    store.migrate().await?;
    // No unique key: a second write of one event would show as a second row.
    sqlx::query("CREATE TABLE welcome_mails (ce_id TEXT NOT NULL, user_id INTEGER NOT NULL)")
        .execute(store.pool())
        .await?;
    println!("  inbox: SQLite at {}", file.path.display());

    let inbox = Inbox::new(store.clone());
    let audit = Arc::new(AtomicUsize::new(0));
    let mut bus = EventBus::new();
    let audit2 = Arc::clone(&audit);
    bus.connect_fn("audit", move |_: &SessionLoginCompleted, _| {
        audit2.fetch_add(1, Ordering::SeqCst);
        Ok(())
    })?;
    inbox.connect_fn(
        &mut bus,
        "welcome-mail",
        |event: &SessionLoginCompleted, ctx, tx| {
            Box::pin(async move {
                sqlx::query("INSERT INTO welcome_mails (ce_id, user_id) VALUES (?1, ?2)")
                    .bind(ctx.metadata.id.to_string())
                    .bind(event.user.id)
                    .execute(&mut **tx)
                    .await
                    .map_err(database_failure)?;
                Ok(())
            })
        },
    )?;
    let bus = Arc::new(bus);
    let group = unique_group("quickstart-inbox");
    let config = stack.login_consumer_config(&prefix, &group);
    for (n, pass) in ["first read", "after a replay of the whole topic"]
        .into_iter()
        .enumerate()
    {
        if n > 0 {
            replay::reset_group(
                &config.kafka,
                &group,
                std::slice::from_ref(&login_topic),
                &ResetTarget::Earliest,
            )
            .await?;
        }
        consume_until(config.clone(), Arc::clone(&bus), |s| s.records_handled >= 3).await?;
        let counts = inbox.stats().receiver("welcome-mail");
        let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM welcome_mails")
            .fetch_one(store.pool())
            .await?;
        println!(
            "  {pass}: audit (plain) saw {} deliveries; welcome-mail (inbox) handled {}, duplicates skipped {}; welcome_mails has {rows} rows",
            audit.load(Ordering::SeqCst),
            counts.handled,
            counts.duplicates,
        );
    }
    println!(
        "  inbox table: {} rows, one per (group, receiver, ce_id)",
        store.status().await?.rows
    );
    store.pool().close().await;
    Ok(())
}
