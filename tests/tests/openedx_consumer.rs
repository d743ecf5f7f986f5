//! Issue 6 interop: a record put on the wire exactly as Open edX's Python producer
//! (edx-event-bus-kafka 6.2.0, openedx-events 11.2.0) puts it — its published wire
//! vector under schema id 100019, a framed string key, and its exact 10-header set —
//! is dispatched by the Rust consumer into `SessionLoginCompleted` with the right
//! fields and metadata. And a Rust producer writes the same key bytes and Avro body
//! under the same subjects.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use event_bus_core::codec;
use event_bus_core::dispatch::{DeliveryContext, Origin};
use event_bus_examples::openedx::{SessionLoginCompleted, UserData};
use event_bus_kafka::consumer::{ConsumerConfig, EventConsumer, Shutdown};
use event_bus_kafka::prelude::*;
use event_bus_kafka::registry::RegistryClient;
use event_bus_kafka::topic;
use event_bus_testkit::kafka::KafkaCluster;
use event_bus_testkit::registry::EmbeddedRegistry;
use event_bus_testkit::topics::{unique_group, unique_topic};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use uuid::Uuid;

const LOGIN_SCHEMA: &str = include_str!(
    "../fixtures/openedx-events-11.2.0/org+openedx+learning+auth+session+login+completed+v1_schema.avsc"
);
/// Open edX's published wire vector for the login event's user (README of the fixtures).
const WIRE_VECTOR: &str = "00 00 01 86 b3 f6 01 01 0c 66 6f 6f 62 6f 62 1e 62 6f 62 40 66 6f 6f 2e 65 78 61 6d 70 6c 65 0e 42 6f 62 20 46 6f 6f";
const VALUE_ID: u32 = 100_019;
const KEY_ID: u32 = 100_020;
const CE_ID: &str = "3a1e8e3c-6f1d-4f5e-9a51-7c0f5d0f2b1e";
const CE_TIME: &str = "2023-09-14T17:02:31.123456+00:00";

fn hex(text: &str) -> Vec<u8> {
    text.split(' ')
        .map(|b| u8::from_str_radix(b, 16).expect("hex"))
        .collect()
}

/// Open edX's header set, in its order, as its producer writes it.
fn openedx_headers() -> OwnedHeaders {
    [
        ("ce_specversion", "1.0"),
        ("content-type", "application/avro"),
        ("ce_datacontenttype", "application/avro"),
        ("ce_type", SessionLoginCompleted::EVENT_TYPE),
        ("ce_id", CE_ID),
        ("ce_source", "openedx/lms/web"),
        ("ce_time", CE_TIME),
        ("ce_minorversion", "0"),
        ("sourcehost", "edx.devstack.lms"),
        ("sourcelib", "11.2.0"),
    ]
    .into_iter()
    .fold(OwnedHeaders::new(), |headers, (key, value)| {
        headers.insert(Header {
            key,
            value: Some(value.as_bytes()),
        })
    })
}

