//! Test and development harness for signal-bridge: the real parts the SDK's tests and
//! a developer's laptop run against.
//!
//! - [`kafka`]: Apache Kafka clusters (KRaft nodes as child processes), one shared by a
//!   test run and private ones for failover tests.
//! - [`mock_cluster`]: librdkafka's in-process mock cluster, for fault injection.
//! - [`registry`]: an embedded Confluent-compatible schema registry (development only).
//! - [`postgres`]: a fresh PostgreSQL database per test.
//! - [`records`], [`topics`], [`ports`]: reading topics back, unique names, free ports.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let cluster = event_bus_testkit::kafka::KafkaCluster::shared()?;
//! let registry = event_bus_testkit::registry::EmbeddedRegistry::start().await?;
//! println!("kafka {} registry {}", cluster.bootstrap_servers(), registry.url());
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

pub mod dev;
pub mod kafka;
pub mod mock_cluster;
pub mod ports;
pub mod postgres;
pub mod records;
pub mod registry;
pub mod topics;
