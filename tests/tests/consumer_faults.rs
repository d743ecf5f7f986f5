//! The consumer loop under broker failures, injected with librdkafka's mock cluster.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use event_bus_examples::openedx::{SessionLoginCompleted, UserData};
use event_bus_kafka::consumer::{
    ConsumerConfig, ConsumerError, EventConsumer, PollPolicy, Shutdown,
};
use event_bus_kafka::prelude::*;
use event_bus_testkit::mock_cluster::MockKafkaCluster;
use event_bus_testkit::registry::EmbeddedRegistry;
use event_bus_testkit::topics::{unique_group, unique_topic};

const WAIT: Duration = Duration::from_secs(60);

struct Stack {
    cluster: MockKafkaCluster,
    registry: EmbeddedRegistry,
    prefix: String,
}

impl Stack {
    async fn start() -> Self {
        let cluster = MockKafkaCluster::start(1).expect("mock cluster");
        let registry = EmbeddedRegistry::start().await.expect("registry");
        let prefix = unique_topic("f");
        cluster
            .create_topic(&format!("{prefix}-{}", SessionLoginCompleted::TOPIC), 1)
            .expect("topic");
        Self {
            cluster,
            registry,
            prefix,
        }
    }

    fn kafka(&self) -> KafkaConfig {
        KafkaConfig::new(self.cluster.bootstrap_servers())
            .with_option("reconnect.backoff.max.ms", "500")
            .with_option("session.timeout.ms", "6000")
    }

    fn consumer(&self, bus: EventBus, max_errors: u32) -> EventConsumer {
        let mut config = ConsumerConfig::new(
            self.kafka(),
            RegistryConfig::new(self.registry.url()),
            unique_group("g"),
            [SessionLoginCompleted::TOPIC],
        )
        .with_topic_prefix(self.prefix.clone());
        config.poll = PollPolicy {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            max_consecutive_errors: max_errors,
            probe_timeout: Duration::from_millis(500),
        };
        EventConsumer::new(config, Arc::new(bus)).expect("consumer")
    }

    fn producer(&self) -> Producer {
        Producer::new(
            ProducerConfig::new(self.kafka(), RegistryConfig::new(self.registry.url()))
                .with_topic_prefix(self.prefix.clone()),
        )
        .expect("producer")
    }
}

fn login() -> SessionLoginCompleted {
    SessionLoginCompleted {
        user: UserData::example(),
    }
}

async fn wait_for(what: &str, check: impl Fn() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < WAIT, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn poll_failures_back_off_with_growing_delays_and_the_loop_recovers() {
    let stack = Stack::start().await;
    let seen = Arc::new(AtomicUsize::new(0));
    let mut bus = EventBus::new();
    let seen2 = Arc::clone(&seen);
    bus.connect_fn("seen", move |_: &SessionLoginCompleted, _| {
        seen2.fetch_add(1, Ordering::SeqCst);
        Ok(())
    })
    .expect("connect");
    let producer = stack.producer();
    producer.send(&login()).await.expect("first event");

    let consumer = stack.consumer(bus, 0);
    let stats = consumer.stats();
    let (trigger, shutdown) = Shutdown::new();
    let task = tokio::spawn(consumer.run(shutdown));
    wait_for("the first event", || seen.load(Ordering::SeqCst) == 1).await;

    stack.cluster.broker_down(1).expect("down");
    wait_for("three backoffs", || {
        stats.snapshot().poll_backoffs.len() >= 3
    })
    .await;
    let delays = stats.snapshot().poll_backoffs;
    assert!(
        delays.windows(2).take(3).all(|w| w[1] > w[0]),
        "delays must grow while the broker is down: {delays:?}"
    );

    stack.cluster.broker_up(1).expect("up");
    producer.send(&login()).await.expect("event after recovery");
    wait_for("the event after recovery", || {
        seen.load(Ordering::SeqCst) == 2
    })
    .await;
    trigger.trigger();
    let summary = task.await.expect("task").expect("clean stop");
    assert_eq!(summary.records_handled, 2);
}

#[tokio::test]
async fn too_many_poll_failures_end_the_loop_with_an_error() {
    let stack = Stack::start().await;
    let mut bus = EventBus::new();
    bus.connect_fn("noop", |_: &SessionLoginCompleted, _| Ok(()))
        .expect("connect");
    stack.producer().send(&login()).await.expect("event");
    let consumer = stack.consumer(bus, 3);
    let stats = consumer.stats();
    let (_trigger, shutdown) = Shutdown::new();
    let task = tokio::spawn(consumer.run(shutdown));
    wait_for("the event", || stats.snapshot().records_handled == 1).await;
    stack.cluster.broker_down(1).expect("down");
    let result = tokio::time::timeout(WAIT, task)
        .await
        .expect("loop ends")
        .expect("task");
    match result {
        Err(ConsumerError::TooManyPollFailures { count, .. }) => assert_eq!(count, 3),
        other => panic!("expected TooManyPollFailures, got {other:?}"),
    }
}
