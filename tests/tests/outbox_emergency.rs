//! Emergency mode: the producer sends directly and defers to the outbox when the broker
//! cannot take the event; against real PostgreSQL, Apache Kafka and librdkafka's mock cluster
//! (for the outage).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use event_bus_core::prelude::*;
use event_bus_kafka::outbox::{
    DeferReason, EmergencyConfig, OutboxError, OutboxProducer, OutboxStore, PostgresOutbox, Relay,
    RelayConfig, SendOutcome,
};
use event_bus_kafka::prelude::*;
use event_bus_testkit::kafka::KafkaCluster;
use event_bus_testkit::mock_cluster::{MockKafkaCluster, ALL_BROKERS};
use event_bus_testkit::postgres::TestDatabase;
use event_bus_testkit::registry::EmbeddedRegistry;
use event_bus_testkit::topics::unique_topic;
use event_bus_tests::outbox_support::{
    self, assert_complete_in_key_order, read_back, wait_until_empty, Sent, WAIT,
};
use serde::{Deserialize, Serialize};

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
    note: String,
}

fn step(key: &str, seq: i64) -> StepRecorded {
    StepRecorded {
        key: key.into(),
        seq,
        note: String::new(),
    }
}

fn producer_config(
    bootstrap: &str,
    registry: &EmbeddedRegistry,
    prefix: &str,
    timeout: Duration,
) -> ProducerConfig {
    outbox_support::producer_config(
        bootstrap,
        Some("500"),
        registry,
        "outbox-emergency-test",
        prefix,
        timeout,
    )
}

async fn pg_store(db: &TestDatabase, max_backlog: u64) -> Arc<PostgresOutbox> {
    Arc::new(outbox_support::pg_store(db, 16, Some(max_backlog)).await)
}

/// How the sends went, per outcome.
#[derive(Debug, Default)]
struct Outcomes {
    delivered: usize,
    delivered_after_recovery: usize,
    deferred: HashMap<DeferReason, usize>,
}

/// The broker is down for 10 s while 10 000 events over 100 keys are sent (each key's
/// events one after the other): every send succeeds (delivered or deferred), and
/// afterwards all 10 000 are on the topic, none lost, each key in send order; sends go
/// direct again once the relay got through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_outage_of_ten_seconds_loses_nothing_and_keeps_key_order() {
    const KEYS: usize = 100;
    const PER_KEY: i64 = 100;
    let cluster = Arc::new(MockKafkaCluster::start(1).expect("mock cluster"));
    let registry = EmbeddedRegistry::start().await.expect("registry");
    let db = TestDatabase::create().await.expect("database");
    let prefix = unique_topic("outage");
    let config = producer_config(
        cluster.bootstrap_servers(),
        &registry,
        &prefix,
        Duration::from_secs(1),
    );
    let topic = config.full_topic(StepRecorded::TOPIC);
    cluster.create_topic(&topic, 4).expect("topic");
    let store = pg_store(&db, 100_000).await;
    let producer = OutboxProducer::new(
        Producer::new(config).expect("producer"),
        store.clone(),
        EmergencyConfig::default().with_probe_interval(Duration::from_secs(1)),
    );
    producer
        .producer()
        .register::<StepRecorded>()
        .await
        .expect("schemas");
    let relay = producer
        .relay(
            RelayConfig::default()
                .with_poll_interval(Duration::from_millis(500))
                .with_retry_delays(Duration::from_millis(200), Duration::from_secs(1)),
        )
        .spawn();

    let started = Instant::now();
    let outage = {
        let cluster = cluster.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(3)).await;
            cluster.broker_down(ALL_BROKERS).expect("broker down");
            tokio::time::sleep(Duration::from_secs(10)).await;
            cluster.broker_up(ALL_BROKERS).expect("broker up");
            Instant::now()
        })
    };
    let mut senders = Vec::new();
    for k in 0..KEYS {
        let producer = producer.clone();
        senders.push(tokio::spawn(async move {
            let key = format!("key-{k}");
            let mut results = Vec::new();
            for seq in 0..PER_KEY {
                let outcome = producer.send(&step(&key, seq)).await;
                results.push((key.clone(), seq, Instant::now(), outcome));
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            results
        }));
    }
    let mut sent = Sent::new();
    let mut results = Vec::new();
    for sender in senders {
        results.extend(sender.await.expect("sender"));
    }
    let recovered_at = outage.await.expect("outage");
    let mut outcomes = Outcomes::default();
    for (key, seq, at, outcome) in results {
        let outcome = outcome.unwrap_or_else(|e| panic!("send of {key}#{seq} failed: {e}"));
        match &outcome {
            SendOutcome::Delivered(_) => {
                outcomes.delivered += 1;
                if at > recovered_at {
                    outcomes.delivered_after_recovery += 1;
                }
            }
            SendOutcome::Deferred { reason, .. } => {
                *outcomes.deferred.entry(*reason).or_default() += 1
            }
        }
        sent.insert(outcome.event_id(), (key, seq));
    }
    println!(
        "outage test: sends took {:?}; {outcomes:?}",
        started.elapsed()
    );
    assert_eq!(sent.len(), KEYS * PER_KEY as usize);
    assert!(
        outcomes
            .deferred
            .get(&DeferReason::DeliveryFailed)
            .is_some_and(|&n| n > 0),
        "{outcomes:?}"
    );
    assert!(
        outcomes
            .deferred
            .get(&DeferReason::KeyWaiting)
            .is_some_and(|&n| n > 0),
        "{outcomes:?}"
    );
    assert!(
        outcomes.delivered_after_recovery > 0,
        "sends never went direct again: {outcomes:?}"
    );

    wait_until_empty(store.as_ref()).await;
    let stats = relay.shutdown().await.expect("relay");
    let on_topic = read_back(cluster.bootstrap_servers(), &topic, &sent).await;
    let duplicates = assert_complete_in_key_order(&on_topic, &sent);
    println!(
        "outage test: relay {stats:?}; {} records on the topic, {duplicates} duplicates",
        on_topic.len()
    );
    drop(store);
    db.drop_database().await.expect("drop");
}

