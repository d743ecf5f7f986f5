//! Transactional mode: events stored in the caller's own transaction are published if
//! and only if it commits; against real PostgreSQL, SQLite and a real Apache Kafka broker.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use event_bus_core::prelude::*;
use event_bus_kafka::outbox::{
    OutboxError, OutboxStore, Relay, RelayConfig, SqliteOutbox, TransactionalOutbox,
};
use event_bus_kafka::prelude::*;
use event_bus_testkit::kafka::KafkaCluster;
use event_bus_testkit::postgres::TestDatabase;
use event_bus_testkit::registry::EmbeddedRegistry;
use event_bus_testkit::topics::unique_topic;
use event_bus_tests::outbox_support::{
    self, ce_id, reader_from_beginning, wait_until_empty_every, WAIT,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// An order was placed.
#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(
    type = "org.example.test.shop.order.placed.v1",
    topic = "outbox-orders",
    key = "order_id"
)]
struct OrderPlaced {
    order_id: String,
    amount: i64,
}

fn order(id: &str) -> OrderPlaced {
    OrderPlaced {
        order_id: id.into(),
        amount: 42,
    }
}

fn producer_config(
    broker: &KafkaCluster,
    registry: &EmbeddedRegistry,
    prefix: &str,
) -> ProducerConfig {
    outbox_support::producer_config(
        broker.bootstrap_servers(),
        None,
        registry,
        "outbox-transactional-test",
        prefix,
        Duration::from_secs(10),
    )
}

/// The `ce_id`s on `topic`: reads until `expected` are there, or until the topic has been
/// quiet for `quiet` when fewer are expected (to prove that nothing else arrives).
async fn ce_ids_on(bootstrap: &str, topic: &str, expected: usize, quiet: Duration) -> Vec<Uuid> {
    let (bootstrap, topic) = (bootstrap.to_owned(), topic.to_owned());
    tokio::task::spawn_blocking(move || {
        let consumer = reader_from_beginning(
            &bootstrap,
            "outbox-test-reader",
            &topic,
            Duration::from_secs(10),
        );
        let deadline = Instant::now() + WAIT;
        let mut ids = Vec::new();
        let mut quiet_since = Instant::now();
        while Instant::now() < deadline {
            match consumer.poll(Duration::from_millis(100)) {
                Some(message) => {
                    ids.push(ce_id(&message.expect("consume")));
                    quiet_since = Instant::now();
                }
                None if ids.len() >= expected && quiet_since.elapsed() >= quiet => break,
                None => {}
            }
        }
        ids
    })
    .await
    .expect("reader thread")
}

/// A rolled-back transaction publishes nothing; a committed one publishes its events,
/// in order, together with its business row. The relay runs with a one-hour polling
/// interval, so only the commit's NOTIFY can wake it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolled_back_publishes_nothing_committed_publishes_on_notify() {
    let broker = KafkaCluster::shared().expect("Apache Kafka (run scripts/install-test-deps)");
    let registry = EmbeddedRegistry::start().await.expect("registry");
    let db = TestDatabase::create().await.expect("database");
    let prefix = unique_topic("tx");
    let config = producer_config(broker, &registry, &prefix);
    let topic = config.full_topic(OrderPlaced::TOPIC);
    broker.create_topic(&topic, 2).await.expect("topic");
    let producer = Producer::new(config).expect("producer");
    let store = Arc::new(outbox_support::pg_store(&db, 6, None).await);
    let outbox = TransactionalOutbox::new(producer.encoder().clone(), store.clone());
    sqlx::query("CREATE TABLE orders (id TEXT PRIMARY KEY)")
        .execute(store.pool())
        .await
        .expect("business table");
    let relay = Relay::new(
        store.clone(),
        producer,
        RelayConfig::default().with_poll_interval(Duration::from_secs(3600)),
    )
    .spawn();

    let mut tx = store.pool().begin().await.expect("begin");
    sqlx::query("INSERT INTO orders (id) VALUES ('o-1')")
        .execute(&mut *tx)
        .await
        .expect("order");
    outbox
        .enqueue(&mut tx, &order("o-1"))
        .await
        .expect("enqueued");
    tx.rollback().await.expect("rollback");

    let mut tx = store.pool().begin().await.expect("begin");
    sqlx::query("INSERT INTO orders (id) VALUES ('o-2')")
        .execute(&mut *tx)
        .await
        .expect("order");
    let first = outbox
        .enqueue(&mut tx, &order("o-2"))
        .await
        .expect("enqueued");
    let second = outbox
        .enqueue(&mut tx, &order("o-2"))
        .await
        .expect("enqueued");
    assert!(second.outbox_id > first.outbox_id);
    let before_commit = ce_ids_on(
        broker.bootstrap_servers(),
        &topic,
        0,
        Duration::from_secs(1),
    )
    .await;
    assert!(
        before_commit.is_empty(),
        "nothing is published before the commit"
    );
    tx.commit().await.expect("commit");

    let published = ce_ids_on(
        broker.bootstrap_servers(),
        &topic,
        2,
        Duration::from_secs(2),
    )
    .await;
    assert_eq!(
        published,
        vec![first.event_id, second.event_id],
        "only the committed events, in order"
    );
    wait_until_empty_every(store.as_ref(), Duration::from_millis(50)).await;
    let orders: Vec<String> = sqlx::query_scalar("SELECT id FROM orders")
        .fetch_all(store.pool())
        .await
        .expect("orders");
    assert_eq!(orders, vec!["o-2".to_owned()]);
    let stats = relay.shutdown().await.expect("relay");
    assert_eq!(stats.published, 2);
    drop(store);
    db.drop_database().await.expect("drop");
}

