//! Offsets by time on a broker without a time index, against librdkafka's mock
//! cluster (the cluster `event_bus_testkit::mock_cluster::MockKafkaCluster` wraps,
//! used directly here as this crate cannot depend on the testkit). The mock answers
//! "end" for every by-time lookup, so the offsets are found by reading records (a
//! binary search by timestamp). Records here carry explicit timestamps, so every
//! expected offset is known exactly.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{DefaultProducerContext, FutureProducer, FutureRecord};
use rdkafka::Message;

use crate::config::KafkaConfig;
use crate::replay::{self, OffsetAdmin, ResetNote, ResetTarget, ResumeToken};

type MockKafkaCluster = MockCluster<'static, DefaultProducerContext>;

/// A time far from now, so nothing but the explicit timestamps matters.
const BASE: i64 = 1_700_000_000_000;

fn time(millis: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(millis).expect("a valid time")
}

/// A name no other test uses.
fn unique(kind: &str) -> String {
    format!("{kind}-{}", uuid::Uuid::new_v4().simple())
}

fn kafka(cluster: &MockKafkaCluster) -> KafkaConfig {
    KafkaConfig::new(cluster.bootstrap_servers())
        .with_option("reconnect.backoff.max.ms", "500")
        .with_option("session.timeout.ms", "6000")
}

/// Produces one record per timestamp to `topic[partition]`, in order, each
/// acknowledged before the next is sent.
async fn produce(cluster: &MockKafkaCluster, topic: &str, partition: i32, timestamps: &[i64]) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", cluster.bootstrap_servers())
        .create()
        .expect("producer");
    for (n, millis) in timestamps.iter().enumerate() {
        let payload = format!("record {n} at {millis}");
        producer
            .send(
                FutureRecord::<(), _>::to(topic)
                    .partition(partition)
                    .payload(&payload)
                    .timestamp(*millis),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(error, _)| error)
            .expect("acknowledged");
    }
}

/// A topic of `partitions` partitions on a fresh one-broker mock cluster.
fn cluster_with_topic(partitions: i32) -> (MockKafkaCluster, String) {
    let cluster = MockCluster::new(1).expect("mock cluster");
    let topic = unique("by-reading");
    cluster.create_topic(&topic, partitions, 1).expect("topic");
    (cluster, topic)
}

/// The offset of the first timestamp at or after `millis` (the end when none is).
fn expected(timestamps: &[i64], millis: i64) -> i64 {
    timestamps
        .iter()
        .position(|ts| *ts >= millis)
        .unwrap_or(timestamps.len()) as i64
}

async fn offsets_at(cluster: &MockKafkaCluster, topic: &str, millis: i64) -> Vec<(i32, i64)> {
    OffsetAdmin::new(&kafka(cluster), &unique("lookup"))
        .expect("admin")
        .offsets_for_time(topic, time(millis))
        .await
        .expect("offsets by time")
}

#[tokio::test]
async fn the_first_offset_at_or_after_a_time_is_exact() {
    let (cluster, topic) = cluster_with_topic(1);
    // 300 records, three per timestamp, 10 ms apart: equal timestamps too.
    let timestamps: Vec<i64> = (0..300).map(|n| BASE + n / 3 * 10).collect();
    produce(&cluster, &topic, 0, &timestamps).await;
    for millis in [
        BASE + 10,  // the first of three equal timestamps
        BASE + 11,  // between two records
        BASE + 500, // the middle
        BASE + 987, // just before the last timestamp
        BASE + 990, // the last timestamp: its first record
        BASE + 1,   // just after the first
    ] {
        assert_eq!(
            offsets_at(&cluster, &topic, millis).await,
            vec![(0, expected(&timestamps, millis))],
            "time BASE + {}",
            millis - BASE
        );
    }
}

#[tokio::test]
async fn a_time_before_every_record_is_the_first_offset() {
    let (cluster, topic) = cluster_with_topic(1);
    let timestamps: Vec<i64> = (0..50).map(|n| BASE + n * 100).collect();
    produce(&cluster, &topic, 0, &timestamps).await;
    assert_eq!(
        offsets_at(&cluster, &topic, BASE - 60_000).await,
        vec![(0, 0)]
    );
    assert_eq!(offsets_at(&cluster, &topic, BASE).await, vec![(0, 0)]);
}

