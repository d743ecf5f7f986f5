//! The consumer loop (`EventConsumer`, in-process) on a private three-node Apache Kafka
//! cluster (replication factor 3, `min.insync.replicas=2`) while brokers die under it:
//!
//! - the leader of a partition it reads is SIGKILLed in the middle of a stream of
//!   events and started again: the loop keeps running, handles every produced event at
//!   least once (duplicates are counted and printed), and its commits go on until the
//!   group's committed offsets reach the end of every partition;
//! - the group coordinator (the leader of the group's `__consumer_offsets` partition)
//!   is SIGKILLed while the consumer works through a batch, and stays away longer than
//!   the member's session: the commit waiting for it fails, the loop keeps running,
//!   reads again nothing from before the last confirmed position, and its commits cover
//!   every handled event once a coordinator answers; a fresh consumer of the group then
//!   resumes from that position, handling no earlier event again and every new one.
//!
//! Each test prints what it saw: duplicates, how long handling and commits paused,
//! the commit failures and rebalances the SDK logged, and the SDK's warnings.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use event_bus_core::dispatch::{DeliveryContext, Origin};
use event_bus_examples::openedx::{SessionLoginCompleted, UserData};
use event_bus_kafka::consumer::{ConsumerConfig, EventConsumer, Shutdown, StatsSnapshot};
use event_bus_kafka::consumer::{ConsumerError, ConsumerStats, ShutdownTrigger};
use event_bus_kafka::prelude::*;
use event_bus_kafka::topic;
use event_bus_testkit::kafka::{KafkaCluster, KafkaClusterOptions, TopicSpec};
use event_bus_testkit::registry::EmbeddedRegistry;
use event_bus_testkit::topics::{unique_group, unique_topic};
use futures::StreamExt;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio::task::JoinHandle;
use tracing::field::{Field, Visit};
use tracing::{Event as TracingEvent, Subscriber};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;
use uuid::Uuid;

/// Partitions of the topic.
const PARTITIONS: i32 = 3;
/// Distinct keys the events are spread over (so every partition gets some).
const KEYS: i64 = 30;
/// Bound for every wait on the consumer or the cluster.
const WAIT: Duration = Duration::from_secs(60);
/// The group's offsets topic.
const OFFSETS_TOPIC: &str = "__consumer_offsets";

// ---------------------------------------------------------------------------------
// What the SDK logs: counted (commit failures, rebalances, outages) and printed.
// ---------------------------------------------------------------------------------

/// Counts of SDK log lines of interest, and the first warnings, for the report.
#[derive(Default)]
struct LogCounts {
    commit_failures: AtomicUsize,
    assigned: AtomicUsize,
    revoked: AtomicUsize,
    outages: AtomicUsize,
    warnings: Mutex<Vec<String>>,
}

/// A snapshot of [`LogCounts`], to subtract one moment from another.
#[derive(Debug, Clone, Copy, Default)]
struct LogSnapshot {
    commit_failures: usize,
    assigned: usize,
    revoked: usize,
    outages: usize,
}

impl std::ops::Sub for LogSnapshot {
    type Output = Self;
    fn sub(self, earlier: Self) -> Self {
        Self {
            commit_failures: self.commit_failures - earlier.commit_failures,
            assigned: self.assigned - earlier.assigned,
            revoked: self.revoked - earlier.revoked,
            outages: self.outages - earlier.outages,
        }
    }
}

impl LogCounts {
    /// The process-wide counts, installing the subscriber on first use: SDK and
    /// testkit lines at `info` and up to stderr (librdkafka's at `warn`), and the
    /// counting layer.
    fn installed() -> &'static LogCounts {
        static COUNTS: OnceLock<&'static LogCounts> = OnceLock::new();
        COUNTS.get_or_init(|| {
            let counts: &'static LogCounts = Box::leak(Box::default());
            let targets = Targets::new()
                .with_target("event_bus_kafka", LevelFilter::INFO)
                // One line per delivered event: too many to print.
                .with_target("event_bus_kafka::producer", LevelFilter::WARN)
                .with_target("event_bus_testkit", LevelFilter::INFO)
                .with_target("consumer_failover", LevelFilter::INFO)
                .with_default(LevelFilter::WARN);
            let printed = tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_test_writer()
                .with_filter(targets.clone());
            // Another subscriber may be installed already (a `cargo test` run of many
            // tests in one process): then nothing is counted, and nothing asserted on.
            let _ = tracing_subscriber::registry()
                .with(printed)
                .with(Counting(counts).with_filter(targets))
                .try_init();
            counts
        })
    }

    fn snapshot(&self) -> LogSnapshot {
        LogSnapshot {
            commit_failures: self.commit_failures.load(Ordering::SeqCst),
            assigned: self.assigned.load(Ordering::SeqCst),
            revoked: self.revoked.load(Ordering::SeqCst),
            outages: self.outages.load(Ordering::SeqCst),
        }
    }

    fn warnings(&self) -> Vec<String> {
        self.warnings.lock().map(|w| w.clone()).unwrap_or_default()
    }
}

/// The fields of one log event, as `name=value` text, the message first.
#[derive(Default)]
struct Fields {
    message: String,
    rest: Vec<String>,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        } else {
            self.rest.push(format!("{}={value:?}", field.name()));
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_owned();
        } else {
            self.rest.push(format!("{}={value}", field.name()));
        }
    }
}

