//! `event-bus outbox status|relay --drain` against a SQLite outbox, a real broker and
//! the embedded registry. One test in this binary: it sets EVENT_BUS_* variables.

use std::sync::Arc;
use std::time::Duration;

use event_bus_kafka::outbox::{SqliteOutbox, TransactionalOutbox};
use event_bus_kafka::prelude::*;
use event_bus_testkit::kafka::KafkaCluster;
use event_bus_testkit::records::read_topic;
use event_bus_testkit::registry::EmbeddedRegistry;
use event_bus_testkit::topics::unique_topic;
use event_bus_tests::outbox_support::cli_json;
use serde::{Deserialize, Serialize};

/// An invoice was paid.
#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(
    type = "org.example.test.billing.invoice.paid.v1",
    topic = "invoices",
    key = "invoice_id"
)]
struct InvoicePaid {
    invoice_id: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_the_backlog_and_relay_drain_publishes_it() {
    let broker = KafkaCluster::shared().expect("Apache Kafka (run scripts/install-test-deps)");
    let registry = EmbeddedRegistry::start().await.expect("registry");
    let prefix = unique_topic("ocli");
    let topic = format!("{prefix}-{}", InvoicePaid::TOPIC);
    broker.create_topic(&topic, 1).await.expect("topic");
    std::env::set_var(
        "EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS",
        broker.bootstrap_servers(),
    );
    std::env::set_var("EVENT_BUS_SCHEMA_REGISTRY_URL", registry.url());
    std::env::set_var("EVENT_BUS_TOPIC_PREFIX", &prefix);

    let path = std::env::temp_dir().join(format!("{}.db", unique_topic("outbox-cli")));
    let url = format!("sqlite:{}", path.display());
    let store = Arc::new(SqliteOutbox::connect(&url).await.expect("sqlite"));
    store.migrate().await.expect("migrate");
    let producer =
        Producer::new(ProducerConfig::from_env().expect("env config")).expect("producer");
    let outbox = TransactionalOutbox::new(producer.encoder().clone(), store.clone());
    let mut tx = store.pool().begin().await.expect("begin");
    for n in 0..3 {
        outbox
            .enqueue(
                &mut tx,
                &InvoicePaid {
                    invoice_id: format!("i-{n}"),
                },
            )
            .await
            .expect("enqueued");
    }
    tx.commit().await.expect("commit");

    let status = cli_json(&[
        "event-bus",
        "--output",
        "json",
        "outbox",
        "status",
        "--database-url",
        &url,
    ])
    .await;
    assert_eq!(status["pending"], 3, "{status}");
    assert_eq!(status["failing_keys_total"], 0);
    assert_eq!(status["parked"], 0);
    assert!(status["oldest_age_ms"].as_u64().is_some());

    let relayed = cli_json(&[
        "event-bus",
        "--output",
        "json",
        "outbox",
        "relay",
        "--drain",
        "--database-url",
        &url,
    ])
    .await;
    assert_eq!(relayed["published"], 3, "{relayed}");
    let status = cli_json(&[
        "event-bus",
        "--output",
        "json",
        "outbox",
        "status",
        "--database-url",
        &url,
    ])
    .await;
    assert_eq!(status["pending"], 0);
    let records = read_topic(
        broker.bootstrap_servers(),
        &topic,
        3,
        Duration::from_secs(30),
    )
    .expect("read");
    assert_eq!(records.len(), 3);

    store.pool().close().await;
    for suffix in ["db", "db-wal", "db-shm"] {
        let _ = std::fs::remove_file(path.with_extension(suffix));
    }
}
