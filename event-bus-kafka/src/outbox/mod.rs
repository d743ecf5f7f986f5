//! The outbox: events kept in a database until the broker has them, published by a
//! relay in key order.
//!
//! Two ways in:
//!
//! - **Emergency mode** ([`OutboxProducer`]): send to the broker directly; when it cannot
//!   take the event within the delivery timeout, store the same bytes and headers and
//!   return [`SendOutcome::Deferred`] instead of an error.
//! - **Transactional mode** ([`TransactionalOutbox`]): store the event inside the
//!   caller's sqlx transaction, so it exists if and only if the business data commits.
//!
//! One way out: the [`Relay`] (an in-process task, or `event-bus outbox relay` via
//! [`relay_from_env`]) publishes rows in id order per key, deletes them after the
//! broker's acknowledgement, backs off per failing row, and blocks only the failing
//! key. Two stores: [`PostgresOutbox`] (production; any number of producers and relays)
//! and [`SqliteOutbox`] (embedded, single instance). Back-pressure: beyond the backlog
//! limit, inserts fail with [`OutboxError::Full`]; nothing is dropped silently.
//!
//! Guarantees: at-least-once (a relay that dies between the broker's acknowledgement and
//! its commit, or a direct send whose acknowledgement was lost, produces a duplicate;
//! `ce_id` is the dedup key); per-key order for events written one after the other.
//!
//! ```no_run
//! use std::sync::Arc;
//! use event_bus_kafka::outbox::{EmergencyConfig, OutboxProducer, PostgresOutbox, RelayConfig};
//! # use event_bus_kafka::prelude::*;
//! # use serde::{Deserialize, Serialize};
//! # #[derive(Serialize, Deserialize, Event)]
//! # #[event(type = "org.example.shop.order.placed.v1", topic = "orders", key = "id")]
//! # struct OrderPlaced { id: String }
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let store = Arc::new(PostgresOutbox::connect("postgres://app@localhost/app").await?);
//! store.migrate().await?;
//! let config = ProducerConfig::from_env()?.with_delivery_timeout(std::time::Duration::from_secs(5));
//! let producer = OutboxProducer::new(Producer::new(config)?, store, EmergencyConfig::default());
//! let relay = producer.relay(RelayConfig::default()).spawn();
//! let outcome = producer.send(&OrderPlaced { id: "o-1".into() }).await?;
//! relay.shutdown().await?;
//! # Ok(()) }
//! ```
//!
//! The `Outbox` store trait lives here rather than in `event_bus_core`: a row is an
//! [`EncodedRecord`](crate::producer::EncodedRecord) (Kafka topic, framed key and value,
//! headers), transactional enqueues take an sqlx transaction, and claims hold database
//! locks; none of that is storage- or transport-agnostic.

mod backlog;
mod command;
mod config;
mod emergency;
mod error;
mod headers_column;
mod health;
mod lane;
#[cfg(feature = "sqlite")]
mod lease;
#[cfg(not(feature = "sqlite"))]
#[path = "no_lease.rs"]
mod lease;
mod monitor;
#[cfg(feature = "postgres")]
mod pg_url;
#[cfg(feature = "postgres")]
mod postgres;
mod publish;
mod relay;
mod row;
#[cfg(feature = "sqlite")]
mod sqlite;
mod status;
mod store;
mod transactional;

pub use command::{relay_from_env, AnyOutbox};
pub use config::{EmergencyConfig, OutboxConfig, RelayConfig};
pub use emergency::{DeferReason, OutboxProducer, SendOutcome};
pub use error::OutboxError;
pub use headers_column::{headers_from_json, headers_to_json};
pub use health::BrokerHealth;
pub use lane::Lane;
pub use monitor::{RelayMonitor, RelayPhase};
#[cfg(feature = "postgres")]
pub use postgres::{
    PostgresBatch, PostgresOutbox, PostgresWakeup, NOTIFY_CHANNEL, POSTGRES_SCHEMA,
};
pub use relay::{BatchReport, Relay, RelayHandle, RelayStats};
pub use row::{
    BatchOutcome, OutboxId, OutboxRow, ParkedFilter, ParkedRow, RowFailure, UnreadableRow,
};
#[cfg(feature = "sqlite")]
pub use sqlite::{SqliteBatch, SqliteOutbox, SqliteWakeup};
pub use status::{FailingKey, OutboxStatus};
pub use store::{ClaimLimits, ClaimedBatch, OutboxStore, OutboxWakeup, TransactionalStore};
pub use transactional::{Enqueued, TransactionalOutbox};
