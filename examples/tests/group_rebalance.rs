//! The consumer-group lifecycle under load, on a private three-node Apache Kafka
//! cluster (KRaft, a six-partition topic replicated three times): three
//! `consume_events` processes of one group start while 20 000 events of 200 keys flow;
//! one is SIGKILLed, a fourth joins, and one is stopped with SIGTERM (and exits 0).
//!
//! It proves that
//! - every event reaches every receiver at least once;
//! - for every key and every receiver, the first handling of each event comes in the
//!   key's produce order (its order in the partition), across processes and
//!   rebalances;
//! - the duplicates (events handled again) are bounded: at most, per receiver,
//!   `membership changes × (max in flight + events produced in 2 s) + max in flight`.
//!
//! The consumers are the example binary, run as child processes; their receivers
//! append `receiver<TAB>ce_id` to one file (one `write` on a file opened for
//! appending), so the file's line order is the order of handling across processes.
//! Three variants: `--max-in-flight 1` and 16 with the classic group protocol, and 16
//! with the consumer group protocol (KIP-848).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use event_bus_core::Event;
use event_bus_examples::openedx::{SessionLoginCompleted, UserData};
use event_bus_examples::receivers::{AuditReceiver, CountingReceiver, RECEIVED_LOG_ENV};
use event_bus_kafka::prelude::*;
use event_bus_kafka::topic;
use event_bus_testkit::kafka::{KafkaCluster, KafkaClusterOptions, TopicSpec};
use event_bus_testkit::registry::EmbeddedRegistry;
use event_bus_testkit::topics::{unique_group, unique_topic};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::MissedTickBehavior;
use uuid::Uuid;

/// Events produced.
const EVENTS: usize = 20_000;
/// Distinct keys (usernames) the events are spread over.
const KEYS: usize = 200;
/// Events sent concurrently at each tick; fewer than [`KEYS`], so no two sends of a
/// batch share a key.
const BATCH: usize = 100;
/// One batch starts every `PACE` at most (a late batch delays the next ones, so the
/// rate never exceeds `BATCH / PACE`): 200 batches, about 30 s.
const PACE: Duration = Duration::from_millis(150);
const PARTITIONS: i32 = 6;
/// Acknowledged events after which consumer 1 is SIGKILLed.
const KILL_AT: usize = 5_000;
/// Acknowledged events after which consumer 3 joins (after the killed member's
/// 6 s session has expired).
const JOIN_AT: usize = 11_000;
/// Acknowledged events after which consumer 0 is stopped with SIGTERM.
const TERM_AT: usize = 16_000;
/// The consumers that run from the start.
const FIRST_CONSUMERS: usize = 3;
/// How long the group may take to handle everything after production ends.
const DELIVERY_WAIT: Duration = Duration::from_secs(90);
/// How long a consumer may take to exit after SIGTERM.
const STOP_WAIT: Duration = Duration::from_secs(30);
/// A quiet received log (no new line) for this long means the group is idle and
/// has committed (it commits every second).
const QUIET: Duration = Duration::from_secs(3);
const RECEIVERS: [&str; 2] = [AuditReceiver::NAME, CountingReceiver::NAME];

/// Classic protocol: the session and heartbeat are the client's settings.
const CLASSIC_EXTRA: &str = r#"{"session.timeout.ms": "6000", "heartbeat.interval.ms": "1000", "reconnect.backoff.max.ms": "1000"}"#;
/// Consumer protocol: librdkafka refuses the session and heartbeat settings; the
/// brokers set them instead (see [`Bench::start`]).
const CONSUMER_PROTOCOL_EXTRA: &str =
    r#"{"group.protocol": "consumer", "reconnect.backoff.max.ms": "1000"}"#;

/// One way of running the group.
#[derive(Debug, Clone, Copy)]
struct Variant {
    name: &'static str,
    max_in_flight: usize,
    extra: &'static str,
}

/// The produce rate the pacing allows at most, as events per 2 s (rounded up).
fn events_per_two_seconds() -> usize {
    let per_two_seconds = (BATCH as u128 * 2_000).div_ceil(PACE.as_millis());
    usize::try_from(per_two_seconds).expect("small")
}

