//! The outbox relay against real PostgreSQL, SQLite, a real Apache Kafka broker and
//! librdkafka's mock cluster: the claim contract, two relays at once, a failing key,
//! a relay killed mid-batch.

use std::sync::Arc;
use std::time::{Duration, Instant};

use event_bus_core::prelude::*;
use event_bus_kafka::outbox::{
    BatchOutcome, ClaimLimits, ClaimedBatch, Lane, OutboxId, OutboxStore, PostgresOutbox, Relay,
    RelayConfig, RowFailure, SqliteOutbox,
};
use event_bus_kafka::prelude::*;
use event_bus_kafka::producer::EncodedRecord;
use event_bus_testkit::kafka::KafkaCluster;
use event_bus_testkit::mock_cluster::MockKafkaCluster;
use event_bus_testkit::postgres::TestDatabase;
use event_bus_testkit::registry::EmbeddedRegistry;
use event_bus_testkit::topics::unique_topic;
use event_bus_tests::outbox_support::{
    self, assert_complete_in_key_order, read_back, reader_from_beginning, store_all,
    wait_until_empty, Sent, WAIT,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The test event: `seq` numbers the events of one key in send order.
#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(
    type = "org.example.test.outbox.step.recorded.v1",
    topic = "outbox-steps",
    key = "key"
)]
struct StepRecorded {
    key: String,
    seq: i64,
}

fn producer_config(bootstrap: &str, registry: &EmbeddedRegistry, prefix: &str) -> ProducerConfig {
    outbox_support::producer_config(
        bootstrap,
        Some("1000"),
        registry,
        "outbox-relay-test",
        prefix,
        Duration::from_secs(10),
    )
}

async fn pg_store(db: &TestDatabase) -> PostgresOutbox {
    outbox_support::pg_store(db, 6, None).await
}

/// Encodes `keys × per_key` events, key by key interleaved (k0#0, k1#0, …, k0#1, …).
async fn encode_steps(
    producer: &Producer,
    keys: usize,
    per_key: i64,
) -> (Vec<EncodedRecord>, Sent) {
    let mut records = Vec::new();
    let mut sent = Sent::new();
    for seq in 0..per_key {
        for k in 0..keys {
            let event = StepRecorded {
                key: format!("key-{k}"),
                seq,
            };
            let record = producer
                .encoder()
                .encode(&event, None, None)
                .await
                .expect("encode");
            sent.insert(record.event_id, (event.key.clone(), seq));
            records.push(record);
        }
    }
    (records, sent)
}

fn record(topic: &str, key: &str) -> EncodedRecord {
    let event_id = Uuid::new_v4();
    EncodedRecord {
        topic: topic.to_owned(),
        key: Some(key.as_bytes().to_vec()),
        value: vec![0, 0, 0, 0, 1, 2],
        headers: vec![("ce_id".to_owned(), event_id.to_string().into_bytes())],
        event_type: "org.example.test.outbox.step.recorded.v1".to_owned(),
        event_id,
        key_text: Some(key.to_owned()),
    }
}

fn ids<B: ClaimedBatch>(batch: &B) -> Vec<i64> {
    batch.rows().iter().map(|r| r.id.0).collect()
}