#[tokio::test]
async fn a_time_after_every_record_is_the_end() {
    let (cluster, topic) = cluster_with_topic(1);
    let timestamps: Vec<i64> = (0..50).map(|n| BASE + n * 100).collect();
    produce(&cluster, &topic, 0, &timestamps).await;
    assert_eq!(
        offsets_at(&cluster, &topic, BASE + 4_901).await,
        vec![(0, 50)]
    );
    // And the plan of a reset says there is nothing since then.
    let admin = OffsetAdmin::new(&kafka(&cluster), &unique("after")).expect("admin");
    let plan = admin
        .plan(
            std::slice::from_ref(&topic),
            &ResetTarget::Datetime(time(BASE + 60_000)),
        )
        .await
        .expect("plan");
    assert_eq!(plan.partitions[0].new, Some(50));
    assert_eq!(plan.partitions[0].note, Some(ResetNote::NoRecordSince));
    // One millisecond earlier is the last record.
    assert_eq!(
        offsets_at(&cluster, &topic, BASE + 4_900).await,
        vec![(0, 49)]
    );
}

#[tokio::test]
async fn an_empty_partition_is_its_end() {
    let (cluster, topic) = cluster_with_topic(2);
    // Partition 1 stays empty; partition 0 has three records.
    produce(&cluster, &topic, 0, &[BASE, BASE + 10, BASE + 20]).await;
    assert_eq!(
        offsets_at(&cluster, &topic, BASE + 5).await,
        vec![(0, 1), (1, 0)]
    );
    assert_eq!(
        offsets_at(&cluster, &topic, BASE - 5).await,
        vec![(0, 0), (1, 0)]
    );
}

#[tokio::test]
async fn every_partition_is_searched_on_its_own() {
    let (cluster, topic) = cluster_with_topic(3);
    // Partition 0 is all before the time, 1 straddles it, 2 is all after it.
    let p0: Vec<i64> = (0..40).map(|n| BASE + n).collect();
    let p1: Vec<i64> = (0..120).map(|n| BASE + n * 7).collect();
    let p2: Vec<i64> = (0..25).map(|n| BASE + 5_000 + n).collect();
    produce(&cluster, &topic, 0, &p0).await;
    produce(&cluster, &topic, 1, &p1).await;
    produce(&cluster, &topic, 2, &p2).await;
    let millis = BASE + 400;
    assert_eq!(
        offsets_at(&cluster, &topic, millis).await,
        vec![(0, 40), (1, expected(&p1, millis)), (2, 0)]
    );
    assert_eq!(expected(&p1, millis), 58, "the middle of partition 1");
}

/// Consumes `topic` to its end in group `group` and commits, as a consumer would.
fn consume_all_and_commit(cluster: &MockKafkaCluster, topic: &str, group: &str, count: usize) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", cluster.bootstrap_servers())
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let started = std::time::Instant::now();
    let mut seen = 0;
    while seen < count && started.elapsed() < Duration::from_secs(60) {
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            let message = message.expect("a record");
            assert_eq!(message.topic(), topic);
            seen += 1;
        }
    }
    assert_eq!(seen, count, "consumed everything");
    consumer
        .commit_consumer_state(CommitMode::Sync)
        .expect("commit");
    consumer.unsubscribe();
    drop(consumer);
}

#[tokio::test]
async fn a_group_is_reset_to_a_time_and_to_a_token_on_the_mock_cluster() {
    let (cluster, topic) = cluster_with_topic(2);
    let p0: Vec<i64> = (0..30).map(|n| BASE + n * 10).collect();
    let p1: Vec<i64> = (0..30).map(|n| BASE + 5 + n * 10).collect();
    produce(&cluster, &topic, 0, &p0).await;
    produce(&cluster, &topic, 1, &p1).await;
    let group = unique("reset");
    // Blocking is fine here: the mock cluster runs on threads of its own.
    consume_all_and_commit(&cluster, &topic, &group, 60);
    let admin = OffsetAdmin::new(&kafka(&cluster), &group).expect("admin");
    let committed = |offsets: Vec<replay::PartitionOffsets>| {
        offsets.iter().map(|p| p.committed).collect::<Vec<_>>()
    };
    let topics = std::slice::from_ref(&topic);
    assert_eq!(
        committed(admin.offsets(topics).await.expect("offsets")),
        vec![Some(30), Some(30)]
    );

    let plan = replay::reset_group_to_datetime(&kafka(&cluster), &group, topics, time(BASE + 100))
        .await
        .expect("reset to a time");
    assert_eq!(plan.changes().count(), 2, "{plan:?}");
    assert_eq!(
        committed(admin.offsets(topics).await.expect("offsets")),
        vec![Some(10), Some(10)]
    );

    let token = ResumeToken::from_timestamps([
        (topic.clone(), 0, BASE + 251),
        (topic.clone(), 1, BASE + 5),
    ]);
    replay::reset_group_to_token(&kafka(&cluster), &group, &token)
        .await
        .expect("reset to a token");
    assert_eq!(
        committed(admin.offsets(topics).await.expect("offsets")),
        vec![Some(26), Some(0)]
    );
}

