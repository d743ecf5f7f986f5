//! The producer against a real Apache Kafka broker and the embedded registry.

use std::time::Duration;

use event_bus_core::codec;
use event_bus_core::headers::parse_headers;
use event_bus_core::schema::compat::CompatibilityLevel;
use event_bus_examples::openedx::{SessionLoginCompleted, UserData};
use event_bus_kafka::prelude::*;
use event_bus_kafka::producer::ProducerError;
use event_bus_kafka::registry::{RegistryClient, RegistryError};
use event_bus_kafka::topic;
use event_bus_testkit::kafka::KafkaCluster;
use event_bus_testkit::records::read_topic;
use event_bus_testkit::registry::EmbeddedRegistry;
use event_bus_testkit::topics::unique_topic;
use rdkafka::message::{Headers, Message};

const WAIT: Duration = Duration::from_secs(30);

struct Stack {
    broker: &'static KafkaCluster,
    registry: EmbeddedRegistry,
    prefix: String,
}

impl Stack {
    async fn start() -> Self {
        let broker = KafkaCluster::shared().expect("Apache Kafka (run scripts/install-test-deps)");
        let registry = EmbeddedRegistry::start().await.expect("embedded registry");
        Self {
            broker,
            registry,
            prefix: unique_topic("p"),
        }
    }

    fn config(&self) -> ProducerConfig {
        ProducerConfig::new(
            KafkaConfig::new(self.broker.bootstrap_servers()).with_option("linger.ms", "0"),
            RegistryConfig::new(self.registry.url()),
        )
        .with_service_name("producer-test")
        .with_topic_prefix(self.prefix.clone())
        .with_delivery_timeout(Duration::from_secs(20))
    }

    async fn topic_for(&self, topic: &str) -> String {
        let full = topic::full_topic(Some(&self.prefix), topic);
        self.broker
            .create_topic(&full, 1)
            .await
            .expect("create topic");
        full
    }
}

fn login() -> SessionLoginCompleted {
    SessionLoginCompleted {
        user: UserData::example(),
    }
}

#[tokio::test]
async fn bytes_on_the_wire_match_the_contract() {
    let stack = Stack::start().await;
    let full_topic = stack.topic_for(SessionLoginCompleted::TOPIC).await;
    let producer = Producer::new(stack.config()).expect("producer");
    let delivery = producer.send(&login()).await.expect("delivered");
    assert_eq!(delivery.topic, full_topic);

    let records = read_topic(stack.broker.bootstrap_servers(), &full_topic, 1, WAIT).expect("read");
    assert_eq!(records.len(), 1);
    let record = &records[0];
    assert_eq!(record.offset(), delivery.offset);

    // Value: magic byte, the registered id, then the Avro body.
    let registry = RegistryClient::new(RegistryConfig::new(stack.registry.url())).expect("client");
    let value_subject = topic::value_subject(&full_topic, SessionLoginCompleted::EVENT_TYPE);
    let value = record.payload().expect("value");
    assert_eq!(value[0], 0, "magic byte");
    let (value_id, datum) = codec::unframe(value).expect("framed");
    let value_schema = registry.schema_by_id(value_id).await.expect("schema by id");
    assert_eq!(
        value_schema.canonical_form(),
        SessionLoginCompleted::schema().canonical_form()
    );
    let decoded = SessionLoginCompleted::from_avro_datum(datum, &value_schema).expect("decodes");
    assert_eq!(decoded, login());
    assert_eq!(
        registry
            .compatibility(&value_subject)
            .await
            .expect("config"),
        Some(CompatibilityLevel::FullTransitive)
    );

    // Key: framed Avro string under `{topic}-string`, as Open edX does.
    let key = record.key().expect("key");
    let (key_id, key_datum) = codec::unframe(key).expect("framed key");
    assert_eq!(key_datum, &[0x0c, b'f', b'o', b'o', b'b', b'o', b'b']);
    let key_schema = registry.schema_by_id(key_id).await.expect("key schema");
    assert_eq!(key_schema.canonical_form(), "\"string\"");
    let key_subject = topic::key_subject(&full_topic, "string");
    assert!(registry
        .subjects()
        .await
        .expect("subjects")
        .contains(&key_subject));
    assert_eq!(
        registry.compatibility(&key_subject).await.expect("config"),
        Some(CompatibilityLevel::FullTransitive)
    );

    // Headers: exactly the ten of the contract, in order, UTF-8.
    let headers = record.headers().expect("headers");
    let pairs: Vec<(String, Vec<u8>)> = headers
        .iter()
        .map(|h| (h.key.to_owned(), h.value.unwrap_or_default().to_vec()))
        .collect();
    let names: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "ce_specversion",
            "content-type",
            "ce_datacontenttype",
            "ce_type",
            "ce_id",
            "ce_source",
            "ce_time",
            "ce_minorversion",
            "sourcehost",
            "sourcelib"
        ]
    );
    let parsed = parse_headers(pairs.iter().map(|(k, v)| (k.as_str(), Some(v.as_slice()))))
        .expect("headers parse");
    assert!(parsed.defaulted.is_empty());
    assert_eq!(parsed.metadata.id, delivery.event_id);
    assert_eq!(
        parsed.metadata.event_type,
        SessionLoginCompleted::EVENT_TYPE
    );
    assert_eq!(parsed.metadata.source, "producer-test");
    let header = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    };
    assert_eq!(header("content-type").as_deref(), Some("application/avro"));
    assert_eq!(
        header("ce_datacontenttype").as_deref(),
        Some("application/avro")
    );
    assert_eq!(header("ce_specversion").as_deref(), Some("1.0"));
    let time = header("ce_time").expect("ce_time");
    assert!(
        time.ends_with("+00:00") && time.len() == "2023-11-06T10:20:30.123456+00:00".len(),
        "{time}"
    );
}

