//! Apache Kafka for tests: KRaft nodes started as child processes from the jars
//! `scripts/install-test-deps` fetches from Maven Central (the release is
//! [`KAFKA_VERSION`]).
//!
//! - [`KafkaCluster::shared`]: the cluster the tests of a run share. `scripts/test`
//!   starts one node for the whole run and names it in [`SHARED_CLUSTER_ENV`];
//!   without that variable each test process starts its own on first use.
//! - [`KafkaCluster::start`]: a private cluster of 1 or 3 nodes whose nodes a test
//!   can kill, restart and pause (failover and durability tests).
//! - [`consumer_config`], [`producer_config`]: client settings fit for tests.
//!
//! Every node is broker and controller at once (`process.roles=broker,controller`),
//! listens on free ports of 127.0.0.1, has its own folder (`server.properties`,
//! `server.log`, `data/`) and a small heap, and dies with the test process.
//!
//! # Example
//!
//! ```no_run
//! use event_bus_testkit::kafka::KafkaCluster;
//! use event_bus_testkit::topics::unique_topic;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let cluster = KafkaCluster::shared()?;
//! let topic = unique_topic("orders");
//! cluster.create_topic(&topic, 1).await?;
//! let producer: rdkafka::producer::FutureProducer = cluster.producer_config().create()?;
//! # Ok(()) }
//! ```

mod clients;
mod cluster;
mod error;
mod install;
mod node;
mod options;
mod topic_admin;
mod watchdog;

pub use clients::{consumer_config, producer_config};
pub use cluster::{KafkaCluster, KEEP_LOGS_ENV, SHARED_CLUSTER_ENV};
pub use error::ClusterError;
pub use install::{default_libs_dir, locate_libs, KAFKA_LIBS_ENV, KAFKA_VERSION};
pub use options::KafkaClusterOptions;
pub use topic_admin::TopicSpec;