/// Beyond the backlog limit `enqueue` fails with `OutboxFull`; the transaction stays
/// usable and the caller decides (here: commit without the refused event).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueue_beyond_the_backlog_is_outbox_full() {
    let broker = KafkaCluster::shared().expect("Apache Kafka (run scripts/install-test-deps)");
    let registry = EmbeddedRegistry::start().await.expect("registry");
    let db = TestDatabase::create().await.expect("database");
    let producer = Producer::new(producer_config(broker, &registry, &unique_topic("tx-full")))
        .expect("producer");
    // One connection, held by the transaction: the backlog is then decided on the
    // estimate (this transaction's three rows), as it is whenever no connection is idle.
    // With idle ones, a recount due under load (every 200 ms while full) runs on another
    // connection, which cannot see this transaction's uncommitted rows and counts 0: the
    // limit is approximate by design (see `admit_in_transaction`), and this test failed
    // that way on a loaded machine.
    let store = Arc::new(outbox_support::pg_store(&db, 1, Some(3)).await);
    let outbox = TransactionalOutbox::new(producer.encoder().clone(), store.clone());

    let mut tx = store.pool().begin().await.expect("begin");
    for i in 0..3 {
        outbox
            .enqueue(&mut tx, &order(&format!("o-{i}")))
            .await
            .expect("fits");
    }
    let err = outbox
        .enqueue(&mut tx, &order("o-3"))
        .await
        .expect_err("full");
    assert!(
        matches!(err, OutboxError::Full { max_backlog: 3, .. }),
        "{err:?}"
    );
    tx.commit().await.expect("the transaction is still usable");
    assert_eq!(store.status(1).await.expect("status").pending, 3);
    drop(store);
    db.drop_database().await.expect("drop");
}