#[tokio::test]
async fn incompatible_schema_is_refused_before_anything_is_sent() {
    let stack = Stack::start().await;
    let full_topic = stack.topic_for(SessionLoginCompleted::TOPIC).await;
    // An earlier version of the type had a required field that ours drops.
    let subject = topic::value_subject(&full_topic, SessionLoginCompleted::EVENT_TYPE);
    let mut older = SessionLoginCompleted::schema_json();
    older["fields"]
        .as_array_mut()
        .expect("fields")
        .push(serde_json::json!({"name": "login_method", "type": "string"}));
    let registry = RegistryClient::new(RegistryConfig::new(stack.registry.url())).expect("client");
    registry
        .register_full_transitive(&subject, &older.to_string())
        .await
        .expect("older version registered");

    let producer = Producer::new(stack.config()).expect("producer");
    let err = producer.send(&login()).await.expect_err("must be refused");
    match &err {
        ProducerError::Registry {
            subject: s,
            source: RegistryError::Incompatible { message, .. },
        } => {
            assert_eq!(s, &subject);
            assert!(message.contains("login_method"), "{message}");
        }
        other => panic!("expected an incompatibility, got {other:?}"),
    }
    let on_topic = read_topic(
        stack.broker.bootstrap_servers(),
        &full_topic,
        1,
        Duration::from_secs(3),
    )
    .expect("read");
    assert!(on_topic.is_empty(), "nothing may be produced");
}

#[tokio::test]
async fn register_at_start_up_sets_full_transitive_and_caches_ids() {
    let stack = Stack::start().await;
    stack.topic_for(SessionLoginCompleted::TOPIC).await;
    let producer = Producer::new(stack.config()).expect("producer");
    let first = producer
        .register::<SessionLoginCompleted>()
        .await
        .expect("registered");
    let again = producer
        .register::<SessionLoginCompleted>()
        .await
        .expect("cached");
    assert_eq!(first, again);
    assert!(first.key_id.is_some());
}

#[tokio::test]
async fn enqueue_reports_and_flush_waits_for_everything() {
    let stack = Stack::start().await;
    let full_topic = stack.topic_for(SessionLoginCompleted::TOPIC).await;
    let producer = Producer::new(stack.config()).expect("producer");
    let mut ids = Vec::new();
    for _ in 0..20 {
        ids.push(producer.enqueue(&login()).await.expect("queued"));
    }
    producer.flush(WAIT).await.expect("flushed");
    assert_eq!(producer.in_flight(), 0);
    let records =
        read_topic(stack.broker.bootstrap_servers(), &full_topic, 20, WAIT).expect("read");
    let seen: Vec<uuid::Uuid> = records
        .iter()
        .filter_map(|r| {
            let headers = r.headers()?;
            headers
                .iter()
                .find(|h| h.key == "ce_id")
                .and_then(|h| std::str::from_utf8(h.value?).ok()?.parse().ok())
        })
        .collect();
    assert_eq!(seen, ids, "every enqueued event arrived, in order");
}

#[tokio::test]
async fn registry_unreachable_is_an_error_and_nothing_is_sent() {
    let stack = Stack::start().await;
    let full_topic = stack.topic_for(SessionLoginCompleted::TOPIC).await;
    let port = event_bus_testkit::ports::free_loopback_port().expect("port");
    let mut config = stack.config();
    config.registry = RegistryConfig::new(format!("http://127.0.0.1:{port}"));
    let producer = Producer::new(config).expect("producer");
    let err = producer.send(&login()).await.expect_err("registry is down");
    assert!(
        matches!(
            &err,
            ProducerError::Registry {
                source: RegistryError::Unreachable { .. },
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("unreachable"), "{err}");
    let on_topic = read_topic(
        stack.broker.bootstrap_servers(),
        &full_topic,
        1,
        Duration::from_secs(3),
    )
    .expect("read");
    assert!(on_topic.is_empty());
}

#[tokio::test]
async fn message_too_large_is_a_delivery_error() {
    let stack = Stack::start().await;
    stack.topic_for(SessionLoginCompleted::TOPIC).await;
    let mut config = stack.config();
    config.kafka = config.kafka.with_option("message.max.bytes", "1000");
    let producer = Producer::new(config).expect("producer");
    let mut event = login();
    event.user.pii.name = "x".repeat(5_000);
    let err = producer.send(&event).await.expect_err("too large");
    match &err {
        ProducerError::Delivery { source, .. } => {
            assert_eq!(
                source.rdkafka_error_code(),
                Some(rdkafka::types::RDKafkaErrorCode::MessageSizeTooLarge),
                "{source}"
            );
        }
        other => panic!("expected a delivery error, got {other:?}"),
    }
}

#[tokio::test]
async fn unknown_topic_without_auto_create_is_a_delivery_error() {
    let stack = Stack::start().await;
    let mut config = stack.config().with_delivery_timeout(Duration::from_secs(5));
    config.kafka = config
        .kafka
        .with_option("allow.auto.create.topics", "false");
    let producer = Producer::new(config).expect("producer");
    // The topic is never created.
    let err = producer
        .send_to(&unique_topic("missing"), &login(), None)
        .await
        .expect_err("no such topic");
    assert!(matches!(err, ProducerError::Delivery { .. }), "{err:?}");
}