/// After a failed direct send the circuit opens: events of other keys go straight to the
/// outbox without trying the broker; once the relay gets through, sends go direct again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_broker_is_not_tried_for_every_send() {
    let cluster = MockKafkaCluster::start(1).expect("mock cluster");
    let registry = EmbeddedRegistry::start().await.expect("registry");
    let db = TestDatabase::create().await.expect("database");
    let prefix = unique_topic("circuit");
    let config = producer_config(
        cluster.bootstrap_servers(),
        &registry,
        &prefix,
        Duration::from_secs(1),
    );
    let topic = config.full_topic(StepRecorded::TOPIC);
    cluster.create_topic(&topic, 2).expect("topic");
    let store = pg_store(&db, 1000).await;
    // No probes during the test: only the relay may close the circuit.
    let producer = OutboxProducer::new(
        Producer::new(config).expect("producer"),
        store.clone(),
        EmergencyConfig::default().with_probe_interval(Duration::from_secs(3600)),
    );
    producer
        .producer()
        .register::<StepRecorded>()
        .await
        .expect("schemas");
    cluster.broker_down(ALL_BROKERS).expect("broker down");

    let first = producer.send(&step("a", 0)).await.expect("deferred");
    assert!(
        matches!(
            first,
            SendOutcome::Deferred {
                reason: DeferReason::DeliveryFailed,
                ..
            }
        ),
        "{first:?}"
    );
    assert!(!producer.health().is_healthy());
    let mut sent = Sent::from([(first.event_id(), ("a".to_owned(), 0))]);
    for key in ["b", "c", "d"] {
        let outcome = producer.send(&step(key, 0)).await.expect("deferred");
        assert!(
            matches!(
                outcome,
                SendOutcome::Deferred {
                    reason: DeferReason::BrokerFailing,
                    ..
                }
            ),
            "{outcome:?}"
        );
        sent.insert(outcome.event_id(), (key.to_owned(), 0));
    }

    cluster.broker_up(ALL_BROKERS).expect("broker up");
    let relay = producer.relay(
        RelayConfig::default()
            .with_retry_delays(Duration::from_millis(100), Duration::from_millis(500)),
    );
    let deadline = Instant::now() + WAIT;
    while !store.status(1).await.expect("status").is_empty() {
        assert!(Instant::now() < deadline, "the relay never got through");
        relay.run_once().await.expect("relay batch");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        producer.health().is_healthy(),
        "the relay's success closes the circuit"
    );
    let direct = producer.send(&step("e", 0)).await.expect("sent");
    assert!(matches!(direct, SendOutcome::Delivered(_)), "{direct:?}");
    sent.insert(direct.event_id(), ("e".to_owned(), 0));
    let on_topic = read_back(cluster.bootstrap_servers(), &topic, &sent).await;
    assert_complete_in_key_order(&on_topic, &sent);
    drop(store);
    db.drop_database().await.expect("drop");
}

