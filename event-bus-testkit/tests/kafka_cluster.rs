//! The testkit's Apache Kafka cluster: produce and consume on the shared one, node
//! control on private ones, and processes that die with whoever started them.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use event_bus_testkit::kafka::{ClusterError, KafkaCluster, TopicSpec};
use event_bus_testkit::topics::{unique_group, unique_topic};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;

/// Generous bound for a consume phase.
const CONSUME_DEADLINE: Duration = Duration::from_secs(60);

fn shared_cluster() -> &'static KafkaCluster {
    KafkaCluster::shared().unwrap_or_else(|error| panic!("start Kafka: {error}"))
}

async fn produce(producer: &FutureProducer, topic: &str, key: &str, payload: &str) -> (i32, i64) {
    producer
        .send(
            FutureRecord::to(topic).key(key).payload(payload),
            Duration::from_secs(60),
        )
        .await
        .map(|delivery| (delivery.partition, delivery.offset))
        .unwrap_or_else(|(error, _)| panic!("produce {key}: {error}"))
}

async fn consume(cluster: &KafkaCluster, topic: &str, count: usize) -> Vec<(String, String)> {
    let consumer: StreamConsumer = cluster
        .consumer_config(&unique_group("testkit"))
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let mut received = Vec::new();
    let outcome = tokio::time::timeout(CONSUME_DEADLINE, async {
        while received.len() < count {
            let message = consumer.recv().await.expect("consume");
            let key = String::from_utf8_lossy(message.key().expect("key")).into_owned();
            let payload = String::from_utf8_lossy(message.payload().expect("payload")).into_owned();
            received.push((key, payload));
        }
    })
    .await;
    assert!(outcome.is_ok(), "received only {received:?} of {count}");
    received
}

#[tokio::test]
async fn produced_records_are_consumed_with_their_keys_and_payloads() {
    let cluster = shared_cluster();
    let topic = unique_topic("testkit-roundtrip");
    cluster.create_topic(&topic, 1).await.expect("create topic");
    let producer: FutureProducer = cluster.producer_config().create().expect("producer");
    let sent: Vec<(String, String)> = (0..5)
        .map(|i| (format!("key-{i}"), format!("payload-{i}")))
        .collect();
    for (key, payload) in &sent {
        produce(&producer, &topic, key, payload).await;
    }
    // One partition: the order is the produce order.
    assert_eq!(consume(cluster, &topic, sent.len()).await, sent);
}

#[tokio::test]
async fn records_with_the_same_key_land_in_one_partition_in_order() {
    let cluster = shared_cluster();
    let topic = unique_topic("testkit-partitions");
    cluster.create_topic(&topic, 3).await.expect("create topic");
    let producer: FutureProducer = cluster.producer_config().create().expect("producer");
    let mut partition_of_key = BTreeMap::new();
    for i in 0..6 {
        let key = format!("k{}", i % 2);
        let (partition, _) = produce(&producer, &topic, &key, &i.to_string()).await;
        let first = *partition_of_key.entry(key.clone()).or_insert(partition);
        assert_eq!(first, partition, "key {key} moved between partitions");
    }
    let mut by_key: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (key, payload) in consume(cluster, &topic, 6).await {
        by_key.entry(key).or_default().push(payload);
    }
    assert_eq!(by_key["k0"], ["0", "2", "4"]);
    assert_eq!(by_key["k1"], ["1", "3", "5"]);
}

#[tokio::test]
async fn creating_an_existing_topic_reports_the_broker_error() {
    let cluster = shared_cluster();
    let topic = unique_topic("testkit-twice");
    cluster.create_topic(&topic, 1).await.expect("first create");
    match cluster.create_topic(&topic, 1).await {
        Err(ClusterError::CreateTopic { topic: t, code }) => {
            assert_eq!(t, topic);
            assert_eq!(code, RDKafkaErrorCode::TopicAlreadyExists);
        }
        other => panic!("expected TopicAlreadyExists, got {other:?}"),
    }
}

