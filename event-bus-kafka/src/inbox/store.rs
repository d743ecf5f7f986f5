//! The storage side of the inbox: what a store must do for transactional receivers,
//! `event-bus inbox status|prune` and retention.

use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;

use super::entry::InboxEntry;
use super::error::InboxError;
use super::status::InboxStatus;
use crate::observability::metrics;

/// Ages beyond this prune nothing (no row is that old), so a huge `older_than` never
/// overflows a timestamp.
pub(crate) const MAX_PRUNE_AGE: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// An inbox store: PostgreSQL ([`PostgresInbox`](super::PostgresInbox)) or SQLite
/// ([`SqliteInbox`](super::SqliteInbox)). It shares the outbox's database, connection
/// settings and migrations (each store's `migrate()` runs the outbox migrations, which
/// create the inbox table too).
///
/// The contract [`Inbox`](super::Inbox) relies on: [`mark_handled`](Self::mark_handled)
/// inserts the entry's row in the caller's transaction unless a row with its key
/// (consumer group, receiver, `ce_id`) exists, and says which happened. On PostgreSQL a
/// second transaction inserting the same key waits for the first to end, so two
/// deliveries of one event running at once (a rebalance) cannot both see "first".
///
/// ```no_run
/// use event_bus_core::{EventMetadata, dispatch::DeliveryContext};
/// use event_bus_kafka::inbox::{InboxEntry, InboxStore, PostgresInbox};
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let store = PostgresInbox::connect("postgres://app@localhost/app").await?;
/// store.migrate().await?;
/// let ctx = DeliveryContext::local(EventMetadata::new("org.example.a.b.created.v1"));
/// let mut tx = store.pool().begin().await?;
/// assert!(store.mark_handled(&mut tx, &InboxEntry::for_delivery("audit", &ctx)).await?);
/// tx.commit().await?;
/// # Ok(()) }
/// ```
#[async_trait]
pub trait InboxStore: Send + Sync + 'static {
    /// The sqlx database.
    type Database: sqlx::Database;

    /// The pool transactions are begun on.
    ///
    /// See the trait's example.
    fn pool(&self) -> &sqlx::Pool<Self::Database>;

    /// Records `entry` in `tx`: `true` if this is the first time (the row was
    /// inserted), `false` if the row exists (a duplicate; nothing was written).
    ///
    /// See the trait's example.
    async fn mark_handled(
        &self,
        tx: &mut sqlx::Transaction<'_, Self::Database>,
        entry: &InboxEntry<'_>,
    ) -> Result<bool, InboxError>;

    /// Checks, just before the commit, that `tx` can still commit. PostgreSQL answers
    /// the `COMMIT` of a transaction aborted by a failed statement with a rollback and
    /// no error, so a receiver that swallowed a statement's error would lose its writes
    /// and the inbox row while the event counted as handled; its store runs one cheap
    /// statement here, which fails in an aborted transaction
    /// ([`InboxError::Aborted`]). SQLite needs no check (the default does nothing).
    ///
    /// ```no_run
    /// # use event_bus_kafka::inbox::*;
    /// # async fn demo(store: PostgresInbox) -> Result<(), InboxError> {
    /// let mut tx = store.pool().begin().await.map_err(|source| InboxError::Begin { source })?;
    /// store.check_committable(&mut tx).await?;
    /// # Ok(()) }
    /// ```
    async fn check_committable(
        &self,
        _tx: &mut sqlx::Transaction<'_, Self::Database>,
    ) -> Result<(), InboxError> {
        Ok(())
    }

    /// Row count, the oldest row and rows per group and receiver; sets the
    /// `event_bus_inbox_rows` gauge.
    ///
    /// ```no_run
    /// # use event_bus_kafka::inbox::*;
    /// # async fn demo(store: PostgresInbox) -> Result<(), InboxError> {
    /// let status = store.status().await?;
    /// println!("{} rows, oldest {:?} old", status.rows, status.oldest_age);
    /// # Ok(()) }
    /// ```
    async fn status(&self) -> Result<InboxStatus, InboxError>;

    /// Deletes the rows handled more than `older_than` ago, oldest first, at most
    /// `batch_size` (at least 1) per statement, each statement a transaction of its own
    /// (so a large prune never holds many locks); returns how many were deleted. Counts
    /// them in `event_bus_inbox_pruned_total` and sets `event_bus_inbox_rows` (one
    /// count of the table afterwards).
    ///
    /// A pruned event delivered again is handled again: keep rows for longer than a
    /// duplicate can arrive (a replay, a DLQ redrive, a consumer's restart from an old
    /// committed offset).
    ///
    /// ```no_run
    /// # use event_bus_kafka::inbox::*;
    /// # async fn demo(store: SqliteInbox) -> Result<(), InboxError> {
    /// let week = std::time::Duration::from_secs(7 * 24 * 3600);
    /// let deleted = store.prune(week, 10_000).await?;
    /// # Ok(()) }
    /// ```
    async fn prune(&self, older_than: Duration, batch_size: usize) -> Result<u64, InboxError>;
}

/// Runs `delete_batch(limit)` until it deletes fewer than `batch_size` rows, then
/// `count_rows()`: counts the deleted rows in `event_bus_inbox_pruned_total`, sets
/// `event_bus_inbox_rows`, logs the figures; returns how many were deleted.
pub(crate) async fn prune_in_batches<D, DF, C, CF>(
    batch_size: usize,
    mut delete_batch: D,
    count_rows: C,
) -> Result<u64, InboxError>
where
    D: FnMut(i64) -> DF,
    DF: Future<Output = Result<u64, InboxError>>,
    C: FnOnce() -> CF,
    CF: Future<Output = Result<i64, InboxError>>,
{
    let limit = batch_size.max(1);
    let limit_sql = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut deleted = 0;
    loop {
        let batch = delete_batch(limit_sql).await?;
        deleted += batch;
        metrics::record_inbox_pruned(batch);
        if batch < limit as u64 {
            break;
        }
    }
    let rows = u64::try_from(count_rows().await?).unwrap_or(0);
    metrics::record_inbox_rows(rows);
    tracing::info!(target: "event_bus::inbox", deleted, rows, "inbox rows pruned");
    Ok(deleted)
}