/// While an event of a key waits in the outbox, a newer event of that key queues behind
/// it even though the broker is fine; other keys go direct. The relay then publishes
/// the key in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_event_queues_behind_its_waiting_key() {
    let broker = KafkaCluster::shared().expect("Apache Kafka (run scripts/install-test-deps)");
    let registry = EmbeddedRegistry::start().await.expect("registry");
    let db = TestDatabase::create().await.expect("database");
    let prefix = unique_topic("behind");
    let config = producer_config(
        broker.bootstrap_servers(),
        &registry,
        &prefix,
        Duration::from_secs(10),
    );
    let topic = config.full_topic(StepRecorded::TOPIC);
    broker.create_topic(&topic, 2).await.expect("topic");
    let store = pg_store(&db, 1000).await;
    let producer = OutboxProducer::new(
        Producer::new(config).expect("producer"),
        store.clone(),
        EmergencyConfig::default(),
    );

    // An earlier event of "a" is waiting (deferred before, by this or another instance).
    let waiting = producer
        .producer()
        .encoder()
        .encode(&step("a", 0), None, None)
        .await
        .expect("encode");
    store.insert(&waiting).await.expect("stored");
    let mut sent = Sent::from([(waiting.event_id, ("a".to_owned(), 0))]);

    let behind = producer.send(&step("a", 1)).await.expect("send a#1");
    assert!(
        matches!(
            behind,
            SendOutcome::Deferred {
                reason: DeferReason::KeyWaiting,
                ..
            }
        ),
        "{behind:?}"
    );
    sent.insert(behind.event_id(), ("a".into(), 1));
    let other = producer.send(&step("b", 0)).await.expect("send b#0");
    assert!(matches!(other, SendOutcome::Delivered(_)), "{other:?}");
    sent.insert(other.event_id(), ("b".into(), 0));

    let stats = producer
        .relay(RelayConfig::default())
        .drain()
        .await
        .expect("relay");
    assert_eq!(stats.published, 2);
    let after = producer.send(&step("a", 2)).await.expect("send a#2");
    assert!(
        matches!(after, SendOutcome::Delivered(_)),
        "the key is clear again: {after:?}"
    );
    sent.insert(after.event_id(), ("a".into(), 2));
    let on_topic = read_back(broker.bootstrap_servers(), &topic, &sent).await;
    assert_eq!(assert_complete_in_key_order(&on_topic, &sent), 0);
    drop(store);
    db.drop_database().await.expect("drop");
}