#[tokio::test]
async fn topic_configs_and_an_impossible_replication_factor_reach_the_broker() {
    let cluster = shared_cluster();
    let topic = unique_topic("testkit-configs");
    cluster
        .create_topic_with(&TopicSpec::new(&topic, 2).with_config("max.message.bytes", "2048"))
        .await
        .expect("create topic with a config");
    let producer: FutureProducer = cluster.producer_config().create().expect("producer");
    let too_big = "x".repeat(4096);
    let refused = producer
        .send(
            FutureRecord::to(&topic).key("k").payload(&too_big),
            Duration::from_secs(30),
        )
        .await;
    assert!(
        matches!(&refused, Err((error, _)) if error.rdkafka_error_code() == Some(RDKafkaErrorCode::MessageSizeTooLarge)),
        "a record over the topic's max.message.bytes must be refused: {refused:?}"
    );

    let replicas = cluster.default_replication() + 5;
    let spec = TopicSpec::new(&unique_topic("testkit-rf"), 1).with_replication(replicas);
    match cluster.create_topic_with(&spec).await {
        Err(ClusterError::CreateTopic { code, .. }) => {
            assert_eq!(code, RDKafkaErrorCode::InvalidReplicationFactor)
        }
        other => panic!("expected InvalidReplicationFactor, got {other:?}"),
    }
}

#[tokio::test]
async fn nodes_of_the_shared_cluster_cannot_be_stopped_from_a_test() {
    let cluster = shared_cluster();
    if cluster.node_count() == 0 {
        // Started by scripts/test: this process does not own the nodes.
        assert!(matches!(
            cluster.kill_node(0),
            Err(ClusterError::NotOwned { .. })
        ));
    } else {
        assert!(matches!(
            cluster.kill_node(cluster.node_count()),
            Err(ClusterError::NoSuchNode { .. })
        ));
    }
}

/// Three nodes, replication factor 3: the partition's leader is killed, another
/// takes over, the killed node comes back from its log dir with every record, and a
/// paused (hung) node is noticed and comes back too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_survive_a_killed_and_a_paused_leader() {
    let cluster = tokio::task::spawn_blocking(|| KafkaCluster::start(3))
        .await
        .expect("join")
        .unwrap_or_else(|error| panic!("start 3 nodes: {error}"));
    assert_eq!(cluster.node_count(), 3);
    assert_eq!(cluster.default_replication(), 3);
    let topic = unique_topic("testkit-failover");
    cluster.create_topic(&topic, 1).await.expect("create topic");
    let producer: FutureProducer = cluster
        .producer_config()
        .set("acks", "all")
        .set("enable.idempotence", "true")
        // A hung leader answers nothing: give up on its request after 5 s and retry
        // on the new leader, well within the record's 60 s.
        .set("request.timeout.ms", "5000")
        .set("message.timeout.ms", "60000")
        .create()
        .expect("producer");
    produce(&producer, &topic, "k", "before").await;

    let first_leader = cluster
        .partition_leader(&topic, 0)
        .expect("metadata")
        .expect("a leader");
    cluster.kill_node(first_leader).expect("kill the leader");
    assert!(!cluster.is_running(first_leader).expect("state"));
    assert!(matches!(
        cluster.kill_node(first_leader),
        Err(ClusterError::NodeState { .. })
    ));
    produce(&producer, &topic, "k", "while-down").await;
    let second_leader = wait_for_leader_other_than(&cluster, &topic, first_leader).await;

    let restarted = first_leader;
    tokio::task::block_in_place(|| cluster.start_node(restarted)).expect("start it again");
    assert!(cluster.is_running(restarted).expect("state"));
    cluster
        .wait_for_in_sync_replicas(&topic, 0, 3, Duration::from_secs(60))
        .await
        .expect("all three replicas in sync again");

    cluster.pause_node(second_leader).expect("pause the leader");
    assert!(matches!(
        cluster.pause_node(second_leader),
        Err(ClusterError::NodeState { .. })
    ));
    // The controllers stop hearing from the hung node, fence it, and move the
    // partition to a node in sync.
    let third_leader = wait_for_leader_other_than(&cluster, &topic, second_leader).await;
    assert_ne!(third_leader, second_leader);
    let fresh: FutureProducer = cluster
        .producer_config()
        .set("acks", "all")
        .set("message.timeout.ms", "60000")
        .create()
        .expect("producer");
    produce(&fresh, &topic, "k", "while-hung").await;
    cluster.resume_node(second_leader).expect("resume");
    cluster
        .wait_for_in_sync_replicas(&topic, 0, 3, Duration::from_secs(60))
        .await
        .expect("all three replicas in sync again");
    produce(&producer, &topic, "k", "after").await;

    let payloads: Vec<String> = consume(&cluster, &topic, 4)
        .await
        .into_iter()
        .map(|(_, payload)| payload)
        .collect();
    assert_eq!(payloads, ["before", "while-down", "while-hung", "after"]);
    let log = std::fs::read_to_string(cluster.log_path(restarted).expect("log path"))
        .expect("read the restarted node's log");
    assert!(
        log.matches("Kafka Server started").count() >= 2,
        "the restarted node's log shows both starts:\n{}",
        cluster.log_tails()
    );
}