/// The mechanism two relays rely on, step by step: a claimed key is invisible to a
/// second claim (none of its rows, not even later ones), a failed head holds back only
/// its own key, and the row's attempts, error and backoff are kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claimed_key_is_invisible_to_a_second_relay() {
    let db = TestDatabase::create().await.expect("database");
    let store = pg_store(&db).await;
    // Interleaved keys: ids 1..=6 are k1, k2, k1, k3, k2, k1.
    let rows = ["k1", "k2", "k1", "k3", "k2", "k1"].map(|k| record("t", k));
    let stored = store.insert_many(&rows).await.expect("stored");
    assert_eq!(stored, (1..=6).map(OutboxId).collect::<Vec<_>>());

    let first = store
        .claim(ClaimLimits {
            max_rows: 100,
            max_lanes: 2,
        })
        .await
        .expect("claim");
    assert_eq!(
        ids(&first),
        vec![1, 2, 3, 5, 6],
        "the two oldest keys, all their rows, in id order"
    );
    let second = store
        .claim(ClaimLimits {
            max_rows: 100,
            max_lanes: 100,
        })
        .await
        .expect("claim");
    assert_eq!(ids(&second), vec![4], "only the key nobody holds");
    let third = store
        .claim(ClaimLimits {
            max_rows: 100,
            max_lanes: 100,
        })
        .await
        .expect("claim");
    assert!(ids(&third).is_empty(), "every key is held");
    third
        .complete(BatchOutcome::default())
        .await
        .expect("nothing");

    // k1's second event fails; its third stays behind it. k2 is done.
    first
        .complete(BatchOutcome {
            delivered: vec![OutboxId(1), OutboxId(2), OutboxId(5)],
            failed: vec![RowFailure {
                id: OutboxId(3),
                error: "broker said no".into(),
                retry_in: Duration::from_secs(3600),
                counted: true,
                park: None,
            }],
        })
        .await
        .expect("completed");
    second
        .complete(BatchOutcome {
            delivered: vec![OutboxId(4)],
            failed: vec![],
        })
        .await
        .expect("completed");

    let after = store
        .claim(ClaimLimits {
            max_rows: 100,
            max_lanes: 100,
        })
        .await
        .expect("claim");
    assert!(
        ids(&after).is_empty(),
        "k1 backs off as a whole: row 6 must not overtake row 3"
    );
    after
        .complete(BatchOutcome::default())
        .await
        .expect("nothing");
    assert!(store.lane_waiting(Lane::of(&rows[0])).await.expect("lane"));
    assert!(!store.lane_waiting(Lane::of(&rows[1])).await.expect("lane"));

    let status = store.status(10).await.expect("status");
    assert_eq!(status.pending, 2);
    assert_eq!(status.failing_keys_total, 1);
    let failing = &status.failing_keys[0];
    assert_eq!(
        (failing.head_id, failing.attempts, failing.waiting),
        (OutboxId(3), 1, 2)
    );
    assert_eq!(failing.key_text.as_deref(), Some("k1"));
    assert_eq!(failing.last_error.as_deref(), Some("broker said no"));
    let retry_in = store
        .next_retry_in()
        .await
        .expect("next retry")
        .expect("a failing row");
    assert!(retry_in > Duration::from_secs(3000), "{retry_in:?}");
    drop(store);
    db.drop_database().await.expect("drop");
}

/// A failing key with a backlog deeper than the claim's window of oldest rows does not
/// hide the keys queued behind it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deep_failing_key_does_not_hide_the_keys_behind_it() {
    let db = TestDatabase::create().await.expect("database");
    let store = pg_store(&db).await;
    let stuck: Vec<EncodedRecord> = (0..100).map(|_| record("t", "stuck")).collect();
    store.insert_many(&stuck).await.expect("stored");
    let others: Vec<EncodedRecord> = ["a", "b", "c"].iter().map(|k| record("t", k)).collect();
    let other_ids = store.insert_many(&others).await.expect("stored");

    // A window of 4 × 10 oldest rows holds only "stuck": the claim looks beyond it for
    // the keys it has room for, and shares its 10 rows among the four keys.
    let limits = ClaimLimits {
        max_rows: 10,
        max_lanes: 10,
    };
    let batch = store.claim(limits).await.expect("claim");
    assert_eq!(ids(&batch), [1, 2, 101, 102, 103]);
    batch
        .complete(BatchOutcome {
            delivered: vec![],
            failed: vec![RowFailure {
                id: OutboxId(1),
                error: "down".into(),
                retry_in: Duration::from_secs(3600),
                counted: true,
                park: None,
            }],
        })
        .await
        .expect("completed");

    // The keys behind the failing one are found.
    claim_and_deliver(&store, limits, &other_ids).await;
    claim_nothing(&store, limits, "only the backing-off key is left").await;
    drop(store);
    db.drop_database().await.expect("drop");
}

