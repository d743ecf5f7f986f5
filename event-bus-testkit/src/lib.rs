//! Test and development harness for signal-bridge: the real parts the SDK's tests and
//! a developer's laptop run against.
//!
//! - [`broker`]: a Tansu broker process (Kafka protocol) per test binary.
//! - [`mock_cluster`]: librdkafka's in-process mock cluster, for fault injection.
//! - [`registry`]: an embedded Confluent-compatible schema registry (development only).
//! - [`postgres`]: a fresh PostgreSQL database per test.
//! - [`records`], [`topics`], [`ports`]: reading topics back, unique names, free ports.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let broker = event_bus_testkit::broker::TansuBroker::shared()?;
//! let registry = event_bus_testkit::registry::EmbeddedRegistry::start().await?;
//! println!("kafka {} registry {}", broker.bootstrap_servers(), registry.url());
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

pub mod broker;
pub mod dev;
pub mod mock_cluster;
pub mod ports;
pub mod postgres;
pub mod records;
pub mod registry;
pub mod topics;
