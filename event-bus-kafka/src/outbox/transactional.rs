//! Transactional mode: the event is stored in the caller's own database transaction,
//! so it exists if and only if the business data commits; the relay publishes it after.

use std::sync::Arc;

use event_bus_core::{Event, EventMetadata};
use uuid::Uuid;

use super::error::OutboxError;
use super::row::OutboxId;
use super::store::TransactionalStore;
use crate::producer::{EncodedRecord, EventEncoder};

/// What [`TransactionalOutbox::enqueue`] stored.
///
/// ```
/// let e = event_bus_kafka::outbox::Enqueued { outbox_id: event_bus_kafka::outbox::OutboxId(1), event_id: uuid::Uuid::nil() };
/// assert_eq!(e.outbox_id.0, 1);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Enqueued {
    /// The outbox row (visible to the relay once the transaction commits).
    pub outbox_id: OutboxId,
    /// The event's `ce_id`.
    pub event_id: Uuid,
}

/// Enqueues events inside the caller's sqlx transaction (PostgreSQL or SQLite).
///
/// The event is encoded first (schemas registered on first use, so the registry must
/// be reachable then), then inserted with the transaction's connection. Run a
/// [`Relay`](super::Relay) on the same store to publish committed events; on
/// PostgreSQL the insert trigger's NOTIFY, delivered at commit, wakes it.
///
/// ```no_run
/// use std::sync::Arc;
/// use event_bus_kafka::outbox::{PostgresOutbox, TransactionalOutbox};
/// # use event_bus_kafka::prelude::*;
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Serialize, Deserialize, Event)]
/// # #[event(type = "org.example.shop.order.placed.v1", topic = "orders", key = "id")]
/// # struct OrderPlaced { id: String }
/// # async fn demo(producer: Producer) -> Result<(), Box<dyn std::error::Error>> {
/// let store = Arc::new(PostgresOutbox::connect("postgres://app@localhost/app").await?);
/// let outbox = TransactionalOutbox::new(producer.encoder().clone(), store.clone());
///
/// let mut tx = store.pool().begin().await?;
/// sqlx::query("INSERT INTO orders (id) VALUES ($1)").bind("o-1").execute(&mut *tx).await?;
/// outbox.enqueue(&mut tx, &OrderPlaced { id: "o-1".into() }).await?;
/// tx.commit().await?; // the order and its event, or neither
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct TransactionalOutbox<S: TransactionalStore> {
    encoder: Arc<EventEncoder>,
    store: Arc<S>,
}

impl<S: TransactionalStore> Clone for TransactionalOutbox<S> {
    fn clone(&self) -> Self {
        Self {
            encoder: self.encoder.clone(),
            store: self.store.clone(),
        }
    }
}

impl<S: TransactionalStore> TransactionalOutbox<S> {
    /// Enqueues with `encoder` (e.g. [`Producer::encoder`](crate::producer::Producer::encoder))
    /// into `store`.
    ///
    /// See the type's example.
    pub fn new(encoder: Arc<EventEncoder>, store: Arc<S>) -> Self {
        Self { encoder, store }
    }

    /// The store.
    ///
    /// See the type's example.
    pub fn store(&self) -> &Arc<S> {
        &self.store
    }

    /// Stores `event` (fresh metadata) in `tx`. Fails with
    /// [`OutboxError::Full`] beyond the backlog limit; the transaction is then still
    /// usable, and the caller decides whether to commit without the event or roll back.
    ///
    /// See the type's example.
    pub async fn enqueue<E: Event>(
        &self,
        tx: &mut sqlx::Transaction<'_, S::Database>,
        event: &E,
    ) -> Result<Enqueued, OutboxError> {
        let record = self.encoder.encode(event, None, None).await?;
        self.enqueue_encoded(tx, &record).await
    }

    /// Stores `event` with the caller's metadata in `tx`.
    ///
    /// ```no_run
    /// # use event_bus_kafka::outbox::*;
    /// # use event_bus_kafka::prelude::*;
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Serialize, Deserialize, Event)]
    /// # #[event(type = "org.example.shop.order.placed.v1", topic = "orders")]
    /// # struct OrderPlaced { id: String }
    /// # async fn demo(outbox: TransactionalOutbox<PostgresOutbox>, mut tx: sqlx::Transaction<'_, sqlx::Postgres>) -> Result<(), OutboxError> {
    /// let metadata = EventMetadata::for_event::<OrderPlaced>().with_source("shop/checkout");
    /// outbox.enqueue_with_metadata(&mut tx, &OrderPlaced { id: "o-1".into() }, metadata).await?;
    /// # Ok(()) }
    /// ```
    pub async fn enqueue_with_metadata<E: Event>(
        &self,
        tx: &mut sqlx::Transaction<'_, S::Database>,
        event: &E,
        metadata: EventMetadata,
    ) -> Result<Enqueued, OutboxError> {
        let record = self.encoder.encode(event, Some(metadata), None).await?;
        self.enqueue_encoded(tx, &record).await
    }

    /// Stores an encoded record in `tx`.
    ///
    /// ```no_run
    /// # use event_bus_kafka::outbox::*;
    /// # async fn demo(outbox: TransactionalOutbox<PostgresOutbox>, mut tx: sqlx::Transaction<'_, sqlx::Postgres>, record: event_bus_kafka::producer::EncodedRecord) -> Result<(), OutboxError> {
    /// outbox.enqueue_encoded(&mut tx, &record).await?;
    /// # Ok(()) }
    /// ```
    pub async fn enqueue_encoded(
        &self,
        tx: &mut sqlx::Transaction<'_, S::Database>,
        record: &EncodedRecord,
    ) -> Result<Enqueued, OutboxError> {
        let outbox_id = self.store.insert_in(tx, record).await?;
        tracing::debug!(
            topic = %record.topic,
            key = record.key_text.as_deref().unwrap_or(""),
            ce_id = %record.event_id,
            outbox_id = outbox_id.0,
            "event enqueued in the caller's transaction"
        );
        Ok(Enqueued {
            outbox_id,
            event_id: record.event_id,
        })
    }
}
