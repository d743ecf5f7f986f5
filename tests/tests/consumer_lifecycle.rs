//! The consumer loop between states: a receiver slower than `max.poll.interval.ms`
//! (Apache Kafka), a commit the broker refuses and a broker outage while receivers
//! run (librdkafka's mock cluster, for the injected faults).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use event_bus_examples::openedx::SessionLoginCompleted;
use event_bus_kafka::consumer::{
    ConsumerConfig, EventConsumer, PollPolicy, RetryPolicy, Shutdown, StatsSnapshot,
};
use event_bus_kafka::observability::{ConsumerHealth, HealthStatus};
use event_bus_kafka::prelude::*;
use event_bus_testkit::mock_cluster::MockKafkaCluster;
use event_bus_testkit::registry::EmbeddedRegistry;
use event_bus_testkit::topics::{unique_group, unique_topic};
use event_bus_tests::stack::{login, Stack, WAIT};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::{RDKafkaApiKey, RDKafkaErrorCode};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::Notify;

/// Calls per user id, as receivers saw them.
#[derive(Default, Clone)]
struct Calls(Arc<Mutex<BTreeMap<i64, usize>>>);

impl Calls {
    fn add(&self, id: i64) {
        if let Ok(mut calls) = self.0.lock() {
            *calls.entry(id).or_default() += 1;
        }
    }

    fn of(&self, id: i64) -> usize {
        self.0
            .lock()
            .map(|c| c.get(&id).copied().unwrap_or_default())
            .unwrap_or_default()
    }