/// The most duplicates one receiver may see.
fn duplicate_bound(membership_changes: usize, max_in_flight: usize) -> usize {
    membership_changes * (max_in_flight + events_per_two_seconds()) + max_in_flight
}

/// A private three-node cluster, the registry, the topic and a group.
struct Bench {
    cluster: KafkaCluster,
    registry: EmbeddedRegistry,
    prefix: String,
    group: String,
    dir: PathBuf,
}

impl Bench {
    async fn start(name: &str) -> Self {
        // The consumer protocol's session and heartbeat are broker settings (defaults
        // 45 s and 5 s, and the minimums too): the same 6 s and 1 s as the classic
        // variants' client settings, so a SIGKILLed member leaves as fast.
        let options = KafkaClusterOptions::nodes(3)
            .with_setting("group.consumer.min.session.timeout.ms", "6000")
            .with_setting("group.consumer.session.timeout.ms", "6000")
            .with_setting("group.consumer.min.heartbeat.interval.ms", "1000")
            .with_setting("group.consumer.heartbeat.interval.ms", "1000");
        let cluster = tokio::task::spawn_blocking(move || KafkaCluster::start_with(options))
            .await
            .expect("join")
            .unwrap_or_else(|error| panic!("start three Kafka nodes: {error}"));
        let registry = EmbeddedRegistry::start().await.expect("registry");
        let prefix = unique_topic("rebalance");
        let topic = topic::full_topic(Some(&prefix), SessionLoginCompleted::TOPIC);
        cluster
            .create_topic_with(&TopicSpec::new(&topic, PARTITIONS).with_replication(3))
            .await
            .expect("topic");
        cluster
            .create_topic_with(&TopicSpec::new(&format!("{topic}.dlq"), 1).with_replication(3))
            .await
            .expect("dlq topic");
        let dir = std::env::temp_dir().join(unique_topic(&format!("group-rebalance-{name}")));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self {
            cluster,
            registry,
            prefix,
            group: unique_group("rebalance"),
            dir,
        }
    }

    fn received_log(&self) -> PathBuf {
        self.dir.join("received.log")
    }

    fn output_log(&self, number: usize) -> PathBuf {
        self.dir.join(format!("consumer-{number}.log"))
    }

    async fn producer(&self) -> Producer {
        let producer = Producer::new(
            ProducerConfig::new(
                KafkaConfig::new(self.cluster.bootstrap_servers()).with_option("linger.ms", "5"),
                RegistryConfig::new(self.registry.url()),
            )
            .with_topic_prefix(self.prefix.clone())
            .with_service_name("rebalance-test"),
        )
        .expect("producer");
        // Registered before the consumers start, so every record has a known schema.
        producer
            .register::<SessionLoginCompleted>()
            .await
            .expect("registered");
        producer
    }
}

/// The consumer processes; dropping it (also on panic) kills the ones still running.
struct Group<'a> {
    bench: &'a Bench,
    variant: Variant,
    /// Indexed by consumer number; `None` once it has exited.
    children: Vec<Option<Child>>,
}

