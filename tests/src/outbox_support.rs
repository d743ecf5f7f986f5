//! Helpers shared by the outbox tests (`outbox_emergency`, `outbox_relay`,
//! `outbox_transactional`, `outbox_parked`, `outbox_cli`): producer configs, PostgreSQL
//! stores, raw records, storing records, waiting until the outbox is empty, reading a
//! topic back and checking per-key order, running `event-bus outbox …` in-process.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use clap::Parser;
use event_bus_kafka::cli::{run_with, Cli, CliContext};
use event_bus_kafka::outbox::{OutboxStore, PostgresOutbox};
use event_bus_kafka::prelude::*;
use event_bus_kafka::producer::EncodedRecord;
use event_bus_testkit::kafka::consumer_config;
use event_bus_testkit::postgres::TestDatabase;
use event_bus_testkit::registry::EmbeddedRegistry;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use uuid::Uuid;

/// How long the outbox tests wait for the outbox to drain or the topic to fill.
pub const WAIT: Duration = Duration::from_secs(45);

/// What was sent or stored: `ce_id` → (key, seq).
pub type Sent = HashMap<Uuid, (String, i64)>;

/// A producer config for the outbox tests: `linger.ms` 5, `reconnect.backoff.max.ms`
/// when given, the service name, topic prefix and delivery timeout.
pub fn producer_config(
    bootstrap: &str,
    reconnect_backoff_max_ms: Option<&str>,
    registry: &EmbeddedRegistry,
    service_name: &str,
    prefix: &str,
    timeout: Duration,
) -> ProducerConfig {
    let mut kafka = KafkaConfig::new(bootstrap).with_option("linger.ms", "5");
    if let Some(backoff) = reconnect_backoff_max_ms {
        kafka = kafka.with_option("reconnect.backoff.max.ms", backoff);
    }
    ProducerConfig::new(kafka, RegistryConfig::new(registry.url()))
        .with_service_name(service_name)
        .with_topic_prefix(prefix)
        .with_delivery_timeout(timeout)
}

/// A migrated PostgreSQL outbox on `db` with a pool of `pool_size`, limited to
/// `max_backlog` pending rows when given.
pub async fn pg_store(
    db: &TestDatabase,
    pool_size: u32,
    max_backlog: Option<u64>,
) -> PostgresOutbox {
    let mut store = PostgresOutbox::connect_with_pool_size(&db.url(), pool_size)
        .await
        .expect("connect outbox");
    if let Some(max_backlog) = max_backlog {
        store = store.with_max_backlog(max_backlog);
    }
    store.migrate().await.expect("migrate");
    store
}

/// A record as the producer would encode it, without the registry: `payload_len` bytes
/// of value behind the 5-byte schema frame, a `ce_id` header, `key` as key text. The
/// value's bytes are random, so the record is as large on the wire as here (the
/// producers compress by default; tests of size limits rely on this).
pub fn raw_record(topic: &str, key: Option<&str>, payload_len: usize) -> EncodedRecord {
    let event_id = Uuid::new_v4();
    let mut value = vec![0, 0, 0, 0, 1];
    value.extend(crate::filler::incompressible_bytes(payload_len));
    EncodedRecord {
        topic: topic.to_owned(),
        key: key.map(|k| k.as_bytes().to_vec()),
        value,
        headers: vec![("ce_id".to_owned(), event_id.to_string().into_bytes())],
        event_type: "org.example.test.outbox.step.recorded.v1".to_owned(),
        event_id,
        key_text: key.map(str::to_owned),
    }
}

/// Runs an `event-bus` command line in-process with `--output json` given in `args`;
/// returns its JSON output. Panics when the command fails.
pub async fn cli_json(args: &[&str]) -> serde_json::Value {
    let cli = Cli::try_parse_from(args).expect("valid command line");
    let mut out = Vec::new();
    run_with(cli, &CliContext::default(), &mut out)
        .await
        .unwrap_or_else(|e| panic!("{args:?} failed: {e}"));
    serde_json::from_slice(&out)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out)))
}

/// Stores `records` in chunks of 1000.
pub async fn store_all<S: OutboxStore>(store: &S, records: &[EncodedRecord]) {
    for chunk in records.chunks(1000) {
        store.insert_many(chunk).await.expect("stored");
    }
}