    fn all(&self) -> BTreeMap<i64, usize> {
        self.0.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

/// A login of user `id` with its own key (the key is the username).
fn login_with_own_key(id: i64) -> SessionLoginCompleted {
    let mut event = login(id);
    event.user.pii.username = format!("learner-{id}");
    event
}

/// A bus whose receiver sleeps `slow_for` on user `slow_id` and returns at once on
/// the others.
fn bus_with_a_slow_record(calls: &Calls, slow_id: i64, slow_for: Duration) -> EventBus {
    let mut bus = EventBus::new();
    let calls = calls.clone();
    bus.connect_async(
        "sometimes-slow",
        move |event: Arc<SessionLoginCompleted>, _| {
            let calls = calls.clone();
            async move {
                calls.add(event.user.id);
                if event.user.id == slow_id {
                    tokio::time::sleep(slow_for).await;
                }
                Ok(())
            }
        },
    )
    .expect("connect");
    bus
}

async fn wait_for(what: &str, check: impl Fn() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < WAIT, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A receiver that outlasts `max.poll.interval.ms` neither drops the member from the
/// group nor turns `/healthz` red: the loop keeps polling (its partition paused), the
/// record is given up at its deadline and dead-lettered, and `/healthz` names it
/// while it runs. Before, the loop stopped reading while it ran the record, so
/// librdkafka left the group and the record was handled again after the rejoin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_slower_than_max_poll_interval_keeps_the_member_and_ends_per_policy() {
    let stack = Stack::start("slow", "slow")
        .await
        .with_kafka_option("max.poll.interval.ms", "8000")
        .with_kafka_option("session.timeout.ms", "6000")
        .with_kafka_option("heartbeat.interval.ms", "1000")
        .with_retry(RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        });
    let producer = stack.producer();
    for id in 1..=3 {
        producer.send(&login(id)).await.expect("sent");
    }
    let calls = Calls::default();
    // Far longer than max.poll.interval.ms (8 s); the deadline is 4/5 of it.
    let bus = bus_with_a_slow_record(&calls, 1, Duration::from_secs(120));
    let config = stack.consumer_config();
    assert_eq!(config.record_deadline(), Duration::from_millis(6400));
    let consumer = EventConsumer::new(config, Arc::new(bus)).expect("consumer");
    let stats = consumer.stats();
    let health =
        ConsumerHealth::new("slow", Arc::clone(&stats)).with_max_poll_gap(Duration::from_secs(4));
    let (trigger, shutdown) = Shutdown::new();
    let task = tokio::spawn(consumer.run(shutdown));

    // While the slow record runs, every health check passes and names it once it has
    // run a while.
    let mut seen_running = None;
    let started = Instant::now();
    while stats.snapshot().records_dead_lettered == 0 {
        assert!(started.elapsed() < WAIT, "the slow record never ended");
        let report = health.check();
        if calls.of(1) == 1 {
            assert_eq!(
                report.status,
                HealthStatus::Healthy,
                "healthy while the slow record runs: {report:?}"
            );
        }
        if let Some(record) = report.oldest_in_progress {
            if record.running_ms >= 2_000 {
                assert_eq!(
                    (record.topic.as_str(), record.offset),
                    (stack.topic.as_str(), 0)
                );
                seen_running = Some(record.running_ms);
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    wait_for("every record", || stats.snapshot().records_handled == 3).await;
    // Past max.poll.interval.ms and a session timeout more: a member dropped from the
    // group would have rejoined by now and read the uncommitted records again.
    tokio::time::sleep(Duration::from_secs(8)).await;
    wait_for("the commit of all three", || stack.committed() == Some(3)).await;
    trigger.trigger();
    let summary: StatsSnapshot = task.await.expect("task").expect("clean stop");

    assert!(
        seen_running.is_some(),
        "/healthz showed the long-running record"
    );
    assert_eq!(summary.records_dead_lettered, 1, "{summary:?}");
    assert_eq!(summary.records_handled, 3, "{summary:?}");
    assert_eq!(
        calls.all(),
        BTreeMap::from([(1, 1), (2, 1), (3, 1)]),
        "each record was handed over once: the member never left the group"
    );
    assert_eq!(summary.assignments, 1, "one assignment: {summary:?}");
    println!("slow receiver: /healthz saw the record running for {seen_running:?} ms; {summary:?}");
}

/// With room for several records, a slow one holds only its own key: records of
/// other keys keep flowing past it, and it ends at its deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_keys_keep_flowing_past_a_slow_record() {
    let stack = Stack::start("slowkeys", "slowkeys")
        .await
        .with_retry(RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        });
    let producer = stack.producer();
    for id in 1..=20 {
        producer.send(&login_with_own_key(id)).await.expect("sent");
    }
    let calls = Calls::default();
    let bus = bus_with_a_slow_record(&calls, 1, Duration::from_secs(120));
    let mut config = stack.consumer_config();
    config.max_in_flight = 4;
    config.record_timeout = Some(Duration::from_secs(30));
    let consumer = EventConsumer::new(config, Arc::new(bus)).expect("consumer");
    let stats = consumer.stats();
    let (trigger, shutdown) = Shutdown::new();
    let task = tokio::spawn(consumer.run(shutdown));
    wait_for("the 19 fast records", || {
        stats.snapshot().records_handled == 19
    })
    .await;
    assert_eq!(
        stats.snapshot().records_dead_lettered,
        0,
        "the fast records all passed while the slow one still ran"
    );
    // The slow record (offset 0) holds the commit back.
    wait_for("a commit", || stats.snapshot().commits > 0).await;
    assert_eq!(
        stack.committed().unwrap_or(0),
        0,
        "nothing past the running record"
    );
    // Shutdown gives the slow record the grace period, then leaves it uncommitted.
    trigger.trigger();
    let summary = task.await.expect("task").expect("clean stop");
    assert_eq!(summary.records_handled, 19, "{summary:?}");
    assert_eq!(summary.records_dead_lettered, 0, "{summary:?}");
    assert_eq!(
        stack.committed().unwrap_or(0),
        0,
        "the abandoned record is read again"
    );
}

/// librdkafka's mock cluster with one topic of one partition, and a registry.
struct MockStack {
    cluster: MockKafkaCluster,
    registry: EmbeddedRegistry,
    prefix: String,
    group: String,
}

impl MockStack {
    async fn start() -> Self {
        let cluster = MockKafkaCluster::start(1).expect("mock cluster");
        let registry = EmbeddedRegistry::start().await.expect("registry");
        let prefix = unique_topic("life");
        cluster
            .create_topic(&Self::topic_of(&prefix), 1)
            .expect("topic");
        Self {
            cluster,
            registry,
            prefix,
            group: unique_group("life"),
        }
    }

    fn topic_of(prefix: &str) -> String {
        format!("{prefix}-{}", SessionLoginCompleted::TOPIC)
    }

    fn kafka(&self) -> KafkaConfig {
        KafkaConfig::new(self.cluster.bootstrap_servers())
            .with_option("reconnect.backoff.max.ms", "500")
            .with_option("session.timeout.ms", "6000")
    }

    fn consumer_config(&self) -> ConsumerConfig {
        let mut config = ConsumerConfig::new(
            self.kafka(),
            RegistryConfig::new(self.registry.url()),
            self.group.clone(),
            [SessionLoginCompleted::TOPIC],
        )
        .with_topic_prefix(self.prefix.clone());
        config.commit_interval = Duration::from_millis(200);
        config
    }

    fn producer(&self) -> Producer {
        Producer::new(
            ProducerConfig::new(self.kafka(), RegistryConfig::new(self.registry.url()))
                .with_topic_prefix(self.prefix.clone()),
        )
        .expect("producer")
    }

    /// The group's committed offset of partition 0, as the cluster has it.
    fn committed(&self) -> Option<i64> {
        let consumer: BaseConsumer = self
            .cluster
            .consumer_config(&self.group)
            .create()
            .expect("consumer");
        let topic = Self::topic_of(&self.prefix);
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(&topic, 0);
        let committed = consumer
            .committed_offsets(tpl, Duration::from_secs(10))
            .ok()?;
        match committed.find_partition(&topic, 0).map(|e| e.offset()) {
            Some(Offset::Offset(o)) => Some(o),
            _ => None,
        }
    }
}

/// An async commit the broker refuses is sent again, and counts only once the broker
/// confirms it. Before, a commit counted as done when it was queued, so a refused one
/// was never sent again and the group stayed behind until new records came.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_commit_is_sent_again_until_the_broker_confirms_it() {
    let stack = MockStack::start().await;
    let producer = stack.producer();
    for id in 1..=5 {
        producer.send(&login(id)).await.expect("sent");
    }
    // The next three commits are refused, whatever they carry.
    stack
        .cluster
        .request_errors(
            RDKafkaApiKey::OffsetCommit,
            &[RDKafkaErrorCode::InvalidCommitOffsetSize; 3],
        )
        .expect("errors injected");
    let mut bus = EventBus::new();
    bus.connect_fn("noop", |_: &SessionLoginCompleted, _| Ok(()))
        .expect("connect");
    let consumer = EventConsumer::new(stack.consumer_config(), Arc::new(bus)).expect("consumer");
    let stats = consumer.stats();
    let (trigger, shutdown) = Shutdown::new();
    let task = tokio::spawn(consumer.run(shutdown));
    wait_for("all five records", || stats.snapshot().records_handled == 5).await;
    // No new record comes: only a resend can bring the group to 5.
    let started = Instant::now();
    let committed = loop {
        let committed = stack.committed();
        if committed == Some(5) || started.elapsed() > Duration::from_secs(30) {
            break committed;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let confirmed = stats.snapshot().commits;
    trigger.trigger();
    task.await.expect("task").expect("clean stop");
    assert_eq!(committed, Some(5), "the refused commit was sent again");
    assert!(confirmed >= 1, "a confirmed commit counted: {confirmed}");
}

/// While every broker is down the loop backs off, but receivers in flight finish and
/// are counted, and shutdown is heard. Before, the backoff was a wait inside the loop
/// that held everything else until the brokers came back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receivers_finish_while_the_loop_backs_off_from_an_outage() {
    let stack = MockStack::start().await;
    stack
        .producer()
        .send(&login_with_own_key(1))
        .await
        .expect("sent");
    let release = Arc::new(Notify::new());
    let started = Arc::new(Notify::new());
    let mut bus = EventBus::new();
    let (release2, started2) = (Arc::clone(&release), Arc::clone(&started));
    bus.connect_async("held", move |_: Arc<SessionLoginCompleted>, _| {
        let (release, started) = (Arc::clone(&release2), Arc::clone(&started2));
        async move {
            started.notify_one();
            release.notified().await;
            Ok(())
        }
    })
    .expect("connect");
    let mut config = stack.consumer_config();
    config.max_in_flight = 4;
    config.poll = PollPolicy {
        initial_backoff: Duration::from_millis(200),
        max_backoff: Duration::from_secs(2),
        max_consecutive_errors: 0,
        probe_timeout: Duration::from_millis(500),
    };
    let consumer = EventConsumer::new(config, Arc::new(bus)).expect("consumer");
    let stats = consumer.stats();
    let (trigger, shutdown) = Shutdown::new();
    let task = tokio::spawn(consumer.run(shutdown));
    tokio::time::timeout(WAIT, started.notified())
        .await
        .expect("the receiver started");

    stack.cluster.broker_down(1).expect("down");
    wait_for("the outage", || stats.snapshot().poll_errors >= 2).await;
    release.notify_one();
    wait_for("the held record to finish during the outage", || {
        stats.snapshot().records_handled == 1
    })
    .await;
    assert!(
        stats.snapshot().poll_errors >= 2,
        "still backing off when the record finished"
    );
    // Shutdown is heard during the outage too.
    trigger.trigger();
    let summary = tokio::time::timeout(WAIT, task)
        .await
        .expect("the loop stops during the outage")
        .expect("task")
        .expect("clean stop");
    assert_eq!(summary.records_handled, 1);
    stack.cluster.broker_up(1).expect("up");
}

/// A receiver that records the user ids it was given, and holds user 1 until the
/// gate opens.
fn recording_bus(seen: &Calls, gate: Option<tokio::sync::watch::Receiver<bool>>) -> EventBus {
    let mut bus = EventBus::new();
    let seen = seen.clone();
    bus.connect_async("recording", move |event: Arc<SessionLoginCompleted>, _| {
        let (seen, gate) = (seen.clone(), gate.clone());
        async move {
            seen.add(event.user.id);
            if let (1, Some(mut gate)) = (event.user.id, gate) {
                let _ = gate.wait_for(|open| *open).await;
            }
            Ok(())
        }
    })
    .expect("connect");
    bus
}

/// A member whose partition is revoked while one record runs and five wait behind it
/// (one key, `max_in_flight` 16): the waiting records are never started, and the
/// running one, finishing after the revoke, commits nothing, so the new owner's
/// committed position never moves back. Before, the revoked member started the
/// waiting records and committed them for a partition it no longer owned.
///
/// The eager `range` assignor revokes every partition on a rebalance, and with
/// static member ids it gives the partition to the member whose id sorts first, so
/// the test decides who owns it after the rebalance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_partition_starts_no_waiting_record_and_commits_nothing_more() {
    let stack = Stack::start("revoke", "revoke")
        .await
        .with_kafka_option("partition.assignment.strategy", "range")
        .with_kafka_option("session.timeout.ms", "6000")
        .with_kafka_option("heartbeat.interval.ms", "1000");
    let producer = stack.producer();
    for id in 1..=6 {
        producer.send(&login(id)).await.expect("sent"); // one key: one lane
    }
    let member = |instance: &str, bus: EventBus| {
        let mut config = stack.consumer_config();
        config.max_in_flight = 16;
        config.revoke_grace = Duration::from_secs(30);
        config.kafka = config
            .kafka
            .with_option("group.instance.id", format!("{}-{instance}", stack.group));
        EventConsumer::new(config, Arc::new(bus)).expect("consumer")
    };

    let (open_gate, gate) = tokio::sync::watch::channel(false);
    let first_seen = Calls::default();
    let first = member("z-first", recording_bus(&first_seen, Some(gate)));
    let first_stats = first.stats();
    let (stop_first, first_shutdown) = Shutdown::new();
    let first_task = tokio::spawn(first.run(first_shutdown));
    wait_for("the first member to hold record 1", || {
        first_seen.of(1) == 1
    })
    .await;
    // Let the five records behind it reach their lane.
    tokio::time::sleep(Duration::from_secs(1)).await;

    let second_seen = Calls::default();
    let second = member("a-second", recording_bus(&second_seen, None));
    let second_stats = second.stats();
    let (stop_second, second_shutdown) = Shutdown::new();
    let second_task = tokio::spawn(second.run(second_shutdown));
    wait_for("the second member to handle all six", || {
        second_stats.snapshot().records_handled == 6
    })
    .await;
    wait_for("the second member's commit", || {
        stack.committed() == Some(6)
    })
    .await;
    assert!(
        first_stats.snapshot().revocations >= 1,
        "the first member was revoked"
    );

    // The held record finishes now, under its old assignment.
    open_gate.send_replace(true);
    let watched_from = Instant::now();
    let mut lowest = i64::MAX;
    while watched_from.elapsed() < Duration::from_secs(3) {
        lowest = lowest.min(stack.committed().unwrap_or(-1));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop_first.trigger();
    stop_second.trigger();
    let first_summary = first_task.await.expect("task").expect("clean stop");
    second_task.await.expect("task").expect("clean stop");

    assert_eq!(
        first_seen.all(),
        BTreeMap::from([(1, 1)]),
        "the revoked member started none of the records waiting behind the held one"
    );
    assert_eq!(
        lowest, 6,
        "the committed position never moved back after the revoked member's record finished"
    );
    assert_eq!(stack.committed(), Some(6));
    assert_eq!(
        first_summary.records_handled, 1,
        "the held record finished (and committed nothing): {first_summary:?}"
    );
}

/// A loop working through a backlog with receivers that take a while polls all the
/// time, so `/healthz` stays healthy with a tight bound. Before, a backlog moved the
/// heartbeat only every 1 024 records (30 s here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_stays_green_through_a_backlog_of_slow_records() {
    let stack = Stack::start("backlog", "backlog").await;
    let producer = stack.producer();
    let sends: Vec<_> = (1..=200)
        .map(|id| {
            let producer = producer.clone();
            tokio::spawn(async move { producer.send(&login(id)).await })
        })
        .collect();
    for send in sends {
        send.await.expect("task").expect("sent");
    }
    let mut bus = EventBus::new();
    bus.connect_async("thirty-ms", |_: Arc<SessionLoginCompleted>, _| async {
        tokio::time::sleep(Duration::from_millis(30)).await;
        Ok(())
    })
    .expect("connect");
    let consumer = EventConsumer::new(stack.consumer_config(), Arc::new(bus)).expect("consumer");
    let stats = consumer.stats();
    let health = ConsumerHealth::new("backlog", Arc::clone(&stats))
        .with_max_poll_gap(Duration::from_secs(2));
    let (trigger, shutdown) = Shutdown::new();
    let task = tokio::spawn(consumer.run(shutdown));
    let started = Instant::now();
    let mut checks = 0;
    while stats.snapshot().records_handled < 200 {
        assert!(started.elapsed() < WAIT, "the backlog was not worked off");
        let report = health.check();
        if report.running {
            checks += 1;
            assert_eq!(report.status, HealthStatus::Healthy, "{report:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    trigger.trigger();
    task.await.expect("task").expect("clean stop");
    assert!(checks > 20, "the backlog took a while: {checks} checks");
}

/// A partition the loop paused (it was full for a while), then lost in a rebalance,
/// is fetched again when the group gives it back. librdkafka keeps an application's
/// pause across an unassignment; before, the loop resumed only the partitions it
/// still owned, so the one it got back was never read again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_paused_then_lost_is_read_again_when_it_comes_back() {
    let stack = Stack::start("repause", "repause")
        .await
        .with_kafka_option("partition.assignment.strategy", "range")
        .with_kafka_option("session.timeout.ms", "6000")
        .with_kafka_option("heartbeat.interval.ms", "1000");
    let producer = stack.producer();
    producer.send(&login(1)).await.expect("sent");
    let member = |instance: &str, bus: EventBus| {
        let mut config = stack.consumer_config();
        config.kafka = config
            .kafka
            .with_option("group.instance.id", format!("{}-{instance}", stack.group));
        EventConsumer::new(config, Arc::new(bus)).expect("consumer")
    };

    // The first member holds record 1 long enough to pause its partition.
    let (open_gate, gate) = tokio::sync::watch::channel(false);
    let first_seen = Calls::default();
    let first = member("z-first", recording_bus(&first_seen, Some(gate)));
    let (stop_first, first_shutdown) = Shutdown::new();
    let first_task = tokio::spawn(first.run(first_shutdown));
    wait_for("the first member to hold record 1", || {
        first_seen.of(1) == 1
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    // A second member takes the partition (its id sorts first), then leaves; its
    // static membership ends with its session, and the partition comes back.
    let second_seen = Calls::default();
    let second = member("a-second", recording_bus(&second_seen, None));
    let second_stats = second.stats();
    let (stop_second, second_shutdown) = Shutdown::new();
    let second_task = tokio::spawn(second.run(second_shutdown));
    wait_for("the second member to take record 1", || {
        second_stats.snapshot().records_handled == 1
    })
    .await;
    wait_for("the second member's commit", || {
        stack.committed() == Some(1)
    })
    .await;
    open_gate.send_replace(true);
    stop_second.trigger();
    second_task.await.expect("task").expect("clean stop");

    producer.send(&login(2)).await.expect("sent");
    wait_for("the first member to read record 2", || {
        first_seen.of(2) == 1
    })
    .await;
    stop_first.trigger();
    first_task.await.expect("task").expect("clean stop");
    assert_eq!(
        first_seen.of(1),
        1,
        "record 1 was not read again by the first member"
    );
}

/// A dead-letter topic that refuses a record for good stops the loop at once, even
/// with another record in flight: the running one gets the grace period and stays
/// uncommitted, like at shutdown. Before, the loop only stopped taking records and
/// waited for the others to end by themselves (here two minutes, past the timeout).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_dead_letter_stops_the_records_in_flight_too() {
    let stack = Stack::start("refusalstop", "refusalstop")
        .await
        .with_kafka_option("allow.auto.create.topics", "false")
        .with_kafka_option("topic.metadata.propagation.max.ms", "1000")
        .with_retry(RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        });
    let producer = stack.producer();
    for id in 1..=2 {
        producer.send(&login_with_own_key(id)).await.expect("sent");
    }
    let calls = Calls::default();
    let mut bus = bus_with_a_slow_record(&calls, 1, Duration::from_secs(120));
    bus.connect_fn("refuses-2", |event: &SessionLoginCompleted, _| {
        if event.user.id == 2 {
            Err(ReceiverError::permanent("user 2 is refused"))
        } else {
            Ok(())
        }
    })
    .expect("connect");
    let mut config = stack.consumer_config();
    config.max_in_flight = 4;
    config.record_timeout = Some(Duration::from_secs(110));
    config.dlq_topic =
        event_bus_kafka::consumer::DlqTopic::Fixed(format!("{}.missing-dlq", stack.topic));
    let consumer = EventConsumer::new(config, Arc::new(bus)).expect("consumer");
    let (_trigger, shutdown) = Shutdown::new();
    let result = tokio::time::timeout(WAIT, consumer.run(shutdown))
        .await
        .expect("the loop stops without waiting for the slow record");
    assert!(
        matches!(
            result,
            Err(event_bus_kafka::consumer::ConsumerError::DeadLetterRefused { offset: 1, .. })
        ),
        "{result:?}"
    );
    assert_eq!(calls.of(1), 1, "the slow record ran");
    assert_eq!(
        stack.committed().unwrap_or(0),
        0,
        "neither the slow record nor the refused one is committed"
    );
}