impl Drop for Group<'_> {
    fn drop(&mut self) {
        for child in self.children.iter_mut().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl<'a> Group<'a> {
    fn new(bench: &'a Bench, variant: Variant) -> Self {
        Self {
            bench,
            variant,
            children: Vec::new(),
        }
    }

    /// Starts the next consumer; returns its number.
    fn spawn(&mut self) -> usize {
        let number = self.children.len();
        let output = File::create(self.bench.output_log(number)).expect("consumer log file");
        let errors = output.try_clone().expect("consumer log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_consume_events"));
        for (name, _) in std::env::vars().filter(|(n, _)| n.starts_with("EVENT_BUS_")) {
            command.env_remove(name);
        }
        let max_in_flight = self.variant.max_in_flight.to_string();
        let child = command
            .args([
                "--topic",
                SessionLoginCompleted::TOPIC,
                "--group",
                &self.bench.group,
                "--max-in-flight",
                &max_in_flight,
                "--extra",
                self.variant.extra,
            ])
            .env(
                "EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS",
                self.bench.cluster.bootstrap_servers(),
            )
            .env("EVENT_BUS_SCHEMA_REGISTRY_URL", self.bench.registry.url())
            .env("EVENT_BUS_TOPIC_PREFIX", &self.bench.prefix)
            .env(RECEIVED_LOG_ENV, self.bench.received_log())
            .env("RUST_LOG", "warn,event_bus_kafka=info")
            .env("NO_COLOR", "1")
            // Parallel tests: a free port each, not the default 0.0.0.0:9464.
            .env("EVENT_BUS_OBSERVABILITY_ADDRESS", "127.0.0.1:0")
            .stdin(Stdio::null())
            .stdout(output)
            .stderr(errors)
            .spawn()
            .expect("consume_events starts");
        self.children.push(Some(child));
        number
    }

    fn sigkill(&mut self, number: usize) {
        let mut child = self.children[number].take().expect("running");
        child.kill().expect("SIGKILL");
        let _ = child.wait();
    }

    /// Sends SIGTERM and waits for the exit; its code, or `None` if it had to be
    /// killed after [`STOP_WAIT`] (or died of a signal).
    async fn sigterm(&mut self, number: usize) -> Option<i32> {
        let child = self.children[number].as_mut().expect("running");
        let pid = child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(sent.map(|s| s.success()).unwrap_or(false), "SIGTERM sent");
        let started = Instant::now();
        let code = loop {
            if let Ok(Some(status)) = child.try_wait() {
                break status.code();
            }
            if started.elapsed() >= STOP_WAIT {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        self.children[number] = None;
        code
    }

    /// Panics, with every consumer's output, if a consumer the test did not stop has
    /// exited.
    fn assert_running(&mut self) {
        let exited: Vec<(usize, std::process::ExitStatus)> = self
            .children
            .iter_mut()
            .enumerate()
            .filter_map(|(n, c)| Some((n, c.as_mut()?.try_wait().ok()??)))
            .collect();
        assert!(
            exited.is_empty(),
            "consumers exited on their own: {exited:?}\n{}",
            self.output_tails()
        );
    }

    /// The end of every consumer's output.
    fn output_tails(&self) -> String {
        let mut tails = String::new();
        for number in 0..self.children.len() {
            let text = std::fs::read_to_string(self.bench.output_log(number)).unwrap_or_default();
            let start = text.len().saturating_sub(2_500);
            let start = (start..text.len())
                .find(|i| text.is_char_boundary(*i))
                .unwrap_or(0);
            let _ = writeln!(
                tails,
                "--- consumer {number} ({}) ---\n{}",
                self.bench.output_log(number).display(),
                &text[start..]
            );
        }
        tails
    }
}

/// A join or a leave of the group, while events flowed.
struct Change {
    what: String,
    at: Duration,
    acknowledged: usize,
    log_lines: usize,
}

impl std::fmt::Debug for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "at {:.1?}: {} ({} events acknowledged, {} log lines)",
            self.at, self.what, self.acknowledged, self.log_lines
        )
    }
}

/// One acknowledged event.
#[derive(Debug, Clone)]
struct Produced {
    id: Uuid,
    key: String,
    partition: i32,
    offset: i64,
}

/// Event `n`: its key is its username, one of [`KEYS`].
fn login(n: usize) -> (SessionLoginCompleted, String) {
    let mut user = UserData::example();
    user.id = i64::try_from(n).expect("small");
    let username = format!("learner-{}", n % KEYS);
    user.pii.username = username.clone();
    let event = SessionLoginCompleted { user };
    assert_eq!(
        event.key().map(|k| k.to_string()),
        Some(username.clone()),
        "the Kafka key of a login is its username"
    );
    (event, username)
}