/// Two relays with their own pools and producers drain one outbox at once, in small
/// batches of few keys: every event is published exactly once, each key in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_relays_at_once_keep_each_keys_order() {
    let broker = KafkaCluster::shared().expect("Apache Kafka (run scripts/install-test-deps)");
    let registry = EmbeddedRegistry::start().await.expect("registry");
    let db = TestDatabase::create().await.expect("database");
    let prefix = unique_topic("two-relays");
    let config = producer_config(broker.bootstrap_servers(), &registry, &prefix);
    let topic = config.full_topic(StepRecorded::TOPIC);
    broker.create_topic(&topic, 3).await.expect("topic");
    let encoder = Producer::new(config.clone()).expect("producer");
    let (records, sent) = encode_steps(&encoder, 20, 150).await;
    let store = pg_store(&db).await;
    store_all(&store, &records).await;

    let relay_config = RelayConfig::default()
        .with_batch_size(60)
        .with_max_lanes_per_batch(4)
        .with_poll_interval(Duration::from_millis(200));
    // Built first, started together: like two relay processes.
    let mut relays = Vec::new();
    for _ in 0..2 {
        let own_store = Arc::new(pg_store(&db).await);
        let own_producer = Producer::new(config.clone()).expect("producer");
        relays.push(Relay::new(own_store, own_producer, relay_config.clone()));
    }
    let handles: Vec<_> = relays.into_iter().map(Relay::spawn).collect();
    wait_until_empty(&store).await;
    let mut published = Vec::new();
    for handle in handles {
        published.push(handle.shutdown().await.expect("relay").published);
    }
    assert!(
        published.iter().all(|&p| p > 0),
        "both relays must have worked: {published:?}"
    );
    assert_eq!(
        published.iter().sum::<u64>(),
        3000,
        "each row published by exactly one relay"
    );

    let on_topic = read_back(broker.bootstrap_servers(), &topic, &sent).await;
    let duplicates = assert_complete_in_key_order(&on_topic, &sent);
    assert_eq!(duplicates, 0);
    drop(store);
    db.drop_database().await.expect("drop");
}

/// A key whose topic does not exist fails and backs off (attempts and error kept, shown
/// by `status`) while other keys flow; once the topic exists it is published, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_key_holds_back_only_itself_and_recovers() {
    let broker = KafkaCluster::shared().expect("Apache Kafka (run scripts/install-test-deps)");
    let registry = EmbeddedRegistry::start().await.expect("registry");
    let db = TestDatabase::create().await.expect("database");
    let prefix = unique_topic("failing-key");
    let mut config = producer_config(broker.bootstrap_servers(), &registry, &prefix)
        .with_delivery_timeout(Duration::from_secs(2));
    config.kafka = config
        .kafka
        .with_option("allow.auto.create.topics", "false");
    let good_topic = config.full_topic(StepRecorded::TOPIC);
    broker.create_topic(&good_topic, 2).await.expect("topic");
    let missing_topic = unique_topic("not-yet");
    let producer = Producer::new(config.clone()).expect("producer");

    let mut good = Sent::new();
    let mut stuck = Sent::new();
    let mut records = Vec::new();
    for seq in 0..5 {
        for key in ["a", "b"] {
            let event = StepRecorded {
                key: key.into(),
                seq,
            };
            let record = producer
                .encoder()
                .encode(&event, None, None)
                .await
                .expect("encode");
            good.insert(record.event_id, (key.into(), seq));
            records.push(record);
        }
        if seq < 3 {
            let event = StepRecorded {
                key: "stuck".into(),
                seq,
            };
            let mut record = producer
                .encoder()
                .encode(&event, None, None)
                .await
                .expect("encode");
            record.topic = missing_topic.clone();
            stuck.insert(record.event_id, ("stuck".into(), seq));
            records.push(record);
        }
    }
    let store = Arc::new(pg_store(&db).await);
    store_all(store.as_ref(), &records).await;

    let relay = Relay::new(
        store.clone(),
        producer,
        RelayConfig::default()
            .with_retry_delays(Duration::from_millis(200), Duration::from_secs(1)),
    );
    let stats = relay.drain().await.expect("drain");
    assert_eq!(stats.published, 10, "{stats:?}");
    assert!(stats.failed >= 1, "{stats:?}");
    let status = store.status(10).await.expect("status");
    assert_eq!(status.pending, 3, "{status:?}");
    assert_eq!(status.failing_keys_total, 1);
    let failing = &status.failing_keys[0];
    assert_eq!(failing.key_text.as_deref(), Some("stuck"));
    assert_eq!(failing.waiting, 3);
    assert!(failing.attempts >= 1);
    assert!(
        failing.last_error.as_deref().is_some_and(|e| !e.is_empty()),
        "{failing:?}"
    );
    let on_good = read_back(broker.bootstrap_servers(), &good_topic, &good).await;
    assert_eq!(assert_complete_in_key_order(&on_good, &good), 0);

    broker.create_topic(&missing_topic, 1).await.expect("topic");
    let handle = relay.spawn();
    wait_until_empty(store.as_ref()).await;
    handle.shutdown().await.expect("relay");
    let on_recovered = read_back(broker.bootstrap_servers(), &missing_topic, &stuck).await;
    assert_complete_in_key_order(&on_recovered, &stuck);
    drop(store);
    db.drop_database().await.expect("drop");
}