/// Every connection of the pool is a request transaction that enqueues before it commits
/// (ten requests on a pool of five, five at a time): the backlog count never waits for a
/// second connection that only a commit could free (with none idle it runs in the
/// background). The timeout only turns a deadlock into a failure instead of a hang.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_transactions_filling_the_pool_enqueue_without_deadlock() {
    const POOL: usize = 5;
    const REQUESTS: usize = 10;
    let broker = KafkaCluster::shared().expect("Apache Kafka (run scripts/install-test-deps)");
    let registry = EmbeddedRegistry::start().await.expect("registry");
    let db = TestDatabase::create().await.expect("database");
    let producer = Producer::new(producer_config(broker, &registry, &unique_topic("tx-pool")))
        .expect("producer");
    // The schema is registered before the requests start, as in a warmed-up service.
    producer
        .encoder()
        .encode(&order("warm-up"), None, None)
        .await
        .expect("encode");
    let store = Arc::new(outbox_support::pg_store(&db, POOL as u32, None).await);
    sqlx::query("CREATE TABLE orders (id TEXT PRIMARY KEY)")
        .execute(store.pool())
        .await
        .expect("orders table");
    // A fresh store: its backlog estimate has never been counted, so each request's
    // enqueue counts the table.
    let store = Arc::new(event_bus_kafka::outbox::PostgresOutbox::new(
        store.pool().clone(),
    ));
    let outbox = TransactionalOutbox::new(producer.encoder().clone(), store.clone());
    // Requests pass this barrier POOL at a time, each holding a pool connection.
    let all_connections_taken = Arc::new(tokio::sync::Barrier::new(POOL));

    let requests = async {
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..REQUESTS {
            let (store, outbox) = (store.clone(), outbox.clone());
            let barrier = all_connections_taken.clone();
            tasks.spawn(async move {
                let id = format!("o-{i}");
                let mut tx = store.pool().begin().await.expect("begin");
                sqlx::query("INSERT INTO orders (id) VALUES ($1)")
                    .bind(&id)
                    .execute(&mut *tx)
                    .await
                    .expect("business row");
                barrier.wait().await;
                outbox
                    .enqueue(&mut tx, &order(&id))
                    .await
                    .expect("enqueued on the caller's transaction");
                tx.commit().await.expect("commit");
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.expect("request task");
        }
    };
    tokio::time::timeout(Duration::from_secs(60), requests)
        .await
        .expect("the requests deadlocked on the pool");
    assert_eq!(
        store.status(1).await.expect("status").pending,
        REQUESTS as u64
    );
    drop((outbox, store));
    db.drop_database().await.expect("drop");
}

/// The SQLite store in transactional mode (a file): rollback → nothing, commit → published.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_transactional_enqueue_publishes_only_committed_events() {
    let broker = KafkaCluster::shared().expect("Apache Kafka (run scripts/install-test-deps)");
    let registry = EmbeddedRegistry::start().await.expect("registry");
    let prefix = unique_topic("tx-sqlite");
    let config = producer_config(broker, &registry, &prefix);
    let topic = config.full_topic(OrderPlaced::TOPIC);
    broker.create_topic(&topic, 1).await.expect("topic");
    let producer = Producer::new(config).expect("producer");
    let path = std::env::temp_dir().join(format!("{}.db", unique_topic("outbox")));
    let store = Arc::new(
        SqliteOutbox::connect(&format!("sqlite:{}", path.display()))
            .await
            .expect("sqlite"),
    );
    store.migrate().await.expect("migrate");
    let outbox = TransactionalOutbox::new(producer.encoder().clone(), store.clone());

    let mut tx = store.pool().begin().await.expect("begin");
    outbox
        .enqueue(&mut tx, &order("o-1"))
        .await
        .expect("enqueued");
    tx.rollback().await.expect("rollback");
    let mut tx = store.pool().begin().await.expect("begin");
    let kept = outbox
        .enqueue(&mut tx, &order("o-2"))
        .await
        .expect("enqueued");
    tx.commit().await.expect("commit");
    assert_eq!(store.status(1).await.expect("status").pending, 1);

    let stats = Relay::new(store.clone(), producer, RelayConfig::default())
        .drain()
        .await
        .expect("drain");
    assert_eq!(stats.published, 1);
    let published = ce_ids_on(
        broker.bootstrap_servers(),
        &topic,
        1,
        Duration::from_secs(2),
    )
    .await;
    assert_eq!(
        published.into_iter().collect::<HashSet<_>>(),
        HashSet::from([kept.event_id])
    );
    store.pool().close().await;
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_file(path.with_extension("db-wal"));
    let _ = std::fs::remove_file(path.with_extension("db-shm"));
}

/// Two SERIALIZABLE request transactions, each enqueueing through a store that has not
/// counted its backlog yet (two processes), both commit: the backlog count is not read
/// in either transaction (when it was, each read the outbox the other wrote to, and the
/// second commit failed with SQLSTATE 40001).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serializable_transactions_enqueue_side_by_side() {
    use event_bus_kafka::outbox::{PostgresOutbox, TransactionalStore};
    let db = TestDatabase::create().await.expect("database");
    let migrated = outbox_support::pg_store(&db, 4, None).await;
    let (first, second) = (
        PostgresOutbox::new(migrated.pool().clone()),
        PostgresOutbox::new(migrated.pool().clone()),
    );
    let begin = || async {
        let mut tx = migrated.pool().begin().await.expect("begin");
        sqlx::query("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")
            .execute(&mut *tx)
            .await
            .expect("serializable");
        tx
    };
    let (mut tx1, mut tx2) = (begin().await, begin().await);
    let record = |key| outbox_support::raw_record("serializable", Some(key), 8);
    first
        .insert_in(&mut tx1, &record("a"))
        .await
        .expect("first enqueue");
    second
        .insert_in(&mut tx2, &record("b"))
        .await
        .expect("second enqueue");
    tx1.commit().await.expect("first commit");
    tx2.commit()
        .await
        .expect("second commit (no serialization failure)");
    assert_eq!(migrated.status(1).await.expect("status").pending, 2);
    drop((first, second, migrated));
    db.drop_database().await.expect("drop");
}
