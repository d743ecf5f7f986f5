//! Produce and consume through a Tansu broker process started by the testkit.

use std::collections::BTreeMap;
use std::time::Duration;

use event_bus_testkit::broker::{BrokerError, TansuBroker};
use event_bus_testkit::topics::{unique_group, unique_topic};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;

/// Generous bound for the whole consume phase: Tansu's group join takes ~3 s.
const CONSUME_DEADLINE: Duration = Duration::from_secs(60);

fn shared_broker() -> &'static TansuBroker {
    TansuBroker::shared().unwrap_or_else(|error| panic!("start Tansu: {error}"))
}

#[tokio::test]
async fn produced_records_are_consumed_with_their_keys_and_payloads() {
    let broker = shared_broker();
    let topic = unique_topic("testkit-roundtrip");
    broker
        .create_topic(&topic, 1)
        .await
        .expect("create topic on Tansu");

    let producer: FutureProducer = broker.producer_config().create().expect("producer");
    let sent: Vec<(String, String)> = (0..5)
        .map(|i| (format!("key-{i}"), format!("payload-{i}")))
        .collect();
    for (key, payload) in &sent {
        // One record per batch: await each delivery before the next send.
        producer
            .send(
                FutureRecord::to(&topic).key(key).payload(payload),
                Duration::from_secs(10),
            )
            .await
            .unwrap_or_else(|(error, _)| panic!("produce {key}: {error}"));
    }

    let consumer: StreamConsumer = broker
        .consumer_config(&unique_group("testkit-roundtrip"))
        .create()
        .expect("consumer");
    consumer.subscribe(&[&topic]).expect("subscribe");

    let mut received = Vec::new();
    let outcome = tokio::time::timeout(CONSUME_DEADLINE, async {
        while received.len() < sent.len() {
            let message = consumer.recv().await.expect("consume");
            let key = String::from_utf8(message.key().expect("key").to_vec()).expect("utf-8 key");
            let payload = message
                .payload_view::<str>()
                .expect("payload")
                .expect("utf-8 payload")
                .to_owned();
            received.push((key, payload));
        }
    })
    .await;
    assert!(
        outcome.is_ok(),
        "received only {received:?} of {sent:?}; Tansu log tail:\n{}",
        broker.log_tail()
    );
    // One partition: the order is the produce order.
    assert_eq!(received, sent);
}

#[tokio::test]
async fn records_with_the_same_key_land_in_one_partition_in_order() {
    let broker = shared_broker();
    let topic = unique_topic("testkit-partitions");
    broker.create_topic(&topic, 3).await.expect("create topic");

    let producer: FutureProducer = broker.producer_config().create().expect("producer");
    let mut partition_of_key = BTreeMap::new();
    for i in 0..6 {
        let key = format!("k{}", i % 2);
        let payload = format!("{i}");
        let partition = producer
            .send(
                FutureRecord::to(&topic).key(&key).payload(&payload),
                Duration::from_secs(10),
            )
            .await
            .unwrap_or_else(|(error, _)| panic!("produce: {error}"))
            .partition;
        let first = *partition_of_key.entry(key.clone()).or_insert(partition);
        assert_eq!(first, partition, "key {key} moved between partitions");
    }

    let consumer: StreamConsumer = broker
        .consumer_config(&unique_group("testkit-partitions"))
        .create()
        .expect("consumer");
    consumer.subscribe(&[&topic]).expect("subscribe");
    let mut by_key: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let outcome = tokio::time::timeout(CONSUME_DEADLINE, async {
        let mut count = 0;
        while count < 6 {
            let message = consumer.recv().await.expect("consume");
            let key = String::from_utf8_lossy(message.key().expect("key")).into_owned();
            let payload = String::from_utf8_lossy(message.payload().expect("payload")).into_owned();
            by_key.entry(key).or_default().push(payload);
            count += 1;
        }
    })
    .await;
    assert!(outcome.is_ok(), "received only {by_key:?}");
    assert_eq!(by_key["k0"], ["0", "2", "4"]);
    assert_eq!(by_key["k1"], ["1", "3", "5"]);
}

#[tokio::test]
async fn creating_an_existing_topic_reports_the_broker_error() {
    let broker = shared_broker();
    let topic = unique_topic("testkit-twice");
    broker.create_topic(&topic, 1).await.expect("first create");
    match broker.create_topic(&topic, 1).await {
        Err(BrokerError::CreateTopic { topic: t, code }) => {
            assert_eq!(t, topic);
            assert_eq!(code, RDKafkaErrorCode::TopicAlreadyExists);
        }
        other => panic!("expected TopicAlreadyExists, got {other:?}"),
    }
}

#[test]
fn a_started_broker_is_killed_on_drop() {
    let broker = TansuBroker::start().unwrap_or_else(|error| panic!("start Tansu: {error}"));
    assert!(broker.is_running());
    let address = broker.bootstrap_servers().to_owned();
    assert!(
        std::net::TcpStream::connect(&address).is_ok(),
        "broker should listen on {address}"
    );
    drop(broker);
    assert!(
        std::net::TcpStream::connect(&address).is_err(),
        "nothing should listen on {address} after drop"
    );
}

#[test]
fn a_missing_binary_is_reported_with_the_install_hint() {
    let options = event_bus_testkit::broker::TansuOptions {
        binary: Some("/nonexistent/tansu".into()),
        ..Default::default()
    };
    let error = TansuBroker::start_with(options).expect_err("must fail");
    assert!(
        matches!(error, BrokerError::BinaryNotFound { .. }),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("scripts/install-test-deps"),
        "{error}"
    );
}
