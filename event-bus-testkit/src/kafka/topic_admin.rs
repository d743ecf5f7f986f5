//! Topics on a test cluster, and client configurations pointing at it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};
use rdkafka::config::ClientConfig;

use super::cluster::KafkaCluster;
use super::error::ClusterError;

/// A topic to create with [`KafkaCluster::create_topic_with`].
///
/// # Example
///
/// ```
/// use event_bus_testkit::kafka::TopicSpec;
///
/// let spec = TopicSpec::new("orders", 3)
///     .with_replication(3)
///     .with_config("min.insync.replicas", "2");
/// assert_eq!(spec.partitions, 3);
/// ```
#[derive(Debug, Clone)]
pub struct TopicSpec {
    /// The topic's name.
    pub name: String,
    /// How many partitions.
    pub partitions: i32,
    /// Replication factor; `None`: the cluster's
    /// [`default_replication`](KafkaCluster::default_replication).
    pub replication: Option<i32>,
    /// Topic configs (`cleanup.policy`, `retention.ms`, `max.message.bytes`, …).
    pub configs: Vec<(String, String)>,
}

impl TopicSpec {
    /// A topic with `partitions` partitions, the default replication and no configs.
    ///
    /// # Example
    ///
    /// ```
    /// let spec = event_bus_testkit::kafka::TopicSpec::new("orders", 1);
    /// assert!(spec.replication.is_none());
    /// ```
    pub fn new(name: &str, partitions: i32) -> Self {
        Self {
            name: name.to_owned(),
            partitions,
            replication: None,
            configs: Vec::new(),
        }
    }

    /// Sets the replication factor.
    ///
    /// # Example
    ///
    /// ```
    /// let spec = event_bus_testkit::kafka::TopicSpec::new("orders", 1).with_replication(3);
    /// assert_eq!(spec.replication, Some(3));
    /// ```
    pub fn with_replication(mut self, replication: i32) -> Self {
        self.replication = Some(replication);
        self
    }

    /// Adds a topic config.
    ///
    /// # Example
    ///
    /// ```
    /// let spec = event_bus_testkit::kafka::TopicSpec::new("orders", 1)
    ///     .with_config("cleanup.policy", "compact");
    /// assert_eq!(spec.configs.len(), 1);
    /// ```
    pub fn with_config(mut self, key: &str, value: &str) -> Self {
        self.configs.push((key.to_owned(), value.to_owned()));
        self
    }
}

impl KafkaCluster {
    /// Creates a topic with `partitions` partitions and the default replication
    /// (`min(nodes, 3)`), and waits until every partition has a leader.
    ///
    /// # Errors
    ///
    /// As for [`create_topic_with`](Self::create_topic_with).
    ///
    /// # Example
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), event_bus_testkit::kafka::ClusterError> {
    /// let cluster = event_bus_testkit::kafka::KafkaCluster::shared()?;
    /// cluster.create_topic(&event_bus_testkit::topics::unique_topic("t"), 3).await?;
    /// # Ok(()) }
    /// ```
    pub async fn create_topic(&self, name: &str, partitions: i32) -> Result<(), ClusterError> {
        self.create_topic_with(&TopicSpec::new(name, partitions))
            .await
    }

    /// Creates a topic through the admin API and waits until metadata shows every
    /// partition with a leader.
    ///
    /// # Errors
    ///
    /// [`ClusterError::CreateTopic`] with the broker's code (for example
    /// `TopicAlreadyExists` or `InvalidReplicationFactor`), [`ClusterError::Client`]
    /// when the request fails, [`ClusterError::TopicNotVisible`] after 30 s.
    ///
    /// # Example
    ///
    /// ```no_run
    /// use event_bus_testkit::kafka::{KafkaCluster, TopicSpec};
    /// # async fn demo() -> Result<(), event_bus_testkit::kafka::ClusterError> {
    /// let cluster = KafkaCluster::start(3)?;
    /// cluster
    ///     .create_topic_with(&TopicSpec::new("orders", 2).with_config("min.insync.replicas", "2"))
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn create_topic_with(&self, spec: &TopicSpec) -> Result<(), ClusterError> {
        let replication = spec.replication.unwrap_or(self.replication);
        let mut new_topic = NewTopic::new(
            &spec.name,
            spec.partitions,
            TopicReplication::Fixed(replication),
        );
        for (key, value) in &spec.configs {
            new_topic = new_topic.set(key, value);
        }
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
        let results = self
            .admin
            .create_topics([&new_topic], &options)
            .await
            .map_err(|source| self.client_error(source))?;
        for result in results {
            if let Err((topic, code)) = result {
                return Err(ClusterError::CreateTopic { topic, code });
            }
        }
        self.wait_for_topic(&spec.name, spec.partitions, Duration::from_secs(30))
            .await
    }

    /// Waits until metadata shows `topic` with at least `partitions` partitions, each
    /// with a leader.
    ///
    /// # Errors
    ///
    /// [`ClusterError::TopicNotVisible`] after `timeout`.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), event_bus_testkit::kafka::ClusterError> {
    /// use std::time::Duration;
    /// let cluster = event_bus_testkit::kafka::KafkaCluster::shared()?;
    /// cluster.wait_for_topic("orders", 1, Duration::from_secs(5)).await?;
    /// # Ok(()) }
    /// ```
    pub async fn wait_for_topic(
        &self,
        topic: &str,
        partitions: i32,
        timeout: Duration,
    ) -> Result<(), ClusterError> {
        let started = Instant::now();
        loop {
            let admin = Arc::clone(&self.admin);
            let name = topic.to_owned();
            // fetch_metadata blocks; keep it off the async executor's threads.
            let led = tokio::task::spawn_blocking(move || {
                admin
                    .inner()
                    .fetch_metadata(Some(&name), Duration::from_secs(2))
                    .ok()
                    .and_then(|metadata| {
                        metadata
                            .topics()
                            .iter()
                            .find(|t| t.name() == name && t.error().is_none())
                            .map(|t| {
                                t.partitions()
                                    .iter()
                                    .filter(|p| p.leader() >= 0 && p.error().is_none())
                                    .count()
                            })
                    })
            })
            .await
            .ok()
            .flatten();
            if led.is_some_and(|n| i32::try_from(n).is_ok_and(|n| n >= partitions)) {
                return Ok(());
            }
            if started.elapsed() >= timeout {
                return Err(ClusterError::TopicNotVisible {
                    topic: topic.to_owned(),
                    partitions,
                    waited: started.elapsed(),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// [`consumer_config`](super::consumer_config) for this cluster.
    ///
    /// # Example
    ///
    /// ```no_run
    /// use rdkafka::consumer::{Consumer, StreamConsumer};
    ///
    /// let cluster = event_bus_testkit::kafka::KafkaCluster::shared()?;
    /// let consumer: StreamConsumer = cluster.consumer_config("my-group").create()?;
    /// consumer.subscribe(&["orders"])?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn consumer_config(&self, group_id: &str) -> ClientConfig {
        super::consumer_config(&self.bootstrap_servers, group_id)
    }

    /// [`producer_config`](super::producer_config) for this cluster.
    ///
    /// # Example
    ///
    /// ```no_run
    /// use rdkafka::producer::FutureProducer;
    ///
    /// let cluster = event_bus_testkit::kafka::KafkaCluster::shared()?;
    /// let producer: FutureProducer = cluster.producer_config().create()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn producer_config(&self) -> ClientConfig {
        super::producer_config(&self.bootstrap_servers)
    }
}
