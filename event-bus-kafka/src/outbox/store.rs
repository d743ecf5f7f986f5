//! The storage side of the outbox: what a store must do for the emergency producer,
//! transactional enqueues and the relay.
//!
//! # Parked rows
//!
//! A row the relay gives up on (the classifier says too large or refused for good, or it
//! cannot be read, or it keeps failing for a passing reason past the attempt limit; see
//! [`RelayConfig`](super::RelayConfig)) is *parked*: marked in place with `parked_at`
//! and `parked_reason` columns (added by a migration of their own), not moved to a
//! table of its own. In place, it keeps its id and lane, so the rule that only a lane's
//! oldest row (its head) is claimed makes its key's later rows wait behind it with no
//! further bookkeeping, and "does this key have rows waiting?" (the emergency producer's
//! check) still sees it. A separate table would need every claim and that check to look
//! in two tables, and a retry to move the row back without changing its id. Keyless rows
//! have lanes of their own, so a parked keyless row holds back nothing. Parked rows count
//! towards the backlog limit until a person retries or drops them
//! (`event-bus outbox parked|retry|drop`).

use std::time::Duration;

use async_trait::async_trait;

use super::error::OutboxError;
use super::lane::Lane;
use super::row::{BatchOutcome, OutboxId, OutboxRow, ParkedFilter, ParkedRow, UnreadableRow};
use super::status::OutboxStatus;
use crate::producer::EncodedRecord;

/// How much one claim may take.
///
/// ```
/// let limits = event_bus_kafka::outbox::ClaimLimits { max_rows: 1000, max_lanes: 1000 };
/// assert_eq!(limits.max_rows, 1000);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimLimits {
    /// Rows per batch.
    pub max_rows: usize,
    /// Lanes (keys) per batch.
    pub max_lanes: usize,
}

