//! Entry points for the `event-bus outbox …` commands: open whichever store the URL
//! names, migrate it, show its status, run a relay.

use std::future::Future;
use std::sync::Arc;

use super::config::{OutboxConfig, RelayConfig};
use super::error::OutboxError;
use super::postgres::PostgresOutbox;
use super::relay::{Relay, RelayStats};
use super::sqlite::SqliteOutbox;
use super::status::OutboxStatus;
use super::store::OutboxStore;
use crate::config::ProducerConfig;
use crate::producer::Producer;

/// The store an outbox URL names: `postgres://`/`postgresql://` or `sqlite:`.
///
/// ```no_run
/// use event_bus_kafka::outbox::{AnyOutbox, OutboxConfig};
/// # async fn demo() -> Result<(), event_bus_kafka::outbox::OutboxError> {
/// let outbox = AnyOutbox::connect(&OutboxConfig::new("sqlite:outbox.db")).await?;
/// outbox.migrate().await?;
/// outbox.status(20).await?.log();
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub enum AnyOutbox {
    /// PostgreSQL.
    Postgres(PostgresOutbox),
    /// SQLite.
    Sqlite(SqliteOutbox),
}

impl AnyOutbox {
    /// Connects to the store of `config.database_url`, with its backlog limit and pool size.
    ///
    /// See the type's example.
    pub async fn connect(config: &OutboxConfig) -> Result<Self, OutboxError> {
        let url = config.database_url.expose();
        let scheme = url
            .split(':')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        match scheme.as_str() {
            "postgres" | "postgresql" => Ok(Self::Postgres(
                PostgresOutbox::connect_with_pool_size(url, config.max_connections)
                    .await?
                    .with_max_backlog(config.max_backlog),
            )),
            "sqlite" => Ok(Self::Sqlite(
                SqliteOutbox::connect(url)
                    .await?
                    .with_max_backlog(config.max_backlog),
            )),
            _ => Err(OutboxError::UnsupportedUrl { scheme }),
        }
    }

    /// Runs the store's migrations (`event-bus outbox migrate`).
    ///
    /// See the type's example.
    pub async fn migrate(&self) -> Result<(), OutboxError> {
        match self {
            Self::Postgres(store) => store.migrate().await,
            Self::Sqlite(store) => store.migrate().await,
        }
    }

    /// Pending count, oldest age and up to `failing_keys_limit` failing keys
    /// (`event-bus outbox status`).
    ///
    /// See the type's example.
    pub async fn status(&self, failing_keys_limit: usize) -> Result<OutboxStatus, OutboxError> {
        match self {
            Self::Postgres(store) => store.status(failing_keys_limit).await,
            Self::Sqlite(store) => store.status(failing_keys_limit).await,
        }
    }

    /// Runs a relay publishing with `producer` until `shutdown` (`event-bus outbox relay`).
    ///
    /// ```no_run
    /// # use event_bus_kafka::outbox::*;
    /// # async fn demo(outbox: AnyOutbox, producer: event_bus_kafka::producer::Producer) -> Result<(), OutboxError> {
    /// let stats = outbox.relay_until(producer, RelayConfig::default(), async {
    ///     let _ = tokio::signal::ctrl_c().await;
    /// }).await?;
    /// # Ok(()) }
    /// ```
    pub async fn relay_until(
        self,
        producer: Producer,
        config: RelayConfig,
        shutdown: impl Future<Output = ()>,
    ) -> Result<RelayStats, OutboxError> {
        match self {
            Self::Postgres(store) => {
                Relay::new(Arc::new(store), producer, config)
                    .run_until(shutdown)
                    .await
            }
            Self::Sqlite(store) => {
                Relay::new(Arc::new(store), producer, config)
                    .run_until(shutdown)
                    .await
            }
        }
    }

    /// Publishes until nothing is due, then returns (`event-bus outbox relay --once`).
    ///
    /// ```no_run
    /// # use event_bus_kafka::outbox::*;
    /// # async fn demo(outbox: AnyOutbox, producer: event_bus_kafka::producer::Producer) -> Result<(), OutboxError> {
    /// let stats = outbox.drain(producer, RelayConfig::default()).await?;
    /// # Ok(()) }
    /// ```
    pub async fn drain(
        self,
        producer: Producer,
        config: RelayConfig,
    ) -> Result<RelayStats, OutboxError> {
        match self {
            Self::Postgres(store) => Relay::new(Arc::new(store), producer, config).drain().await,
            Self::Sqlite(store) => Relay::new(Arc::new(store), producer, config).drain().await,
        }
    }
}

/// `event-bus outbox relay`: the outbox from `EVENT_BUS_OUTBOX_*`, the producer from
/// `EVENT_BUS_KAFKA_*`/`EVENT_BUS_SCHEMA_REGISTRY_*` (the registry is not called: rows
/// are already encoded), migrations applied, then a relay until `shutdown`.
///
/// ```no_run
/// # async fn demo() -> Result<(), event_bus_kafka::outbox::OutboxError> {
/// let stats = event_bus_kafka::outbox::relay_from_env(async {
///     let _ = tokio::signal::ctrl_c().await;
/// }).await?;
/// println!("published {}", stats.published);
/// # Ok(()) }
/// ```
pub async fn relay_from_env(shutdown: impl Future<Output = ()>) -> Result<RelayStats, OutboxError> {
    let outbox_config = OutboxConfig::from_env()?;
    let producer = Producer::new(ProducerConfig::from_env()?)?;
    let outbox = AnyOutbox::connect(&outbox_config).await?;
    outbox.migrate().await?;
    outbox
        .relay_until(producer, outbox_config.relay, shutdown)
        .await
}
