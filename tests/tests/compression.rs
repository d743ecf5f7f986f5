//! Compression on a real Apache Kafka broker (issue 17): the SDK's producers compress
//! by default, an explicit `compression.type` among the Kafka options wins, and a
//! consumer reads topics whose batches are compressed with zstd (a Python producer's
//! choice, or a topic's `compression.type=zstd`, which makes the broker recompress).
//!
//! What the broker holds is measured from outside the producer: a plain consumer
//! reads the topic back and librdkafka's statistics give the bytes it fetched from the
//! broker (`rxbytes`), which serves the stored record batches as they are.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use event_bus_examples::openedx::SessionLoginCompleted;
use event_bus_kafka::consumer::{ConsumerConfig, EventConsumer, Shutdown};
use event_bus_kafka::prelude::*;
use event_bus_testkit::kafka::{KafkaCluster, TopicSpec};
use event_bus_testkit::registry::EmbeddedRegistry;
use event_bus_testkit::topics::{unique_group, unique_topic};
use event_bus_tests::stack::{Stack, WAIT};
use event_bus_tests::traffic::{openedx_traffic, TrafficEvent};
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::statistics::Statistics;
use rdkafka::{Offset, TopicPartitionList};

/// Logins of many learners (each with its own ids, names, e-mails), as an LMS sends them.
fn logins(count: usize) -> Vec<SessionLoginCompleted> {
    openedx_traffic(count * 2)
        .into_iter()
        .filter_map(|event| match event {
            TrafficEvent::Login(login) => Some(login),
            TrafficEvent::Enrollment(_) => None,
        })
        .take(count)
        .collect()
}

/// Sends `events` with `enqueue` (so they travel in full batches: `linger.ms` is
/// raised by the callers), then waits for every acknowledgement.
async fn enqueue_all(producer: &Producer, events: &[SessionLoginCompleted]) {
    for event in events {
        producer.enqueue(event).await.expect("queued");
    }
    producer.flush(WAIT).await.expect("all delivered");
}

/// librdkafka's statistics, as a consumer client reports them.
#[derive(Default)]
struct FetchStats {
    /// Bytes received from the cluster's brokers (not the bootstrap connection).
    received: Mutex<u64>,
    reports: AtomicUsize,
}

impl ClientContext for FetchStats {
    fn stats(&self, statistics: Statistics) {
        let received = statistics
            .brokers
            .values()
            .filter(|broker| broker.nodeid >= 0)
            .map(|broker| broker.rxbytes)
            .sum();
        *self.received.lock().expect("stats lock") = received;
        self.reports.fetch_add(1, Ordering::SeqCst);
    }
}

impl ConsumerContext for FetchStats {}

/// Reads all `expected` records of one-partition `topic` with a plain consumer and
/// returns the bytes it fetched from the broker for them.
async fn fetched_bytes(broker: &KafkaCluster, topic: &str, expected: usize) -> u64 {
    let config = broker
        .consumer_config(&unique_group("compression-reader"))
        .set("statistics.interval.ms", "100")
        .clone();
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer<FetchStats> = config
            .create_with_context(FetchStats::default())
            .expect("reader");
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset(&topic, 0, Offset::Beginning)
            .expect("partition");
        consumer.assign(&assignment).expect("assign");
        let deadline = Instant::now() + WAIT;
        let mut read = 0;
        while read < expected && Instant::now() < deadline {
            if let Some(message) = consumer.poll(Duration::from_millis(100)) {
                message.expect("a readable record");
                read += 1;
            }
        }
        assert_eq!(read, expected, "records read back from {topic}");
        // Two more reports: the second was certainly counted after the last fetch.
        let seen = consumer.context().reports.load(Ordering::SeqCst);
        while consumer.context().reports.load(Ordering::SeqCst) < seen + 2
            && Instant::now() < deadline
        {
            if let Some(Ok(extra)) = consumer.poll(Duration::from_millis(100)) {
                panic!("{topic} holds more than {expected} records: {extra:?}");
            }
        }
        let received = *consumer.context().received.lock().expect("stats lock");
        received
    })
    .await
    .expect("reader thread")
}

