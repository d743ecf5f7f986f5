//! The consumer loop: fan-out to receivers, retry of the failed ones only, dead-letter
//! topic, commits only after an event is handled, poll-failure backoff, clean shutdown.
//!
//! ```no_run
//! use std::sync::Arc;
//! use event_bus_kafka::prelude::*;
//! use event_bus_kafka::consumer::{ConsumerConfig, EventConsumer, Shutdown};
//! # use serde::{Deserialize, Serialize};
//! # #[derive(Serialize, Deserialize, Event)]
//! # #[event(type = "org.example.shop.order.placed.v1", topic = "orders")]
//! # struct OrderPlaced { id: String }
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let mut bus = EventBus::new();
//! bus.connect_fn("mailer", |order: &OrderPlaced, _ctx| { println!("mail {}", order.id); Ok(()) })?;
//! let config = ConsumerConfig::new(
//!     KafkaConfig::new("localhost:9092"),
//!     RegistryConfig::new("http://localhost:8081"),
//!     "mailer-service",
//!     ["orders"],
//! );
//! let consumer = EventConsumer::new(config, Arc::new(bus))?;
//! let summary = consumer.run(Shutdown::on_signals()).await?;
//! # Ok(()) }
//! ```

pub(crate) mod backoff;
mod commits;
mod config;
mod context;
mod dead_letter;
mod deadline;
mod decode;
pub mod dlq;
mod error;
mod flow;
mod lanes;
mod offsets;
mod outage;
mod record;
mod redrive_mark;
mod registry_wait;
mod retry;
mod runner;
mod shutdown;
mod slots;
mod stats;

pub use config::{ConsumerConfig, DlqPolicy, DlqTopic, PollPolicy, RetryPolicy, UnknownTypePolicy};
pub use deadline::{within_deadline, DeadlinePassed};
pub use decode::DecodeFailure;
pub use error::ConsumerError;
pub use offsets::{Assignment, OffsetTracker, OldestRecord};
pub use registry_wait::RegistryOutage;
pub use runner::{EventConsumer, Progress};
pub use shutdown::{Shutdown, ShutdownTrigger};
pub use stats::{ConsumerStats, DlqStuck, StatsSnapshot};