#[tokio::test]
async fn a_reset_is_refused_while_another_member_holds_partitions() {
    let (cluster, topic) = cluster_with_topic(2);
    produce(&cluster, &topic, 0, &[BASE, BASE + 10]).await;
    produce(&cluster, &topic, 1, &[BASE, BASE + 10]).await;
    let group = unique("active");
    // Commit known offsets first, then keep a member in the group, polling so that it
    // takes part in the rebalance the reset's join causes.
    consume_all_and_commit(&cluster, &topic, &group, 4);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let member: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", cluster.bootstrap_servers())
        .set("group.id", &group)
        .set("enable.auto.commit", "false")
        .set("session.timeout.ms", "6000")
        .create()
        .expect("member");
    member.subscribe(&[topic.as_str()]).expect("subscribe");
    let polling = {
        let stop = std::sync::Arc::clone(&stop);
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let _ = member.poll(Duration::from_millis(50));
            }
            member.unsubscribe();
        })
    };
    // Wait until the member owns its partitions.
    let admin = OffsetAdmin::new(&kafka(&cluster), &group).expect("admin");
    tokio::time::sleep(Duration::from_secs(4)).await;

    let refused = replay::reset_group_to_datetime(
        &kafka(&cluster),
        &group,
        std::slice::from_ref(&topic),
        time(BASE),
    )
    .await
    .expect_err("refused while a member holds a partition");
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    polling.join().expect("member thread");
    assert!(
        matches!(refused, replay::ReplayError::PartitionsHeldByOthers { .. }),
        "{refused:?}"
    );
    assert!(refused.is_refusal());
    let committed: Vec<Option<i64>> = admin
        .offsets(std::slice::from_ref(&topic))
        .await
        .expect("offsets")
        .iter()
        .map(|p| p.committed)
        .collect();
    assert_eq!(committed, vec![Some(2), Some(2)], "nothing changed");
}

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut buffer) = self.0.lock() {
            buffer.extend_from_slice(bytes);
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_fallback_is_logged_with_the_broker_answer_and_the_reason() {
    let (cluster, topic) = cluster_with_topic(1);
    let timestamps: Vec<i64> = (0..20).map(|n| BASE + n * 10).collect();
    produce(&cluster, &topic, 0, &timestamps).await;
    let config = kafka(&cluster);
    let consumer: BaseConsumer = config
        .client_config(&[])
        .set("group.id", unique("log"))
        .create()
        .expect("consumer");
    let blocking = crate::replay::admin::Blocking {
        consumer: std::sync::Arc::new(consumer),
        kafka: config.clone(),
        group: unique("log"),
        bootstrap_servers: config.bootstrap_servers.clone(),
        timeout: Duration::from_secs(10),
    };
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || writer.clone())
        .finish();
    let found = tracing::subscriber::with_default(subscriber, || {
        blocking.first_offsets_at(&[(topic.clone(), 0, BASE + 55)])
    })
    .expect("offsets by time");
    assert_eq!(found.get(&(topic.clone(), 0)), Some(&Some(6)));
    let logged = String::from_utf8(captured.0.lock().expect("log buffer").clone()).expect("UTF-8");
    let line = logged
        .lines()
        .find(|line| line.contains("found the offset of a time by reading records"))
        .unwrap_or_else(|| panic!("no fallback line in:\n{logged}"));
    let event: serde_json::Value = serde_json::from_str(line).expect("JSON log line");
    let fields = &event["fields"];
    assert_eq!(fields["topic"], topic.as_str());
    assert_eq!(fields["partition"], 0);
    assert_eq!(fields["time_ms"], BASE + 55);
    assert_eq!(fields["broker_answer"], "end");
    assert_eq!(fields["found"], "Some(6)");
    assert_eq!(fields["high_watermark"], 20);
    assert!(
        fields["reason"]
            .as_str()
            .is_some_and(|r| r.contains("last record is at or after the time")),
        "{line}"
    );
    assert!(
        fields["records_read"]
            .as_u64()
            .is_some_and(|n| (2..=7).contains(&n)),
        "{line}"
    );
}