const CHILD_DB_URL: &str = "OUTBOX_TEST_CHILD_DB_URL";
const CHILD_BOOTSTRAP: &str = "OUTBOX_TEST_CHILD_BOOTSTRAP";

/// The relay process `relay_killed_mid_batch_loses_nothing_and_counts_duplicates`
/// starts and kills; does nothing when run on its own.
#[tokio::test]
#[ignore = "child process of relay_killed_mid_batch_loses_nothing_and_counts_duplicates"]
async fn relay_child_process() {
    let (Ok(db_url), Ok(bootstrap)) = (std::env::var(CHILD_DB_URL), std::env::var(CHILD_BOOTSTRAP))
    else {
        return;
    };
    let store = Arc::new(
        PostgresOutbox::connect(&db_url)
            .await
            .expect("child: outbox"),
    );
    // Rows are already encoded: the registry is never called.
    let config = ProducerConfig::new(
        KafkaConfig::new(bootstrap),
        RegistryConfig::new("http://127.0.0.1:9"),
    )
    .with_delivery_timeout(Duration::from_secs(60));
    let producer = Producer::new(config).expect("child: producer");
    let relay = Relay::new(store, producer, RelayConfig::default().with_batch_size(500));
    let _ = relay.run_until(std::future::pending()).await;
}

/// A relay process is SIGKILLed while a batch is on the broker but not yet deleted;
/// a new relay publishes everything: nothing lost, each key in order, the re-sent
/// batch counted as duplicates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_killed_mid_batch_loses_nothing_and_counts_duplicates() {
    let cluster = MockKafkaCluster::start(1).expect("mock cluster");
    let registry = EmbeddedRegistry::start().await.expect("registry");
    let db = TestDatabase::create().await.expect("database");
    let prefix = unique_topic("killed");
    let config = producer_config(cluster.bootstrap_servers(), &registry, &prefix);
    let topic = config.full_topic(StepRecorded::TOPIC);
    cluster.create_topic(&topic, 3).expect("topic");
    let producer = Producer::new(config.clone()).expect("producer");
    let (records, sent) = encode_steps(&producer, 50, 100).await;
    let store = Arc::new(pg_store(&db).await);
    store_all(store.as_ref(), &records).await;

    // Every broker response takes 2 s: a batch sits on the broker, unacknowledged, for
    // that long; ten batches take the child at least 20 s.
    cluster.latency(1, Duration::from_secs(2)).expect("latency");
    let exe = std::env::current_exe().expect("test binary");
    let mut child = std::process::Command::new(exe)
        .args(["relay_child_process", "--exact", "--ignored", "--nocapture"])
        .env(CHILD_DB_URL, db.url())
        .env(CHILD_BOOTSTRAP, cluster.bootstrap_servers())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("child relay");
    let seen_before_kill = first_records(cluster.bootstrap_servers(), &topic).await;
    child.kill().expect("SIGKILL the relay");
    let _ = child.wait();
    let pending_after_kill = store.status(1).await.expect("status").pending;
    assert!(seen_before_kill > 0);
    assert!(
        pending_after_kill > 0,
        "the child finished before it was killed: nothing was mid-batch"
    );

    cluster.latency(1, Duration::ZERO).expect("latency off");
    let relay = Relay::new(
        store.clone(),
        Producer::new(config).expect("producer"),
        RelayConfig::default(),
    );
    relay.drain().await.expect("restarted relay");
    wait_until_empty(store.as_ref()).await;
    let on_topic = read_back(cluster.bootstrap_servers(), &topic, &sent).await;
    let duplicates = assert_complete_in_key_order(&on_topic, &sent);
    println!(
        "relay killed mid-batch: {} records seen before the kill, {} rows left, {} duplicates after the restart",
        seen_before_kill, pending_after_kill, duplicates
    );
    // Whether the kill caught a batch between the broker's write and the delete is a
    // race; when every row was still stored, that batch was on the broker and must
    // come again.
    if pending_after_kill as usize == records.len() {
        assert!(
            duplicates > 0,
            "the killed batch was on the broker but not deleted: it must be re-sent"
        );
    }
    assert!(duplicates <= records.len());
    drop(store);
    db.drop_database().await.expect("drop");
}

