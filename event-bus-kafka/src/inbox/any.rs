//! [`AnyInbox`]: whichever store a database URL names, for `event-bus inbox …`.

use std::time::Duration;

use super::error::InboxError;
#[cfg(feature = "postgres")]
use super::postgres::PostgresInbox;
#[cfg(feature = "sqlite")]
use super::sqlite::SqliteInbox;
use super::status::InboxStatus;
use super::store::InboxStore;
use crate::outbox::{AnyOutbox, OutboxConfig, OutboxError};

/// The inbox store of a `postgres://`/`postgresql://` or `sqlite:` URL: the outbox's
/// database (`EVENT_BUS_OUTBOX_DATABASE_URL`), opened the same way.
///
/// ```no_run
/// use std::time::Duration;
/// use event_bus_kafka::inbox::AnyInbox;
/// # async fn demo() -> Result<(), event_bus_kafka::inbox::InboxError> {
/// let inbox = AnyInbox::connect("sqlite:app.db").await?;
/// println!("{} rows", inbox.status().await?.rows);
/// let deleted = inbox.prune(Duration::from_secs(7 * 24 * 3600), 10_000).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub enum AnyInbox {
    /// PostgreSQL (feature `postgres`).
    #[cfg(feature = "postgres")]
    Postgres(PostgresInbox),
    /// SQLite (feature `sqlite`).
    #[cfg(feature = "sqlite")]
    Sqlite(SqliteInbox),
}

impl AnyInbox {
    /// Connects to the store at `url` (a pool of 10 for PostgreSQL; a SQLite file is
    /// created if missing). No migration runs.
    ///
    /// See the type's example.
    pub async fn connect(url: &str) -> Result<Self, InboxError> {
        let outbox = AnyOutbox::connect(&OutboxConfig::new(url))
            .await
            .map_err(opening_failed)?;
        Ok(Self::from_outbox(&outbox))
    }

    /// Opens the store at `url` without changing anything, as
    /// [`AnyOutbox::open_existing`] does: no SQLite file is created (a missing one is
    /// [`InboxError::NoInboxTable`]) and no migration runs (`event-bus inbox status`).
    ///
    /// ```no_run
    /// use event_bus_kafka::inbox::{AnyInbox, InboxError};
    /// # async fn demo() -> Result<(), InboxError> {
    /// match AnyInbox::open_existing("sqlite:app.db").await?.status().await {
    ///     Ok(status) => status.log(),
    ///     Err(InboxError::NoInboxTable { .. }) => println!("run `event-bus outbox migrate`"),
    ///     Err(other) => return Err(other),
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn open_existing(url: &str) -> Result<Self, InboxError> {
        let outbox = AnyOutbox::open_existing(&OutboxConfig::new(url))
            .await
            .map_err(opening_failed)?;
        Ok(Self::from_outbox(&outbox))
    }

    /// The inbox in `outbox`'s database, sharing its pool (e.g. an outbox opened with
    /// [`AnyOutbox::open_existing`], which creates nothing).
    ///
    /// ```no_run
    /// # use event_bus_kafka::outbox::{AnyOutbox, OutboxConfig};
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// let outbox = AnyOutbox::open_existing(&OutboxConfig::new("sqlite:app.db")).await?;
    /// let inbox = event_bus_kafka::inbox::AnyInbox::from_outbox(&outbox);
    /// # Ok(()) }
    /// ```
    pub fn from_outbox(outbox: &AnyOutbox) -> Self {
        match outbox {
            #[cfg(feature = "postgres")]
            AnyOutbox::Postgres(store) => Self::Postgres(PostgresInbox::from_outbox(store)),
            #[cfg(feature = "sqlite")]
            AnyOutbox::Sqlite(store) => Self::Sqlite(SqliteInbox::from_outbox(store)),
        }
    }

    /// See [`InboxStore::status`] ([`InboxError::NoInboxTable`] if the table is missing;
    /// nothing is created).
    ///
    /// See the type's example.
    pub async fn status(&self) -> Result<InboxStatus, InboxError> {
        match self {
            #[cfg(feature = "postgres")]
            Self::Postgres(store) => store.status().await,
            #[cfg(feature = "sqlite")]
            Self::Sqlite(store) => store.status().await,
        }
    }

    /// See [`InboxStore::prune`].
    ///
    /// See the type's example.
    pub async fn prune(&self, older_than: Duration, batch_size: usize) -> Result<u64, InboxError> {
        match self {
            #[cfg(feature = "postgres")]
            Self::Postgres(store) => store.prune(older_than, batch_size).await,
            #[cfg(feature = "sqlite")]
            Self::Sqlite(store) => store.prune(older_than, batch_size).await,
        }
    }

    /// Runs the outbox migrations, which create the inbox table too (`event-bus outbox
    /// migrate`; idempotent).
    ///
    /// ```no_run
    /// # async fn demo(inbox: event_bus_kafka::inbox::AnyInbox) -> Result<(), event_bus_kafka::inbox::InboxError> {
    /// inbox.migrate().await?;
    /// # Ok(()) }
    /// ```
    pub async fn migrate(&self) -> Result<(), InboxError> {
        match self {
            #[cfg(feature = "postgres")]
            Self::Postgres(store) => store.migrate().await,
            #[cfg(feature = "sqlite")]
            Self::Sqlite(store) => store.migrate().await,
        }
    }
}

/// The inbox's error for a store that could not be opened.
fn opening_failed(error: OutboxError) -> InboxError {
    match error {
        OutboxError::UnsupportedUrl { scheme } => InboxError::UnsupportedUrl { scheme },
        // Only a missing SQLite file gets here: its inbox table is missing too.
        #[cfg(feature = "sqlite")]
        OutboxError::NoOutboxTable { .. } => InboxError::NoInboxTable {
            table: super::sqlite::TABLE,
        },
        other => InboxError::Connect(other),
    }
}
