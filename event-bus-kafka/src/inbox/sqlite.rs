//! The SQLite inbox store: table `event_bus_inbox`, next to the outbox.

use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use sqlx::sqlite::SqlitePool;
use sqlx::{Sqlite, Transaction};

use super::entry::InboxEntry;
use super::error::InboxError;
use super::status::{InboxStatus, ReceiverRowTuple};
use super::store::{prune_in_batches, InboxStore, MAX_PRUNE_AGE};
use crate::outbox::SqliteOutbox;

/// The inbox table, as [`InboxError::NoInboxTable`] names it.
pub(crate) const TABLE: &str = "event_bus_inbox";

const MARK_SQL: &str = "INSERT INTO event_bus_inbox \
    (consumer_group, receiver, ce_id, handled_at_ms, topic, \"partition\", \"offset\") \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING";

/// Rows per group and receiver, with the oldest `handled_at_ms`.
const RECEIVERS_SQL: &str = "SELECT consumer_group, receiver, count(*), min(handled_at_ms) \
    FROM event_bus_inbox GROUP BY consumer_group, receiver ORDER BY consumer_group, receiver";

const COUNT_SQL: &str = "SELECT count(*) FROM event_bus_inbox";

/// One batch of the rows handled before `?1` (Unix ms), oldest first, `?2` at most.
const PRUNE_SQL: &str = "DELETE FROM event_bus_inbox WHERE rowid IN ( \
        SELECT rowid FROM event_bus_inbox WHERE handled_at_ms < ?1 \
        ORDER BY handled_at_ms LIMIT ?2)";

/// The SQLite inbox. Cheap to clone (one pool).
///
/// SQLite has one writer at a time: each event's transaction holds the write lock from
/// its inbox row until it commits, so transactional receivers on one file run one after
/// the other (others wait up to the busy timeout, 10 s with
/// [`connect`](Self::connect)). Keep their transactions short. Inside a receiver, use
/// the transaction it is given, never the pool: with `sqlite::memory:` (one connection)
/// a second connection would wait for ever.
///
/// ```no_run
/// use event_bus_kafka::inbox::{Inbox, SqliteInbox};
/// # async fn demo() -> Result<(), event_bus_kafka::inbox::InboxError> {
/// let store = SqliteInbox::connect("sqlite:app.db").await?;
/// store.migrate().await?;
/// let inbox = Inbox::new(store);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct SqliteInbox {
    pool: SqlitePool,
}

impl SqliteInbox {
    /// An inbox on `pool`.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sqlx::Error> {
    /// let pool = sqlx::SqlitePool::connect("sqlite:app.db?mode=rwc").await?;
    /// let inbox = event_bus_kafka::inbox::SqliteInbox::new(pool);
    /// # Ok(()) }
    /// ```
    pub fn new(pool: SqlitePool) -> Self {
        Self { pool }
    }

    /// Opens (creating it if missing) the database at `url` as
    /// [`SqliteOutbox::connect`] does: WAL journaling and a 10 s busy timeout for
    /// files; `sqlite::memory:` is one connection, gone when the store is dropped.
    ///
    /// See the type's example.
    pub async fn connect(url: &str) -> Result<Self, InboxError> {
        let outbox = SqliteOutbox::connect(url)
            .await
            .map_err(InboxError::Connect)?;
        Ok(Self::from_outbox(&outbox))
    }

    /// An inbox sharing `outbox`'s pool (consume, then produce, in one transaction).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// let outbox = event_bus_kafka::outbox::SqliteOutbox::connect("sqlite:app.db").await?;
    /// let inbox = event_bus_kafka::inbox::SqliteInbox::from_outbox(&outbox);
    /// # Ok(()) }
    /// ```
    pub fn from_outbox(outbox: &SqliteOutbox) -> Self {
        Self::new(outbox.pool().clone())
    }

    /// The pool.
    ///
    /// ```no_run
    /// # async fn demo(inbox: event_bus_kafka::inbox::SqliteInbox) -> Result<(), sqlx::Error> {
    /// let tx = inbox.pool().begin().await?;
    /// # Ok(()) }
    /// ```
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Runs the outbox migrations, which create the inbox table too, exactly as
    /// [`SqliteOutbox::migrate`] (idempotent).
    ///
    /// See the type's example.
    pub async fn migrate(&self) -> Result<(), InboxError> {
        SqliteOutbox::new(self.pool.clone())
            .migrate()
            .await
            .map_err(InboxError::Migrate)
    }
}

#[async_trait]
impl InboxStore for SqliteInbox {
    type Database = Sqlite;

    fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    async fn mark_handled(
        &self,
        tx: &mut Transaction<'_, Sqlite>,
        entry: &InboxEntry<'_>,
    ) -> Result<bool, InboxError> {
        let inserted = sqlx::query(MARK_SQL)
            .bind(entry.consumer_group)
            .bind(entry.receiver)
            .bind(entry.ce_id.to_string())
            .bind(Utc::now().timestamp_millis())
            .bind(entry.topic)
            .bind(entry.partition)
            .bind(entry.offset)
            .execute(&mut **tx)
            .await
            .map_err(InboxError::db("recording the event in the inbox", TABLE))?;
        Ok(inserted.rows_affected() == 1)
    }

    async fn status(&self) -> Result<InboxStatus, InboxError> {
        let rows: Vec<ReceiverRowTuple> = sqlx::query_as(RECEIVERS_SQL)
            .fetch_all(&self.pool)
            .await
            .map_err(InboxError::db("reading the inbox status", TABLE))?;
        let status = InboxStatus::from_rows(rows);
        status.record_metrics();
        Ok(status)
    }

    async fn prune(&self, older_than: Duration, batch_size: usize) -> Result<u64, InboxError> {
        if older_than > MAX_PRUNE_AGE {
            return Ok(0);
        }
        let age_ms = i64::try_from(older_than.as_millis()).unwrap_or(i64::MAX);
        let cutoff_ms = Utc::now().timestamp_millis().saturating_sub(age_ms);
        let delete_batch = |limit| async move {
            sqlx::query(PRUNE_SQL)
                .bind(cutoff_ms)
                .bind(limit)
                .execute(&self.pool)
                .await
                .map(|done| done.rows_affected())
                .map_err(InboxError::db("pruning the inbox", TABLE))
        };
        let count_rows = || async {
            sqlx::query_scalar(COUNT_SQL)
                .fetch_one(&self.pool)
                .await
                .map_err(InboxError::db("counting the inbox rows", TABLE))
        };
        prune_in_batches(batch_size, delete_batch, count_rows).await
    }
}
