//! The broker stack shared by the consumer, replay, DLQ and observability tests: the
//! shared Apache Kafka cluster, an embedded registry, a unique topic prefix, the
//! `SessionLoginCompleted` topic (and its `.dlq` topic) and a unique consumer group.

use std::time::Duration;

use clap::Parser;
use event_bus_examples::openedx::{SessionLoginCompleted, UserData};
use event_bus_kafka::cli::{run_with, Cli, CliContext, CliError};
use event_bus_kafka::consumer::{ConsumerConfig, RetryPolicy};
use event_bus_kafka::prelude::*;
use event_bus_kafka::replay::OffsetAdmin;
use event_bus_testkit::kafka::KafkaCluster;
use event_bus_testkit::registry::EmbeddedRegistry;
use event_bus_testkit::topics::{unique_group, unique_topic};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

/// How long the stack tests wait for a consumer or a topic.
pub const WAIT: Duration = Duration::from_secs(60);

/// A broker, a registry and a fresh topic (with its dead-letter topic) and group.
pub struct Stack {
    /// The shared Apache Kafka cluster.
    pub broker: &'static KafkaCluster,
    /// This test's registry.
    pub registry: EmbeddedRegistry,
    /// The topic prefix of producers and consumers.
    pub prefix: String,
    /// The full name of the `SessionLoginCompleted` topic (one partition).
    pub topic: String,
    /// `{topic}.dlq` (one partition).
    pub dlq_topic: String,
    /// The consumer group.
    pub group: String,
    service_name: Option<String>,
    kafka_options: Vec<(String, String)>,
    retry: RetryPolicy,
}

impl Stack {
    /// Creates the topics under a prefix made from `prefix_name`, with a group made from
    /// `group_name`.
    pub async fn start(prefix_name: &str, group_name: &str) -> Self {
        let broker = KafkaCluster::shared().expect("Apache Kafka (run scripts/install-test-deps)");
        let registry = EmbeddedRegistry::start().await.expect("registry");
        let prefix = unique_topic(prefix_name);
        let topic = format!("{prefix}-{}", SessionLoginCompleted::TOPIC);
        let dlq_topic = format!("{topic}.dlq");
        broker.create_topic(&topic, 1).await.expect("topic");
        broker.create_topic(&dlq_topic, 1).await.expect("dlq topic");
        Self {
            broker,
            registry,
            prefix,
            topic,
            dlq_topic,
            group: unique_group(group_name),
            service_name: None,
            kafka_options: Vec::new(),
            retry: RetryPolicy {
                max_attempts: 3,
                initial_delay: Duration::from_millis(10),
                max_delay: Duration::from_millis(50),
                max_elapsed: Duration::from_secs(30),
            },
        }
    }

    /// Producers get this service name (none by default).
    pub fn with_service_name(mut self, name: &str) -> Self {
        self.service_name = Some(name.to_owned());
        self
    }

    /// Adds a librdkafka option to [`Stack::kafka`] (after the default ones).
    pub fn with_kafka_option(mut self, key: &str, value: &str) -> Self {
        self.kafka_options.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Consumers retry with `retry` (by default 3 attempts, 10–50 ms apart, 30 s at most).
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The broker connection: `session.timeout.ms` 6000, `linger.ms` 0 and the added
    /// options.
    pub fn kafka(&self) -> KafkaConfig {
        let mut kafka = KafkaConfig::new(self.broker.bootstrap_servers())
            .with_option("session.timeout.ms", "6000")
            .with_option("linger.ms", "0");
        for (key, value) in &self.kafka_options {
            kafka = kafka.with_option(key, value);
        }
        kafka
    }

    /// A producer with the topic prefix (and service name, when set).
    pub fn producer(&self) -> Producer {
        let mut config =
            ProducerConfig::new(self.kafka(), RegistryConfig::new(self.registry.url()))
                .with_topic_prefix(self.prefix.clone());
        if let Some(name) = &self.service_name {
            config = config.with_service_name(name.clone());
        }
        Producer::new(config).expect("producer")
    }

    /// A consumer config for the `SessionLoginCompleted` topic in the group, with the
    /// retry policy and a 100 ms commit interval.
    pub fn consumer_config(&self) -> ConsumerConfig {
        let mut config = ConsumerConfig::new(
            self.kafka(),
            RegistryConfig::new(self.registry.url()),
            self.group.clone(),
            [SessionLoginCompleted::TOPIC],
        )
        .with_topic_prefix(self.prefix.clone())
        .with_retry(self.retry.clone());
        config.commit_interval = Duration::from_millis(100);
        config
    }

    /// The group's committed offset of partition 0 of the topic, read with a consumer.
    pub fn committed(&self) -> Option<i64> {
        let consumer: BaseConsumer = self
            .broker
            .consumer_config(&self.group)
            .create()
            .expect("consumer");
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(&self.topic, 0);
        let committed = consumer
            .committed_offsets(tpl, Duration::from_secs(10))
            .expect("committed offsets");
        match committed.find_partition(&self.topic, 0).map(|e| e.offset()) {
            Some(Offset::Offset(o)) => Some(o),
            _ => None,
        }
    }

    /// The group's committed offsets of the topic, per partition, read with
    /// [`OffsetAdmin`].
    pub async fn committed_offsets(&self) -> Vec<Option<i64>> {
        self.committed_offsets_of(&self.topic).await
    }

    /// The group's committed offsets of `topic`, per partition, read with
    /// [`OffsetAdmin`].
    pub async fn committed_offsets_of(&self, topic: &str) -> Vec<Option<i64>> {
        let admin = OffsetAdmin::new(&self.kafka(), &self.group).expect("admin");
        admin
            .offsets(&[topic.to_owned()])
            .await
            .expect("offsets")
            .into_iter()
            .map(|p| p.committed)
            .collect()
    }

    /// Runs the `event-bus` CLI in-process with `args` against the broker; returns its
    /// result and output.
    pub async fn cli(&self, args: &[&str]) -> (Result<(), CliError>, String) {
        let mut argv = vec!["event-bus"];
        argv.extend_from_slice(args);
        argv.extend_from_slice(&["--bootstrap-servers", self.broker.bootstrap_servers()]);
        let cli = Cli::try_parse_from(argv).expect("valid flags");
        let mut out = Vec::new();
        let result = run_with(cli, &CliContext::default(), &mut out).await;
        (result, String::from_utf8(out).expect("UTF-8 output"))
    }
}

/// A `SessionLoginCompleted` for the example user with id `n`.
pub fn login(n: i64) -> SessionLoginCompleted {
    let mut user = UserData::example();
    user.id = n;
    SessionLoginCompleted { user }
}