/// Waits (up to [`WAIT`], checking every 100 ms) until the outbox is empty.
pub async fn wait_until_empty<S: OutboxStore>(store: &S) {
    wait_until_empty_every(store, Duration::from_millis(100)).await
}

/// Waits (up to [`WAIT`], checking every `poll`) until the outbox is empty.
pub async fn wait_until_empty_every<S: OutboxStore>(store: &S, poll: Duration) {
    let deadline = Instant::now() + WAIT;
    loop {
        let status = store.status(5).await.expect("status");
        if status.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "outbox not drained: {status:?}");
        tokio::time::sleep(poll).await;
    }
}

/// A consumer in `group` assigned to every partition of `topic` from the beginning
/// (metadata fetched within `metadata_timeout`).
pub fn reader_from_beginning(
    bootstrap: &str,
    group: &str,
    topic: &str,
    metadata_timeout: Duration,
) -> BaseConsumer {
    let consumer: BaseConsumer = consumer_config(bootstrap, group)
        .create()
        .expect("consumer");
    let metadata = consumer
        .fetch_metadata(Some(topic), metadata_timeout)
        .expect("metadata");
    let mut assignment = TopicPartitionList::new();
    for t in metadata.topics() {
        for p in t.partitions() {
            assignment
                .add_partition_offset(topic, p.id(), Offset::Beginning)
                .expect("partition");
        }
    }
    consumer.assign(&assignment).expect("assign");
    consumer
}

/// The `ce_id` header of `message`.
pub fn ce_id<M: Message>(message: &M) -> Uuid {
    let headers = message.headers().expect("headers");
    let value = headers
        .iter()
        .find(|h| h.key == "ce_id")
        .and_then(|h| h.value)
        .expect("ce_id header");
    std::str::from_utf8(value)
        .expect("utf-8")
        .parse()
        .expect("uuid")
}

/// Every record of `topic` from the beginning, until all of `sent` was seen and the
/// topic stayed quiet for a second: `ce_id`s in (partition, offset) order.
pub async fn read_back(bootstrap: &str, topic: &str, sent: &Sent) -> Vec<Uuid> {
    let (bootstrap, topic) = (bootstrap.to_owned(), topic.to_owned());
    let wanted: HashSet<Uuid> = sent.keys().copied().collect();
    tokio::task::spawn_blocking(move || {
        let consumer = reader_from_beginning(
            &bootstrap,
            "outbox-test-reader",
            &topic,
            Duration::from_secs(10),
        );
        let deadline = Instant::now() + WAIT;
        let mut seen = HashSet::new();
        let mut records = Vec::new();
        let mut quiet_since = Instant::now();
        while Instant::now() < deadline {
            match consumer.poll(Duration::from_millis(100)) {
                Some(message) => {
                    let message = message.expect("consume");
                    let id = ce_id(&message);
                    seen.insert(id);
                    records.push((message.partition(), message.offset(), id));
                    quiet_since = Instant::now();
                }
                None if seen.is_superset(&wanted)
                    && quiet_since.elapsed() > Duration::from_secs(1) =>
                {
                    break
                }
                None => {}
            }
        }
        records.sort_unstable_by_key(|(p, o, _)| (*p, *o));
        records.into_iter().map(|(_, _, id)| id).collect()
    })
    .await
    .expect("reader thread")
}

/// Asserts every sent event is on the topic and each key's events come first in send
/// order (a consumer deduplicating on `ce_id` sees exactly the sent sequence); returns
/// the number of duplicates.
pub fn assert_complete_in_key_order(on_topic: &[Uuid], sent: &Sent) -> usize {
    let mut first_seen = HashSet::new();
    let mut per_key: HashMap<&str, Vec<i64>> = HashMap::new();
    for id in on_topic {
        let (key, seq) = sent
            .get(id)
            .unwrap_or_else(|| panic!("unexpected record {id}"));
        if first_seen.insert(*id) {
            per_key.entry(key.as_str()).or_default().push(*seq);
        }
    }
    let missing = sent.len() - first_seen.len();
    assert_eq!(missing, 0, "{missing} events lost");
    for (key, seqs) in &per_key {
        let expected: Vec<i64> = (0..seqs.len() as i64).collect();
        assert_eq!(seqs, &expected, "events of {key} out of order");
    }
    on_topic.len() - first_seen.len()
}
