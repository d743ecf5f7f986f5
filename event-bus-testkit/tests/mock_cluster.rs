//! Fault injection with librdkafka's mock cluster.

use std::time::Duration;

use event_bus_testkit::mock_cluster::{MockClusterError, MockKafkaCluster, ALL_BROKERS};
use event_bus_testkit::topics::{unique_group, unique_topic};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::{RDKafkaApiKey, RDKafkaErrorCode};
use rdkafka::{Offset, TopicPartitionList};

fn producer(cluster: &MockKafkaCluster) -> FutureProducer {
    cluster
        .producer_config()
        // Long enough to ride out the outage below.
        .set("message.timeout.ms", "120000")
        .create()
        .expect("producer")
}

/// Reads `count` records of partition 0 from the beginning, as (key, payload).
async fn read_partition(
    cluster: &MockKafkaCluster,
    topic: &str,
    count: usize,
) -> Vec<(String, String)> {
    let consumer: StreamConsumer = cluster
        .consumer_config(&unique_group("mock"))
        .create()
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, 0, Offset::Beginning)
        .expect("partition offset");
    consumer.assign(&assignment).expect("assign");
    let mut records = Vec::new();
    let outcome = tokio::time::timeout(Duration::from_secs(60), async {
        while records.len() < count {
            let message = consumer.recv().await.expect("consume");
            records.push((
                String::from_utf8_lossy(message.key().expect("key")).into_owned(),
                String::from_utf8_lossy(message.payload().expect("payload")).into_owned(),
            ));
        }
    })
    .await;
    assert!(outcome.is_ok(), "read only {records:?}");
    records
}

#[tokio::test]
async fn a_record_sent_while_the_broker_is_down_is_delivered_after_it_comes_back() {
    let cluster = MockKafkaCluster::start(1).expect("mock cluster");
    let topic = unique_topic("mock-outage");
    cluster.create_topic(&topic, 1).expect("create topic");
    let producer = producer(&cluster);

    producer
        .send(
            FutureRecord::to(&topic).key("k").payload("before"),
            Duration::from_secs(10),
        )
        .await
        .unwrap_or_else(|(error, _)| panic!("produce before the outage: {error}"));

    cluster.broker_down(1).expect("broker down");
    let mut pending = Box::pin(producer.send(
        FutureRecord::to(&topic).key("k").payload("during"),
        Duration::from_secs(10),
    ));
    // While the only broker is down the record cannot be acknowledged.
    let early = tokio::time::timeout(Duration::from_secs(2), &mut pending).await;
    assert!(
        early.is_err(),
        "record acknowledged while the broker was down: {early:?}"
    );

    cluster.broker_up(1).expect("broker up");
    let delivery = tokio::time::timeout(Duration::from_secs(60), pending)
        .await
        .expect("delivery after broker_up")
        .unwrap_or_else(|(error, _)| panic!("delivery failed: {error}"));
    assert_eq!((delivery.partition, delivery.offset), (0, 1));

    let records = read_partition(&cluster, &topic, 2).await;
    assert_eq!(
        records,
        [
            ("k".to_owned(), "before".to_owned()),
            ("k".to_owned(), "during".to_owned())
        ]
    );
}

#[tokio::test]
async fn retriable_request_errors_are_retried_and_permanent_ones_fail_the_send() {
    let cluster = MockKafkaCluster::start(3).expect("mock cluster");
    let topic = unique_topic("mock-errors");
    cluster.create_topic(&topic, 1).expect("create topic");
    let producer = producer(&cluster);

    cluster
        .request_errors(
            RDKafkaApiKey::Produce,
            &[
                RDKafkaErrorCode::RequestTimedOut,
                RDKafkaErrorCode::NotEnoughReplicas,
            ],
        )
        .expect("inject retriable errors");
    producer
        .send(
            FutureRecord::to(&topic).key("a").payload("retried"),
            Duration::from_secs(10),
        )
        .await
        .unwrap_or_else(|(error, _)| panic!("retriable errors should be retried: {error}"));

    cluster
        .request_errors(
            RDKafkaApiKey::Produce,
            &[RDKafkaErrorCode::MessageSizeTooLarge],
        )
        .expect("inject a permanent error");
    let failed = producer
        .send(
            FutureRecord::to(&topic).key("b").payload("rejected"),
            Duration::from_secs(10),
        )
        .await;
    match failed {
        Err((KafkaError::MessageProduction(code), _)) => {
            assert_eq!(code, RDKafkaErrorCode::MessageSizeTooLarge)
        }
        other => panic!("expected MessageSizeTooLarge, got {other:?}"),
    }

    cluster
        .clear_request_errors(RDKafkaApiKey::Produce)
        .expect("clear");
    cluster
        .latency(ALL_BROKERS, Duration::from_millis(50))
        .expect("latency");
    producer
        .send(
            FutureRecord::to(&topic).key("c").payload("slow"),
            Duration::from_secs(10),
        )
        .await
        .unwrap_or_else(|(error, _)| panic!("produce with latency: {error}"));

    let records = read_partition(&cluster, &topic, 2).await;
    let payloads: Vec<&str> = records.iter().map(|(_, p)| p.as_str()).collect();
    assert_eq!(payloads, ["retried", "slow"]);
}

#[test]
fn an_unknown_broker_id_is_an_error() {
    let cluster = MockKafkaCluster::start(2).expect("mock cluster");
    assert_eq!(cluster.broker_count(), 2);
    match cluster.broker_down(42) {
        Err(MockClusterError::Operation { operation, .. }) => {
            assert!(operation.contains("42"), "{operation}")
        }
        other => panic!("expected an operation error, got {other:?}"),
    }
}

#[test]
fn the_cluster_can_be_moved_to_another_thread() {
    let cluster = MockKafkaCluster::start(1).expect("mock cluster");
    let servers = std::thread::spawn(move || {
        cluster.broker_down(ALL_BROKERS).expect("down");
        cluster.broker_up(ALL_BROKERS).expect("up");
        cluster.bootstrap_servers().to_owned()
    })
    .join()
    .expect("thread");
    assert!(servers.contains(':'), "{servers}");
}