/// A stack whose producer batches for 100 ms, with `options` added.
async fn batching_stack(name: &str, options: &[(&str, &str)]) -> Stack {
    let mut stack = Stack::start(name, "g")
        .await
        .with_kafka_option("linger.ms", "100");
    for (key, value) in options {
        stack = stack.with_kafka_option(key, value);
    }
    stack
}

#[tokio::test]
async fn the_default_codec_shrinks_what_the_broker_stores_and_an_explicit_one_wins() {
    const EVENTS: usize = 700;
    let events = logins(EVENTS);
    let default = batching_stack("compressed", &[]).await;
    let none = batching_stack("uncompressed", &[("compression.type", "none")]).await;
    let zstd = batching_stack("zstd", &[("compression.type", "zstd")]).await;
    for stack in [&default, &none, &zstd] {
        enqueue_all(&stack.producer(), &events).await;
    }
    let default_bytes = fetched_bytes(default.broker, &default.topic, EVENTS).await;
    let none_bytes = fetched_bytes(none.broker, &none.topic, EVENTS).await;
    let zstd_bytes = fetched_bytes(zstd.broker, &zstd.topic, EVENTS).await;
    eprintln!(
        "{EVENTS} logins fetched: default ({}) {default_bytes} B, none {none_bytes} B, \
         zstd {zstd_bytes} B",
        event_bus_kafka::config::DEFAULT_COMPRESSION
    );
    // The benchmark measured about 4.5 times fewer bytes with lz4 on such batches.
    assert!(
        default_bytes * 2 < none_bytes,
        "the default codec should at least halve the bytes: {default_bytes} B against \
         {none_bytes} B uncompressed"
    );
    assert!(
        zstd_bytes * 2 < none_bytes,
        "compression.type=zstd among the options should be used: {zstd_bytes} B against \
         {none_bytes} B uncompressed"
    );
}

#[tokio::test]
async fn a_topic_the_broker_stores_with_zstd_is_consumed() {
    const EVENTS: usize = 20;
    let broker = KafkaCluster::shared().expect("Apache Kafka (run scripts/install-test-deps)");
    let registry = EmbeddedRegistry::start().await.expect("registry");
    let prefix = unique_topic("zstd-topic");
    // With compression.type=zstd on the topic, the broker recompresses every batch it
    // receives with zstd, whatever the producer used.
    let topic = format!("{prefix}-{}", SessionLoginCompleted::TOPIC);
    broker
        .create_topic_with(&TopicSpec::new(&topic, 1).with_config("compression.type", "zstd"))
        .await
        .expect("topic");
    let kafka =
        KafkaConfig::new(broker.bootstrap_servers()).with_option("session.timeout.ms", "6000");
    let producer = Producer::new(
        ProducerConfig::new(kafka.clone(), RegistryConfig::new(registry.url()))
            .with_topic_prefix(prefix.clone()),
    )
    .expect("producer");
    enqueue_all(&producer, &logins(EVENTS)).await;

    let handled = Arc::new(AtomicUsize::new(0));
    let mut bus = EventBus::new();
    let count = Arc::clone(&handled);
    bus.connect_fn("count", move |_: &SessionLoginCompleted, _| {
        count.fetch_add(1, Ordering::SeqCst);
        Ok(())
    })
    .expect("connect");
    let config = ConsumerConfig::new(
        kafka,
        RegistryConfig::new(registry.url()),
        unique_group("zstd-topic"),
        [SessionLoginCompleted::TOPIC],
    )
    .with_topic_prefix(prefix);
    let consumer = EventConsumer::new(config, Arc::new(bus)).expect("consumer");
    let stats = consumer.stats();
    let (stop, shutdown) = Shutdown::new();
    let run = tokio::spawn(consumer.run(shutdown));
    let started = Instant::now();
    while stats.snapshot().records_handled < EVENTS as u64
        && started.elapsed() < WAIT
        && !run.is_finished()
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.trigger();
    let stats = run
        .await
        .expect("consumer task")
        .expect("the loop reads zstd batches without an error");
    assert_eq!(stats.records_handled, EVENTS as u64);
    assert_eq!(stats.records_dead_lettered, 0);
    assert_eq!(handled.load(Ordering::SeqCst), EVENTS);
}
