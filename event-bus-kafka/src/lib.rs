//! Kafka transport for signal-bridge: configuration, the schema registry client, the
//! producer, and (in later modules) the outbox, the consumer loop, the DLQ, replay and
//! the CLI library.
//!
//! ```no_run
//! use event_bus_kafka::prelude::*;
//! use serde::{Deserialize, Serialize};
//!
//! /// A learner enrolled in a course.
//! #[derive(Debug, Clone, Serialize, Deserialize, Event)]
//! #[event(type = "org.example.learning.course.enrollment.created.v1", topic = "learning-course", key = "user_id")]
//! pub struct EnrollmentCreated {
//!     /// The learner.
//!     pub user_id: i64,
//! }
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let producer = Producer::new(ProducerConfig::from_env()?)?;
//! let delivery = producer.send(&EnrollmentCreated { user_id: 7 }).await?;
//! println!("stored at {}:{}@{}", delivery.topic, delivery.partition, delivery.offset);
//! # Ok(()) }
//! ```
//!
//! # Cargo features
//!
//! All are on by default, so `event-bus-kafka = "…"` gives the whole SDK. A service that
//! needs less sets `default-features = false` and names what it uses:
//!
//! | feature | turns on | pulls in |
//! |---|---|---|
//! | `postgres` | [`outbox::PostgresOutbox`], [`inbox::PostgresInbox`], `postgres://` URLs in [`outbox::AnyOutbox`] and [`inbox::AnyInbox`] | sqlx's PostgreSQL driver |
//! | `sqlite` | [`outbox::SqliteOutbox`], [`inbox::SqliteInbox`], the relay's lease on a SQLite file, `sqlite:` URLs | sqlx's SQLite driver (bundled SQLite) |
//! | `observability` | [`observability::ObservabilityServer`] (`/metrics`, `/healthz`), [`observability::PrometheusMetrics`], the health reports | axum, metrics-exporter-prometheus |
//! | `cli` (implies `observability`) | the [`cli`] module: the `event-bus` command line; its `outbox` and `inbox` commands need a database feature | clap, clap_complete, indicatif, maud |
//!
//! The [`outbox`] and [`inbox`] modules exist with either database feature (or both);
//! without any, a service can still produce and consume. Whatever the features, the SDK
//! records its metrics through the small `metrics` facade (a no-op until a recorder is
//! installed, by [`observability::PrometheusMetrics`] or the application's own), and
//! [`observability::trace`] carries W3C trace context.
//!
//! ```toml
//! # Producer, consumer and a PostgreSQL outbox; no CLI, no HTTP server.
//! event-bus-kafka = { version = "0.1", default-features = false, features = ["postgres"] }
//! ```
#![deny(missing_docs)]

pub use event_bus_core;

/// The README's code, compiled as a doc test so it stays true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

#[cfg(feature = "cli")]
pub mod cli;
pub mod config;
pub mod consumer;
pub mod failure;
#[cfg(any(feature = "postgres", feature = "sqlite"))]
pub mod inbox;
pub mod observability;
#[cfg(any(feature = "postgres", feature = "sqlite"))]
pub mod outbox;
pub mod producer;
pub mod provision;
pub mod record_headers;
pub mod registry;
pub mod replay;
pub mod topic;

/// Everything a service needs: the core prelude, configuration and the producer.
///
/// ```
/// use event_bus_kafka::prelude::*;
/// let _bus = EventBus::new();
/// ```
pub mod prelude {
    pub use crate::config::{KafkaConfig, ProducerConfig, RegistryConfig};
    pub use crate::producer::{Delivery, Producer, ProducerError};
    pub use event_bus_core::prelude::*;
}