/// The layer feeding [`LogCounts`].
struct Counting(&'static LogCounts);

impl<S: Subscriber> Layer<S> for Counting {
    fn on_event(&self, event: &TracingEvent<'_>, _ctx: Context<'_, S>) {
        let target = event.metadata().target();
        if !target.starts_with("event_bus_kafka") {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let message = fields.message.as_str();
        let counts = self.0;
        let is_commit_failure = message.contains("commit")
            && (message.contains("failed") || message.contains("could not"));
        if is_commit_failure {
            counts.commit_failures.fetch_add(1, Ordering::SeqCst);
        }
        if message.starts_with("partitions assigned") {
            counts.assigned.fetch_add(1, Ordering::SeqCst);
        }
        if message.starts_with("partitions revoked") {
            counts.revoked.fetch_add(1, Ordering::SeqCst);
        }
        if message.starts_with("brokers unreachable") {
            counts.outages.fetch_add(1, Ordering::SeqCst);
        }
        if *event.metadata().level() <= tracing::Level::WARN {
            if let Ok(mut warnings) = counts.warnings.lock() {
                if warnings.len() < 200 {
                    warnings.push(format!(
                        "{} {target}: {message} {}",
                        event.metadata().level(),
                        fields.rest.join(" ")
                    ));
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------
// The cluster, the topic, the producer and the consumer.
// ---------------------------------------------------------------------------------

/// A private three-node cluster, the registry, a topic of [`PARTITIONS`] partitions
/// replicated three times that needs two in-sync replicas per write, and a group.
struct Failover {
    cluster: Arc<KafkaCluster>,
    registry: EmbeddedRegistry,
    prefix: String,
    topic: String,
    group: String,
}

impl Failover {
    async fn start(name: &str, options: KafkaClusterOptions) -> Self {
        let cluster = tokio::task::spawn_blocking(move || KafkaCluster::start_with(options))
            .await
            .expect("join")
            .unwrap_or_else(|error| panic!("start three Kafka nodes: {error}"));
        let registry = EmbeddedRegistry::start().await.expect("registry");
        let prefix = unique_topic(name);
        let topic = topic::full_topic(Some(&prefix), SessionLoginCompleted::TOPIC);
        cluster
            .create_topic_with(
                &TopicSpec::new(&topic, PARTITIONS)
                    .with_replication(3)
                    .with_config("min.insync.replicas", "2"),
            )
            .await
            .expect("topic");
        Self {
            cluster: Arc::new(cluster),
            registry,
            prefix,
            topic,
            group: unique_group(name),
        }
    }

    /// The SDK's producer with its defaults (idempotent, `acks=all`), a delivery
    /// timeout that rides out a failover and a request timeout that leaves a dead
    /// leader quickly; the event type is registered first.
    async fn producer(&self) -> Producer {
        let kafka = KafkaConfig::new(self.cluster.bootstrap_servers())
            .with_option("request.timeout.ms", "5000")
            .with_option("reconnect.backoff.max.ms", "1000")
            .with_option("linger.ms", "5");
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

    /// An in-process consumer of the group whose one receiver takes `per_event` and
    /// then records into `seen`; Kafka options for a quick failover, the default 1 s
    /// commit interval, one record at a time.
    fn consumer(&self, seen: &Arc<Seen>, per_event: Duration) -> EventConsumer {
        let kafka = KafkaConfig::new(self.cluster.bootstrap_servers())
            .with_option("session.timeout.ms", "6000")
            .with_option("heartbeat.interval.ms", "1000")
            .with_option("reconnect.backoff.max.ms", "1000")
            .with_option("topic.metadata.refresh.interval.ms", "2000");
        let config = ConsumerConfig::new(
            kafka,
            RegistryConfig::new(self.registry.url()),
            self.group.clone(),
            [SessionLoginCompleted::TOPIC],
        )
        .with_topic_prefix(self.prefix.clone());
        assert_eq!(config.commit_interval, Duration::from_secs(1));
        let mut bus = EventBus::new();
        let seen = Arc::clone(seen);
        bus.connect_async(
            "recorder",
            move |_: Arc<SessionLoginCompleted>, ctx: Arc<DeliveryContext>| {
                let seen = Arc::clone(&seen);
                async move {
                    if !per_event.is_zero() {
                        tokio::time::sleep(per_event).await;
                    }
                    seen.record(&ctx);
                    Ok(())
                }
            },
        )
        .expect("connect");
        EventConsumer::new(config, Arc::new(bus)).expect("consumer")
    }

    /// A plain rdkafka consumer of the group that never joins it: it reads the group's
    /// committed offsets and the topic's watermarks, and its statistics name the group
    /// coordinator it found.
    fn probe(&self) -> BaseConsumer<CoordinatorWatch> {
        self.cluster
            .consumer_config(&self.group)
            .set("statistics.interval.ms", "500")
            .create_with_context(CoordinatorWatch::default())
            .expect("probe consumer")
    }

    /// The group's committed offset of every partition (`None`: none committed).
    fn committed(
        &self,
        probe: &BaseConsumer<CoordinatorWatch>,
    ) -> Result<Vec<Option<i64>>, KafkaError> {
        let mut tpl = TopicPartitionList::new();
        for partition in 0..PARTITIONS {
            tpl.add_partition(&self.topic, partition);
        }
        let committed = probe.committed_offsets(tpl, Duration::from_secs(5))?;
        Ok((0..PARTITIONS)
            .map(|partition| {
                match committed
                    .find_partition(&self.topic, partition)
                    .map(|e| e.offset())
                {
                    Some(Offset::Offset(offset)) => Some(offset),
                    _ => None,
                }
            })
            .collect())
    }

    /// Polls the group's committed offsets until they equal `ends` (or `wait`
    /// passes); returns the last ones read and how long it took.
    async fn wait_for_committed(
        &self,
        probe: &BaseConsumer<CoordinatorWatch>,
        ends: &[i64],
        wait: Duration,
    ) -> (Vec<Option<i64>>, Duration) {
        let started = Instant::now();
        let expected: Vec<Option<i64>> = ends.iter().copied().map(Some).collect();
        let mut last = Vec::new();
        loop {
            match tokio::task::block_in_place(|| self.committed(probe)) {
                Ok(committed) => last = committed,
                Err(error) => eprintln!("committed offsets: {error}; asking again"),
            }
            if last == expected || started.elapsed() >= wait {
                return (last, started.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The group coordinator by the group's `__consumer_offsets` partition (see
    /// [`offsets_partition`]), with the partition count the test brokers are given.
    fn coordinator_by_hash(&self) -> Option<usize> {
        let partitions = KafkaClusterOptions::nodes(3)
            .broker_settings()
            .into_iter()
            .rev()
            .find(|(key, _)| key == "offsets.topic.num.partitions")
            .and_then(|(_, value)| value.parse::<i32>().ok())?;
        self.cluster
            .partition_leader(OFFSETS_TOPIC, offsets_partition(&self.group, partitions))
            .ok()
            .flatten()
    }

    /// Starts node `node` again (blocking: a JVM start).
    async fn restart(&self, node: usize) {
        let cluster = Arc::clone(&self.cluster);
        tokio::task::spawn_blocking(move || cluster.start_node(node))
            .await
            .expect("join")
            .unwrap_or_else(|error| panic!("node {node} starts again from its log dir: {error}"));
    }
}

/// The probe's context: keeps the last statistics, which list the logical
/// `GroupCoordinator` broker with the address of the node it stands for.
#[derive(Default)]
struct CoordinatorWatch {
    coordinator: Mutex<Option<String>>,
}

impl ClientContext for CoordinatorWatch {
    /// Reads the raw JSON (only the brokers' names and addresses are needed, so a
    /// field the typed statistics lack cannot make it fail).
    fn stats_raw(&self, statistics: &[u8]) {
        let Ok(json) = serde_json::from_slice::<serde_json::Value>(statistics) else {
            return;
        };
        let address = json
            .get("brokers")
            .and_then(serde_json::Value::as_object)
            .and_then(|brokers| {
                brokers.values().find_map(|b| {
                    let name = b.get("name")?.as_str()?;
                    let address = b.get("nodename")?.as_str()?;
                    (name == "GroupCoordinator" && !address.is_empty()).then(|| address.to_owned())
                })
            });
        if let (Some(address), Ok(mut slot)) = (address, self.coordinator.lock()) {
            *slot = Some(address);
        }
    }
}

impl ConsumerContext for CoordinatorWatch {}

/// What the receiver saw: per `ce_id`, how often it was handled and when first.
#[derive(Default)]
struct Seen {
    by_id: Mutex<HashMap<Uuid, (usize, Instant)>>,
}

impl Seen {
    fn record(&self, ctx: &DeliveryContext) {
        assert!(
            matches!(ctx.origin, Origin::Bus { .. }),
            "read from the bus"
        );
        if let Ok(mut by_id) = self.by_id.lock() {
            by_id
                .entry(ctx.metadata.id)
                .or_insert((0, Instant::now()))
                .0 += 1;
        }
    }

    fn counts(&self) -> HashMap<Uuid, usize> {
        self.by_id
            .lock()
            .map(|m| m.iter().map(|(id, (n, _))| (*id, *n)).collect())
            .unwrap_or_default()
    }

    /// When `id` was first handled.
    fn first_handled(&self, id: &Uuid) -> Option<Instant> {
        self.by_id.lock().ok()?.get(id).map(|(_, at)| *at)
    }

    /// The ids of `ids` not handled yet.
    fn missing(&self, ids: &[Uuid]) -> Vec<Uuid> {
        let counts = self.counts();
        ids.iter()
            .filter(|id| !counts.contains_key(id))
            .copied()
            .collect()
    }

    /// Waits until every id of `ids` was handled (or [`WAIT`] passes); returns the
    /// ones still missing.
    async fn wait_for(&self, ids: &[Uuid]) -> Vec<Uuid> {
        let started = Instant::now();
        loop {
            let missing = self.missing(ids);
            if missing.is_empty() || started.elapsed() >= WAIT {
                return missing;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Handles beyond the first: (events handled more than once, extra handles).
    fn duplicates(&self) -> (usize, usize) {
        let counts = self.counts();
        (
            counts.values().filter(|&&n| n > 1).count(),
            counts.values().map(|&n| n.saturating_sub(1)).sum(),
        )
    }

    /// Per partition, the longest time from an event's acknowledgement to its first
    /// handling: how long the consumer trailed the producer at worst.
    fn longest_delays(&self, acks: &[Ack]) -> Vec<Duration> {
        (0..PARTITIONS)
            .map(|partition| {
                acks.iter()
                    .filter(|ack| ack.partition == partition)
                    .filter_map(|ack| {
                        let handled = self.first_handled(&ack.id)?;
                        Some(handled.saturating_duration_since(ack.at))
                    })
                    .max()
                    .unwrap_or_default()
            })
            .collect()
    }
}

/// One acknowledged send.
#[derive(Debug, Clone, Copy)]
struct Ack {
    id: Uuid,
    partition: i32,
    at: Instant,
}

/// The end offset of every partition after `batches`: with an idempotent producer on
/// a fresh topic each acknowledgement is one record, so a partition ends at its count
/// of acknowledgements. (Asking the brokers for watermarks while a node is down can
/// answer "unknown partition" for a minute, from a client's stale metadata.)
fn ack_ends(batches: &[&[Ack]]) -> Vec<i64> {
    let mut ends = vec![0i64; PARTITIONS as usize];
    for ack in batches.iter().flat_map(|batch| batch.iter()) {
        if let Some(end) = usize::try_from(ack.partition)
            .ok()
            .and_then(|p| ends.get_mut(p))
        {
            *end += 1;
        }
    }
    ends
}

fn ids(acks: &[Ack]) -> Vec<Uuid> {
    acks.iter().map(|ack| ack.id).collect()
}

/// Per partition, the longest time without an acknowledgement from `since` to the
/// partition's last one: how long the producer stalled at worst.
fn longest_ack_gaps(acks: &[Ack], since: Instant) -> Vec<Duration> {
    (0..PARTITIONS)
        .map(|partition| {
            let mut times: Vec<Instant> = acks
                .iter()
                .filter(|ack| ack.partition == partition && ack.at >= since)
                .map(|ack| ack.at)
                .collect();
            times.sort();
            let mut last = since;
            let mut longest = Duration::ZERO;
            for at in times {
                longest = longest.max(at.duration_since(last));
                last = at;
            }
            longest
        })
        .collect()
}

fn seconds(durations: &[Duration]) -> String {
    let parts: Vec<String> = durations
        .iter()
        .map(|d| format!("{:.1}", d.as_secs_f64()))
        .collect();
    format!("[{}] s", parts.join(", "))
}

/// A `SessionLoginCompleted` for user `seq`, keyed by one of [`KEYS`] usernames.
fn login(seq: i64) -> SessionLoginCompleted {
    let mut user = UserData::example();
    user.id = seq;
    user.pii.username = format!("user-{}", seq % KEYS);
    SessionLoginCompleted { user }
}

/// Sends the events `seqs`, spread evenly over `over` (each at its own moment, all
/// able to be in flight at once, so a stalled leader does not slow the schedule);
/// `acked` counts acknowledgements as they come. Returns the acknowledged `ce_id`s
/// and how many sends failed.
async fn produce(
    producer: &Producer,
    seqs: Range<i64>,
    over: Duration,
    acked: &AtomicUsize,
) -> (Vec<Ack>, usize) {
    let count = usize::try_from(seqs.end - seqs.start).expect("count");
    let start = tokio::time::Instant::now();
    let results: Vec<_> = futures::stream::iter(seqs.enumerate())
        .map(|(index, seq)| async move {
            tokio::time::sleep_until(start + over.mul_f64(index as f64 / count as f64)).await;
            let result = producer.send(&login(seq)).await;
            let at = Instant::now();
            if result.is_ok() {
                acked.fetch_add(1, Ordering::SeqCst);
            }
            (seq, result, at)
        })
        .buffer_unordered(count.max(1))
        .collect()
        .await;
    let mut acks = Vec::new();
    let mut failed = 0;
    for (seq, result, at) in results {
        match result {
            Ok(delivery) => acks.push(Ack {
                id: delivery.event_id,
                partition: delivery.partition,
                at,
            }),
            Err(error) => {
                failed += 1;
                eprintln!("send of event {seq} failed: {error}");
            }
        }
    }
    (acks, failed)
}

async fn wait_for_acks(acked: &AtomicUsize, count: usize) {
    let started = Instant::now();
    while acked.load(Ordering::SeqCst) < count && started.elapsed() < WAIT {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Samples the consumer's confirmed-commit counter and the age of its last poll every
/// 50 ms.
struct CommitWatch {
    samples: Arc<Mutex<Vec<(Instant, u64)>>>,
    /// The oldest last-poll stamp seen, and when.
    stalest: Arc<Mutex<(Duration, Option<Instant>)>>,
    task: JoinHandle<()>,
}

impl CommitWatch {
    fn spawn(stats: Arc<ConsumerStats>) -> Self {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let stalest = Arc::new(Mutex::new((Duration::ZERO, None)));
        let task = tokio::spawn({
            let samples = Arc::clone(&samples);
            let stalest = Arc::clone(&stalest);
            async move {
                loop {
                    let commits = stats.snapshot().commits;
                    let now = Instant::now();
                    if let Ok(mut samples) = samples.lock() {
                        samples.push((now, commits));
                    }
                    let age = stats.since_last_poll().unwrap_or_default();
                    if let Ok(mut stalest) = stalest.lock() {
                        if age > stalest.0 {
                            *stalest = (age, Some(now));
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        });
        Self {
            samples,
            stalest,
            task,
        }
    }

    /// The oldest the loop's health stamp (`since_last_poll`) was seen, and how long
    /// after `since` that was.
    fn longest_without_poll(&self, since: Instant) -> (Duration, Option<Duration>) {
        let (age, at) = self.stalest.lock().map(|s| *s).unwrap_or_default();
        (age, at.map(|at| at.saturating_duration_since(since)))
    }

    /// From `since` until `until`: how long until the first commit confirmed after
    /// `since`, and the longest time between `since` and a confirmed commit or two.
    fn after(&self, since: Instant, until: Instant) -> (Option<Duration>, Duration) {
        let samples = self.samples.lock().map(|s| s.clone()).unwrap_or_default();
        let at_since = samples
            .iter()
            .take_while(|(at, _)| *at <= since)
            .last()
            .map_or(0, |(_, c)| *c);
        let mut first = None;
        let mut last_change = since;
        let mut last_count = at_since;
        let mut longest = Duration::ZERO;
        for (at, count) in samples.iter().filter(|(at, _)| *at > since && *at <= until) {
            if *count > last_count {
                first.get_or_insert(at.duration_since(since));
                longest = longest.max(at.duration_since(last_change));
                last_change = *at;
                last_count = *count;
            }
        }
        (first, longest)
    }
}

impl Drop for CommitWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Triggers the shutdown and returns what the loop returned.
async fn stop(
    trigger: ShutdownTrigger,
    task: JoinHandle<Result<StatsSnapshot, ConsumerError>>,
) -> StatsSnapshot {
    trigger.trigger();
    tokio::time::timeout(WAIT, task)
        .await
        .expect("the loop stops within the wait after the shutdown trigger")
        .expect("join")
        .unwrap_or_else(|error| panic!("the loop ends cleanly: {error}"))
}

fn print_warnings(logs: &LogCounts) {
    let warnings = logs.warnings();
    eprintln!("--- SDK warnings ({}) ---", warnings.len());
    for line in warnings.iter().take(60) {
        eprintln!("  {line}");
    }
}

// ---------------------------------------------------------------------------------
// The group coordinator.
// ---------------------------------------------------------------------------------

/// Java's `String.hashCode` (over UTF-16 code units, wrapping).
fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

/// The `__consumer_offsets` partition of `group`: Kafka's
/// `Utils.abs(groupId.hashCode()) % offsets.topic.num.partitions`, where `Utils.abs`
/// maps `i32::MIN` to 0.
fn offsets_partition(group: &str, partitions: i32) -> i32 {
    let hash = java_string_hash(group);
    let abs = if hash == i32::MIN { 0 } else { hash.abs() };
    abs % partitions
}

#[test]
fn the_offsets_partition_follows_java_string_hash_code() {
    // Values of `"...".hashCode()` in Java.
    assert_eq!(java_string_hash(""), 0);
    assert_eq!(java_string_hash("a"), 97);
    assert_eq!(java_string_hash("hello"), 99_162_322);
    assert_eq!(java_string_hash("polygenelubricants"), i32::MIN);
    assert_eq!(java_string_hash("Aa"), java_string_hash("BB"));
    assert_eq!(offsets_partition("polygenelubricants", 10), 0);
    assert_eq!(offsets_partition("hello", 50), 22);
    // A negative hash is made positive before the modulo.
    assert_eq!(java_string_hash("my-group"), -1_906_497_762);
    assert_eq!(offsets_partition("my-group", 50), 12);
}

// ---------------------------------------------------------------------------------
// The tests.
// ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consuming_goes_on_when_the_partition_leader_is_killed_and_restarted() {
    const EVENTS: i64 = 3_000;
    let logs = LogCounts::installed();
    let failover = Arc::new(Failover::start("leader-kill", KafkaClusterOptions::nodes(3)).await);
    let producer = failover.producer().await;
    let probe = failover.probe();
    let seen = Arc::new(Seen::default());
    let consumer = failover.consumer(&seen, Duration::ZERO);
    let stats = consumer.stats();
    let commits = CommitWatch::spawn(Arc::clone(&stats));
    let (trigger, shutdown) = Shutdown::new();
    let task = tokio::spawn(consumer.run(shutdown));
    let logs_at_start = logs.snapshot();

    let acked = Arc::new(AtomicUsize::new(0));
    let chaos = {
        let failover = Arc::clone(&failover);
        let acked = Arc::clone(&acked);
        tokio::spawn(async move {
            wait_for_acks(&acked, 1_000).await;
            let leader = failover
                .cluster
                .partition_leader(&failover.topic, 0)
                .expect("metadata")
                .expect("partition 0 has a leader");
            let coordinator = failover.coordinator_by_hash();
            failover
                .cluster
                .kill_node(leader)
                .expect("SIGKILL the leader");
            let killed_at = Instant::now();
            eprintln!(
                "killed node {leader}, the leader of partition 0, after {} acks; the group coordinator is node {coordinator:?}",
                acked.load(Ordering::SeqCst)
            );
            tokio::time::sleep(Duration::from_secs(8)).await;
            failover.restart(leader).await;
            let restarted_at = Instant::now();
            eprintln!(
                "node {leader} runs again ({:.1} s after the kill, {} acks)",
                restarted_at.duration_since(killed_at).as_secs_f64(),
                acked.load(Ordering::SeqCst)
            );
            (leader, killed_at, restarted_at)
        })
    };
    let produce_started = Instant::now();
    let (acks, failed) = produce(&producer, 0..EVENTS, Duration::from_secs(20), &acked).await;
    let sent = ids(&acks);
    eprintln!(
        "produced {} events in {:.1} s ({failed} sends failed)",
        sent.len(),
        produce_started.elapsed().as_secs_f64()
    );
    let (killed, killed_at, restarted_at) = chaos.await.expect("chaos task");
    assert_eq!(
        failed, 0,
        "every send was acknowledged: two replicas stayed in sync"
    );
    assert!(
        failover.cluster.is_running(killed).expect("node state"),
        "the killed leader runs again"
    );

    // Every produced event is handled at least once.
    let missing = seen.wait_for(&sent).await;
    assert!(
        missing.is_empty(),
        "{} of {} produced events never handled, e.g. {:?}; stats {:?}",
        missing.len(),
        sent.len(),
        missing.first(),
        stats.snapshot()
    );

    // The group's commits catch up with the end of every partition.
    let ends = ack_ends(&[&acks]);
    assert_eq!(ends.iter().sum::<i64>(), EVENTS, "end offsets {ends:?}");
    assert!(
        ends.iter().all(|&end| end > 0),
        "every partition got events: {ends:?}"
    );
    let (committed, took) = failover.wait_for_committed(&probe, &ends, WAIT).await;
    let committed_all_at = Instant::now();

    // The loop never returned.
    let finished_early = task.is_finished();
    let snapshot = stats.snapshot();
    let (duplicated, extra) = seen.duplicates();
    let delays = seen.longest_delays(&acks);
    let ack_gaps = longest_ack_gaps(&acks, killed_at);
    let (first_commit, commit_gap) = commits.after(killed_at, committed_all_at);
    let log_counts = logs.snapshot() - logs_at_start;
    eprintln!("--- leader kill: node {killed} ---");
    eprintln!(
        "handled {} records ({} distinct events), {duplicated} events handled more than once ({extra} extra handles)",
        snapshot.records_handled,
        seen.counts().len()
    );
    eprintln!(
        "per partition: longest acknowledgement-to-handling delay {}; longest producer stall after the kill {}",
        seconds(&delays),
        seconds(&ack_gaps)
    );
    eprintln!(
        "first confirmed commit after the kill: {:?}; longest time without one: {:.1} s; node down for {:.1} s",
        first_commit.map(|d| format!("{:.1} s", d.as_secs_f64())),
        commit_gap.as_secs_f64(),
        restarted_at.duration_since(killed_at).as_secs_f64()
    );
    eprintln!(
        "committed == end offsets {ends:?} {:.1} s after everything was handled; confirmed commits {}",
        took.as_secs_f64(),
        snapshot.commits
    );
    let (no_poll, no_poll_at) = commits.longest_without_poll(killed_at);
    eprintln!(
        "longest the loop's health stamp (last_poll_millis) went stale: {:.1} s (seen {:?} after the kill)",
        no_poll.as_secs_f64(),
        no_poll_at.map(|d| format!("{:.1} s", d.as_secs_f64()))
    );
    eprintln!(
        "commit failures logged: {}; assignments: {}, revocations: {}, outage backoffs logged: {} (stats: {} poll errors, backoffs {:?})",
        log_counts.commit_failures,
        log_counts.assigned,
        log_counts.revoked,
        log_counts.outages,
        snapshot.poll_errors,
        snapshot.poll_backoffs
    );
    print_warnings(logs);

    assert!(
        !finished_early && snapshot.running,
        "the consumer loop is still running after the leader's death: {:?}",
        if finished_early {
            Some(task.await)
        } else {
            None
        }
    );
    assert_eq!(
        committed,
        ends.iter().copied().map(Some).collect::<Vec<_>>(),
        "the group's committed offsets reach the end of every partition"
    );
    let summary = stop(trigger, task).await;
    assert!(summary.records_handled >= u64::try_from(EVENTS).expect("count"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_that_fails_while_the_group_coordinator_is_down_is_retried_and_the_group_resumes_from_the_last_confirmed_position(
) {
    /// Handled and committed before the kill.
    const FIRST: i64 = 100;
    /// Sent just before the kill; handled while the coordinator is down.
    const SECOND: i64 = 300;
    /// Sent while the coordinator is down.
    const THIRD: i64 = 100;
    /// Sent after the first consumer stopped, for the fresh one.
    const FOURTH: i64 = 100;
    /// What the receiver takes per event: the second batch keeps the consumer busy for
    /// about 9 s, through the coordinator's outage, so commit ticks meet it.
    const PER_EVENT: Duration = Duration::from_millis(30);

    let logs = LogCounts::installed();
    // The controller fences a dead broker after 10 s instead of the test default of
    // 4 s: the coordinator is then away longer than the member's 6 s session, so the
    // commit waiting for it fails every time (with 4 s it sometimes waits and goes
    // through, sometimes fails, depending on the machine's load).
    let failover = Failover::start(
        "coordinator-kill",
        KafkaClusterOptions::nodes(3).with_setting("broker.session.timeout.ms", "10000"),
    )
    .await;
    let producer = failover.producer().await;
    let probe = failover.probe();
    let acked = AtomicUsize::new(0);

    // First batch: handled and committed.
    let seen = Arc::new(Seen::default());
    let consumer = failover.consumer(&seen, PER_EVENT);
    let stats = consumer.stats();
    let commits = CommitWatch::spawn(Arc::clone(&stats));
    let (trigger, shutdown) = Shutdown::new();
    let task = tokio::spawn(consumer.run(shutdown));
    let (first_acks, failed) = produce(&producer, 0..FIRST, Duration::from_secs(1), &acked).await;
    assert_eq!(failed, 0);
    let first = ids(&first_acks);
    let missing = seen.wait_for(&first).await;
    assert!(
        missing.is_empty(),
        "{} of the first batch never handled",
        missing.len()
    );
    let ends_first = ack_ends(&[&first_acks]);
    let (committed, _) = failover.wait_for_committed(&probe, &ends_first, WAIT).await;
    assert_eq!(
        committed,
        ends_first.iter().copied().map(Some).collect::<Vec<_>>(),
        "the first batch is committed"
    );

    // The coordinator: the leader of the group's partition of `__consumer_offsets`;
    // the probe's client found the same node.
    let offsets_partitions = tokio::task::block_in_place(|| {
        probe
            .fetch_metadata(Some(OFFSETS_TOPIC), Duration::from_secs(10))
            .expect("metadata")
            .topics()
            .iter()
            .find(|t| t.name() == OFFSETS_TOPIC)
            .map(|t| i32::try_from(t.partitions().len()).expect("count"))
            .expect("the offsets topic exists once the group committed")
    });
    let partition = offsets_partition(&failover.group, offsets_partitions);
    let coordinator = failover
        .cluster
        .partition_leader(OFFSETS_TOPIC, partition)
        .expect("metadata")
        .expect("the offsets partition has a leader");
    assert_eq!(
        failover.coordinator_by_hash(),
        Some(coordinator),
        "the test brokers' offsets.topic.num.partitions is the topic's partition count"
    );
    let seen_by_client = tokio::task::block_in_place(|| coordinator_seen_by(&probe));
    eprintln!(
        "group {} -> {OFFSETS_TOPIC}[{partition}] of {offsets_partitions}, led by node {coordinator}; the probe's client found node {seen_by_client:?}",
        failover.group
    );
    assert_eq!(
        seen_by_client,
        Some(coordinator),
        "the client's group coordinator is the leader of the group's offsets partition"
    );

    // The second batch is sent, the coordinator killed while the consumer works
    // through it, and a third batch sent while it is down.
    let (second_acks, failed) =
        produce(&producer, FIRST..FIRST + SECOND, Duration::ZERO, &acked).await;
    assert_eq!(failed, 0);
    let second = ids(&second_acks);
    let before = stats.snapshot();
    let logs_before = logs.snapshot();
    failover
        .cluster
        .kill_node(coordinator)
        .expect("SIGKILL the coordinator");
    let killed_at = Instant::now();
    let handled_at_kill = before.records_handled - FIRST as u64;
    eprintln!(
        "killed node {coordinator}, the group coordinator, with {handled_at_kill} of the {SECOND} events of the second batch handled"
    );
    assert!(
        handled_at_kill < SECOND as u64 / 2,
        "most of the second batch is handled after the kill"
    );
    let (third_acks, failed) = produce(
        &producer,
        FIRST + SECOND..FIRST + SECOND + THIRD,
        Duration::from_secs(2),
        &acked,
    )
    .await;
    assert_eq!(failed, 0);
    let third = ids(&third_acks);
    let later: Vec<Uuid> = second.iter().chain(&third).copied().collect();
    let missing = seen.wait_for(&later).await;
    assert!(
        missing.is_empty(),
        "{} of the second and third batches never handled while the coordinator was down; stats {:?}",
        missing.len(),
        stats.snapshot()
    );
    let handled_all_after = killed_at.elapsed();

    // While the node is still down (at most 20 s more), see whether the new
    // coordinator confirms the commits; keep it down at least 8 s in all.
    let ends = ack_ends(&[&first_acks, &second_acks, &third_acks]);
    assert_eq!(ends.iter().sum::<i64>(), FIRST + SECOND + THIRD);
    let expected: Vec<Option<i64>> = ends.iter().copied().map(Some).collect();
    let (committed_while_down, _) = failover
        .wait_for_committed(&probe, &ends, Duration::from_secs(20))
        .await;
    let covered_while_down = (committed_while_down == expected).then(|| killed_at.elapsed());
    tokio::time::sleep_until((killed_at + Duration::from_secs(8)).into()).await;
    let new_coordinator = failover
        .cluster
        .partition_leader(OFFSETS_TOPIC, partition)
        .expect("metadata");
    failover.restart(coordinator).await;
    let restarted_at = Instant::now();

    // Every handled event is covered by a confirmed commit in the end.
    let (committed, took) = failover.wait_for_committed(&probe, &ends, WAIT).await;
    let committed_at = Instant::now();
    let snapshot = stats.snapshot();
    let finished_early = task.is_finished();
    let (first_commit, commit_gap) = commits.after(killed_at, committed_at);
    let log_counts = logs.snapshot() - logs_before;
    let (duplicated, extra) = seen.duplicates();
    let counts = seen.counts();
    let first_again = first
        .iter()
        .filter(|id| counts.get(id).is_some_and(|&n| n > 1))
        .count();
    eprintln!("--- coordinator kill: node {coordinator} ---");
    eprintln!(
        "second and third batches handled {:.1} s after the kill; longest acknowledgement-to-handling delay of the third batch per partition {}; offsets partition led by {new_coordinator:?} before the restart ({:.1} s after the kill)",
        handled_all_after.as_secs_f64(),
        seconds(&seen.longest_delays(&third_acks)),
        restarted_at.duration_since(killed_at).as_secs_f64()
    );
    eprintln!(
        "first confirmed commit after the kill: {:?}; longest time between confirmed commits: {:.1} s; group offsets covered everything {:?} after the kill, with the node still down; committed == end offsets {ends:?} {:.1} s after the restart",
        first_commit.map(|d| format!("{:.1} s", d.as_secs_f64())),
        commit_gap.as_secs_f64(),
        covered_while_down.map(|d| format!("{:.1} s", d.as_secs_f64())),
        took.as_secs_f64()
    );
    let (no_poll, no_poll_at) = commits.longest_without_poll(killed_at);
    eprintln!(
        "longest the loop's health stamp (last_poll_millis) went stale: {:.1} s (seen {:?} after the kill)",
        no_poll.as_secs_f64(),
        no_poll_at.map(|d| format!("{:.1} s", d.as_secs_f64()))
    );
    eprintln!(
        "confirmed commits: {} before the kill, {} in the end; commit failures logged meanwhile: {}; assignments {}, revocations {}, outage backoffs {}",
        before.commits,
        snapshot.commits,
        log_counts.commit_failures,
        log_counts.assigned,
        log_counts.revoked,
        log_counts.outages
    );
    eprintln!(
        "first consumer: {} records handled, {duplicated} events handled more than once ({extra} extra), {first_again} of them of the first batch",
        snapshot.records_handled
    );
    print_warnings(logs);
    assert!(
        !finished_early && snapshot.running,
        "the consumer loop is still running after the coordinator's death: {:?}",
        if finished_early {
            Some(task.await)
        } else {
            None
        }
    );
    assert_eq!(
        committed, expected,
        "the group's committed offsets cover every handled event"
    );
    assert!(
        snapshot.commits > before.commits,
        "the loop counted commits confirmed after the kill"
    );
    assert_eq!(
        first_again, 0,
        "whatever the consumer read again after the outage came after the position confirmed before it"
    );
    stop(trigger, task).await;

    // A fresh consumer of the group resumes from the last confirmed position.
    let (fourth, failed) = produce(
        &producer,
        FIRST + SECOND + THIRD..FIRST + SECOND + THIRD + FOURTH,
        Duration::from_secs(1),
        &acked,
    )
    .await;
    assert_eq!(failed, 0);
    let fourth = ids(&fourth);
    let fresh = Arc::new(Seen::default());
    let consumer = failover.consumer(&fresh, Duration::ZERO);
    let fresh_stats = consumer.stats();
    let (trigger, shutdown) = Shutdown::new();
    let task = tokio::spawn(consumer.run(shutdown));
    let missing = fresh.wait_for(&fourth).await;
    assert!(
        missing.is_empty(),
        "{} of the new events never handled by the fresh consumer; stats {:?}",
        missing.len(),
        fresh_stats.snapshot()
    );
    // Each partition is read in order, so anything older it read again came before
    // the last new event of its partition.
    let again = |batch: &[Uuid]| batch.len() - fresh.missing(batch).len();
    let (again_first, again_later) = (again(&first), again(&later));
    let summary = stop(trigger, task).await;
    eprintln!(
        "fresh consumer: {} records handled; again of the first batch {again_first}, of the second and third {again_later}",
        summary.records_handled
    );
    assert_eq!(again_first, 0, "no event of the first batch handled again");
    assert_eq!(
        again_later, 0,
        "no event handled before the restart is handled again: its commit was confirmed"
    );
    assert_eq!(
        summary.records_handled, FOURTH as u64,
        "the fresh consumer handles the new events only"
    );
}

/// The node the probe's client uses as group coordinator, by its statistics (the
/// client looks the coordinator up once asked for committed offsets).
fn coordinator_seen_by(probe: &BaseConsumer<CoordinatorWatch>) -> Option<usize> {
    let metadata = probe
        .fetch_metadata(None, Duration::from_secs(10))
        .expect("metadata");
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(20) {
        let _ = probe.poll(Duration::from_millis(200));
        let address = probe
            .context()
            .coordinator
            .lock()
            .ok()
            .and_then(|a| a.clone());
        if let Some(address) = address {
            let port = address.rsplit(':').next()?.parse::<i32>().ok()?;
            return metadata
                .brokers()
                .iter()
                .find(|b| b.port() == port)
                .and_then(|b| usize::try_from(b.id()).ok());
        }
    }
    None
}
