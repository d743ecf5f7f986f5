//! How a test cluster is sized and configured.

use std::time::Duration;

/// Options for [`KafkaCluster::start_with`](super::KafkaCluster::start_with).
///
/// Every node gets settings fit for tests: no initial rebalance delay, internal
/// topics replicated `min(nodes, 3)` times, `min.insync.replicas=2` from three
/// nodes on, quick fencing of a dead broker (4 s) and quick controller elections;
/// [`with_setting`](Self::with_setting) adds or overrides any broker setting.
///
/// # Example
///
/// ```
/// use event_bus_testkit::kafka::KafkaClusterOptions;
///
/// let options = KafkaClusterOptions::nodes(3).with_setting("log.retention.ms", "60000");
/// assert_eq!(options.nodes, 3);
/// assert!(options
///     .broker_settings()
///     .contains(&("min.insync.replicas".to_owned(), "2".to_owned())));
/// ```
#[derive(Debug, Clone)]
pub struct KafkaClusterOptions {
    /// How many KRaft nodes (each broker and controller); default 1.
    pub nodes: usize,
    /// Maximum heap of each node's JVM, in MiB; default 512.
    pub heap_mb: u32,
    /// How long to wait for the nodes to register; default 90 s (a JVM start takes
    /// seconds, more on a busy 2-core machine).
    pub startup_timeout: Duration,
    /// Broker settings added after (so overriding) the defaults.
    pub settings: Vec<(String, String)>,
}

impl Default for KafkaClusterOptions {
    fn default() -> Self {
        Self::nodes(1)
    }
}

impl KafkaClusterOptions {
    /// Defaults for a cluster of `nodes` nodes.
    ///
    /// # Example
    ///
    /// ```
    /// let options = event_bus_testkit::kafka::KafkaClusterOptions::nodes(1);
    /// assert_eq!(options.heap_mb, 512);
    /// ```
    pub fn nodes(nodes: usize) -> Self {
        Self {
            nodes,
            heap_mb: 512,
            startup_timeout: Duration::from_secs(90),
            settings: Vec::new(),
        }
    }

    /// Sets the maximum heap of each node.
    ///
    /// # Example
    ///
    /// ```
    /// let options = event_bus_testkit::kafka::KafkaClusterOptions::nodes(1).with_heap_mb(1024);
    /// assert_eq!(options.heap_mb, 1024);
    /// ```
    pub fn with_heap_mb(mut self, heap_mb: u32) -> Self {
        self.heap_mb = heap_mb;
        self
    }

    /// Adds (or overrides) a broker setting of every node.
    ///
    /// # Example
    ///
    /// ```
    /// let options = event_bus_testkit::kafka::KafkaClusterOptions::nodes(1)
    ///     .with_setting("auto.create.topics.enable", "false");
    /// assert_eq!(
    ///     options.broker_settings().last(),
    ///     Some(&("auto.create.topics.enable".to_owned(), "false".to_owned()))
    /// );
    /// ```
    pub fn with_setting(mut self, key: &str, value: &str) -> Self {
        self.settings.push((key.to_owned(), value.to_owned()));
        self
    }

    /// The replication factor of the internal topics and of topics created without
    /// one: the number of nodes, at most 3.
    ///
    /// # Example
    ///
    /// ```
    /// use event_bus_testkit::kafka::KafkaClusterOptions;
    ///
    /// assert_eq!(KafkaClusterOptions::nodes(1).replication(), 1);
    /// assert_eq!(KafkaClusterOptions::nodes(5).replication(), 3);
    /// ```
    pub fn replication(&self) -> usize {
        self.nodes.clamp(1, 3)
    }

    /// Every node's broker settings: the test defaults, then [`settings`](Self::settings).
    /// (Listeners, node id, quorum voters and log dir are per node and not listed.)
    ///
    /// # Example
    ///
    /// ```
    /// let settings = event_bus_testkit::kafka::KafkaClusterOptions::nodes(1).broker_settings();
    /// assert!(settings.contains(&("group.initial.rebalance.delay.ms".to_owned(), "0".to_owned())));
    /// assert!(settings.contains(&("offsets.topic.replication.factor".to_owned(), "1".to_owned())));
    /// ```
    pub fn broker_settings(&self) -> Vec<(String, String)> {
        let replication = self.replication();
        let min_isr = if self.nodes >= 3 { 2 } else { 1 };
        let defaults: [(&str, String); 17] = [
            ("num.partitions", "1".into()),
            ("default.replication.factor", replication.to_string()),
            ("min.insync.replicas", min_isr.to_string()),
            ("auto.create.topics.enable", "true".into()),
            // Consumer groups form at once instead of waiting 3 s for more members.
            ("group.initial.rebalance.delay.ms", "0".into()),
            ("offsets.topic.replication.factor", replication.to_string()),
            // Fewer partitions than the default 50: created faster on first use.
            ("offsets.topic.num.partitions", "10".into()),
            (
                "transaction.state.log.replication.factor",
                replication.to_string(),
            ),
            ("transaction.state.log.min.isr", min_isr.to_string()),
            ("transaction.state.log.num.partitions", "5".into()),
            (
                "share.coordinator.state.topic.replication.factor",
                replication.to_string(),
            ),
            ("share.coordinator.state.topic.min.isr", min_isr.to_string()),
            // A killed broker is fenced (and its partitions move) in seconds.
            ("broker.heartbeat.interval.ms", "500".into()),
            ("broker.session.timeout.ms", "4000".into()),
            ("controller.quorum.election.timeout.ms", "1000".into()),
            ("controller.quorum.fetch.timeout.ms", "2000".into()),
            // Test brokers share two cores with the tests; a few threads suffice.
            ("num.io.threads", "4".into()),
        ];
        defaults
            .into_iter()
            .map(|(key, value)| (key.to_owned(), value))
            .chain(self.settings.iter().cloned())
            .collect()
    }
}