async fn wait_for_leader_other_than(cluster: &KafkaCluster, topic: &str, old: usize) -> usize {
    let started = Instant::now();
    loop {
        if let Ok(Some(leader)) = cluster.partition_leader(topic, 0) {
            if leader != old {
                return leader;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no leader other than node {old}:\n{}",
            cluster.log_tails()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[test]
fn a_started_cluster_is_killed_on_drop() {
    let cluster = KafkaCluster::start(1).unwrap_or_else(|error| panic!("start Kafka: {error}"));
    assert!(cluster.is_running(0).expect("state"));
    let address = cluster.bootstrap_servers().to_owned();
    let dir = cluster.dir().expect("own folder").to_owned();
    assert!(
        std::net::TcpStream::connect(&address).is_ok(),
        "listens on {address}"
    );
    drop(cluster);
    assert!(
        std::net::TcpStream::connect(&address).is_err(),
        "nothing listens on {address} after drop"
    );
    assert!(!dir.exists(), "{} is removed after drop", dir.display());
}

/// The nodes die with the process that started them even when it is SIGKILLed and
/// runs no destructor: the `kafka-cluster` binary is started, killed, and its
/// broker's port must close.
#[test]
fn nodes_die_with_a_killed_parent_process() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ready = dir.path().join("ready");
    let mut parent = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_kafka-cluster"))
            .args(["--heap-mb", "256", "--ready-file"])
            .arg(&ready)
            .env_remove("EVENT_BUS_TEST_KEEP_LOGS")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("run kafka-cluster"),
    );
    let stdout = parent.0.stdout.take().expect("stdout");
    let lines: Vec<String> = BufReader::new(stdout)
        .lines()
        .take(2)
        .map(|l| l.expect("read stdout"))
        .collect();
    assert!(
        lines
            .first()
            .is_some_and(|l| l.starts_with("Apache Kafka 4.")),
        "{lines:?}"
    );
    let address = std::fs::read_to_string(&ready)
        .expect("ready file")
        .trim()
        .to_owned();
    assert!(lines[1].ends_with(&address), "{lines:?}");
    assert!(
        std::net::TcpStream::connect(&address).is_ok(),
        "listens on {address}"
    );

    parent.0.kill().expect("SIGKILL kafka-cluster");
    parent.0.wait().expect("reap");
    let started = Instant::now();
    while std::net::TcpStream::connect(&address).is_ok() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the broker on {address} outlived its killed parent"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A child process killed when the test ends, passed or not.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn missing_jars_are_reported_with_the_install_hint() {
    let empty = tempfile::tempdir().expect("temp dir");
    let output = Command::new(env!("CARGO_BIN_EXE_kafka-cluster"))
        .env("EVENT_BUS_TEST_KAFKA_LIBS", empty.path())
        .output()
        .expect("run kafka-cluster");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("scripts/install-test-deps"), "{stderr}");
}