/// With the broker down and the backlog at its limit, `send` returns `OutboxFull`: the
/// event is neither delivered nor stored, and nothing already stored is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_full_is_an_error_and_nothing_is_dropped() {
    let cluster = MockKafkaCluster::start(1).expect("mock cluster");
    let registry = EmbeddedRegistry::start().await.expect("registry");
    let db = TestDatabase::create().await.expect("database");
    let prefix = unique_topic("full");
    let config = producer_config(
        cluster.bootstrap_servers(),
        &registry,
        &prefix,
        Duration::from_millis(500),
    );
    cluster
        .create_topic(&config.full_topic(StepRecorded::TOPIC), 1)
        .expect("topic");
    cluster.broker_down(ALL_BROKERS).expect("broker down");
    let store = pg_store(&db, 5).await;
    let producer = OutboxProducer::new(
        Producer::new(config).expect("producer"),
        store.clone(),
        EmergencyConfig::default(),
    );

    let mut stored = Vec::new();
    for seq in 0..5 {
        let outcome = producer
            .send(&step("k", seq))
            .await
            .expect("deferred, not failed");
        assert!(outcome.is_deferred(), "{outcome:?}");
        stored.push(outcome.event_id());
    }
    let err = producer
        .send(&step("k", 5))
        .await
        .expect_err("the outbox is full");
    assert!(
        matches!(
            err,
            OutboxError::Full {
                pending: 5,
                max_backlog: 5
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("NOT stored"), "{err}");
    let status = store.status(5).await.expect("status");
    assert_eq!(
        status.pending, 5,
        "the refused event was not stored, the others were kept"
    );
    drop(store);
    db.drop_database().await.expect("drop");
}

/// An event the broker refuses for what it is (too large) is returned as an error, not
/// stored: retrying it from the outbox would block its key forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_error_is_returned_not_deferred() {
    let broker = KafkaCluster::shared().expect("Apache Kafka (run scripts/install-test-deps)");
    let registry = EmbeddedRegistry::start().await.expect("registry");
    let db = TestDatabase::create().await.expect("database");
    let prefix = unique_topic("too-large");
    let mut config = producer_config(
        broker.bootstrap_servers(),
        &registry,
        &prefix,
        Duration::from_secs(10),
    );
    config.kafka = config.kafka.with_option("message.max.bytes", "1000");
    broker
        .create_topic(&config.full_topic(StepRecorded::TOPIC), 1)
        .await
        .expect("topic");
    let store = pg_store(&db, 100).await;
    let producer = OutboxProducer::new(
        Producer::new(config).expect("producer"),
        store.clone(),
        EmergencyConfig::default(),
    );

    let mut event = step("k", 0);
    event.note = "x".repeat(5_000);
    let err = producer.send(&event).await.expect_err("too large");
    assert!(
        matches!(err, OutboxError::Producer(ProducerError::Delivery { .. })),
        "{err:?}"
    );
    assert!(store.status(1).await.expect("status").is_empty());
    assert!(
        producer.health().is_healthy(),
        "a bad event says nothing about the broker"
    );
    drop(store);
    db.drop_database().await.expect("drop");
}

/// A database role that may store outbox rows but not read them (column `id` only, for
/// `INSERT … RETURNING id`), or, with `may_insert` false, may do neither: the "does this
/// key have events waiting?" check fails for it, deterministically.
async fn store_as_restricted_role(
    db: &TestDatabase,
    may_insert: bool,
) -> (Arc<PostgresOutbox>, String) {
    let role = format!("{}_writer", db.name());
    let mut statements = vec![
        format!("CREATE ROLE \"{role}\" LOGIN"),
        format!("GRANT USAGE ON SCHEMA event_bus TO \"{role}\""),
    ];
    if may_insert {
        statements.push(format!("GRANT INSERT ON event_bus.outbox TO \"{role}\""));
        statements.push(format!(
            "GRANT SELECT (id) ON event_bus.outbox TO \"{role}\""
        ));
        statements.push(format!(
            "GRANT USAGE ON SEQUENCE event_bus.outbox_id_seq TO \"{role}\""
        ));
    }
    for statement in statements {
        sqlx::query(&statement)
            .execute(db.pool())
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
    }
    let options = db.connect_options().clone().username(&role);
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await
        .expect("connect as the restricted role");
    (Arc::new(PostgresOutbox::new(pool)), role)
}

async fn drop_role(db: &TestDatabase, store: Arc<PostgresOutbox>, role: &str) {
    store.pool().close().await;
    for statement in [
        format!("DROP OWNED BY \"{role}\""),
        format!("DROP ROLE \"{role}\""),
    ] {
        sqlx::query(&statement)
            .execute(db.pool())
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
    }
}

/// Records on `topic` (partition 0's high watermark).
async fn records_on(bootstrap: &str, topic: &str) -> i64 {
    let (bootstrap, topic) = (bootstrap.to_owned(), topic.to_owned());
    tokio::task::spawn_blocking(move || {
        let consumer: rdkafka::consumer::BaseConsumer =
            event_bus_testkit::kafka::consumer_config(&bootstrap, "outbox-emergency-watermarks")
                .create()
                .expect("consumer");
        let (_, high) = rdkafka::consumer::Consumer::fetch_watermarks(
            &consumer,
            &topic,
            0,
            Duration::from_secs(10),
        )
        .expect("watermarks");
        high
    })
    .await
    .expect("watermark task")
}

