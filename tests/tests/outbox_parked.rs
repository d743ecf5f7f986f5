//! Parked outbox rows against real PostgreSQL and SQLite and a real Apache Kafka broker:
//! a row too large for the producer is parked after the configured attempts, its key's
//! later row waits while other keys publish, `event-bus outbox parked|retry|drop` list,
//! unpark (dry run first) and delete it; a row that cannot be read fails its own key
//! only, not the whole claim. A topic whose `max.message.bytes` refuses a whole produce
//! batch parks only the row too large by itself; a topic created a few seconds late
//! parks nothing. `retry|drop --execute` act only on the rows they list. An outbox
//! whose tables predate the parking columns makes `outbox status` and the relay say to
//! run `event-bus outbox migrate`.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use event_bus_kafka::cli::{run_with, Cli, CliContext};
use event_bus_kafka::outbox::{
    OutboxId, OutboxStatus, OutboxStore, ParkedFilter, PostgresOutbox, Relay, RelayConfig,
    SqliteOutbox,
};
use event_bus_kafka::prelude::*;
use event_bus_kafka::producer::EncodedRecord;
use event_bus_testkit::kafka::{KafkaCluster, TopicSpec};
use event_bus_testkit::postgres::TestDatabase;
use event_bus_testkit::registry::EmbeddedRegistry;
use event_bus_testkit::topics::unique_topic;
use event_bus_tests::outbox_support::{
    self, assert_complete_in_key_order, cli_json, raw_record, read_back, wait_until_empty, Sent,
    WAIT,
};

/// The producer of the "small" relay refuses records above this many bytes
/// (librdkafka's `message.max.bytes`), so [`BIG`] rows fail as too large.
const SMALL_LIMIT: &str = "2000";
/// Value bytes of a row too large for the small relay (fine for a default producer).
const BIG: usize = 4_000;
/// Failed attempts after which a too-large row is parked in these tests.
const PARK_AFTER: u32 = 2;

/// A broker topic (one partition: offsets give the order) and a registry for the
/// producer's configuration (rows are already encoded: it is never called).
struct Setup {
    broker: &'static KafkaCluster,
    registry: EmbeddedRegistry,
    topic: String,
}

impl Setup {
    async fn start(prefix: &str) -> Self {
        let setup = Self::without_topic(prefix).await;
        let spec = TopicSpec::new(&setup.topic, 1);
        setup.broker.create_topic_with(&spec).await.expect("topic");
        setup
    }

    /// The topic is not created (see [`create_topic`](Self::create_topic)).
    async fn without_topic(prefix: &str) -> Self {
        let broker = KafkaCluster::shared().expect("Apache Kafka (run scripts/install-test-deps)");
        let registry = EmbeddedRegistry::start().await.expect("registry");
        let topic = unique_topic(prefix);
        Self {
            broker,
            registry,
            topic,
        }
    }

    /// Creates the topic (one partition) with `configs`.
    async fn create_topic(&self, configs: &[(&str, &str)]) {
        let spec = configs
            .iter()
            .fold(TopicSpec::new(&self.topic, 1), |spec, (k, v)| {
                spec.with_config(k, v)
            });
        self.broker.create_topic_with(&spec).await.expect("topic");
    }

    /// A producer; with `max_message_bytes` it refuses larger records itself.
    fn producer(&self, max_message_bytes: Option<&str>) -> Producer {
        let mut config = outbox_support::producer_config(
            self.broker.bootstrap_servers(),
            None,
            &self.registry,
            "outbox-parked-test",
            "",
            Duration::from_secs(10),
        );
        if let Some(max) = max_message_bytes {
            config.kafka = config.kafka.with_option("message.max.bytes", max);
        }
        Producer::new(config).expect("producer")
    }

    /// A relay with short backoffs that parks too-large rows after [`PARK_AFTER`]
    /// attempts; its producer refuses [`BIG`] rows when `small` is set.
    fn relay<S: OutboxStore>(&self, store: Arc<S>, small: bool) -> Relay<S> {
        let config = RelayConfig::default()
            .with_retry_delays(Duration::from_millis(10), Duration::from_millis(20))
            .with_park_after(Some(10), Some(PARK_AFTER))
            .with_park_permanent_after(Duration::ZERO);
        let limit = small.then_some(SMALL_LIMIT);
        Relay::new(store, self.producer(limit), config)
    }

