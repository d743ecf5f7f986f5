//! The inbox: receivers whose database writes take effect once per event, although
//! the bus delivers at least once.
//!
//! A consumer may hand a receiver the same event again: after a crash before the
//! offset commit, a rebalance, a replay, a DLQ redrive, or a producer that sent it
//! twice. A *transactional receiver* ([`TransactionalReceiver`], or a closure through
//! [`Inbox::connect_fn`]) writes through an sqlx transaction the [`Inbox`] gives it.
//! For each delivery the inbox:
//!
//! 1. begins a transaction on its store's pool;
//! 2. inserts the row (consumer group, receiver name, `ce_id`) into the inbox table
//!    (`INSERT … ON CONFLICT DO NOTHING`). If the row was there, the event is a
//!    duplicate for this receiver: the transaction is rolled back, the receiver does
//!    not run, the delivery succeeds (counted in [`InboxStats`] and
//!    `event_bus_inbox_duplicates_total`, logged at debug);
//! 3. runs the receiver in the transaction;
//! 4. commits on `Ok` (the receiver's writes and the inbox row together), or rolls back
//!    on `Err` and returns the error unchanged, so the consumer retries or
//!    dead-letters that receiver as usual, the other receivers of the event unaffected.
//!
//! So the *effect* is exactly once per (group, receiver, event) for what the receiver
//! writes in the transaction. Limits:
//!
//! - Only the transaction's writes are covered. An e-mail sent or an API called from
//!   the receiver may happen twice (after a rollback or a crash before the commit).
//! - Rows are kept until [pruned](InboxStore::prune) (`event-bus inbox prune`): an
//!   event delivered again after its row was pruned runs again. Keep rows longer than
//!   any duplicate can arrive (replays, redrives of old dead letters).
//! - The key is the consumer group (`""` for a local dispatch, see [`LOCAL_GROUP`]):
//!   two groups each handle every event; renaming a receiver or a group starts afresh.
//! - Each event in flight holds a pooled connection while its receiver runs: size the
//!   pool above the consumer's `max_in_flight`. On SQLite, transactions take the one
//!   write lock in turn.
//!
//! # Failures
//!
//! Every inbox failure goes through the failure classifier
//! ([`of_inbox`](crate::failure::of_inbox)) and becomes the receiver's failure:
//!
//! - **No transaction can begin** (database down, connection refused, pool exhausted,
//!   even "database does not exist"): *retryable*. The event was not handled; the
//!   consumer retries it with backoff and never commits past it while it does.
//! - **The inbox table is missing**: *retryable* too, with an error that names the
//!   migration (`event-bus outbox migrate`, or `migrate()` on a store). A deployment
//!   that forgot to migrate is not a verdict on thousands of events; they wait and are
//!   retried, each failure saying what to run.
//! - **The commit fails**: retryable (if it took effect after all, the retry is a
//!   duplicate and skipped).
//! - Other statements go by the database's answer (a deadlock is retried, a constraint
//!   violated is not).
//!
//! A retryable failure is retried under the consumer's
//! [`RetryPolicy`](crate::consumer::RetryPolicy); when its attempts or time run out the
//! record goes to the dead-letter topic like any failing receiver's, so for outages
//! longer than that raise `max_attempts`/`max_elapsed` or redrive afterwards
//! (`event-bus dlq redrive`): a redriven event whose earlier attempts rolled back has
//! no inbox row and runs; one that had committed is skipped.
//!
//! # Tables
//!
//! PostgreSQL `event_bus.inbox`, SQLite `event_bus_inbox`, created by the outbox's
//! migrations (one `_sqlx_migrations` history per database), so `event-bus outbox
//! migrate`, [`PostgresOutbox::migrate`](crate::outbox::PostgresOutbox::migrate) and
//! the inbox stores' `migrate()` all create both. The inbox shares the outbox's
//! database and connection settings ([`PostgresInbox::from_outbox`]): a receiver can
//! enqueue derived events with a [`TransactionalOutbox`](crate::outbox::TransactionalOutbox)
//! in the same transaction (consume, then produce, exactly once in effect; map its
//! errors with [`outbox_failure`]).
//!
//! ```no_run
//! use std::sync::Arc;
//! use event_bus_kafka::consumer::{ConsumerConfig, EventConsumer, Shutdown};
//! use event_bus_kafka::inbox::{database_failure, Inbox, PostgresInbox};
//! use event_bus_kafka::prelude::*;
//! # use serde::{Deserialize, Serialize};
//! # #[derive(Serialize, Deserialize, Event)]
//! # #[event(type = "org.example.docs.payment.captured.v1", topic = "payments", key = "order")]
//! # struct PaymentCaptured { order: String, cents: i64 }
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let store = PostgresInbox::connect("postgres://app@localhost/app").await?;
//! store.migrate().await?;
//! let inbox = Inbox::new(store);
//!
//! let mut bus = EventBus::new();
//! inbox.connect_fn(&mut bus, "ledger", |event: &PaymentCaptured, _ctx, tx| {
//!     Box::pin(async move {
//!         sqlx::query("INSERT INTO ledger (order_id, cents) VALUES ($1, $2)")
//!             .bind(&event.order)
//!             .bind(event.cents)
//!             .execute(&mut **tx)
//!             .await
//!             .map_err(database_failure)?;
//!         Ok(())
//!     })
//! })?;
//!
//! let consumer = EventConsumer::new(ConsumerConfig::from_env()?, Arc::new(bus))?;
//! let (_trigger, shutdown) = Shutdown::new();
//! consumer.run(shutdown).await?;
//! println!("{:?}", inbox.stats().total);
//! # Ok(()) }
//! ```

mod any;
mod entry;
mod error;
mod guard;
#[cfg(feature = "postgres")]
mod postgres;
mod receiver;
mod retention;
#[cfg(feature = "sqlite")]
mod sqlite;
mod stats;
mod status;
mod store;
mod wiring;

pub use any::AnyInbox;
pub use entry::{InboxEntry, LOCAL_GROUP};
pub use error::{database_failure, outbox_failure, InboxError};
pub use guard::InboxReceiver;
#[cfg(feature = "postgres")]
pub use postgres::PostgresInbox;
pub use receiver::{TransactionalClosure, TransactionalFn, TransactionalReceiver};
pub use retention::{InboxPruner, InboxRetention};
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteInbox;
pub use stats::{InboxStats, ReceiverCounts};
pub use status::{InboxStatus, ReceiverRows};
pub use store::InboxStore;
pub use wiring::Inbox;