/// A healthy broker, a migrated outbox (`admin` reads it) and an emergency producer
/// whose store connects as a restricted role (see [`store_as_restricted_role`]).
struct RestrictedSetup {
    broker: &'static KafkaCluster,
    _registry: EmbeddedRegistry,
    db: TestDatabase,
    topic: String,
    admin: Arc<PostgresOutbox>,
    store: Arc<PostgresOutbox>,
    role: String,
    producer: OutboxProducer<PostgresOutbox>,
}

impl RestrictedSetup {
    async fn start(name: &str, may_insert: bool) -> Self {
        let broker = KafkaCluster::shared().expect("Apache Kafka (run scripts/install-test-deps)");
        let registry = EmbeddedRegistry::start().await.expect("registry");
        let db = TestDatabase::create().await.expect("database");
        let config = producer_config(
            broker.bootstrap_servers(),
            &registry,
            &unique_topic(name),
            Duration::from_secs(10),
        );
        let topic = config.full_topic(StepRecorded::TOPIC);
        broker.create_topic(&topic, 1).await.expect("topic");
        let admin = pg_store(&db, 1000).await;
        let (store, role) = store_as_restricted_role(&db, may_insert).await;
        let producer = OutboxProducer::new(
            Producer::new(config).expect("producer"),
            store.clone(),
            EmergencyConfig::default(),
        );
        Self {
            broker,
            _registry: registry,
            db,
            topic,
            admin,
            store,
            role,
            producer,
        }
    }

    async fn records_on_topic(&self) -> i64 {
        records_on(self.broker.bootstrap_servers(), &self.topic).await
    }

    async fn finish(self) {
        drop(self.producer);
        drop_role(&self.db, self.store, &self.role).await;
        drop(self.admin);
        self.db.drop_database().await.expect("drop");
    }
}

/// The broker is healthy but the key check fails (the database refuses to read the
/// outbox): the event is not sent directly, it queues in the outbox
/// (`DeferReason::KeyUnchecked`), where the relay publishes it in key order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_key_check_defers_instead_of_sending_directly() {
    let setup = RestrictedSetup::start("unchecked", true).await;

    let mut sent = Sent::new();
    for seq in 0..2 {
        let outcome = setup
            .producer
            .send(&step("a", seq))
            .await
            .expect("deferred");
        assert!(
            matches!(
                outcome,
                SendOutcome::Deferred {
                    reason: DeferReason::KeyUnchecked,
                    ..
                }
            ),
            "the key check failed, so the event must not go directly: {outcome:?}"
        );
        sent.insert(outcome.event_id(), ("a".into(), seq));
    }
    assert_eq!(setup.records_on_topic().await, 0);
    assert_eq!(setup.admin.status(1).await.expect("status").pending, 2);

    let relay = Relay::new(
        setup.admin.clone(),
        setup.producer.producer().clone(),
        RelayConfig::default(),
    );
    let stats = relay.drain().await.expect("relay");
    assert_eq!(stats.published, 2);
    let on_topic = read_back(setup.broker.bootstrap_servers(), &setup.topic, &sent).await;
    assert_eq!(assert_complete_in_key_order(&on_topic, &sent), 0);
    setup.finish().await;
}

/// The key check fails and the outbox refuses the event too: `send` returns
/// `OrderUnknown` with both reasons, and nothing reached the broker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_key_check_with_the_outbox_down_is_an_error_and_nothing_is_sent() {
    let setup = RestrictedSetup::start("unknown-order", false).await;

    let err = setup
        .producer
        .send(&step("a", 0))
        .await
        .expect_err("neither checked nor stored");
    assert!(
        matches!(&err, OutboxError::OrderUnknown { key, .. } if key == "a"),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains("NOT sent"), "{message}");
    assert!(message.contains("permission denied"), "{message}");
    assert_eq!(setup.records_on_topic().await, 0);
    assert!(setup.admin.status(1).await.expect("status").is_empty());
    setup.finish().await;
}