/// Waits until `topic` has records; returns how many a first read saw.
async fn first_records(bootstrap: &str, topic: &str) -> usize {
    let (bootstrap, topic) = (bootstrap.to_owned(), topic.to_owned());
    tokio::task::spawn_blocking(move || {
        let consumer = reader_from_beginning(
            &bootstrap,
            "outbox-test-watcher",
            &topic,
            Duration::from_secs(30),
        );
        let deadline = Instant::now() + WAIT;
        let mut seen = 0;
        while Instant::now() < deadline {
            if let Some(message) = consumer.poll(Duration::from_millis(50)) {
                message.expect("consume");
                seen += 1;
            } else if seen > 0 {
                return seen;
            }
        }
        seen
    })
    .await
    .expect("watcher thread")
}

/// The SQLite store: store, inspect, claim with backoff per key, relay to the broker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_round_trip_and_relay() {
    let broker = KafkaCluster::shared().expect("Apache Kafka (run scripts/install-test-deps)");
    let registry = EmbeddedRegistry::start().await.expect("registry");
    let prefix = unique_topic("sqlite");
    let config = producer_config(broker.bootstrap_servers(), &registry, &prefix);
    let topic = config.full_topic(StepRecorded::TOPIC);
    broker.create_topic(&topic, 2).await.expect("topic");
    let producer = Producer::new(config).expect("producer");
    let store = Arc::new(
        SqliteOutbox::connect("sqlite::memory:")
            .await
            .expect("sqlite"),
    );
    store.migrate().await.expect("migrate");
    store.migrate().await.expect("migrations are idempotent");

    let (records, sent) = encode_steps(&producer, 5, 20).await;
    let first = store.insert(&records[0]).await.expect("insert");
    let rest = store.insert_many(&records[1..]).await.expect("insert many");
    assert!(rest.iter().all(|id| *id > first), "ids ascend");
    let status = store.status(5).await.expect("status");
    assert_eq!(status.pending, 100);
    assert!(status.oldest_created_at.is_some());
    assert!(store
        .lane_waiting(Lane::of(&records[0]))
        .await
        .expect("lane"));

    // A failed head holds back its key only, and stored bytes come back unchanged.
    let batch = store
        .claim(ClaimLimits {
            max_rows: 100,
            max_lanes: 100,
        })
        .await
        .expect("claim");
    assert_eq!(batch.rows().len(), 100);
    assert_eq!(batch.rows()[0].record, records[0]);
    let head = batch.rows()[0].id;
    batch
        .complete(BatchOutcome {
            delivered: vec![],
            failed: vec![RowFailure {
                id: head,
                error: "nope".into(),
                retry_in: Duration::from_millis(300),
                counted: true,
                park: None,
            }],
        })
        .await
        .expect("complete");
    let batch = store
        .claim(ClaimLimits {
            max_rows: 100,
            max_lanes: 100,
        })
        .await
        .expect("claim");
    assert_eq!(batch.rows().len(), 80, "key-0 waits for its retry");
    assert!(batch
        .rows()
        .iter()
        .all(|r| r.record.key_text.as_deref() != Some("key-0")));
    batch
        .complete(BatchOutcome::default())
        .await
        .expect("release");
    let status = store.status(5).await.expect("status");
    assert_eq!(status.failing_keys_total, 1);
    assert_eq!(status.failing_keys[0].last_error.as_deref(), Some("nope"));

    let handle = Relay::new(
        store.clone(),
        producer,
        RelayConfig::default().with_batch_size(30),
    )
    .spawn();
    wait_until_empty(store.as_ref()).await;
    let stats = handle.shutdown().await.expect("relay");
    assert_eq!(stats.published, 100);
    let on_topic = read_back(broker.bootstrap_servers(), &topic, &sent).await;
    assert_eq!(assert_complete_in_key_order(&on_topic, &sent), 0);
}

/// A database error only a person can fix (here the outbox table dropped under a
/// running relay) ends the relay with the error at once, for its supervisor to show;
/// it is not retried forever. The failure classifier decides (SQLSTATE 42P01 is
/// permanent), and no consecutive-error limit is set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_database_error_ends_the_relay_with_it() {
    let mock = MockKafkaCluster::start(1).expect("mock cluster");
    let registry = EmbeddedRegistry::start().await.expect("registry");
    let db = TestDatabase::create().await.expect("database");
    let store = Arc::new(pg_store(&db).await);
    let config = producer_config(mock.bootstrap_servers(), &registry, &unique_topic("gone"));
    let producer = Producer::new(config).expect("producer");
    let relay = Relay::new(
        store.clone(),
        producer,
        RelayConfig::default().with_retry_delays(Duration::from_millis(50), Duration::from_secs(1)),
    );
    sqlx::query("DROP TABLE event_bus.outbox CASCADE")
        .execute(db.pool())
        .await
        .expect("dropped");
    let ended = tokio::time::timeout(WAIT, relay.run_until(std::future::pending()))
        .await
        .expect("the relay ends by itself");
    match ended {
        Err(error) => assert_eq!(
            event_bus_kafka::failure::of_outbox(&error),
            event_bus_kafka::failure::Failure::Permanent,
            "{error}"
        ),
        Ok(stats) => panic!("the relay should fail, it returned {stats:?}"),
    }
    drop(store);
    db.drop_database().await.expect("drop");
}

