//! Durability on a three-node Apache Kafka cluster (replication factor 3,
//! `min.insync.replicas=2`, the SDK producer's defaults: `acks=all`, idempotence on):
//! a partition leader SIGKILLed in the middle of 20 000 sends and started again, and
//! the whole cluster killed and restarted from its log dirs. Every event the producer
//! acknowledged must be read back exactly once, in send order per key.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use event_bus_examples::openedx::{SessionLoginCompleted, UserData};
use event_bus_kafka::prelude::*;
use event_bus_kafka::producer::Delivery;
use event_bus_kafka::topic;
use event_bus_testkit::kafka::{KafkaCluster, TopicSpec};
use event_bus_testkit::records::read_topic;
use event_bus_testkit::registry::EmbeddedRegistry;
use event_bus_testkit::topics::unique_topic;
use futures::StreamExt;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use uuid::Uuid;

/// Distinct keys the events are spread over.
const KEYS: i64 = 50;
/// Sends in flight at once.
const IN_FLIGHT: usize = 1_000;
/// Bound for every wait on the cluster.
const WAIT: Duration = Duration::from_secs(120);

/// One event that was sent: its key and its place in that key's sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Sent {
    key: String,
    seq: i64,
}

fn login(seq: i64) -> (SessionLoginCompleted, Sent) {
    let mut user = UserData::example();
    user.id = seq;
    let key = format!("user-{}", seq % KEYS);
    user.pii.username = key.clone();
    (
        SessionLoginCompleted { user },
        Sent {
            key,
            seq: seq / KEYS,
        },
    )
}

/// A three-node cluster, the registry, and a one-partition topic replicated three
/// times that needs two in-sync replicas per write.
struct Durable {
    cluster: KafkaCluster,
    registry: EmbeddedRegistry,
    prefix: String,
    topic: String,
}

impl Durable {
    async fn start() -> Self {
        let cluster = tokio::task::spawn_blocking(|| KafkaCluster::start(3))
            .await
            .expect("join")
            .unwrap_or_else(|error| panic!("start three Kafka nodes: {error}"));
        let registry = EmbeddedRegistry::start().await.expect("registry");
        let prefix = unique_topic("durable");
        let topic = topic::full_topic(Some(&prefix), SessionLoginCompleted::TOPIC);
        cluster
            .create_topic_with(
                &TopicSpec::new(&topic, 1)
                    .with_replication(3)
                    .with_config("min.insync.replicas", "2"),
            )
            .await
            .expect("topic");
        Self {
            cluster,
            registry,
            prefix,
            topic,
        }
    }

    /// The SDK's producer with its defaults (idempotent, `acks=all`), a delivery
    /// timeout long enough to ride out a failover, and a request timeout short enough
    /// to leave a dead leader quickly. The event type is registered first, so no send
    /// waits on the registry and sends reach librdkafka in the order they start.
    async fn producer(&self) -> Producer {
        let kafka = KafkaConfig::new(self.cluster.bootstrap_servers())
            .with_option("request.timeout.ms", "5000")
            .with_option("reconnect.backoff.max.ms", "1000");
        let config = ProducerConfig::new(kafka, RegistryConfig::new(self.registry.url()))
            .with_topic_prefix(self.prefix.clone())
            .with_delivery_timeout(Duration::from_secs(90));
        let producer = Producer::new(config).expect("producer");
        producer
            .register::<SessionLoginCompleted>()
            .await
            .expect("schema registered");
        producer
    }

    /// Sends events `from..to` with up to [`IN_FLIGHT`] in flight, started in order;
    /// `acked` counts acknowledgements as they come. Returns what was acknowledged
    /// (by `ce_id`) and how many sends failed.
    async fn send_all(
        &self,
        producer: &Producer,
        from: i64,
        to: i64,
        acked: &AtomicUsize,
    ) -> (HashMap<Uuid, (Sent, Delivery)>, usize) {
        let mut results = futures::stream::iter(from..to)
            .map(|seq| async move {
                let (event, sent) = login(seq);
                (sent, producer.send(&event).await)
            })
            .buffered(IN_FLIGHT);
        let mut delivered = HashMap::new();
        let mut failed = 0;
        while let Some((sent, result)) = results.next().await {
            match result {
                Ok(delivery) => {
                    acked.fetch_add(1, Ordering::SeqCst);
                    delivered.insert(delivery.event_id, (sent, delivery));
                }
                Err(error) => {
                    failed += 1;
                    eprintln!("send {sent:?} failed: {error}");
                }
            }
        }
        (delivered, failed)
    }

    /// Every record of the topic, by reading up to its end offset.
    fn read_back(&self) -> Vec<rdkafka::message::OwnedMessage> {
        let consumer: BaseConsumer = self
            .cluster
            .consumer_config("durability-reader")
            .create()
            .expect("consumer");
        let (low, high) = consumer
            .fetch_watermarks(&self.topic, 0, Duration::from_secs(30))
            .expect("watermarks");
        let expected = usize::try_from(high - low).expect("count");
        let records = read_topic(
            self.cluster.bootstrap_servers(),
            &self.topic,
            expected,
            WAIT,
        )
        .expect("read back");
        assert_eq!(
            records.len(),
            expected,
            "read {} of the {expected} records up to the end offset",
            records.len()
        );
        records
    }
}

