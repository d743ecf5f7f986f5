//! What can go wrong starting or driving a test cluster.

use std::io;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

/// Errors from starting or using a [`KafkaCluster`](super::KafkaCluster).
///
/// # Example
///
/// ```no_run
/// use event_bus_testkit::kafka::{ClusterError, KafkaCluster};
///
/// match KafkaCluster::start(1) {
///     Ok(cluster) => println!("Kafka at {}", cluster.bootstrap_servers()),
///     Err(error @ ClusterError::JarsNotFound { .. }) => eprintln!("{error}"),
///     Err(error) => panic!("{error}"),
/// }
/// ```
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The broker's jars are not installed where the testkit looks.
    #[error(
        "Apache Kafka's jars are not in {dir} (no {jar}): run scripts/install-test-deps, \
         or set EVENT_BUS_TEST_KAFKA_LIBS to a folder holding them"
    )]
    JarsNotFound {
        /// The folder that was tried.
        dir: PathBuf,
        /// The jar that was looked for.
        jar: String,
    },
    /// `HOME` is not set, so the default install location is unknown.
    #[error("HOME is not set, so Kafka's jars cannot be located: set EVENT_BUS_TEST_KAFKA_LIBS")]
    NoHome,
    /// A cluster needs at least one node.
    #[error("a cluster needs at least one node (asked for {0})")]
    NoNodes(usize),
    /// No free loopback port could be found.
    #[error("cannot find a free port on 127.0.0.1: {0}")]
    FreePort(#[source] io::Error),
    /// A node's folder, configuration or log file could not be written.
    #[error("cannot prepare {path}: {source}")]
    Prepare {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// `java` could not be run.
    #[error("cannot run {java} (install a Java 17+ runtime, or set JAVA_HOME): {source}")]
    Spawn {
        /// The `java` executable that was tried.
        java: PathBuf,
        /// Why spawning failed.
        #[source]
        source: io::Error,
    },
    /// Formatting a node's log directory failed.
    #[error("formatting the log dir of node {node} failed with {status}:\n{output}")]
    Format {
        /// The node's index.
        node: usize,
        /// How the formatter ended.
        status: ExitStatus,
        /// What it printed.
        output: String,
    },
    /// A node exited while the testkit waited for it.
    #[error("Kafka node {node} exited with {status} during start-up (log: {log}):\n{log_tail}")]
    Exited {
        /// The node's index.
        node: usize,
        /// How the process ended.
        status: ExitStatus,
        /// The node's full log.
        log: PathBuf,
        /// The end of the log.
        log_tail: String,
    },
    /// The cluster runs but did not list the expected brokers in time.
    #[error(
        "Kafka on {bootstrap_servers} did not list brokers {expected:?} within {waited:?} \
         (last answer: {last_answer}); logs:\n{log_tails}"
    )]
    NotReady {
        /// The cluster's address.
        bootstrap_servers: String,
        /// The node ids waited for.
        expected: Vec<i32>,
        /// How long the testkit waited.
        waited: Duration,
        /// The last metadata answer or error.
        last_answer: String,
        /// The end of each node's log.
        log_tails: String,
    },
    /// A Kafka client (admin or metadata) failed.
    #[error("Kafka client error talking to {bootstrap_servers}: {source}")]
    Client {
        /// The cluster's address.
        bootstrap_servers: String,
        /// The client error.
        #[source]
        source: KafkaError,
    },
    /// The broker refused to create a topic.
    #[error("creating topic {topic} failed: {code}")]
    CreateTopic {
        /// The topic.
        topic: String,
        /// The broker's error code.
        code: RDKafkaErrorCode,
    },
    /// A topic did not show up in metadata in time, or has no leader there.
    #[error(
        "topic {topic} did not appear in metadata with {partitions} partition(s) and their \
         leaders within {waited:?}"
    )]
    TopicNotVisible {
        /// The topic.
        topic: String,
        /// The expected partition count.
        partitions: i32,
        /// How long the testkit waited.
        waited: Duration,
    },
    /// A partition did not get enough replicas in sync in time.
    #[error(
        "{topic}[{partition}] did not get {replicas} replicas in sync within {waited:?} \
         ({last}); logs:\n{log_tails}"
    )]
    NotInSync {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// How many replicas were waited for.
        replicas: usize,
        /// The last ISR seen, or the last metadata error.
        last: String,
        /// How long the testkit waited.
        waited: Duration,
        /// The end of each node's log.
        log_tails: String,
    },
    /// The cluster was started by another process (`EVENT_BUS_TEST_KAFKA_BOOTSTRAP_SERVERS`),
    /// so this one cannot stop, start or pause its nodes.
    #[error(
        "the cluster at {bootstrap_servers} was started by another process, so its nodes \
         cannot be controlled from here: start a private one with KafkaCluster::start"
    )]
    NotOwned {
        /// The cluster's address.
        bootstrap_servers: String,
    },
    /// There is no node with that index.
    #[error("the cluster has {nodes} node(s); there is no node {node}")]
    NoSuchNode {
        /// The index asked for.
        node: usize,
        /// How many nodes the cluster has.
        nodes: usize,
    },
    /// The node is not in a state that allows the operation.
    #[error("node {node} is {state}; cannot {operation} it")]
    NodeState {
        /// The node's index.
        node: usize,
        /// What it is now (running, stopped, paused).
        state: &'static str,
        /// What was asked.
        operation: &'static str,
    },
    /// Sending a signal to a node failed.
    #[error("cannot send {signal} to node {node}: {source}")]
    Signal {
        /// The node's index.
        node: usize,
        /// The signal's name.
        signal: &'static str,
        /// Why.
        #[source]
        source: io::Error,
    },
}
