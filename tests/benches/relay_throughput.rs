//! Outbox relay throughput: events per second from PostgreSQL to the broker (issue 5:
//! "target ≥ 10 000/s on this 2-core machine; report what you reach and where the time
//! goes").
//!
//! # What it measures
//!
//! One Apache Kafka node (KRaft, broker and controller in one JVM, started here with a
//! heap of 1024 MiB, on the same cores as the benchmark), the embedded schema registry
//! and a fresh PostgreSQL database per scenario. Per scenario: `BENCH_EVENTS` events
//! are encoded once (the SDK's encoder: Avro, Confluent framing, CloudEvents headers)
//! and stored in the outbox with `insert_many` (not timed); then one relay drains the
//! outbox and the clock stops when it finds nothing left to claim. Every row went
//! through claim (`FOR UPDATE SKIP LOCKED` on the lane heads), publish (all rows of a
//! batch queued to librdkafka at once, then every acknowledgement awaited) and complete
//! (one `DELETE … = ANY`, then commit). The relay's own timers split the time between
//! these three phases.
//!
//! Scenarios: many keys (one event per key and batch, so each batch locks
//! `BENCH_BATCH` heads) and few keys (`BENCH_EVENTS / 10` events per key: deep lanes).
//! librdkafka options: idempotence on, `acks=all`, `linger.ms=5`,
//! `batch.num.messages=10000`.
//!
//! It is a benchmark, not a test: nothing asserts a duration. It fails only if an event
//! is lost (the topic is read back and counted) or a service cannot start.
//!
//! # Running it
//!
//! ```text
//! scripts/install-test-deps   # once: Apache Kafka's jars (and Java), PostgreSQL
//! cargo bench -p event-bus-tests --bench relay_throughput
//! BENCH_EVENTS=100000 BENCH_BATCH=2000 cargo bench -p event-bus-tests --bench relay_throughput
//! ```
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `BENCH_EVENTS` | events per scenario | 50000 |
//! | `BENCH_BATCH` | relay batch size (rows and keys per batch) | 1000 |
//! | `EVENT_BUS_TEST_POSTGRES_URL` | administrative PostgreSQL URL | `postgres://postgres@127.0.0.1:5432/postgres` |
//! | `EVENT_BUS_TEST_KAFKA_LIBS` | the folder of Kafka's jars (default: where `install-test-deps` puts them) | — |
//!
//! With the defaults it takes about 30 s on two cores (plus the build), the broker's
//! start included. `cargo test` and `cargo nextest` build this target but never run it:
//! without `--bench` it prints a note and exits, and it lists no tests.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use event_bus_core::prelude::*;
use event_bus_kafka::config::{KafkaConfig, ProducerConfig, RegistryConfig};
use event_bus_kafka::outbox::{OutboxStore, PostgresOutbox, Relay, RelayConfig, RelayStats};
use event_bus_kafka::producer::{EncodedRecord, Producer};
use event_bus_testkit::kafka::KafkaCluster;
use event_bus_testkit::postgres::TestDatabase;
use event_bus_testkit::records::read_topic;
use event_bus_testkit::registry::EmbeddedRegistry;
use event_bus_testkit::topics::unique_topic;
use event_bus_tests::bench_support::{
    broker_and_runtime, env_number, run_benchmark, BenchResult, BROKER_HEAP_MB,
};
use serde::{Deserialize, Serialize};

/// A typical small event: a key and a few fields.
#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(
    type = "org.example.bench.outbox.item.updated.v1",
    topic = "outbox-bench",
    key = "item_id"
)]
struct ItemUpdated {
    item_id: String,
    version: i64,
    title: String,
    price_cents: i64,
}

fn main() -> ExitCode {
    run_benchmark("relay_throughput", || {
        let events = env_number("BENCH_EVENTS", 50_000)?.max(10);
        let batch = env_number("BENCH_BATCH", 1_000)?.max(1);
        let (broker, runtime) = broker_and_runtime()?;
        runtime.block_on(bench_main(events, batch, &broker))
    })
}