/// An outbox store: PostgreSQL ([`PostgresOutbox`](super::PostgresOutbox)) or SQLite
/// ([`SqliteOutbox`](super::SqliteOutbox)).
///
/// The contract the relay relies on:
///
/// - [`insert`](Self::insert) assigns ascending ids and refuses with
///   [`OutboxError::Full`] beyond the backlog limit.
/// - [`claim`](Self::claim) returns, in id order, rows of lanes whose oldest row (the
///   *head*) is due, and only a prefix of each lane; while the batch is held no other
///   claim (in any process, for PostgreSQL) returns rows of those lanes. A lane whose
///   head is backing off is skipped entirely: a failing row holds back its key only.
///   A lane whose head is **parked** is skipped until a person retries or drops that
///   row ([`retry_parked`](Self::retry_parked), [`drop_parked`](Self::drop_parked)):
///   its later rows wait, other keys flow. A claimed row that cannot be decoded is
///   returned in [`ClaimedBatch::unreadable`], not as an error of the claim.
/// - [`ClaimedBatch::complete`] deletes delivered rows and records failures (parking
///   those marked so) atomically; dropping a batch without completing it leaves every
///   row as it was.
///
/// ```no_run
/// use event_bus_kafka::outbox::{ClaimLimits, ClaimedBatch, OutboxStore, PostgresOutbox};
/// # async fn demo() -> Result<(), event_bus_kafka::outbox::OutboxError> {
/// let store = PostgresOutbox::connect("postgres://localhost/app").await?;
/// let batch = store.claim(ClaimLimits { max_rows: 100, max_lanes: 100 }).await?;
/// println!("{} rows claimed", batch.rows().len());
/// batch.complete(Default::default()).await?; // nothing published: nothing changes
/// # Ok(()) }
/// ```
#[async_trait]
pub trait OutboxStore: Send + Sync + 'static {
    /// A claimed batch.
    type Batch: ClaimedBatch;
    /// Wakes the relay when rows arrive.
    type Wakeup: OutboxWakeup;

    /// Stores one record; returns its id.
    ///
    /// ```no_run
    /// # use event_bus_kafka::outbox::*;
    /// # async fn demo(store: SqliteOutbox, record: event_bus_kafka::producer::EncodedRecord) -> Result<(), OutboxError> {
    /// let id = store.insert(&record).await?;
    /// # Ok(()) }
    /// ```
    async fn insert(&self, record: &EncodedRecord) -> Result<OutboxId, OutboxError>;

    /// Stores records in one statement, in order; returns their ids, ascending.
    ///
    /// ```no_run
    /// # use event_bus_kafka::outbox::*;
    /// # async fn demo(store: PostgresOutbox, records: Vec<event_bus_kafka::producer::EncodedRecord>) -> Result<(), OutboxError> {
    /// let ids = store.insert_many(&records).await?;
    /// assert_eq!(ids.len(), records.len());
    /// # Ok(()) }
    /// ```
    async fn insert_many(&self, records: &[EncodedRecord]) -> Result<Vec<OutboxId>, OutboxError>;

    /// Whether any row of `lane` waits (a newer event of the key must queue behind it).
    ///
    /// ```no_run
    /// # use event_bus_kafka::outbox::*;
    /// # async fn demo(store: PostgresOutbox, record: event_bus_kafka::producer::EncodedRecord) -> Result<(), OutboxError> {
    /// if store.lane_waiting(Lane::of(&record)).await? {
    ///     store.insert(&record).await?; // behind the older events of its key
    /// }
    /// # Ok(()) }
    /// ```
    async fn lane_waiting(&self, lane: Lane) -> Result<bool, OutboxError>;

    /// Claims due rows (see the trait's contract and example).
    async fn claim(&self, limits: ClaimLimits) -> Result<Self::Batch, OutboxError>;

    /// How long until the earliest backing-off row is due (`None`: none is).
    ///
    /// ```no_run
    /// # use event_bus_kafka::outbox::*;
    /// # async fn demo(store: PostgresOutbox) -> Result<(), OutboxError> {
    /// if let Some(wait) = store.next_retry_in().await? {
    ///     println!("next retry in {wait:?}");
    /// }
    /// # Ok(()) }
    /// ```
    async fn next_retry_in(&self) -> Result<Option<Duration>, OutboxError>;

    /// A listener that wakes when rows are stored (see [`OutboxWakeup`]).
    async fn wakeup(&self) -> Result<Self::Wakeup, OutboxError>;

    /// Pending count, oldest age and up to `failing_keys_limit` failing keys.
    ///
    /// ```no_run
    /// # use event_bus_kafka::outbox::*;
    /// # async fn demo(store: PostgresOutbox) -> Result<(), OutboxError> {
    /// let status = store.status(20).await?;
    /// println!("{} waiting, oldest {:?}", status.pending, status.oldest_age);
    /// # Ok(()) }
    /// ```
    async fn status(&self, failing_keys_limit: usize) -> Result<OutboxStatus, OutboxError>;

    /// Up to `limit` parked rows matching `filter`, oldest first (`event-bus outbox
    /// parked`).
    ///
    /// ```no_run
    /// # use event_bus_kafka::outbox::*;
    /// # async fn demo(store: PostgresOutbox) -> Result<(), OutboxError> {
    /// for row in store.parked(&ParkedFilter::default(), 100).await? {
    ///     println!("{} {} {}", row.id, row.topic, row.reason);
    /// }
    /// # Ok(()) }
    /// ```
    async fn parked(
        &self,
        filter: &ParkedFilter,
        limit: usize,
    ) -> Result<Vec<ParkedRow>, OutboxError>;

    /// Unparks the parked rows matching `filter` (attempts reset, due now): the relay
    /// tries them again, then their keys' waiting rows. Returns how many were unparked.
    ///
    /// ```no_run
    /// # use event_bus_kafka::outbox::*;
    /// # async fn demo(store: PostgresOutbox) -> Result<(), OutboxError> {
    /// let filter = ParkedFilter { ids: vec![OutboxId(42)], ..Default::default() };
    /// assert!(store.retry_parked(&filter).await? <= 1);
    /// # Ok(()) }
    /// ```
    async fn retry_parked(&self, filter: &ParkedFilter) -> Result<u64, OutboxError>;

    /// Deletes the parked rows matching `filter` (never a row that is not parked): their
    /// keys' waiting rows are published next. Returns how many were deleted.
    ///
    /// ```no_run
    /// # use event_bus_kafka::outbox::*;
    /// # async fn demo(store: SqliteOutbox) -> Result<(), OutboxError> {
    /// let dropped = store.drop_parked(&ParkedFilter::default().with_topic("orders")).await?;
    /// # Ok(()) }
    /// ```
    async fn drop_parked(&self, filter: &ParkedFilter) -> Result<u64, OutboxError>;
}

