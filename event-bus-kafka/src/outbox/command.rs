//! Entry points for the `event-bus outbox …` commands: open whichever store the URL
//! names, migrate it, show its status, run a relay.

use std::future::Future;
#[cfg(feature = "sqlite")]
use std::str::FromStr;
use std::sync::Arc;
#[cfg(feature = "sqlite")]
use std::time::Duration;

#[cfg(feature = "sqlite")]
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

use super::config::{OutboxConfig, RelayConfig};
use super::error::OutboxError;
#[cfg(feature = "postgres")]
use super::postgres::PostgresOutbox;
use super::relay::{Relay, RelayStats};
use super::row::{ParkedFilter, ParkedRow};
#[cfg(feature = "sqlite")]
use super::sqlite::SqliteOutbox;
use super::status::OutboxStatus;
use super::store::OutboxStore;
use crate::config::ProducerConfig;
use crate::producer::Producer;

/// The outbox table of each store, as [`OutboxError::NoOutboxTable`] names it.
#[cfg(feature = "postgres")]
const POSTGRES_TABLE: &str = "event_bus.outbox";
#[cfg(feature = "sqlite")]
const SQLITE_TABLE: &str = "event_bus_outbox";

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
    /// PostgreSQL (feature `postgres`).
    #[cfg(feature = "postgres")]
    Postgres(PostgresOutbox),
    /// SQLite (feature `sqlite`).
    #[cfg(feature = "sqlite")]
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
            #[cfg(feature = "postgres")]
            "postgres" | "postgresql" => Ok(Self::Postgres(
                PostgresOutbox::connect_with_pool_size(url, config.max_connections)
                    .await?
                    .with_max_backlog(config.max_backlog),
            )),
            #[cfg(feature = "sqlite")]
            "sqlite" => Ok(Self::Sqlite(
                SqliteOutbox::connect(url)
                    .await?
                    .with_max_backlog(config.max_backlog),
            )),
            #[cfg(not(feature = "postgres"))]
            "postgres" | "postgresql" => Err(OutboxError::StoreNotBuilt {
                scheme,
                feature: "postgres",
            }),
            #[cfg(not(feature = "sqlite"))]
            "sqlite" => Err(OutboxError::StoreNotBuilt {
                scheme,
                feature: "sqlite",
            }),
            _ => Err(OutboxError::UnsupportedUrl { scheme }),
        }
    }

    /// Opens the store of `config.database_url` without changing anything: no SQLite
    /// file is created ([`OutboxError::NoOutboxTable`] when there is none), and, like
    /// [`connect`](Self::connect), no migration runs (`event-bus outbox status`).
    ///
    /// ```no_run
    /// use event_bus_kafka::outbox::{AnyOutbox, OutboxConfig, OutboxError};
    /// # async fn demo() -> Result<(), OutboxError> {
    /// match AnyOutbox::open_existing(&OutboxConfig::new("sqlite:outbox.db")).await?.status(20).await {
    ///     Ok(status) => status.log(),
    ///     Err(OutboxError::NoOutboxTable { .. }) => println!("not set up yet"),
    ///     Err(other) => return Err(other),
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn open_existing(config: &OutboxConfig) -> Result<Self, OutboxError> {
        #[cfg(feature = "sqlite")]
        if config
            .database_url
            .expose()
            .to_ascii_lowercase()
            .starts_with("sqlite:")
        {
            return Self::open_existing_sqlite(config).await;
        }
        Self::connect(config).await
    }

    /// [`open_existing`](Self::open_existing) for a `sqlite:` URL.
    #[cfg(feature = "sqlite")]
    async fn open_existing_sqlite(config: &OutboxConfig) -> Result<Self, OutboxError> {
        let url = config.database_url.expose();
        let options = SqliteConnectOptions::from_str(url)
            .map_err(OutboxError::db("parsing the SQLite URL"))?
            .create_if_missing(false)
            .busy_timeout(Duration::from_secs(10));
        let memory = url.contains(":memory:") || url.contains("mode=memory");
        if !memory && !options.get_filename().exists() {
            return Err(OutboxError::NoOutboxTable {
                table: SQLITE_TABLE,
            });
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .map_err(OutboxError::db("opening the SQLite database"))?;
        Ok(Self::Sqlite(
            SqliteOutbox::new(pool).with_max_backlog(config.max_backlog),
        ))
    }

    /// Ok if the outbox table exists, else [`OutboxError::NoOutboxTable`].
    async fn check_table(&self) -> Result<(), OutboxError> {
        let (exists, table) = match self {
            #[cfg(feature = "postgres")]
            Self::Postgres(store) => (
                sqlx::query_scalar("SELECT to_regclass('event_bus.outbox') IS NOT NULL")
                    .fetch_one(store.pool())
                    .await,
                POSTGRES_TABLE,
            ),
            #[cfg(feature = "sqlite")]
            Self::Sqlite(store) => (
                sqlx::query_scalar(
                    "SELECT EXISTS (SELECT 1 FROM sqlite_master \
                     WHERE type = 'table' AND name = 'event_bus_outbox')",
                )
                .fetch_one(store.pool())
                .await,
                SQLITE_TABLE,
            ),
        };
        match exists.map_err(OutboxError::db("looking for the outbox table"))? {
            true => Ok(()),
            false => Err(OutboxError::NoOutboxTable { table }),
        }
    }

    /// Runs the store's migrations (`event-bus outbox migrate`).
    ///
    /// See the type's example.
    pub async fn migrate(&self) -> Result<(), OutboxError> {
        match self {
            #[cfg(feature = "postgres")]
            Self::Postgres(store) => store.migrate().await,
            #[cfg(feature = "sqlite")]
            Self::Sqlite(store) => store.migrate().await,
        }
    }

    /// Pending count, oldest age and up to `failing_keys_limit` failing keys
    /// (`event-bus outbox status`); [`OutboxError::NoOutboxTable`] if the database has
    /// no outbox table (nothing is created).
    ///
    /// See the type's example.
    pub async fn status(&self, failing_keys_limit: usize) -> Result<OutboxStatus, OutboxError> {
        self.check_table().await?;
        match self {
            #[cfg(feature = "postgres")]
            Self::Postgres(store) => store.status(failing_keys_limit).await,
            #[cfg(feature = "sqlite")]
            Self::Sqlite(store) => store.status(failing_keys_limit).await,
        }
    }

    /// Up to `limit` parked rows matching `filter` (`event-bus outbox parked`).
    ///
    /// ```no_run
    /// # use event_bus_kafka::outbox::*;
    /// # async fn demo(outbox: AnyOutbox) -> Result<(), OutboxError> {
    /// let parked = outbox.parked(&ParkedFilter::default(), 100).await?;
    /// # Ok(()) }
    /// ```
    pub async fn parked(
        &self,
        filter: &ParkedFilter,
        limit: usize,
    ) -> Result<Vec<ParkedRow>, OutboxError> {
        match self {
            #[cfg(feature = "postgres")]
            Self::Postgres(store) => store.parked(filter, limit).await,
            #[cfg(feature = "sqlite")]
            Self::Sqlite(store) => store.parked(filter, limit).await,
        }
    }

    /// Unparks the parked rows matching `filter` (`event-bus outbox retry --execute`).
    ///
    /// ```no_run
    /// # use event_bus_kafka::outbox::*;
    /// # async fn demo(outbox: AnyOutbox) -> Result<(), OutboxError> {
    /// let unparked = outbox.retry_parked(&ParkedFilter::default()).await?;
    /// # Ok(()) }
    /// ```
    pub async fn retry_parked(&self, filter: &ParkedFilter) -> Result<u64, OutboxError> {
        match self {
            #[cfg(feature = "postgres")]
            Self::Postgres(store) => store.retry_parked(filter).await,
            #[cfg(feature = "sqlite")]
            Self::Sqlite(store) => store.retry_parked(filter).await,
        }
    }

    /// Deletes the parked rows matching `filter` (`event-bus outbox drop --execute`).
    ///
    /// ```no_run
    /// # use event_bus_kafka::outbox::*;
    /// # async fn demo(outbox: AnyOutbox) -> Result<(), OutboxError> {
    /// let dropped = outbox.drop_parked(&ParkedFilter { ids: vec![OutboxId(7)], ..Default::default() }).await?;
    /// # Ok(()) }
    /// ```
    pub async fn drop_parked(&self, filter: &ParkedFilter) -> Result<u64, OutboxError> {
        match self {
            #[cfg(feature = "postgres")]
            Self::Postgres(store) => store.drop_parked(filter).await,
            #[cfg(feature = "sqlite")]
            Self::Sqlite(store) => store.drop_parked(filter).await,
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
            #[cfg(feature = "postgres")]
            Self::Postgres(store) => {
                Relay::new(Arc::new(store), producer, config)
                    .run_until(shutdown)
                    .await
            }
            #[cfg(feature = "sqlite")]
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
            #[cfg(feature = "postgres")]
            Self::Postgres(store) => Relay::new(Arc::new(store), producer, config).drain().await,
            #[cfg(feature = "sqlite")]
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

/// Only builds without one of the stores have something to test here.
#[cfg(all(test, not(all(feature = "postgres", feature = "sqlite"))))]
mod tests {
    use super::*;

    /// A URL of the store this build left out, and the feature that adds it.
    #[cfg(not(feature = "sqlite"))]
    const LEFT_OUT: (&str, &str) = ("sqlite::memory:", "sqlite");
    #[cfg(all(feature = "sqlite", not(feature = "postgres")))]
    const LEFT_OUT: (&str, &str) = ("postgresql://app@localhost/app", "postgres");

    #[tokio::test]
    async fn a_url_of_a_store_left_out_names_its_feature() {
        let (url, feature) = LEFT_OUT;
        let config = OutboxConfig::new(url);
        for opened in [
            AnyOutbox::connect(&config).await,
            AnyOutbox::open_existing(&config).await,
        ] {
            let error = opened.expect_err("this build has no such store");
            assert!(
                matches!(&error, OutboxError::StoreNotBuilt { feature: named, .. } if *named == feature),
                "{error:?}"
            );
            assert!(
                error.to_string().contains(&format!("`{feature}` feature")),
                "{error}"
            );
        }
    }
}
