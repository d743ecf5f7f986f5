//! The PostgreSQL inbox store: table `event_bus.inbox`, next to the outbox.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::PgPool;
use sqlx::{Postgres, Transaction};

use super::entry::InboxEntry;
use super::error::InboxError;
use super::status::{InboxStatus, ReceiverRowTuple};
use super::store::{prune_in_batches, InboxStore, MAX_PRUNE_AGE};
use crate::outbox::PostgresOutbox;

/// The inbox table, as [`InboxError::NoInboxTable`] names it.
pub(crate) const TABLE: &str = "event_bus.inbox";

const MARK_SQL: &str = "INSERT INTO event_bus.inbox \
    (consumer_group, receiver, ce_id, topic, \"partition\", \"offset\") \
    VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING";

/// Rows per group and receiver, with the oldest `handled_at` in Unix milliseconds.
const RECEIVERS_SQL: &str = "SELECT consumer_group, receiver, count(*), \
        (extract(epoch FROM min(handled_at)) * 1000)::bigint \
    FROM event_bus.inbox GROUP BY consumer_group, receiver ORDER BY consumer_group, receiver";

const CUTOFF_SQL: &str = "SELECT now() - make_interval(secs => $1)";

const COUNT_SQL: &str = "SELECT count(*) FROM event_bus.inbox";

/// One batch of the rows handled before `$1`, oldest first (through the `handled_at`
/// index), `$2` at most.
const PRUNE_SQL: &str = "DELETE FROM event_bus.inbox WHERE (consumer_group, receiver, ce_id) IN ( \
        SELECT consumer_group, receiver, ce_id FROM event_bus.inbox \
        WHERE handled_at < $1 ORDER BY handled_at LIMIT $2)";

/// The PostgreSQL inbox. Cheap to clone (one pool). Its table lives in schema
/// `event_bus` and is created by the outbox migrations ([`migrate`](Self::migrate),
/// `event-bus outbox migrate`).
///
/// ```no_run
/// use event_bus_kafka::inbox::{Inbox, PostgresInbox};
/// use event_bus_kafka::outbox::PostgresOutbox;
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let outbox = PostgresOutbox::connect("postgres://app@localhost/app").await?;
/// outbox.migrate().await?; // the outbox and the inbox tables
/// let inbox = Inbox::new(PostgresInbox::from_outbox(&outbox)); // one pool for both
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct PostgresInbox {
    pool: PgPool,
}

impl PostgresInbox {
    /// An inbox on `pool`. Each event a transactional receiver handles holds one of the
    /// pool's connections while the receiver runs: size the pool for the consumer's
    /// `max_in_flight` (and whatever else uses it).
    ///
    /// ```no_run
    /// # fn demo(pool: sqlx::PgPool) {
    /// let inbox = event_bus_kafka::inbox::PostgresInbox::new(pool);
    /// # }
    /// ```
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Connects a pool of 10 to `url`, as [`PostgresOutbox::connect`] does (URL
    /// parameters sqlx does not know are dropped and logged by name only).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), event_bus_kafka::inbox::InboxError> {
    /// let inbox = event_bus_kafka::inbox::PostgresInbox::connect("postgres://app@localhost/app").await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect(url: &str) -> Result<Self, InboxError> {
        Self::connect_with_pool_size(url, 10).await
    }

    /// Connects a pool of `max_connections` (at least 2) to `url`.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), event_bus_kafka::inbox::InboxError> {
    /// let inbox = event_bus_kafka::inbox::PostgresInbox::connect_with_pool_size("postgres://localhost/app", 20).await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect_with_pool_size(
        url: &str,
        max_connections: u32,
    ) -> Result<Self, InboxError> {
        let outbox = PostgresOutbox::connect_with_pool_size(url, max_connections)
            .await
            .map_err(InboxError::Connect)?;
        Ok(Self::from_outbox(&outbox))
    }

    /// An inbox sharing `outbox`'s pool, so a receiver can enqueue events with a
    /// [`TransactionalOutbox`](crate::outbox::TransactionalOutbox) in the inbox's
    /// transaction (consume, then produce, in one transaction).
    ///
    /// See the type's example.
    pub fn from_outbox(outbox: &PostgresOutbox) -> Self {
        Self::new(outbox.pool().clone())
    }

    /// The pool.
    ///
    /// ```no_run
    /// # async fn demo(inbox: event_bus_kafka::inbox::PostgresInbox) -> Result<(), sqlx::Error> {
    /// let tx = inbox.pool().begin().await?;
    /// # Ok(()) }
    /// ```
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Runs the outbox migrations (schema `event_bus`, the outbox and inbox tables),
    /// exactly as [`PostgresOutbox::migrate`]: idempotent, safe from several processes.
    ///
    /// See the type's example.
    pub async fn migrate(&self) -> Result<(), InboxError> {
        PostgresOutbox::new(self.pool.clone())
            .migrate()
            .await
            .map_err(InboxError::Migrate)
    }
}

#[async_trait]
impl InboxStore for PostgresInbox {
    type Database = Postgres;

    fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn mark_handled(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        entry: &InboxEntry<'_>,
    ) -> Result<bool, InboxError> {
        let inserted = sqlx::query(MARK_SQL)
            .bind(entry.consumer_group)
            .bind(entry.receiver)
            .bind(entry.ce_id)
            .bind(entry.topic)
            .bind(entry.partition)
            .bind(entry.offset)
            .execute(&mut **tx)
            .await
            .map_err(InboxError::db("recording the event in the inbox", TABLE))?;
        Ok(inserted.rows_affected() == 1)
    }

    async fn check_committable(
        &self,
        tx: &mut Transaction<'_, Postgres>,
    ) -> Result<(), InboxError> {
        match sqlx::query("SELECT 1").execute(&mut **tx).await {
            Ok(_) => Ok(()),
            Err(source) if is_aborted_transaction(&source) => Err(InboxError::Aborted { source }),
            Err(source) => Err(InboxError::db(
                "checking the transaction before its commit",
                TABLE,
            )(source)),
        }
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
        // The database's clock wrote `handled_at`, so it decides what is old.
        let cutoff: DateTime<Utc> = sqlx::query_scalar(CUTOFF_SQL)
            .bind(older_than.as_secs_f64())
            .fetch_one(&self.pool)
            .await
            .map_err(InboxError::db("computing the prune cut-off", TABLE))?;
        let delete_batch = |limit| async move {
            sqlx::query(PRUNE_SQL)
                .bind(cutoff)
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

/// Whether `error` is PostgreSQL's "current transaction is aborted" (SQLSTATE 25P02).
fn is_aborted_transaction(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .and_then(|db| db.code())
        .is_some_and(|code| code == "25P02")
}
