//! Receivers that run inside the inbox's database transaction.

use std::marker::PhantomData;

use async_trait::async_trait;
use event_bus_core::dispatch::DeliveryContext;
use event_bus_core::{Event, ReceiverError};
use futures::future::BoxFuture;
use sqlx::Transaction;

/// Code that reacts to events of type `E` with writes to database `DB`, made in the
/// transaction it is given. The [`Inbox`](super::Inbox) begins that transaction,
/// records the event in it, runs the receiver and commits: the receiver's writes and
/// the inbox row commit together or not at all, and a duplicate delivery never reaches
/// the receiver.
///
/// Write through `tx` only (`&mut **tx` as an executor), and do not commit or roll it
/// back: the inbox does. Return `Err` to roll everything back; the consumer retries the
/// receiver or dead-letters the event as for any receiver. Do not swallow a failed
/// statement: on PostgreSQL it aborts the transaction, whose commit then quietly rolls
/// back, so neither the receiver's writes nor the inbox row would be kept while the
/// event counts as handled. Side effects outside the
/// database (an e-mail, an HTTP call) are not undone by a rollback and may happen
/// again on a retry.
///
/// ```
/// use event_bus_core::prelude::*;
/// use event_bus_core::dispatch::DeliveryContext;
/// use event_bus_kafka::inbox::{database_failure, TransactionalReceiver};
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Serialize, Deserialize, Event)]
/// # #[event(type = "org.example.docs.order.paid.v1", topic = "orders")]
/// # struct OrderPaid { id: i64, cents: i64 }
///
/// struct Ledger;
///
/// #[async_trait::async_trait]
/// impl TransactionalReceiver<OrderPaid, sqlx::Postgres> for Ledger {
///     async fn receive(
///         &self,
///         event: &OrderPaid,
///         _ctx: &DeliveryContext,
///         tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
///     ) -> Result<(), ReceiverError> {
///         sqlx::query("INSERT INTO ledger (order_id, cents) VALUES ($1, $2)")
///             .bind(event.id)
///             .bind(event.cents)
///             .execute(&mut **tx)
///             .await
///             .map_err(database_failure)?;
///         Ok(())
///     }
/// }
/// ```
#[async_trait]
pub trait TransactionalReceiver<E: Event, DB: sqlx::Database>: Send + Sync + 'static {
    /// Handles one event inside `tx` (see the trait's example).
    async fn receive(
        &self,
        event: &E,
        ctx: &DeliveryContext,
        tx: &mut Transaction<'static, DB>,
    ) -> Result<(), ReceiverError>;
}

/// What a closure must be to serve as a transactional receiver: a function of the
/// event, its delivery and the transaction, returning a boxed future
/// (`|event, ctx, tx| Box::pin(async move { … })`). Every such closure is one.
///
/// ```
/// use event_bus_kafka::inbox::TransactionalClosure;
/// # use event_bus_core::prelude::*;
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Serialize, Deserialize, Event)]
/// # #[event(type = "org.example.docs.order.viewed.v1", topic = "orders")]
/// # struct OrderViewed { id: i64 }
/// fn takes<F: TransactionalClosure<OrderViewed, sqlx::Sqlite>>(_: F) {}
/// takes(|_event, _ctx, _tx| Box::pin(async { Ok(()) }));
/// ```
pub trait TransactionalClosure<E, DB: sqlx::Database>:
    for<'a> Fn(
        &'a E,
        &'a DeliveryContext,
        &'a mut Transaction<'static, DB>,
    ) -> BoxFuture<'a, Result<(), ReceiverError>>
    + Send
    + Sync
    + 'static
{
}

impl<E, DB, F> TransactionalClosure<E, DB> for F
where
    DB: sqlx::Database,
    F: for<'a> Fn(
            &'a E,
            &'a DeliveryContext,
            &'a mut Transaction<'static, DB>,
        ) -> BoxFuture<'a, Result<(), ReceiverError>>
        + Send
        + Sync
        + 'static,
{
}

/// A closure as a [`TransactionalReceiver`] (what
/// [`Inbox::connect_fn`](super::Inbox::connect_fn) connects).
///
/// ```
/// use event_bus_kafka::inbox::TransactionalFn;
/// # use event_bus_core::prelude::*;
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Serialize, Deserialize, Event)]
/// # #[event(type = "org.example.docs.order.shipped.v1", topic = "orders")]
/// # struct OrderShipped { id: i64 }
/// let receiver = TransactionalFn::<OrderShipped, sqlx::Sqlite, _>::new(|event, _ctx, tx| {
///     Box::pin(async move {
///         sqlx::query("UPDATE orders SET shipped = 1 WHERE id = ?1")
///             .bind(event.id)
///             .execute(&mut **tx)
///             .await
///             .map_err(event_bus_kafka::inbox::database_failure)?;
///         Ok(())
///     })
/// });
/// ```
pub struct TransactionalFn<E, DB, F> {
    f: F,
    marker: PhantomData<fn(&E, &DB)>,
}

impl<E, DB, F> TransactionalFn<E, DB, F>
where
    E: Event,
    DB: sqlx::Database,
    F: TransactionalClosure<E, DB>,
{
    /// Wraps `f` (see the type's example).
    pub fn new(f: F) -> Self {
        Self {
            f,
            marker: PhantomData,
        }
    }
}

#[async_trait]
impl<E, DB, F> TransactionalReceiver<E, DB> for TransactionalFn<E, DB, F>
where
    E: Event,
    DB: sqlx::Database,
    F: TransactionalClosure<E, DB>,
{
    async fn receive(
        &self,
        event: &E,
        ctx: &DeliveryContext,
        tx: &mut Transaction<'static, DB>,
    ) -> Result<(), ReceiverError> {
        (self.f)(event, ctx, tx).await
    }
}