/// Stores five single-row keys, a deep key (a head and 500 rows behind it), then 95
/// more single-row keys, and sets `mark` (an SQL `SET` list) on the deep key's head.
/// With claims of 100 rows and 100 keys the window of the 400 oldest rows holds the
/// first five keys and the deep key. Returns the single-row keys' ids, oldest first.
async fn deep_key_among_single_row_keys(store: &PostgresOutbox, mark: &str) -> Vec<OutboxId> {
    let singles = |keys: std::ops::Range<usize>| -> Vec<EncodedRecord> {
        keys.map(|k| record("t", &format!("single-{k}"))).collect()
    };
    let mut ready = store.insert_many(&singles(0..5)).await.expect("stored");
    let deep: Vec<EncodedRecord> = (0..=500).map(|_| record("t", "deep")).collect();
    let deep = store.insert_many(&deep).await.expect("stored");
    // The mark is set directly: the relay's way there is tested elsewhere.
    sqlx::query(&format!("UPDATE event_bus.outbox SET {mark} WHERE id = $1"))
        .bind(deep[0].0)
        .execute(store.pool())
        .await
        .expect("marked");
    ready.extend(store.insert_many(&singles(5..100)).await.expect("stored"));
    ready
}

/// Claims with `limits`, checks that the batch is `expected` (in id order), and
/// deletes it as delivered.
async fn claim_and_deliver(store: &PostgresOutbox, limits: ClaimLimits, expected: &[OutboxId]) {
    let batch = store.claim(limits).await.expect("claim");
    let claimed: Vec<OutboxId> = batch.rows().iter().map(|r| r.id).collect();
    assert_eq!(claimed.len(), expected.len(), "rows in one claim");
    assert_eq!(claimed, expected);
    batch
        .complete(BatchOutcome {
            delivered: claimed,
            failed: vec![],
        })
        .await
        .expect("completed");
}

/// Claims with `limits` and checks that nothing is claimed.
async fn claim_nothing(store: &PostgresOutbox, limits: ClaimLimits, why: &str) {
    let batch = store.claim(limits).await.expect("claim");
    assert!(ids(&batch).is_empty(), "{why}");
    batch
        .complete(BatchOutcome::default())
        .await
        .expect("nothing");
}

const HUNDRED: ClaimLimits = ClaimLimits {
    max_rows: 100,
    max_lanes: 100,
};

/// The rows waiting behind a parked key stay until a person acts, so they must not
/// fill the claim's window of oldest rows: one claim takes the head of every one of
/// the 100 ready keys (before the fix it took the 5 keys older than the parked one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_behind_a_parked_key_do_not_crowd_out_the_others() {
    let db = TestDatabase::create().await.expect("database");
    let store = pg_store(&db).await;
    let ready = deep_key_among_single_row_keys(
        &store,
        "attempts = 1, parked_at = now(), parked_reason = 'refused for good'",
    )
    .await;

    claim_and_deliver(&store, HUNDRED, &ready).await;
    claim_nothing(&store, HUNDRED, "only the parked key is left").await;
    drop(store);
    db.drop_database().await.expect("drop");
}

/// A backing-off key deep enough to fill most of the window: the claim looks past the
/// window for the keys it has room for (before the fix it took the 5 keys it saw).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deep_backing_off_key_does_not_shrink_the_claims_behind_it() {
    let db = TestDatabase::create().await.expect("database");
    let store = pg_store(&db).await;
    let ready = deep_key_among_single_row_keys(
        &store,
        "attempts = 1, last_error = 'down', next_attempt_at = now() + interval '1 hour'",
    )
    .await;

    claim_and_deliver(&store, HUNDRED, &ready).await;
    claim_nothing(&store, HUNDRED, "only the backing-off key is left").await;
    drop(store);
    db.drop_database().await.expect("drop");
}
