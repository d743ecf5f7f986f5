//! [`KafkaCluster`]: KRaft nodes as child processes, their lifecycle, and the cluster
//! the tests of one run share.

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine;
use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::error::KafkaError;

use super::error::ClusterError;
use super::install::{locate_libs, KAFKA_VERSION};
use super::node::{Node, NodeAddress, NodeState};
use super::options::KafkaClusterOptions;

/// Environment variable that, when set, names a running cluster (its
/// `bootstrap.servers`) for [`KafkaCluster::shared`] to use instead of starting one.
/// `scripts/test` starts one cluster for the whole run and sets it.
///
/// # Example
///
/// ```
/// assert_eq!(
///     event_bus_testkit::kafka::SHARED_CLUSTER_ENV,
///     "EVENT_BUS_TEST_KAFKA_BOOTSTRAP_SERVERS"
/// );
/// ```
pub const SHARED_CLUSTER_ENV: &str = "EVENT_BUS_TEST_KAFKA_BOOTSTRAP_SERVERS";

/// Environment variable that, when set to a non-empty value, keeps every cluster's
/// folder (configuration, logs, data) after it stops. A cluster dropped while its
/// test panics keeps its folder anyway, and says where it is.
///
/// # Example
///
/// ```
/// assert_eq!(event_bus_testkit::kafka::KEEP_LOGS_ENV, "EVENT_BUS_TEST_KEEP_LOGS");
/// ```
pub const KEEP_LOGS_ENV: &str = "EVENT_BUS_TEST_KEEP_LOGS";

/// How many times a start is tried with new ports when a node exits at start-up (for
/// example because another process took a port first).
const START_ATTEMPTS: usize = 3;

/// An Apache Kafka cluster for tests: 1 or more KRaft nodes (each broker and
/// controller in one JVM) on free loopback ports, each with its own log dir, killed
/// when dropped and when the test process dies, however it dies.
///
/// Start a private one with [`start`](Self::start) (failover tests: node control),
/// or use the one the run shares with [`shared`](Self::shared).
///
/// # Example
///
/// ```no_run
/// use event_bus_testkit::kafka::KafkaCluster;
/// use event_bus_testkit::topics::unique_topic;
///
/// # async fn demo() -> Result<(), event_bus_testkit::kafka::ClusterError> {
/// let cluster = KafkaCluster::start(3)?;
/// let topic = unique_topic("orders");
/// cluster.create_topic(&topic, 1).await?;
/// let leader = cluster.partition_leader(&topic, 0)?;
/// if let Some(leader) = leader {
///     cluster.kill_node(leader)?;
///     cluster.start_node(leader)?;
/// }
/// # Ok(()) }
/// ```
pub struct KafkaCluster {
    pub(crate) bootstrap_servers: String,
    nodes: Vec<Mutex<Node>>,
    libs: PathBuf,
    options: KafkaClusterOptions,
    dir: Option<tempfile::TempDir>,
    pub(crate) admin: Arc<AdminClient<DefaultClientContext>>,
    pub(crate) replication: i32,
}

impl std::fmt::Debug for KafkaCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaCluster")
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("nodes", &self.nodes.len())
            .field("dir", &self.dir.as_ref().map(tempfile::TempDir::path))
            .finish_non_exhaustive()
    }
}

static SHARED: OnceLock<KafkaCluster> = OnceLock::new();
static SHARED_INIT: Mutex<()> = Mutex::new(());

impl KafkaCluster {
    /// Starts a cluster of `nodes` nodes with [`KafkaClusterOptions::nodes`] and waits
    /// until every node is a registered broker. Blocks the calling thread (seconds: a
    /// JVM start per node, in parallel).
    ///
    /// # Errors
    ///
    /// [`ClusterError::JarsNotFound`] when the jars are not installed (run
    /// `scripts/install-test-deps`), and the other variants when a node cannot be
    /// started; their message holds the end of its log.
    ///
    /// # Example
    ///
    /// ```no_run
    /// let cluster = event_bus_testkit::kafka::KafkaCluster::start(1)?;
    /// assert!(cluster.bootstrap_servers().starts_with("127.0.0.1:"));
    /// # Ok::<(), event_bus_testkit::kafka::ClusterError>(())
    /// ```
    pub fn start(nodes: usize) -> Result<Self, ClusterError> {
        Self::start_with(KafkaClusterOptions::nodes(nodes))
    }