async fn bench_main(events: usize, batch: usize, broker: &KafkaCluster) -> BenchResult<()> {
    let registry = EmbeddedRegistry::start().await?;
    println!(
        "relay throughput: {events} events per scenario, batches of {batch}, PostgreSQL → Kafka"
    );
    println!(
        "broker: Apache Kafka {} (KRaft, 1 node, heap {BROKER_HEAP_MB} MiB) at {}; librdkafka {}",
        broker.version(),
        broker.bootstrap_servers(),
        rdkafka::util::get_rdkafka_version().1,
    );
    println!();
    println!(
        "{:<22} {:>9} {:>10} {:>8} {:>9} {:>9} {:>10} {:>9}",
        "scenario", "events/s", "elapsed", "batches", "claim", "publish", "complete", "other"
    );
    for (name, keys) in [("many keys (1 per row)", events), ("few keys (10)", 10)] {
        let db = TestDatabase::create().await?;
        let result = scenario(broker, &registry, &db, events, keys, batch).await;
        db.drop_database().await?;
        let (elapsed, stats) = result?;
        let other =
            elapsed.saturating_sub(stats.claim_time + stats.publish_time + stats.complete_time);
        println!(
            "{:<22} {:>9.0} {:>9.2}s {:>8} {:>8.2}s {:>8.2}s {:>9.2}s {:>8.2}s",
            name,
            stats.published as f64 / elapsed.as_secs_f64(),
            elapsed.as_secs_f64(),
            stats.batches,
            stats.claim_time.as_secs_f64(),
            stats.publish_time.as_secs_f64(),
            stats.complete_time.as_secs_f64(),
            other.as_secs_f64(),
        );
    }
    println!();
    println!(
        "claim = the claim statement; publish = queueing to librdkafka and awaiting every ack;"
    );
    println!("complete = DELETE + COMMIT; other = the final empty claim and loop overhead.");
    Ok(())
}

async fn scenario(
    broker: &KafkaCluster,
    registry: &EmbeddedRegistry,
    db: &TestDatabase,
    events: usize,
    keys: usize,
    batch: usize,
) -> BenchResult<(Duration, RelayStats)> {
    let config = ProducerConfig::new(
        KafkaConfig::new(broker.bootstrap_servers())
            .with_option("linger.ms", "5")
            .with_option("batch.num.messages", "10000")
            .with_option(
                "queue.buffering.max.messages",
                (batch * 2).max(100_000).to_string(),
            ),
        RegistryConfig::new(registry.url()),
    )
    .with_service_name("relay-bench")
    .with_topic_prefix(unique_topic("bench"))
    .with_delivery_timeout(Duration::from_secs(60));
    let topic = config.full_topic(ItemUpdated::TOPIC);
    broker.create_topic(&topic, 4).await?;
    let producer = Producer::new(config)?;
    let store = Arc::new(
        PostgresOutbox::connect_with_pool_size(&db.url(), 4)
            .await?
            .with_max_backlog(u64::MAX),
    );
    store.migrate().await?;

    let mut records: Vec<EncodedRecord> = Vec::with_capacity(events);
    for i in 0..events {
        let event = ItemUpdated {
            item_id: format!("item-{}", i % keys),
            version: (i / keys) as i64,
            title: "A reasonably sized product title".to_owned(),
            price_cents: 1999,
        };
        records.push(producer.encoder().encode(&event, None, None).await?);
    }
    for chunk in records.chunks(5_000) {
        store.insert_many(chunk).await?;
    }
    sqlx::query("VACUUM ANALYZE event_bus.outbox")
        .execute(store.pool())
        .await?;

    let relay = Relay::new(
        store.clone(),
        producer,
        RelayConfig::default()
            .with_batch_size(batch)
            .with_max_lanes_per_batch(batch),
    );
    let started = Instant::now();
    let stats = relay.drain().await?;
    let elapsed = started.elapsed();
    let left = store.status(1).await?.pending;
    if stats.published != events as u64 || left != 0 {
        return Err(format!(
            "published {} of {events}, {left} left in the outbox",
            stats.published
        )
        .into());
    }
    let (bootstrap, read_topic_name) = (broker.bootstrap_servers().to_owned(), topic.clone());
    let on_topic = tokio::task::spawn_blocking(move || {
        read_topic(
            &bootstrap,
            &read_topic_name,
            events,
            Duration::from_secs(60),
        )
        .map(|r| r.len())
    })
    .await??;
    if on_topic < events {
        return Err(format!("only {on_topic} of {events} events on the topic").into());
    }
    Ok((elapsed, stats))
}
