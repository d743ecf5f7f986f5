//! Outbox errors.

use crate::config::ConfigError;
use crate::producer::ProducerError;

/// Why an outbox operation failed. When `send`/`enqueue` returns one of these, the event
/// was neither delivered nor stored: the caller still holds it.
///
/// ```
/// use event_bus_kafka::outbox::OutboxError;
/// let err = OutboxError::Full { pending: 100_000, max_backlog: 100_000 };
/// assert!(err.to_string().contains("EVENT_BUS_OUTBOX_MAX_BACKLOG"));
/// ```
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// The backlog reached its limit; the event was not stored (back-pressure).
    #[error(
        "the outbox is full: {pending} events wait (limit {max_backlog}); the event was NOT stored. \
         Is the relay running (`event-bus outbox relay`) and the broker reachable? \
         `event-bus outbox status` shows failing keys; raise EVENT_BUS_OUTBOX_MAX_BACKLOG to allow more"
    )]
    Full {
        /// Events waiting when the limit was hit.
        pending: u64,
        /// The configured limit.
        max_backlog: u64,
    },
    /// A database statement failed.
    #[error(
        "outbox database error while {operation}: {source}; {}",
        database_hint(source)
    )]
    Database {
        /// What the outbox was doing.
        operation: &'static str,
        /// sqlx's error.
        #[source]
        source: sqlx::Error,
    },
    /// Running the outbox migrations failed.
    #[error("cannot migrate the outbox tables: {0}; the database user needs CREATE rights (PostgreSQL: on the database, for schema `event_bus`)")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    /// The event could not be encoded, or the broker refused it permanently (for example
    /// it is too large): storing it would only delay the same failure.
    #[error(transparent)]
    Producer(#[from] ProducerError),
    /// A stored row cannot be read back (edited by hand?).
    #[error("outbox row {id} is unreadable: {reason}; fix or delete it (DELETE FROM the outbox table WHERE id = {id})")]
    CorruptRow {
        /// The row id.
        id: i64,
        /// What is wrong.
        reason: String,
    },
    /// The outbox database URL names no supported store.
    #[error("unsupported outbox database URL `{scheme}…`: use postgres://… (production) or sqlite:… (single instance)")]
    UnsupportedUrl {
        /// The URL's scheme (never the whole URL: it may hold a password).
        scheme: String,
    },
    /// The outbox database URL names a store this build left out (a Cargo feature of
    /// `event-bus-kafka` that is off).
    #[error(
        "this build cannot open `{scheme}…` URLs: event-bus-kafka was compiled without its \
         `{feature}` feature; enable it in Cargo.toml (it is on by default) or use another store"
    )]
    StoreNotBuilt {
        /// The URL's scheme.
        scheme: String,
        /// The Cargo feature that adds this store.
        feature: &'static str,
    },
    /// Emergency mode could not check whether older events of the key wait in the
    /// outbox, and could not store the event there either: it was neither sent nor
    /// stored (sending it could have overtaken an older event of its key).
    #[error(
        "the event was NOT sent and NOT stored: cannot tell whether older events of key `{key}` \
         (topic {topic}) wait in the outbox ({lane_check}), and storing it there failed too \
         ({insert}); sending it directly could overtake them. Check that the outbox database is \
         reachable (`event-bus outbox status`), then send it again"
    )]
    OrderUnknown {
        /// The record's topic.
        topic: String,
        /// The record's key as text.
        key: String,
        /// Why the "does this key have events waiting?" check failed.
        lane_check: Box<OutboxError>,
        /// Why storing the event failed.
        #[source]
        insert: Box<OutboxError>,
    },
    /// The database has no outbox table: nothing was ever migrated there (a read-only
    /// command such as `event-bus outbox status` creates nothing).
    #[error(
        "no outbox table ({table}) in this database: run `event-bus outbox migrate`, or start \
         a relay (`event-bus outbox relay` migrates first; in code, call `migrate()` on the \
         store at start-up); if it should be there, check EVENT_BUS_OUTBOX_DATABASE_URL"
    )]
    NoOutboxTable {
        /// The table looked for.
        table: &'static str,
    },
    /// Another relay holds the lease of this SQLite database file (one relay per file):
    /// a draining relay does not wait for it.
    #[error(
        "another outbox relay (pid {pid}) is publishing the SQLite outbox {file} (one relay \
         per database file); it publishes the waiting events itself. Stop it first to drain \
         from here; if it was killed, its lease expires within {expires_in_s} s"
    )]
    RelayBusy {
        /// The database file.
        file: String,
        /// The process holding the lease.
        pid: i64,
        /// Seconds until its lease expires unless renewed.
        expires_in_s: u64,
    },
    /// This relay could not renew its lease on the SQLite database file in time (the
    /// process was paused, the database stayed locked) or another relay took it: it
    /// stopped before claiming more.
    #[error(
        "the outbox relay lost its lease on the SQLite outbox {file} (not renewed in time: \
         the process was paused or the database stayed locked, and another relay may have \
         taken over); it stopped to keep key order. Restart it: it waits for the lease"
    )]
    LeaseLost {
        /// The database file.
        file: String,
    },
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The relay task ended abnormally (it panicked or was aborted).
    #[error("the outbox relay task ended abnormally: {0}")]
    RelayTask(String),
}

/// What to do about a database error: a column the SDK's queries name is missing when
/// the outbox tables predate its migrations (PostgreSQL 42703, SQLite "no such column").
fn database_hint(error: &sqlx::Error) -> &'static str {
    if crate::failure::is_missing_column(error) {
        "the outbox tables are older than this SDK: run `event-bus outbox migrate` (or call \
         `migrate()` on the store at start-up)"
    } else {
        "check that the database is reachable and migrated"
    }
}

impl OutboxError {
    /// A database error while doing `operation`.
    pub(crate) fn db(operation: &'static str) -> impl FnOnce(sqlx::Error) -> Self {
        move |source| Self::Database { operation, source }
    }
}
