//! One event through a transactional receiver: begin, record in the inbox, run,
//! commit (or skip a duplicate, or roll back).

use std::sync::Arc;

use async_trait::async_trait;
use event_bus_core::dispatch::DeliveryContext;
use event_bus_core::{Event, Receiver, ReceiverError};

use super::entry::InboxEntry;
use super::error::InboxError;
use super::receiver::TransactionalReceiver;
use super::stats::Counters;
use super::store::InboxStore;
use crate::observability::metrics;

/// A [`TransactionalReceiver`] made an ordinary [`Receiver`] by an
/// [`Inbox`](super::Inbox): what [`Inbox::connect`](super::Inbox::connect) puts on the
/// bus. Make one with [`Inbox::receiver`](super::Inbox::receiver) to wrap it further
/// before connecting it.
///
/// Per delivery: begin a transaction on the store's pool; insert the inbox row
/// (group, receiver name, `ce_id`); if it existed, roll back and return `Ok` (a
/// duplicate, counted and logged at debug); else run the receiver in the transaction
/// and commit on `Ok` (after the store checks the transaction can still commit: a
/// statement whose error the receiver swallowed aborts it on PostgreSQL), roll back and
/// return its error unchanged on `Err`. Inbox
/// failures become the receiver's failure as the failure classifier says
/// ([`of_inbox`](crate::failure::of_inbox)): no transaction, no table or a failed
/// commit are retryable.
///
/// ```no_run
/// # use event_bus_kafka::inbox::*;
/// # use event_bus_core::prelude::*;
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Serialize, Deserialize, Event)]
/// # #[event(type = "org.example.docs.order.refunded.v1", topic = "orders")]
/// # struct OrderRefunded { id: i64 }
/// # fn demo(inbox: Inbox<SqliteInbox>, refunds: impl TransactionalReceiver<OrderRefunded, sqlx::Sqlite>) -> Result<(), event_bus_core::dispatch::BusError> {
/// let mut bus = EventBus::new();
/// bus.connect("refunds", inbox.receiver("refunds", refunds))?;
/// # Ok(()) }
/// ```
pub struct InboxReceiver<S, R> {
    store: Arc<S>,
    name: String,
    counters: Arc<Counters>,
    receiver: R,
}

impl<S, R> InboxReceiver<S, R> {
    pub(crate) fn new(store: Arc<S>, name: String, counters: Arc<Counters>, receiver: R) -> Self {
        Self {
            store,
            name,
            counters,
            receiver,
        }
    }

    /// The name the inbox records for it (the name to connect it under).
    ///
    /// ```no_run
    /// # use event_bus_kafka::inbox::*;
    /// # fn demo<R>(receiver: InboxReceiver<SqliteInbox, R>) {
    /// println!("{}", receiver.name());
    /// # }
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    fn failed(&self, ctx: &DeliveryContext, error: InboxError) -> ReceiverError {
        self.counters.failed();
        tracing::debug!(
            ce_id = %ctx.metadata.id,
            receiver = %self.name,
            group = ctx.consumer_group.as_deref().unwrap_or(""),
            failure = %error.failure(),
            error = %error,
            "inbox transaction failed"
        );
        error.into()
    }
}

#[async_trait]
impl<E, S, R> Receiver<E> for InboxReceiver<S, R>
where
    E: Event,
    S: InboxStore,
    R: TransactionalReceiver<E, S::Database>,
{
    async fn receive(&self, event: &E, ctx: &DeliveryContext) -> Result<(), ReceiverError> {
        let entry = InboxEntry::for_delivery(&self.name, ctx);
        let mut tx = match self.store.pool().begin().await {
            Ok(tx) => tx,
            Err(source) => return Err(self.failed(ctx, InboxError::Begin { source })),
        };
        match self.store.mark_handled(&mut tx, &entry).await {
            Ok(true) => {}
            Ok(false) => {
                // Nothing was written; dropping the transaction would roll back too.
                let _ = tx.rollback().await;
                self.counters.duplicate();
                metrics::record_inbox_duplicate(&self.name);
                tracing::debug!(
                    ce_id = %entry.ce_id,
                    receiver = %self.name,
                    group = entry.consumer_group,
                    "duplicate delivery skipped: the inbox has handled this event"
                );
                return Ok(());
            }
            Err(error) => return Err(self.failed(ctx, error)),
        }
        if let Err(error) = self.receiver.receive(event, ctx, &mut tx).await {
            if let Err(rollback) = tx.rollback().await {
                // The connection is closed instead; nothing of the attempt is kept.
                tracing::debug!(receiver = %self.name, error = %rollback, "inbox rollback failed");
            }
            self.counters.failed();
            return Err(error);
        }
        if let Err(error) = self.store.check_committable(&mut tx).await {
            let _ = tx.rollback().await;
            return Err(self.failed(ctx, error));
        }
        if let Err(source) = tx.commit().await {
            return Err(self.failed(ctx, InboxError::Commit { source }));
        }
        self.counters.handled();
        metrics::record_inbox_handled(&self.name);
        Ok(())
    }
}