    /// Starts a cluster with the given options; see [`start`](Self::start).
    ///
    /// # Errors
    ///
    /// As for [`start`](Self::start).
    ///
    /// # Example
    ///
    /// ```no_run
    /// use event_bus_testkit::kafka::{KafkaCluster, KafkaClusterOptions};
    ///
    /// let options = KafkaClusterOptions::nodes(1)
    ///     .with_heap_mb(1024)
    ///     .with_setting("log.message.timestamp.type", "LogAppendTime");
    /// let cluster = KafkaCluster::start_with(options)?;
    /// # Ok::<(), event_bus_testkit::kafka::ClusterError>(())
    /// ```
    pub fn start_with(options: KafkaClusterOptions) -> Result<Self, ClusterError> {
        if options.nodes == 0 {
            return Err(ClusterError::NoNodes(0));
        }
        let libs = locate_libs()?;
        let mut attempt = 1;
        loop {
            match Self::start_once(&libs, &options) {
                // Another process may have taken a port between our probe and the
                // JVM's bind; try new ones.
                Err(ClusterError::Exited { .. }) if attempt < START_ATTEMPTS => attempt += 1,
                other => return other,
            }
        }
    }

    fn start_once(libs: &Path, options: &KafkaClusterOptions) -> Result<Self, ClusterError> {
        let keep_logs = keep_logs();
        let dir = tempfile::Builder::new()
            .prefix("signal-bridge-kafka-")
            .disable_cleanup(keep_logs)
            .tempdir()
            .map_err(|source| ClusterError::Prepare {
                path: std::env::temp_dir(),
                source,
            })?;
        let addresses = (0..options.nodes)
            .map(|index| {
                let node_dir = dir.path().join(format!("node-{index}"));
                std::fs::create_dir_all(&node_dir).map_err(|source| ClusterError::Prepare {
                    path: node_dir.clone(),
                    source,
                })?;
                Ok(NodeAddress {
                    index,
                    broker_port: free_port()?,
                    controller_port: free_port()?,
                    dir: node_dir,
                })
            })
            .collect::<Result<Vec<_>, ClusterError>>()?;
        let voters = addresses
            .iter()
            .map(|a| format!("{}@127.0.0.1:{}", a.index, a.controller_port))
            .collect::<Vec<_>>()
            .join(",");
        let settings = options.broker_settings();
        let nodes: Vec<Node> = addresses.into_iter().map(Node::new).collect();
        for node in &nodes {
            node.write_config(&voters, &settings)?;
        }
        format_all(libs, &nodes)?;
        let bootstrap_servers = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.address.broker_port))
            .collect::<Vec<_>>()
            .join(",");
        let admin = Arc::new(admin_client(&bootstrap_servers)?);
        let cluster = KafkaCluster {
            bootstrap_servers,
            nodes: nodes.into_iter().map(Mutex::new).collect(),
            libs: libs.to_owned(),
            options: options.clone(),
            dir: Some(dir),
            admin,
            replication: i32::try_from(options.replication()).unwrap_or(3),
        };
        for index in 0..cluster.nodes.len() {
            cluster
                .lock_node(index)?
                .start(&cluster.libs, options.heap_mb, !keep_logs)?;
        }
        cluster.wait_for_nodes(&(0..options.nodes).collect::<Vec<_>>())?;
        tracing::info!(
            bootstrap_servers = %cluster.bootstrap_servers,
            nodes = options.nodes,
            kafka_version = KAFKA_VERSION,
            dir = %cluster.dir().map(Path::display).map(|d| d.to_string()).unwrap_or_default(),
            "Apache Kafka test cluster ready"
        );
        Ok(cluster)
    }

    /// A handle on a cluster another process runs (no node control), once it answers
    /// metadata with at least one broker.
    ///
    /// # Errors
    ///
    /// [`ClusterError::NotReady`] when it does not answer within 60 s;
    /// [`ClusterError::Client`] when no client can be made for the address.
    ///
    /// # Example
    ///
    /// ```no_run
    /// let cluster = event_bus_testkit::kafka::KafkaCluster::connect("127.0.0.1:9092")?;
    /// assert!(cluster.kill_node(0).is_err());
    /// # Ok::<(), event_bus_testkit::kafka::ClusterError>(())
    /// ```
    pub fn connect(bootstrap_servers: &str) -> Result<Self, ClusterError> {
        let admin = Arc::new(admin_client(bootstrap_servers)?);
        let started = Instant::now();
        let timeout = Duration::from_secs(60);
        loop {
            let answer = admin.inner().fetch_metadata(None, Duration::from_secs(2));
            match answer {
                Ok(metadata) if !metadata.brokers().is_empty() => {
                    let brokers = metadata.brokers().len().min(3);
                    return Ok(KafkaCluster {
                        bootstrap_servers: bootstrap_servers.to_owned(),
                        nodes: Vec::new(),
                        libs: PathBuf::new(),
                        options: KafkaClusterOptions::nodes(brokers),
                        dir: None,
                        admin,
                        replication: i32::try_from(brokers).unwrap_or(1),
                    });
                }
                other if started.elapsed() >= timeout => {
                    return Err(ClusterError::NotReady {
                        bootstrap_servers: bootstrap_servers.to_owned(),
                        expected: Vec::new(),
                        waited: started.elapsed(),
                        last_answer: describe(
                            &other.map(|m| m.brokers().iter().map(|b| b.id()).collect::<Vec<_>>()),
                        ),
                        log_tails: "(started by another process)".to_owned(),
                    });
                }
                _ => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }

    /// The cluster the tests of this process share: the one named by
    /// [`SHARED_CLUSTER_ENV`] when it is set (`scripts/test` starts one for the whole
    /// run), else a one-node cluster started on first use and killed when the process
    /// exits. Tests that share it use their own topics and groups
    /// ([`crate::topics`]) and never stop its nodes.
    ///
    /// If starting fails, the error is returned and the next call tries again.
    ///
    /// # Errors
    ///
    /// As for [`start`](Self::start) and [`connect`](Self::connect).
    ///
    /// # Example
    ///
    /// ```no_run
    /// use event_bus_testkit::kafka::KafkaCluster;
    ///
    /// let a = KafkaCluster::shared()?;
    /// let b = KafkaCluster::shared()?;
    /// assert_eq!(a.bootstrap_servers(), b.bootstrap_servers());
    /// # Ok::<(), event_bus_testkit::kafka::ClusterError>(())
    /// ```
    pub fn shared() -> Result<&'static KafkaCluster, ClusterError> {
        if let Some(cluster) = SHARED.get() {
            return Ok(cluster);
        }
        let _guard = SHARED_INIT.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(cluster) = SHARED.get() {
            return Ok(cluster);
        }
        let cluster = match std::env::var(SHARED_CLUSTER_ENV) {
            Ok(servers) if !servers.trim().is_empty() => KafkaCluster::connect(servers.trim())?,
            _ => KafkaCluster::start(1)?,
        };
        Ok(SHARED.get_or_init(|| cluster))
    }

    /// The cluster's address, for `bootstrap.servers`: every node, comma-separated.
    ///
    /// # Example
    ///
    /// ```no_run
    /// let cluster = event_bus_testkit::kafka::KafkaCluster::shared()?;
    /// let mut config = rdkafka::ClientConfig::new();
    /// config.set("bootstrap.servers", cluster.bootstrap_servers());
    /// # Ok::<(), event_bus_testkit::kafka::ClusterError>(())
    /// ```
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap_servers
    }

    /// How many nodes this process runs (0 for a cluster from [`connect`](Self::connect)).
    ///
    /// # Example
    ///
    /// ```no_run
    /// let cluster = event_bus_testkit::kafka::KafkaCluster::start(3)?;
    /// assert_eq!(cluster.node_count(), 3);
    /// # Ok::<(), event_bus_testkit::kafka::ClusterError>(())
    /// ```
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// The Kafka release the nodes run (for a cluster from [`connect`](Self::connect):
    /// the one `scripts/test` starts).
    ///
    /// # Example
    ///
    /// ```no_run
    /// let cluster = event_bus_testkit::kafka::KafkaCluster::shared()?;
    /// println!("Apache Kafka {}", cluster.version());
    /// # Ok::<(), event_bus_testkit::kafka::ClusterError>(())
    /// ```
    pub fn version(&self) -> &'static str {
        KAFKA_VERSION
    }

    /// The replication factor [`create_topic`](Self::create_topic) uses: the number of
    /// nodes, at most 3.
    ///
    /// # Example
    ///
    /// ```no_run
    /// let cluster = event_bus_testkit::kafka::KafkaCluster::start(3)?;
    /// assert_eq!(cluster.default_replication(), 3);
    /// # Ok::<(), event_bus_testkit::kafka::ClusterError>(())
    /// ```
    pub fn default_replication(&self) -> i32 {
        self.replication
    }

    /// The cluster's folder (one `node-{i}` folder per node, each with
    /// `server.properties`, `server.log` and `data/`); `None` for a cluster from
    /// [`connect`](Self::connect).
    ///
    /// # Example
    ///
    /// ```no_run
    /// let cluster = event_bus_testkit::kafka::KafkaCluster::start(1)?;
    /// println!("logs in {}", cluster.dir().unwrap().display());
    /// # Ok::<(), event_bus_testkit::kafka::ClusterError>(())
    /// ```
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_ref().map(tempfile::TempDir::path)
    }

    /// Node `node`'s log file (its standard output and error).
    ///
    /// # Errors
    ///
    /// [`ClusterError::NotOwned`] or [`ClusterError::NoSuchNode`].
    ///
    /// # Example
    ///
    /// ```no_run
    /// let cluster = event_bus_testkit::kafka::KafkaCluster::start(1)?;
    /// eprintln!("{}", cluster.log_path(0)?.display());
    /// # Ok::<(), event_bus_testkit::kafka::ClusterError>(())
    /// ```
    pub fn log_path(&self, node: usize) -> Result<PathBuf, ClusterError> {
        Ok(self.lock_node(node)?.address.log_path())
    }

    /// The end of every node's log, for failure messages.
    ///
    /// # Example
    ///
    /// ```no_run
    /// let cluster = event_bus_testkit::kafka::KafkaCluster::start(1)?;
    /// eprintln!("{}", cluster.log_tails());
    /// # Ok::<(), event_bus_testkit::kafka::ClusterError>(())
    /// ```
    pub fn log_tails(&self) -> String {
        self.nodes
            .iter()
            .map(|node| {
                let node = node.lock().unwrap_or_else(PoisonError::into_inner);
                format!(
                    "--- node {} ({}) ---\n{}",
                    node.address.index,
                    node.address.log_path().display(),
                    node.log_tail()
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// An admin client connected to the cluster.
    ///
    /// # Example
    ///
    /// ```no_run
    /// use rdkafka::admin::AdminOptions;
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// let cluster = event_bus_testkit::kafka::KafkaCluster::shared()?;
    /// cluster.admin().delete_topics(&["old"], &AdminOptions::new()).await?;
    /// # Ok(()) }
    /// ```
    pub fn admin(&self) -> &AdminClient<DefaultClientContext> {
        &self.admin
    }

    /// Kills node `node` with SIGKILL (a crash: no controlled shutdown) and waits for
    /// the process to end. Its log dir stays, for [`start_node`](Self::start_node).
    ///
    /// # Errors
    ///
    /// [`ClusterError::NotOwned`], [`ClusterError::NoSuchNode`], or
    /// [`ClusterError::NodeState`] when it is not running.
    ///
    /// # Example
    ///
    /// ```no_run
    /// let cluster = event_bus_testkit::kafka::KafkaCluster::start(3)?;
    /// cluster.kill_node(1)?;
    /// # Ok::<(), event_bus_testkit::kafka::ClusterError>(())
    /// ```
    pub fn kill_node(&self, node: usize) -> Result<(), ClusterError> {
        self.lock_node(node)?.kill()?;
        tracing::info!(node, "Kafka node killed (SIGKILL)");
        Ok(())
    }

    /// Starts a stopped node again on the same ports and log dir (so its data
    /// survives), and waits until it is a registered broker again.
    ///
    /// When a majority of the controllers is down the node cannot register alone:
    /// start several with [`start_nodes`](Self::start_nodes).
    ///
    /// # Errors
    ///
    /// [`ClusterError::NodeState`] when it is not stopped; [`ClusterError::NotReady`]
    /// when it does not register within the start-up timeout.
    ///
    /// # Example
    ///
    /// ```no_run
    /// let cluster = event_bus_testkit::kafka::KafkaCluster::start(3)?;
    /// cluster.kill_node(1)?;
    /// cluster.start_node(1)?;
    /// # Ok::<(), event_bus_testkit::kafka::ClusterError>(())
    /// ```
    pub fn start_node(&self, node: usize) -> Result<(), ClusterError> {
        self.start_nodes(&[node])
    }

    /// Starts several stopped nodes at once and waits until each is a registered
    /// broker: a whole cluster restarted from its log dirs, say.
    ///
    /// # Errors
    ///
    /// As for [`start_node`](Self::start_node).
    ///
    /// # Example
    ///
    /// ```no_run
    /// let cluster = event_bus_testkit::kafka::KafkaCluster::start(3)?;
    /// for node in 0..3 {
    ///     cluster.kill_node(node)?;
    /// }
    /// cluster.start_nodes(&[0, 1, 2])?;
    /// # Ok::<(), event_bus_testkit::kafka::ClusterError>(())
    /// ```
    pub fn start_nodes(&self, nodes: &[usize]) -> Result<(), ClusterError> {
        let remove_on_death = !keep_logs();
        for &node in nodes {
            self.lock_node(node)?
                .start(&self.libs, self.options.heap_mb, remove_on_death)?;
            tracing::info!(node, "Kafka node started again");
        }
        self.wait_for_nodes(nodes)
    }

    /// Stops node `node` with SIGSTOP: it keeps its connections but answers nothing
    /// (a hung broker) until [`resume_node`](Self::resume_node).
    ///
    /// # Errors
    ///
    /// [`ClusterError::NodeState`] when it is not running, or the signal's error.
    ///
    /// # Example
    ///
    /// ```no_run
    /// let cluster = event_bus_testkit::kafka::KafkaCluster::start(3)?;
    /// cluster.pause_node(2)?;
    /// cluster.resume_node(2)?;
    /// # Ok::<(), event_bus_testkit::kafka::ClusterError>(())
    /// ```
    pub fn pause_node(&self, node: usize) -> Result<(), ClusterError> {
        self.lock_node(node)?.pause()
    }

    /// Lets a node stopped by [`pause_node`](Self::pause_node) run again (SIGCONT).
    ///
    /// # Errors
    ///
    /// [`ClusterError::NodeState`] when it is not paused, or the signal's error.
    ///
    /// # Example
    ///
    /// ```no_run
    /// let cluster = event_bus_testkit::kafka::KafkaCluster::start(1)?;
    /// cluster.pause_node(0)?;
    /// cluster.resume_node(0)?;
    /// # Ok::<(), event_bus_testkit::kafka::ClusterError>(())
    /// ```
    pub fn resume_node(&self, node: usize) -> Result<(), ClusterError> {
        self.lock_node(node)?.resume()
    }

    /// Whether node `node`'s process runs (paused counts as running).
    ///
    /// # Errors
    ///
    /// [`ClusterError::NotOwned`] or [`ClusterError::NoSuchNode`].
    ///
    /// # Example
    ///
    /// ```no_run
    /// let cluster = event_bus_testkit::kafka::KafkaCluster::start(1)?;
    /// assert!(cluster.is_running(0)?);
    /// # Ok::<(), event_bus_testkit::kafka::ClusterError>(())
    /// ```
    pub fn is_running(&self, node: usize) -> Result<bool, ClusterError> {
        Ok(self.lock_node(node)?.state() != NodeState::Stopped)
    }

    /// The node leading `partition` of `topic` now, by the cluster's metadata (the
    /// node's index, which is also its `node.id`); `None` while it has no leader.
    ///
    /// # Errors
    ///
    /// [`ClusterError::Client`] when metadata cannot be read.
    ///
    /// # Example
    ///
    /// ```no_run
    /// let cluster = event_bus_testkit::kafka::KafkaCluster::start(3)?;
    /// if let Some(leader) = cluster.partition_leader("orders", 0)? {
    ///     cluster.kill_node(leader)?;
    /// }
    /// # Ok::<(), event_bus_testkit::kafka::ClusterError>(())
    /// ```
    pub fn partition_leader(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<Option<usize>, ClusterError> {
        Ok(self
            .partition_metadata(topic, partition, |p| usize::try_from(p.leader()).ok())?
            .flatten())
    }

    /// The nodes in sync for `partition` of `topic` now (its ISR, by the cluster's
    /// metadata): after a node restarts, wait for it here before taking another down,
    /// or `acks=all` producers may find too few replicas.
    ///
    /// # Errors
    ///
    /// [`ClusterError::Client`] when metadata cannot be read.
    ///
    /// # Example
    ///
    /// ```no_run
    /// let cluster = event_bus_testkit::kafka::KafkaCluster::start(3)?;
    /// let isr = cluster.in_sync_replicas("orders", 0)?;
    /// println!("in sync: {isr:?}");
    /// # Ok::<(), event_bus_testkit::kafka::ClusterError>(())
    /// ```
    pub fn in_sync_replicas(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<Vec<usize>, ClusterError> {
        Ok(self
            .partition_metadata(topic, partition, |p| {
                p.isr()
                    .iter()
                    .filter_map(|&id| usize::try_from(id).ok())
                    .collect()
            })?
            .unwrap_or_default())
    }

    /// Waits until at least `replicas` nodes are in sync for `partition` of `topic`
    /// (after a node restarts, before taking another one down).
    ///
    /// # Errors
    ///
    /// [`ClusterError::NotInSync`] after `timeout`, with the last ISR seen and the end
    /// of every node's log.
    ///
    /// # Example
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// # async fn demo() -> Result<(), event_bus_testkit::kafka::ClusterError> {
    /// let cluster = event_bus_testkit::kafka::KafkaCluster::start(3)?;
    /// cluster.kill_node(1)?;
    /// cluster.start_node(1)?;
    /// cluster.wait_for_in_sync_replicas("orders", 0, 3, Duration::from_secs(60)).await?;
    /// # Ok(()) }
    /// ```
    pub async fn wait_for_in_sync_replicas(
        &self,
        topic: &str,
        partition: i32,
        replicas: usize,
        timeout: Duration,
    ) -> Result<(), ClusterError> {
        let started = Instant::now();
        loop {
            let isr = self.in_sync_replicas(topic, partition);
            if isr.as_ref().is_ok_and(|isr| isr.len() >= replicas) {
                return Ok(());
            }
            if started.elapsed() >= timeout {
                return Err(ClusterError::NotInSync {
                    topic: topic.to_owned(),
                    partition,
                    replicas,
                    last: match isr {
                        Ok(isr) => format!("in sync: {isr:?}"),
                        Err(error) => error.to_string(),
                    },
                    waited: started.elapsed(),
                    log_tails: self.log_tails(),
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Reads one partition's metadata from the nodes that answer: for a cluster of
    /// this process, a fresh client bootstrapped only to its running, unpaused nodes
    /// (a hung node would hold a request for its whole timeout and answer stale).
    fn partition_metadata<T>(
        &self,
        topic: &str,
        partition: i32,
        read: impl FnOnce(&rdkafka::metadata::MetadataPartition) -> T,
    ) -> Result<Option<T>, ClusterError> {
        let answering: Vec<String> = self
            .nodes
            .iter()
            .filter_map(|node| {
                let mut node = node.lock().unwrap_or_else(PoisonError::into_inner);
                (node.state() == NodeState::Running)
                    .then(|| format!("127.0.0.1:{}", node.address.broker_port))
            })
            .collect();
        let fresh;
        let client = if self.nodes.is_empty() {
            self.admin.inner()
        } else {
            fresh = admin_client(&answering.join(","))?;
            fresh.inner()
        };
        let metadata = client
            .fetch_metadata(Some(topic), Duration::from_secs(5))
            .map_err(|source| self.client_error(source))?;
        Ok(metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic)
            .and_then(|t| t.partitions().iter().find(|p| p.id() == partition))
            .map(read))
    }

    pub(crate) fn client_error(&self, source: KafkaError) -> ClusterError {
        ClusterError::Client {
            bootstrap_servers: self.bootstrap_servers.clone(),
            source,
        }
    }

    fn lock_node(&self, node: usize) -> Result<MutexGuard<'_, Node>, ClusterError> {
        if self.nodes.is_empty() {
            return Err(ClusterError::NotOwned {
                bootstrap_servers: self.bootstrap_servers.clone(),
            });
        }
        let slot = self.nodes.get(node).ok_or(ClusterError::NoSuchNode {
            node,
            nodes: self.nodes.len(),
        })?;
        Ok(slot.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Waits until each of `nodes` accepts connections and the cluster's metadata
    /// lists it as a broker.
    fn wait_for_nodes(&self, nodes: &[usize]) -> Result<(), ClusterError> {
        let started = Instant::now();
        let expected: Vec<i32> = nodes
            .iter()
            .map(|&n| i32::try_from(n).unwrap_or(i32::MAX))
            .collect();
        loop {
            for &node in nodes {
                let mut guard = self.lock_node(node)?;
                if let Some(status) = guard.exit_status() {
                    return Err(ClusterError::Exited {
                        node,
                        status,
                        log: guard.address.log_path(),
                        log_tail: guard.log_tail(),
                    });
                }
            }
            let listening = nodes.iter().all(|&node| {
                self.lock_node(node).is_ok_and(|guard| {
                    let address =
                        SocketAddr::from((Ipv4Addr::LOCALHOST, guard.address.broker_port));
                    TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok()
                })
            });
            let listed = self
                .admin
                .inner()
                .fetch_metadata(None, Duration::from_secs(1))
                .map(|m| m.brokers().iter().map(|b| b.id()).collect::<Vec<_>>());
            if listening
                && listed
                    .as_ref()
                    .is_ok_and(|ids| expected.iter().all(|id| ids.contains(id)))
            {
                return Ok(());
            }
            if started.elapsed() >= self.options.startup_timeout {
                return Err(ClusterError::NotReady {
                    bootstrap_servers: self.bootstrap_servers.clone(),
                    expected,
                    waited: started.elapsed(),
                    last_answer: format!("listening: {listening}; {}", describe(&listed)),
                    log_tails: self.log_tails(),
                });
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for KafkaCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            let _ = node
                .get_mut()
                .unwrap_or_else(PoisonError::into_inner)
                .kill();
        }
        if std::thread::panicking() {
            if let Some(dir) = self.dir.as_mut() {
                dir.disable_cleanup(true);
                eprintln!(
                    "Kafka test cluster logs kept (the test panicked): {}",
                    dir.path().display()
                );
            }
        }
    }
}

fn keep_logs() -> bool {
    std::env::var_os(KEEP_LOGS_ENV).is_some_and(|v| !v.is_empty())
}

fn free_port() -> Result<u16, ClusterError> {
    crate::ports::free_loopback_port().map_err(ClusterError::FreePort)
}

/// A new cluster id: a random UUID in Kafka's URL-safe base64 form.
/// An id starting with `-` is drawn again (as Kafka's own `Uuid.randomUuid` does): the
/// formatter's command line would read it as an option.
fn new_cluster_id() -> String {
    loop {
        let id = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(uuid::Uuid::new_v4().as_bytes());
        if !id.starts_with('-') {
            return id;
        }
    }
}

/// Formats every node's log dir with one cluster id, the formatters running side by side.
fn format_all(libs: &Path, nodes: &[Node]) -> Result<(), ClusterError> {
    let cluster_id = new_cluster_id();
    let children = nodes
        .iter()
        .map(|node| node.spawn_format(libs, &cluster_id))
        .collect::<Result<Vec<_>, _>>()?;
    for (node, child) in nodes.iter().zip(children) {
        let output = child
            .wait_with_output()
            .map_err(|source| ClusterError::Prepare {
                path: node.address.dir.clone(),
                source,
            })?;
        if !output.status.success() {
            return Err(ClusterError::Format {
                node: node.address.index,
                status: output.status,
                output: format!(
                    "{}{}",
                    String::from_utf8_lossy(&output.stdout),
                    String::from_utf8_lossy(&output.stderr)
                ),
            });
        }
    }
    Ok(())
}

fn describe(answer: &Result<Vec<i32>, KafkaError>) -> String {
    match answer {
        Ok(ids) => format!("brokers {ids:?}"),
        Err(error) => error.to_string(),
    }
}

pub(crate) fn admin_client(
    bootstrap_servers: &str,
) -> Result<AdminClient<DefaultClientContext>, ClusterError> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap_servers)
        .set("reconnect.backoff.max.ms", "1000")
        // Connection errors while nodes start or are killed are expected; keep them quiet.
        .set_log_level(RDKafkaLogLevel::Critical)
        .create()
        .map_err(|source| ClusterError::Client {
            bootstrap_servers: bootstrap_servers.to_owned(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_ids_are_kafka_uuids() {
        let id = new_cluster_id();
        assert_eq!(id.len(), 22, "{id}");
        assert!(id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_ne!(id, new_cluster_id());
    }

    #[test]
    fn cluster_ids_never_look_like_an_option() {
        // About one random id in 64 starts with '-'; 2 000 draws miss that with
        // probability below 1e-13.
        for _ in 0..2_000 {
            let id = new_cluster_id();
            assert!(!id.starts_with('-'), "{id}");
        }
    }
}