/// Checks that every acknowledged event is in `records` exactly once, that nothing is
/// in them twice, and that each key's events are in send order.
fn assert_exactly_once_in_key_order(
    records: &[rdkafka::message::OwnedMessage],
    acknowledged: &HashMap<Uuid, (Sent, Delivery)>,
) {
    let mut seen: HashMap<Uuid, usize> = HashMap::new();
    let mut last_of_key: BTreeMap<String, i64> = BTreeMap::new();
    for record in records {
        let ce_id = record
            .headers()
            .and_then(|h| h.iter().find(|h| h.key == "ce_id"))
            .and_then(|h| h.value)
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.parse::<Uuid>().ok())
            .expect("every record has a ce_id header");
        *seen.entry(ce_id).or_default() += 1;
        if let Some((sent, delivery)) = acknowledged.get(&ce_id) {
            assert_eq!(
                delivery.offset,
                record.offset(),
                "{sent:?} was acknowledged at another offset than it is stored at"
            );
            if let Some(previous) = last_of_key.insert(sent.key.clone(), sent.seq) {
                assert!(
                    previous < sent.seq,
                    "key {} out of order: {previous} before {}",
                    sent.key,
                    sent.seq
                );
            }
        }
    }
    let duplicated = seen.values().filter(|&&n| n > 1).count();
    assert_eq!(duplicated, 0, "events stored more than once");
    let lost: Vec<&Sent> = acknowledged
        .iter()
        .filter(|(id, _)| !seen.contains_key(id))
        .map(|(_, (sent, _))| sent)
        .collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged events lost, e.g. {:?}",
        lost.len(),
        lost.first()
    );
}

async fn wait_for(acked: &AtomicUsize, count: usize) {
    let started = Instant::now();
    while acked.load(Ordering::SeqCst) < count && started.elapsed() < WAIT {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_leader_loses_no_acknowledged_event_and_duplicates_none() {
    const EVENTS: i64 = 20_000;
    let durable = Arc::new(Durable::start().await);
    let producer = durable.producer().await;
    let acked = Arc::new(AtomicUsize::new(0));

    let chaos = {
        let durable = Arc::clone(&durable);
        let acked = Arc::clone(&acked);
        tokio::spawn(async move {
            wait_for(&acked, 5_000).await;
            let leader = durable
                .cluster
                .partition_leader(&durable.topic, 0)
                .expect("metadata")
                .expect("a leader");
            durable
                .cluster
                .kill_node(leader)
                .expect("SIGKILL the leader");
            let killed_at = acked.load(Ordering::SeqCst);
            wait_for(&acked, 12_000).await;
            let cluster = Arc::clone(&durable);
            tokio::task::spawn_blocking(move || cluster.cluster.start_node(leader))
                .await
                .expect("join")
                .expect("the killed leader starts again from its log dir");
            (leader, killed_at)
        })
    };
    let (acknowledged, failed) = durable.send_all(&producer, 0, EVENTS, &acked).await;
    let (killed, killed_at) = chaos.await.expect("chaos task");
    assert!(
        killed_at < 20_000,
        "the leader died while sends were in flight (after {killed_at} acks)"
    );
    assert_eq!(
        failed, 0,
        "no send failed: the cluster kept two replicas in sync"
    );
    assert_eq!(acknowledged.len(), 20_000);
    durable
        .cluster
        .wait_for_in_sync_replicas(&durable.topic, 0, 3, WAIT)
        .await
        .expect("the partition gets its three replicas back in sync");
    assert!(durable.cluster.is_running(killed).expect("state"));

    let records = durable.read_back();
    assert_eq!(records.len(), acknowledged.len(), "nothing extra stored");
    assert_exactly_once_in_key_order(&records, &acknowledged);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_cluster_restarted_from_its_log_dirs_keeps_every_acknowledged_event() {
    let durable = Durable::start().await;
    let producer = durable.producer().await;
    let acked = AtomicUsize::new(0);
    let (before, failed) = durable.send_all(&producer, 0, 5_000, &acked).await;
    assert_eq!(failed, 0);
    drop(producer);

    for node in 0..3 {
        durable.cluster.kill_node(node).expect("SIGKILL");
    }
    tokio::task::block_in_place(|| durable.cluster.start_nodes(&[0, 1, 2]))
        .expect("the cluster starts again from its log dirs");
    durable
        .cluster
        .wait_for_in_sync_replicas(&durable.topic, 0, 3, WAIT)
        .await
        .expect("the partition gets its three replicas back in sync");

    // The restarted cluster takes new events after the old ones.
    let producer = durable.producer().await;
    let (after, failed) = durable.send_all(&producer, 5_000, 6_000, &acked).await;
    assert_eq!(failed, 0);
    let mut acknowledged = before;
    acknowledged.extend(after);
    let records = durable.read_back();
    assert_eq!(records.len(), 6_000);
    assert_exactly_once_in_key_order(&records, &acknowledged);
}
