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
#![deny(missing_docs)]

pub use event_bus_core;

/// The README's code, compiled as a doc test so it stays true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

pub mod cli;
pub mod config;
pub mod consumer;
pub mod failure;
pub mod inbox;
pub mod observability;
pub mod outbox;
pub mod producer;
pub mod provision;
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