/// Sends [`EVENTS`] events, a batch of [`BATCH`] concurrent sends per [`PACE`] tick,
/// counting acknowledgements in `acked`.
async fn produce(producer: Producer, acked: Arc<AtomicUsize>) -> Vec<Produced> {
    let mut produced = Vec::with_capacity(EVENTS);
    let mut ticks = tokio::time::interval(PACE);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    for batch in 0..EVENTS / BATCH {
        ticks.tick().await;
        let mut sends = JoinSet::new();
        for n in batch * BATCH..(batch + 1) * BATCH {
            let producer = producer.clone();
            let acked = Arc::clone(&acked);
            sends.spawn(async move {
                let (event, key) = login(n);
                let delivery = producer
                    .send(&event)
                    .await
                    .unwrap_or_else(|error| panic!("event {n} not acknowledged: {error}"));
                acked.fetch_add(1, Ordering::SeqCst);
                Produced {
                    id: delivery.event_id,
                    key,
                    partition: delivery.partition,
                    offset: delivery.offset,
                }
            });
        }
        while let Some(sent) = sends.join_next().await {
            produced.push(sent.expect("send task"));
        }
    }
    produced
}

/// `(receiver, ce_id)` lines of the received log, in file order.
fn read_received(path: &Path) -> Vec<(String, Uuid)> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let (receiver, id) = line.split_once('\t')?;
            Some((receiver.to_owned(), Uuid::parse_str(id).ok()?))
        })
        .collect()
}