/// Rows claimed by one relay; see [`OutboxStore`].
///
/// ```no_run
/// # use event_bus_kafka::outbox::{ClaimedBatch, BatchOutcome};
/// # async fn demo(batch: impl ClaimedBatch) -> Result<(), event_bus_kafka::outbox::OutboxError> {
/// let delivered = batch.rows().iter().map(|r| r.id).collect();
/// batch.complete(BatchOutcome { delivered, failed: vec![] }).await?;
/// # Ok(()) }
/// ```
#[async_trait]
pub trait ClaimedBatch: Send + 'static {
    /// The rows, in id order (see the trait's example).
    fn rows(&self) -> &[OutboxRow];

    /// Claimed rows that cannot be decoded, in id order; each fails in its own lane.
    ///
    /// ```no_run
    /// # use event_bus_kafka::outbox::ClaimedBatch;
    /// # fn demo(batch: impl ClaimedBatch) {
    /// for row in batch.unreadable() {
    ///     eprintln!("row {} is unreadable: {}", row.id, row.reason);
    /// }
    /// # }
    /// ```
    fn unreadable(&self) -> &[UnreadableRow] {
        &[]
    }

    /// Deletes delivered rows and records failures, then releases the lanes (see the
    /// trait's example).
    async fn complete(self, outcome: BatchOutcome) -> Result<(), OutboxError>;
}

/// Lets the relay sleep until rows arrive (LISTEN/NOTIFY on PostgreSQL, an in-process
/// signal on SQLite) with a timeout as polling fallback.
///
/// ```no_run
/// # use event_bus_kafka::outbox::{OutboxStore, OutboxWakeup, PostgresOutbox};
/// # async fn demo(store: PostgresOutbox) -> Result<(), event_bus_kafka::outbox::OutboxError> {
/// let mut wakeup = store.wakeup().await?;
/// wakeup.wait(std::time::Duration::from_secs(1)).await;
/// # Ok(()) }
/// ```
#[async_trait]
pub trait OutboxWakeup: Send + 'static {
    /// Returns when rows may have been stored, or after `timeout` (see the trait's
    /// example).
    async fn wait(&mut self, timeout: Duration);
}

/// A store that can insert inside the caller's own database transaction
/// (transactional outbox).
///
/// ```no_run
/// use event_bus_kafka::outbox::{PostgresOutbox, TransactionalStore};
/// # async fn demo(store: PostgresOutbox, record: event_bus_kafka::producer::EncodedRecord) -> Result<(), Box<dyn std::error::Error>> {
/// let mut tx = store.pool().begin().await?;
/// store.insert_in(&mut tx, &record).await?;
/// tx.commit().await?;
/// # Ok(()) }
/// ```
#[async_trait]
pub trait TransactionalStore: OutboxStore {
    /// The sqlx database.
    type Database: sqlx::Database;

    /// Stores `record` in `tx`: it exists if and only if `tx` commits (see the trait's
    /// example).
    async fn insert_in(
        &self,
        tx: &mut sqlx::Transaction<'_, Self::Database>,
        record: &EncodedRecord,
    ) -> Result<OutboxId, OutboxError>;
}