    fn record(&self, key: Option<&str>, payload_len: usize) -> EncodedRecord {
        raw_record(&self.topic, key, payload_len)
    }
}

/// Runs batches until `parked` rows are parked; returns the status then.
async fn relay_until_parked<S: OutboxStore>(relay: &Relay<S>, parked: u64) -> OutboxStatus {
    let deadline = Instant::now() + WAIT;
    loop {
        relay.run_once().await.expect("batch");
        let status = relay.store().status(5).await.expect("status");
        if status.parked >= parked {
            return status;
        }
        assert!(Instant::now() < deadline, "not parked: {status:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// `event-bus --output json outbox <args…> --database-url <url>`.
async fn outbox_cli(url: &str, args: &[&str]) -> serde_json::Value {
    let mut line = vec!["event-bus", "--output", "json", "outbox"];
    line.extend_from_slice(args);
    line.extend_from_slice(&["--database-url", url]);
    cli_json(&line).await
}

fn sent(rows: &[(&EncodedRecord, &str, i64)]) -> Sent {
    rows.iter()
        .map(|(record, key, seq)| (record.event_id, ((*key).to_owned(), *seq)))
        .collect()
}

/// The whole life of a parked row on `store` (reachable at `url` for the CLI).
async fn too_large_row_is_parked_then_retried_or_dropped<S: OutboxStore>(
    store: Arc<S>,
    url: &str,
    setup: &Setup,
) {
    let big_1 = setup.record(Some("big"), BIG);
    let big_2 = setup.record(Some("big"), 10);
    let other = setup.record(Some("other"), 10);
    let loose = setup.record(None, 10);
    let ids = store
        .insert_many(&[big_1.clone(), big_2.clone(), other.clone(), loose.clone()])
        .await
        .expect("stored");

    // Parked after PARK_AFTER attempts, with the reason; the other key and the keyless
    // row are published; the big key's later row waits.
    let small = setup.relay(store.clone(), true);
    let status = relay_until_parked(&small, 1).await;
    assert_eq!(status.parked, 1, "{status:?}");
    assert_eq!(
        status.pending, 2,
        "the parked row and the row of its key behind it"
    );
    assert_eq!(
        status.failing_keys_total, 0,
        "parked rows are not failing keys"
    );
    assert!(status.oldest_parked_at.is_some());
    // Past the longest backoff (20 ms): only the park keeps the key back now.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let report = small.run_once().await.expect("batch");
    assert_eq!(
        report.claimed, 0,
        "a parked head holds back its key: {report:?}"
    );
    let on_topic = read_back(
        setup.broker.bootstrap_servers(),
        &setup.topic,
        &sent(&[(&other, "other", 0), (&loose, "loose", 0)]),
    )
    .await;
    assert_eq!(on_topic.len(), 2, "only the other key and the keyless row");
    assert!(
        !on_topic.contains(&big_2.event_id),
        "the waiting row overtook"
    );

    let listed = outbox_cli(url, &["parked"]).await;
    assert_eq!(listed["count"], 1, "{listed}");
    let row = &listed["parked"][0];
    assert_eq!(row["id"], ids[0].0);
    assert_eq!(row["key"], "big");
    assert_eq!(row["ce_id"], big_1.event_id.to_string());
    assert_eq!(row["attempts"], PARK_AFTER);
    assert_eq!(row["waiting_behind"], 1, "the key's later row");
    let reason = row["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("too large"), "{reason}");

    // Dry run: nothing changes.
    let id = ids[0].0.to_string();
    let plan = outbox_cli(url, &["retry", "--id", &id]).await;
    assert_eq!(plan["executed"], false, "{plan}");
    assert_eq!(plan["matched"], 1);
    assert_eq!(store.status(5).await.expect("status").parked, 1);

    // Retried with a producer that takes the record: it, then the waiting row, go out.
    let retried = outbox_cli(url, &["retry", "--id", &id, "--execute"]).await;
    assert_eq!(retried["affected"], 1, "{retried}");
    assert_eq!(store.status(5).await.expect("status").parked, 0);
    let stats = setup
        .relay(store.clone(), false)
        .drain()
        .await
        .expect("drain");
    assert_eq!(stats.published, 2, "{stats:?}");
    wait_until_empty(store.as_ref()).await;

    // Parked again, then dropped: the next row of the key goes, the dropped one never.
    let big_3 = setup.record(Some("big"), BIG);
    let big_4 = setup.record(Some("big"), 10);
    store
        .insert_many(&[big_3.clone(), big_4.clone()])
        .await
        .expect("stored");
    relay_until_parked(&small, 1).await;
    let plan = outbox_cli(url, &["drop", "--key", "big"]).await;
    assert_eq!(plan["executed"], false, "{plan}");
    assert_eq!(plan["rows"][0]["ce_id"], big_3.event_id.to_string());
    assert_eq!(store.status(5).await.expect("status").pending, 2);
    let dropped = outbox_cli(url, &["drop", "--key", "big", "--execute"]).await;
    assert_eq!(dropped["affected"], 1, "{dropped}");
    let stats = small.drain().await.expect("drain");
    assert_eq!(stats.published, 1, "{stats:?}");
    wait_until_empty(store.as_ref()).await;

    let expected = sent(&[
        (&big_1, "big", 0),
        (&big_2, "big", 1),
        (&big_4, "big", 2),
        (&other, "other", 0),
        (&loose, "loose", 0),
    ]);
    let on_topic = read_back(setup.broker.bootstrap_servers(), &setup.topic, &expected).await;
    assert!(
        !on_topic.contains(&big_3.event_id),
        "a dropped row was published"
    );
    assert_complete_in_key_order(&on_topic, &expected);
}

/// A claimed row whose stored data cannot be decoded (`corrupt` spoils it) fails in its
/// own lane: the claim succeeds, the other key publishes, its own later row waits.
async fn an_unreadable_row_fails_only_its_key<S, F, Fut>(store: Arc<S>, setup: &Setup, corrupt: F)
where
    S: OutboxStore,
    F: FnOnce(OutboxId) -> Fut,
    Fut: Future<Output = ()>,
{
    let a_1 = setup.record(Some("a"), 10);
    let a_2 = setup.record(Some("a"), 10);
    let b_1 = setup.record(Some("b"), 10);
    let ids = store
        .insert_many(&[a_1, a_2.clone(), b_1.clone()])
        .await
        .expect("stored");
    corrupt(ids[0]).await;

    // Waiting does not mend an unreadable row: it is parked after its attempts, however
    // long the refusal of a record must have lasted.
    let config = RelayConfig::default().with_park_after(Some(10), Some(1));
    let relay = Relay::new(store.clone(), setup.producer(None), config);
    let report = relay
        .run_once()
        .await
        .expect("one unreadable row does not fail the claim");
    assert_eq!(report.claimed, 3, "{report:?}");
    assert_eq!(report.published, 1, "the other key: {report:?}");
    assert_eq!(report.failed, 1, "{report:?}");
    assert_eq!(report.parked, 1, "{report:?}");
    assert_eq!(report.held_back, 1, "its key's later row: {report:?}");

    let parked = store
        .parked(&ParkedFilter::default(), 10)
        .await
        .expect("parked");
    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0].id, ids[0]);
    assert!(
        parked[0].reason.starts_with("unreadable row: ")
            && parked[0].reason.ends_with("(parked after 1 attempt)"),
        "{parked:?}"
    );
    let only_it = ParkedFilter {
        ids: vec![ids[0]],
        ..Default::default()
    };
    assert_eq!(store.drop_parked(&only_it).await.expect("dropped"), 1);
    let stats = relay.drain().await.expect("drain");
    assert_eq!(stats.published, 1, "its key's later row: {stats:?}");
    wait_until_empty(store.as_ref()).await;
    let expected = sent(&[(&a_2, "a", 0), (&b_1, "b", 0)]);
    let on_topic = read_back(setup.broker.bootstrap_servers(), &setup.topic, &expected).await;
    assert_complete_in_key_order(&on_topic, &expected);
}

/// A topic refusing records above 3000 bytes (`max.message.bytes`, below librdkafka's
/// batch size): a claim queues both rows at once, they share a produce batch and the
/// broker refuses that batch whole, so both get "too large". Only the row too large by
/// itself is parked; the small row of the other key is published.
async fn a_refused_produce_batch_parks_only_the_large_row<S: OutboxStore>(
    store: Arc<S>,
    setup: &Setup,
) {
    setup.create_topic(&[("max.message.bytes", "3000")]).await;
    let large = setup.record(Some("x"), 5_000);
    let small = setup.record(Some("y"), 10);
    let ids = store
        .insert_many(&[large.clone(), small.clone()])
        .await
        .expect("stored");
    let config = RelayConfig::default()
        .with_retry_delays(Duration::from_millis(10), Duration::from_millis(20))
        .with_park_after(Some(10), Some(1))
        .with_park_permanent_after(Duration::ZERO);
    let relay = Relay::new(store.clone(), setup.producer(None), config);
    let status = relay_until_parked(&relay, 1).await;
    // Past the longest backoff: whatever is left would be claimed again.
    tokio::time::sleep(Duration::from_millis(200)).await;
    relay.drain().await.expect("drain");
    let status = store.status(5).await.unwrap_or(status);
    assert_eq!(status.parked, 1, "only the large row: {status:?}");
    assert_eq!(status.pending, 1, "{status:?}");
    let parked = store
        .parked(&ParkedFilter::default(), 10)
        .await
        .expect("parked");
    assert_eq!(parked[0].id, ids[0], "{parked:?}");
    assert!(parked[0].reason.contains("too large"), "{parked:?}");
    let expected = sent(&[(&small, "y", 0)]);
    let on_topic = read_back(setup.broker.bootstrap_servers(), &setup.topic, &expected).await;
    assert_eq!(on_topic, vec![small.event_id]);
}

/// Events stored for a topic that does not exist yet (the broker refuses them for good:
/// unknown topic) are not parked while it has been missing for less than the relay's
/// `park_permanent_after` (30 s), even past the attempt limit; once the topic exists
/// they are published.
async fn a_topic_created_late_parks_nothing<S: OutboxStore>(store: Arc<S>, setup: &Setup) {
    let records: Vec<_> = (0..3).map(|_| setup.record(Some("k"), 10)).collect();
    store.insert_many(&records).await.expect("stored");
    let config = RelayConfig::default()
        .with_retry_delays(Duration::from_millis(50), Duration::from_millis(200))
        .with_park_after(Some(1), Some(1));
    let mut producer_config = outbox_support::producer_config(
        setup.broker.bootstrap_servers(),
        None,
        &setup.registry,
        "outbox-parked-test",
        "",
        Duration::from_secs(10),
    );
    // The producer must neither create the topic itself nor wait 30 s to say it is
    // missing.
    producer_config.kafka = producer_config
        .kafka
        .with_option("allow.auto.create.topics", "false")
        .with_option("topic.metadata.propagation.max.ms", "100");
    let producer = Producer::new(producer_config).expect("producer");
    let relay = Relay::new(store.clone(), producer, config);

    let mut refused = 0;
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        let report = relay.run_once().await.expect("batch");
        refused += report.failed;
        let status = store.status(5).await.expect("status");
        assert_eq!(status.parked, 0, "parked a moment after: {status:?}");
        if let Some(key) = status.failing_keys.first() {
            let error = key.last_error.as_deref().unwrap_or_default();
            assert!(error.to_lowercase().contains("unknown topic"), "{error}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(refused >= 2, "the missing topic was not tried: {refused}");

    setup.create_topic(&[]).await;
    let deadline = Instant::now() + WAIT;
    while store.status(5).await.expect("status").pending > 0 {
        assert!(
            Instant::now() < deadline,
            "not published after the topic came"
        );
        relay.run_once().await.expect("batch");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(store.status(5).await.expect("status").parked, 0);
    let expected: Sent = records
        .iter()
        .enumerate()
        .map(|(seq, r)| (r.event_id, ("k".to_owned(), seq as i64)))
        .collect();
    let on_topic = read_back(setup.broker.bootstrap_servers(), &setup.topic, &expected).await;
    assert_complete_in_key_order(&on_topic, &expected);
}

/// How many rows `outbox retry|drop` list and act on at most.
const PLAN_LIMIT: usize = 10_000;

/// `outbox drop|retry --execute` act on the rows they list, not on whatever the filter
/// matches when the action runs: with one row more parked than the listing shows, that
/// row stays (`park_all` parks every row of the outbox by hand).
async fn retry_and_drop_act_only_on_the_rows_listed<S, F, Fut>(
    store: Arc<S>,
    url: &str,
    setup: &Setup,
    park_all: F,
) where
    S: OutboxStore,
    F: Fn() -> Fut,
    Fut: Future<Output = ()>,
{
    let records: Vec<_> = (0..=PLAN_LIMIT)
        .map(|n| setup.record(Some(&format!("k-{n}")), 1))
        .collect();
    outbox_support::store_all(store.as_ref(), &records).await;
    park_all().await;
    assert_eq!(
        store.status(1).await.expect("status").parked,
        PLAN_LIMIT as u64 + 1
    );

    let dropped = outbox_cli(url, &["drop", "--topic", &setup.topic, "--execute"]).await;
    assert_eq!(dropped["matched"], PLAN_LIMIT, "{}", dropped["affected"]);
    assert_eq!(dropped["affected"], PLAN_LIMIT, "only the rows listed");
    assert_eq!(dropped["more_may_match"], true);
    let left = store
        .parked(&ParkedFilter::default(), 10)
        .await
        .expect("parked");
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0].event_id, records[PLAN_LIMIT].event_id.to_string());

    let retried = outbox_cli(url, &["retry", "--all", "--execute"]).await;
    assert_eq!(retried["affected"], 1, "{retried}");
    assert_eq!(retried["more_may_match"], false);
    let nothing = outbox_cli(url, &["drop", "--all", "--execute"]).await;
    assert_eq!(nothing["affected"], 0, "{nothing}");
    assert_eq!(store.status(1).await.expect("status").pending, 1);
}

/// On an outbox whose tables lack the parking columns (migrated by an older SDK),
/// `event-bus outbox status` and the relay say to run `event-bus outbox migrate`
/// rather than only "column … does not exist".
async fn an_outdated_outbox_says_to_migrate<S: OutboxStore>(
    store: Arc<S>,
    url: &str,
    setup: &Setup,
) {
    let line = ["event-bus", "outbox", "status", "--database-url", url];
    let cli = Cli::try_parse_from(line).expect("valid command line");
    let mut out = Vec::new();
    let error = run_with(cli, &CliContext::default(), &mut out)
        .await
        .expect_err("status on tables without the parking columns")
        .to_string();
    assert!(error.contains("run `event-bus outbox migrate`"), "{error}");

    let relay = Relay::new(store, setup.producer(None), RelayConfig::default());
    let error = relay
        .run_once()
        .await
        .expect_err("a claim on tables without the parking columns")
        .to_string();
    assert!(error.contains("run `event-bus outbox migrate`"), "{error}");
}

/// A file-backed SQLite outbox (the CLI opens it too) and its URL.
async fn sqlite_store(name: &str) -> (Arc<SqliteOutbox>, String, std::path::PathBuf) {
    let path = std::env::temp_dir().join(format!("{}.db", unique_topic(name)));
    let url = format!("sqlite:{}", path.display());
    let store = SqliteOutbox::connect(&url).await.expect("sqlite");
    store.migrate().await.expect("migrate");
    (Arc::new(store), url, path)
}

async fn remove_sqlite(store: Arc<SqliteOutbox>, path: std::path::PathBuf) {
    store.pool().close().await;
    for suffix in ["db", "db-wal", "db-shm"] {
        let _ = std::fs::remove_file(path.with_extension(suffix));
    }
}

async fn pg_store(db: &TestDatabase) -> Arc<PostgresOutbox> {
    Arc::new(outbox_support::pg_store(db, 4, None).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_too_large_row_is_parked_then_retried_or_dropped() {
    let setup = Setup::start("parked-pg").await;
    let db = TestDatabase::create().await.expect("database");
    let store = pg_store(&db).await;
    too_large_row_is_parked_then_retried_or_dropped(store.clone(), &db.url(), &setup).await;
    store.pool().close().await;
    db.drop_database().await.expect("drop database");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_too_large_row_is_parked_then_retried_or_dropped() {
    let setup = Setup::start("parked-sqlite").await;
    let (store, url, path) = sqlite_store("outbox-parked").await;
    too_large_row_is_parked_then_retried_or_dropped(store.clone(), &url, &setup).await;
    remove_sqlite(store, path).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_unreadable_row_fails_only_its_key() {
    let setup = Setup::start("unreadable-pg").await;
    let db = TestDatabase::create().await.expect("database");
    let store = pg_store(&db).await;
    let pool = store.pool().clone();
    an_unreadable_row_fails_only_its_key(store.clone(), &setup, |id| async move {
        // Valid JSON (the column is jsonb), but not the stored list of headers.
        sqlx::query("UPDATE event_bus.outbox SET headers = '{\"not\": \"a list\"}' WHERE id = $1")
            .bind(id.0)
            .execute(&pool)
            .await
            .expect("corrupted");
    })
    .await;
    store.pool().close().await;
    db.drop_database().await.expect("drop database");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_unreadable_row_fails_only_its_key() {
    let setup = Setup::start("unreadable-sqlite").await;
    let (store, _url, path) = sqlite_store("outbox-unreadable").await;
    let pool = store.pool().clone();
    an_unreadable_row_fails_only_its_key(store.clone(), &setup, |id| async move {
        sqlx::query(
            "UPDATE event_bus_outbox SET headers = 'not json', event_id = 'nope' WHERE id = ?1",
        )
        .bind(id.0)
        .execute(&pool)
        .await
        .expect("corrupted");
    })
    .await;
    remove_sqlite(store, path).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_refused_produce_batch_parks_only_the_large_row() {
    let setup = Setup::without_topic("batch-too-large-pg").await;
    let db = TestDatabase::create().await.expect("database");
    let store = pg_store(&db).await;
    a_refused_produce_batch_parks_only_the_large_row(store.clone(), &setup).await;
    store.pool().close().await;
    db.drop_database().await.expect("drop database");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_refused_produce_batch_parks_only_the_large_row() {
    let setup = Setup::without_topic("batch-too-large-sqlite").await;
    let (store, _url, path) = sqlite_store("outbox-batch-too-large").await;
    a_refused_produce_batch_parks_only_the_large_row(store.clone(), &setup).await;
    remove_sqlite(store, path).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_topic_created_late_parks_nothing() {
    let setup = Setup::without_topic("late-topic-pg").await;
    let db = TestDatabase::create().await.expect("database");
    let store = pg_store(&db).await;
    a_topic_created_late_parks_nothing(store.clone(), &setup).await;
    store.pool().close().await;
    db.drop_database().await.expect("drop database");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_topic_created_late_parks_nothing() {
    let setup = Setup::without_topic("late-topic-sqlite").await;
    let (store, _url, path) = sqlite_store("outbox-late-topic").await;
    a_topic_created_late_parks_nothing(store.clone(), &setup).await;
    remove_sqlite(store, path).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_retry_and_drop_act_only_on_the_rows_listed() {
    let setup = Setup::without_topic("act-on-listed-pg").await;
    let db = TestDatabase::create().await.expect("database");
    let store = pg_store(&db).await;
    let pool = store.pool().clone();
    retry_and_drop_act_only_on_the_rows_listed(store.clone(), &db.url(), &setup, || async {
        sqlx::query("UPDATE event_bus.outbox SET parked_at = now(), parked_reason = 'by hand'")
            .execute(&pool)
            .await
            .expect("parked");
    })
    .await;
    store.pool().close().await;
    db.drop_database().await.expect("drop database");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_retry_and_drop_act_only_on_the_rows_listed() {
    let setup = Setup::without_topic("act-on-listed-sqlite").await;
    let (store, url, path) = sqlite_store("outbox-act-on-listed").await;
    let pool = store.pool().clone();
    retry_and_drop_act_only_on_the_rows_listed(store.clone(), &url, &setup, || async {
        sqlx::query("UPDATE event_bus_outbox SET parked_at_ms = 1, parked_reason = 'by hand'")
            .execute(&pool)
            .await
            .expect("parked");
    })
    .await;
    remove_sqlite(store, path).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outdated_outbox_says_to_migrate() {
    let setup = Setup::without_topic("outdated-pg").await;
    let db = TestDatabase::create().await.expect("database");
    let store = pg_store(&db).await;
    sqlx::query("ALTER TABLE event_bus.outbox DROP COLUMN parked_at CASCADE")
        .execute(store.pool())
        .await
        .expect("column dropped");
    an_outdated_outbox_says_to_migrate(store.clone(), &db.url(), &setup).await;
    store.pool().close().await;
    db.drop_database().await.expect("drop database");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_outdated_outbox_says_to_migrate() {
    let setup = Setup::without_topic("outdated-sqlite").await;
    let (store, url, path) = sqlite_store("outbox-outdated").await;
    for statement in [
        "DROP INDEX event_bus_outbox_parked",
        "DROP INDEX event_bus_outbox_failing",
        "DROP INDEX event_bus_outbox_failing_lanes",
        "ALTER TABLE event_bus_outbox DROP COLUMN parked_at_ms",
    ] {
        sqlx::query(statement)
            .execute(store.pool())
            .await
            .expect(statement);
    }
    an_outdated_outbox_says_to_migrate(store.clone(), &url, &setup).await;
    remove_sqlite(store, path).await;
}