/// Waits until `acked` reaches `count`, checking that the consumers and the
/// producer are still running.
async fn wait_for_acked(
    group: &mut Group<'_>,
    production: &mut JoinHandle<Vec<Produced>>,
    acked: &AtomicUsize,
    count: usize,
) {
    let started = Instant::now();
    while acked.load(Ordering::SeqCst) < count {
        group.assert_running();
        if production.is_finished() {
            let ended = production.await.map(|produced| produced.len());
            panic!("production ended before {count} acknowledgements: {ended:?}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "only {} of {count} events acknowledged after 60 s",
            acked.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Each event's key index and place in its key's produce order: the records' order in
/// the partition (by offset), which is the order a consumer reads them in.
fn produce_order(produced: &[Produced]) -> HashMap<Uuid, (usize, usize)> {
    let mut by_key: BTreeMap<&str, Vec<&Produced>> = BTreeMap::new();
    for event in produced {
        by_key.entry(event.key.as_str()).or_default().push(event);
    }
    assert_eq!(by_key.len(), KEYS, "{KEYS} distinct keys produced");
    let mut order = HashMap::with_capacity(produced.len());
    for (key_index, (key, mut events)) in by_key.into_iter().enumerate() {
        let partitions: HashSet<i32> = events.iter().map(|e| e.partition).collect();
        assert_eq!(
            partitions.len(),
            1,
            "every event of key {key} is in one partition, not {partitions:?}"
        );
        events.sort_by_key(|e| e.offset);
        for (seq, event) in events.into_iter().enumerate() {
            order.insert(event.id, (key_index, seq));
        }
    }
    order
}

/// What one receiver saw.
#[derive(Debug, Default)]
struct Seen {
    /// Lines naming produced events.
    lines: usize,
    distinct: usize,
    missing: usize,
    /// Lines whose `ce_id` was never produced.
    foreign: usize,
    /// First handlings that came before an earlier event of the same key had been
    /// handled.
    out_of_order: usize,
    examples: Vec<String>,
}

impl Seen {
    fn duplicates(&self) -> usize {
        self.lines - self.distinct
    }
}

fn analyse(
    lines: &[(String, Uuid)],
    order: &HashMap<Uuid, (usize, usize)>,
) -> BTreeMap<&'static str, Seen> {
    let mut result = BTreeMap::new();
    for receiver in RECEIVERS {
        let mut seen = Seen::default();
        let mut first: HashSet<Uuid> = HashSet::new();
        // Per key: the highest place handled so far (by first handlings).
        let mut last: HashMap<usize, usize> = HashMap::new();
        for (line, (_, id)) in lines.iter().enumerate().filter(|(_, (r, _))| r == receiver) {
            let Some(&(key, seq)) = order.get(id) else {
                seen.foreign += 1;
                continue;
            };
            seen.lines += 1;
            if !first.insert(*id) {
                continue;
            }
            if let Some(&previous) = last.get(&key) {
                if seq < previous {
                    seen.out_of_order += 1;
                    if seen.examples.len() < 5 {
                        seen.examples.push(format!(
                            "log line {}: key learner-{key} event #{seq} first handled after #{previous}",
                            line + 1
                        ));
                    }
                }
            }
            let highest = last.entry(key).or_insert(seq);
            *highest = (*highest).max(seq);
        }
        seen.distinct = first.len();
        seen.missing = order.keys().filter(|id| !first.contains(id)).count();
        result.insert(receiver, seen);
    }
    result
}

/// Whether every receiver has handled every event of `order`.
fn all_handled(path: &Path, order: &HashMap<Uuid, (usize, usize)>) -> bool {
    let lines = read_received(path);
    RECEIVERS.iter().all(|receiver| {
        let handled: HashSet<Uuid> = lines
            .iter()
            .filter(|(r, _)| r == receiver)
            .map(|(_, id)| *id)
            .collect();
        order.keys().all(|id| handled.contains(id))
    })
}

async fn rebalance_under_load(variant: Variant) {
    let test_started = Instant::now();
    let bench = Bench::start(variant.name).await;
    let cluster_ready = test_started.elapsed();
    let producer = bench.producer().await;
    let received = bench.received_log();
    let mut group = Group::new(&bench, variant);
    let acked = Arc::new(AtomicUsize::new(0));
    let mut changes = Vec::new();
    let started = Instant::now();
    let change = |what: String, acked: &AtomicUsize| Change {
        what,
        at: started.elapsed(),
        acknowledged: acked.load(Ordering::SeqCst),
        log_lines: read_received(&received).len(),
    };

    for _ in 0..FIRST_CONSUMERS {
        let number = group.spawn();
        changes.push(change(format!("consumer {number} starts"), &acked));
    }
    let mut production = tokio::spawn(produce(producer.clone(), Arc::clone(&acked)));

    wait_for_acked(&mut group, &mut production, &acked, KILL_AT).await;
    group.sigkill(1);
    changes.push(change("consumer 1 SIGKILLed".into(), &acked));

    wait_for_acked(&mut group, &mut production, &acked, JOIN_AT).await;
    let fourth = group.spawn();
    changes.push(change(format!("consumer {fourth} starts"), &acked));

    wait_for_acked(&mut group, &mut production, &acked, TERM_AT).await;
    let term_at = change("consumer 0 SIGTERMed".into(), &acked);
    let mid_run_exit = group.sigterm(0).await;
    changes.push(term_at);
    let membership_changes = changes.len();

    let produced = production.await.expect("producer task");
    let produced_by = started.elapsed();
    assert_eq!(produced.len(), EVENTS);
    let order = produce_order(&produced);

    // Every (receiver, event), at least once.
    let deadline = Instant::now() + DELIVERY_WAIT;
    while !all_handled(&received, &order) && Instant::now() < deadline {
        group.assert_running();
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let handled_by = started.elapsed();
    // Let the group go idle (and commit) before the last two leave.
    let quiet_deadline = Instant::now() + Duration::from_secs(20);
    let mut lines = read_received(&received).len();
    let mut quiet_since = Instant::now();
    while quiet_since.elapsed() < QUIET && Instant::now() < quiet_deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = read_received(&received).len();
        if now != lines {
            lines = now;
            quiet_since = Instant::now();
        }
    }
    let final_exits = [
        (2, group.sigterm(2).await),
        (fourth, group.sigterm(fourth).await),
    ];

    let lines = read_received(&received);
    let seen = analyse(&lines, &order);
    let bound = duplicate_bound(membership_changes, variant.max_in_flight);
    let duplicates: BTreeMap<&str, usize> =
        seen.iter().map(|(r, s)| (*r, s.duplicates())).collect();
    println!(
        "group_rebalance {}: max-in-flight {}, {EVENTS} events of {KEYS} keys over {} \
         partitions at <= {:.0} events/s; cluster ready in {cluster_ready:?}; produced by \
         {produced_by:?}; all handled by {handled_by:?}; test took {:?}\n  \
         membership changes ({membership_changes}): {changes:#?}\n  \
         mid-run SIGTERM exit {mid_run_exit:?}; final SIGTERM exits {final_exits:?}\n  \
         duplicates per receiver {duplicates:?}, bound {bound} per receiver \
         ({membership_changes} x ({} + {}) + {})\n  per receiver: {seen:#?}",
        variant.name,
        variant.max_in_flight,
        PARTITIONS,
        events_per_two_seconds() as f64 / 2.0,
        test_started.elapsed(),
        variant.max_in_flight,
        events_per_two_seconds(),
        variant.max_in_flight,
    );

    let mut failures = Vec::new();
    for (receiver, s) in &seen {
        if s.missing > 0 {
            failures.push(format!(
                "{receiver}: {} of {EVENTS} events never handled within {DELIVERY_WAIT:?} \
                 after production ended",
                s.missing
            ));
        }
        if s.foreign > 0 {
            failures.push(format!(
                "{receiver}: {} lines name events never produced",
                s.foreign
            ));
        }
        if s.out_of_order > 0 {
            failures.push(format!(
                "{receiver}: {} first handlings out of their key's produce order, e.g. {:?}",
                s.out_of_order, s.examples
            ));
        }
        if s.duplicates() > bound {
            failures.push(format!(
                "{receiver}: {} duplicates, more than the bound {bound}",
                s.duplicates()
            ));
        }
    }
    if mid_run_exit != Some(0) {
        failures.push(format!(
            "consumer 0 exited with {mid_run_exit:?} after SIGTERM mid-run, not 0"
        ));
    }
    for (number, exit) in final_exits {
        if exit != Some(0) {
            failures.push(format!(
                "consumer {number} exited with {exit:?} after SIGTERM at the end, not 0"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "group_rebalance {} failed:\n- {}\nconsumers' output:\n{}",
        variant.name,
        failures.join("\n- "),
        group.output_tails()
    );
    drop(group);
    let _ = std::fs::remove_dir_all(&bench.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebalance_under_load_one_in_flight() {
    rebalance_under_load(Variant {
        name: "classic-1",
        max_in_flight: 1,
        extra: CLASSIC_EXTRA,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebalance_under_load_sixteen_in_flight() {
    rebalance_under_load(Variant {
        name: "classic-16",
        max_in_flight: 16,
        extra: CLASSIC_EXTRA,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebalance_under_load_consumer_protocol() {
    rebalance_under_load(Variant {
        name: "consumer-16",
        max_in_flight: 16,
        extra: CONSUMER_PROTOCOL_EXTRA,
    })
    .await;
}

/// The checks themselves can fail: a first handling out of its key's order, a
/// duplicate, a missing event and a line of an unknown event are each seen.
#[test]
fn analysis_sees_reordering_duplicates_missing_and_unknown_events() {
    let ids: Vec<Uuid> = (0..4).map(|_| Uuid::new_v4()).collect();
    // Key 0: ids[0] then ids[1]; key 1: ids[2] then ids[3].
    let order = HashMap::from([
        (ids[0], (0, 0)),
        (ids[1], (0, 1)),
        (ids[2], (1, 0)),
        (ids[3], (1, 1)),
    ]);
    let unknown = Uuid::new_v4();
    let lines: Vec<(String, Uuid)> = [
        ("audit", ids[1]),
        ("audit", ids[0]),
        ("audit", ids[1]),
        ("audit", ids[2]),
        ("audit", unknown),
        ("counter", ids[0]),
        ("counter", ids[2]),
        ("counter", ids[1]),
        ("counter", ids[3]),
        ("counter", ids[2]),
    ]
    .into_iter()
    .map(|(r, id)| (r.to_owned(), id))
    .collect();
    let seen = analyse(&lines, &order);
    let audit = &seen[AuditReceiver::NAME];
    assert_eq!(audit.out_of_order, 1, "{audit:?}");
    assert_eq!(audit.duplicates(), 1, "{audit:?}");
    assert_eq!(audit.missing, 1, "{audit:?}");
    assert_eq!(audit.foreign, 1, "{audit:?}");
    let counter = &seen[CountingReceiver::NAME];
    assert_eq!(counter.out_of_order, 0, "{counter:?}");
    assert_eq!(counter.duplicates(), 1, "{counter:?}");
    assert_eq!(counter.missing, 0, "{counter:?}");
    assert_eq!(duplicate_bound(6, 16), 6 * (16 + 1_334) + 16);
}