type Seen = Arc<Mutex<Vec<(SessionLoginCompleted, DeliveryContext)>>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_framed_by_openedx_is_dispatched_into_the_rust_type() {
    let broker = KafkaCluster::shared().expect("Apache Kafka (run scripts/install-test-deps)");
    let registry = EmbeddedRegistry::start().await.expect("registry");
    let prefix = unique_topic("openedx");
    let full_topic = topic::full_topic(Some(&prefix), SessionLoginCompleted::TOPIC);
    broker.create_topic(&full_topic, 1).await.expect("topic");

    // The registry holds what Open edX's producer registered: the published schema
    // under id 100019 and the key field's own schema under `{topic}-string`.
    let value_subject = topic::value_subject(&full_topic, SessionLoginCompleted::EVENT_TYPE);
    let key_subject = topic::key_subject(&full_topic, "string");
    registry
        .register_with_id(&value_subject, LOGIN_SCHEMA, VALUE_ID)
        .expect("value schema");
    registry
        .register_with_id(
            &key_subject,
            r#"{"name": "username", "type": "string"}"#,
            KEY_ID,
        )
        .expect("key schema");

    // The record, byte for byte as the Python producer writes it.
    let value = hex(WIRE_VECTOR);
    let mut key = codec::frame(KEY_ID, &[0x0c]);
    key.extend_from_slice(b"foobob");
    let raw: FutureProducer = broker.producer_config().create().expect("raw producer");
    let delivery = raw
        .send(
            FutureRecord::to(&full_topic)
                .key(&key)
                .payload(&value)
                .headers(openedx_headers()),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(e, _)| e)
        .expect("sent");
    let (partition, offset) = (delivery.partition, delivery.offset);

    // The Rust consumer, with one receiver keeping what it got.
    let seen: Seen = Arc::default();
    let mut bus = EventBus::new();
    let keep = Arc::clone(&seen);
    bus.connect_fn("keep", move |event: &SessionLoginCompleted, ctx| {
        if let Ok(mut seen) = keep.lock() {
            seen.push((event.clone(), ctx.clone()));
        }
        Ok(())
    })
    .expect("connect");
    let config = ConsumerConfig::new(
        KafkaConfig::new(broker.bootstrap_servers()).with_option("session.timeout.ms", "6000"),
        RegistryConfig::new(registry.url()),
        unique_group("openedx"),
        [SessionLoginCompleted::TOPIC],
    )
    .with_topic_prefix(prefix.clone());
    let consumer = EventConsumer::new(config, Arc::new(bus)).expect("consumer");
    let stats = consumer.stats();
    let (trigger, shutdown) = Shutdown::new();
    let running = tokio::spawn(consumer.run(shutdown));
    let started = Instant::now();
    while stats.snapshot().records_handled < 1 && started.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    trigger.trigger();
    let summary = running.await.expect("task").expect("loop ends cleanly");
    assert_eq!(summary.records_handled, 1);
    assert_eq!(
        summary.records_dead_lettered, 0,
        "decoded, not dead-lettered"
    );

    let seen = seen.lock().expect("lock").clone();
    assert_eq!(seen.len(), 1, "dispatched once");
    let (event, ctx) = &seen[0];
    assert_eq!(event.user, UserData::example());
    let meta = &ctx.metadata;
    assert_eq!(meta.id, Uuid::parse_str(CE_ID).expect("uuid"));
    assert_eq!(meta.event_type, SessionLoginCompleted::EVENT_TYPE);
    assert_eq!(meta.source, "openedx/lms/web");
    assert_eq!(meta.sourcehost, "edx.devstack.lms");
    assert_eq!(meta.sourcelib, "11.2.0");
    assert_eq!(meta.minorversion, 0);
    let time: DateTime<Utc> = DateTime::parse_from_rfc3339(CE_TIME)
        .expect("time")
        .with_timezone(&Utc);
    assert_eq!(meta.time, time, "microseconds kept");
    assert_eq!(meta.traceparent, None);
    assert_eq!(
        ctx.origin,
        Origin::Bus {
            topic: full_topic.clone().into(),
            partition,
            offset,
        }
    );
    assert_eq!(ctx.attempt, 1);

    // A Rust producer on the same topic uses the same subjects and writes the same
    // key bytes and the same Avro body. (The value's schema id may differ: the derived
    // schema carries the Rust doc comments as Avro docs, which a registry counts in a
    // schema's identity, so it becomes a new, compatible version of the same subject.)
    let producer = Producer::new(
        ProducerConfig::new(
            KafkaConfig::new(broker.bootstrap_servers()),
            RegistryConfig::new(registry.url()),
        )
        .with_topic_prefix(prefix),
    )
    .expect("producer");
    let ours = producer
        .encoder()
        .encode(
            &SessionLoginCompleted {
                user: UserData::example(),
            },
            None,
            None,
        )
        .await
        .expect("encoded");
    assert_eq!(ours.key.as_deref(), Some(key.as_slice()), "key bytes equal");
    let (_, our_body) = codec::unframe(&ours.value).expect("framed");
    let (_, their_body) = codec::unframe(&value).expect("framed");
    assert_eq!(
        our_body, their_body,
        "Avro body equals Open edX's wire vector"
    );
    let client = RegistryClient::new(RegistryConfig::new(registry.url())).expect("client");
    let mut subjects = client.subjects().await.expect("subjects");
    subjects.sort();
    let mut expected = vec![value_subject, key_subject];
    expected.sort();
    assert_eq!(subjects, expected, "no new subject");
}
