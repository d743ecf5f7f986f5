//! [`Inbox`]: connects transactional receivers to an [`EventBus`].

use std::sync::Arc;

use event_bus_core::dispatch::BusError;
use event_bus_core::{Event, EventBus};

use super::guard::InboxReceiver;
use super::receiver::{TransactionalClosure, TransactionalFn, TransactionalReceiver};
use super::stats::{InboxStats, StatsRegistry};
use super::store::InboxStore;

/// An inbox store and the counts of the receivers connected through it. Cheap to
/// clone (clones share both).
///
/// ```no_run
/// use event_bus_kafka::inbox::{database_failure, Inbox, PostgresInbox};
/// use event_bus_kafka::prelude::*;
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Serialize, Deserialize, Event)]
/// # #[event(type = "org.example.docs.course.enrolled.v1", topic = "courses", key = "user_id")]
/// # struct Enrolled { user_id: i64, course: String }
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let store = PostgresInbox::connect("postgres://app@localhost/app").await?;
/// store.migrate().await?;
/// let inbox = Inbox::new(store);
///
/// let mut bus = EventBus::new();
/// bus.connect_fn("log", |e: &Enrolled, _| { println!("{}", e.user_id); Ok(()) })?; // sees duplicates
/// inbox.connect_fn(&mut bus, "seats", |event: &Enrolled, _ctx, tx| {
///     Box::pin(async move {
///         sqlx::query("UPDATE courses SET seats = seats - 1 WHERE id = $1")
///             .bind(&event.course)
///             .execute(&mut **tx)
///             .await
///             .map_err(database_failure)?;
///         Ok(())
///     })
/// })?;
/// // Hand `bus` to an EventConsumer; later:
/// println!("{} duplicates skipped", inbox.stats().total.duplicates);
/// # Ok(()) }
/// ```
pub struct Inbox<S> {
    store: Arc<S>,
    stats: Arc<StatsRegistry>,
}

impl<S> Clone for Inbox<S> {
    fn clone(&self) -> Self {
        Self {
            store: Arc::clone(&self.store),
            stats: Arc::clone(&self.stats),
        }
    }
}

impl<S> std::fmt::Debug for Inbox<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbox")
            .field("stats", &self.stats.snapshot())
            .finish_non_exhaustive()
    }
}

impl<S: InboxStore> Inbox<S> {
    /// An inbox on `store`, with no counts yet.
    ///
    /// See the type's example.
    pub fn new(store: S) -> Self {
        Self {
            store: Arc::new(store),
            stats: Arc::default(),
        }
    }

    /// The store (for [`status`](InboxStore::status), [`prune`](InboxStore::prune)).
    ///
    /// ```no_run
    /// # use event_bus_kafka::inbox::*;
    /// # async fn demo(inbox: Inbox<PostgresInbox>) -> Result<(), InboxError> {
    /// println!("{} rows", inbox.store().status().await?.rows);
    /// # Ok(()) }
    /// ```
    pub fn store(&self) -> &S {
        &self.store
    }

    /// What the receivers connected through this inbox (and its clones) have done.
    ///
    /// See the type's example.
    pub fn stats(&self) -> InboxStats {
        self.stats.snapshot()
    }

    /// `receiver` as an ordinary [`Receiver`](event_bus_core::Receiver) that runs it in
    /// the inbox's transaction, recorded under `name` (connect it under the same name).
    ///
    /// See [`InboxReceiver`].
    pub fn receiver<R>(&self, name: impl Into<String>, receiver: R) -> InboxReceiver<S, R> {
        let name = name.into();
        let counters = self.stats.counters(&name);
        InboxReceiver::new(Arc::clone(&self.store), name, counters, receiver)
    }

    /// Connects `receiver` to `bus` under `name`, deduplicated by the inbox. Plain
    /// receivers of the same event type run beside it, each on its own.
    ///
    /// ```no_run
    /// # use event_bus_kafka::inbox::*;
    /// # use event_bus_core::prelude::*;
    /// # use event_bus_core::dispatch::DeliveryContext;
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Serialize, Deserialize, Event)]
    /// # #[event(type = "org.example.docs.user.joined.v1", topic = "users")]
    /// # struct UserJoined { id: i64 }
    /// struct Welcome;
    /// #[async_trait::async_trait]
    /// impl TransactionalReceiver<UserJoined, sqlx::Sqlite> for Welcome {
    ///     async fn receive(&self, e: &UserJoined, _: &DeliveryContext, tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>) -> Result<(), ReceiverError> {
    ///         sqlx::query("INSERT INTO welcome_mails (user_id) VALUES (?1)").bind(e.id)
    ///             .execute(&mut **tx).await.map_err(database_failure)?;
    ///         Ok(())
    ///     }
    /// }
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// let inbox = Inbox::new(SqliteInbox::connect("sqlite:app.db").await?);
    /// let mut bus = EventBus::new();
    /// inbox.connect(&mut bus, "welcome", Welcome)?;
    /// # Ok(()) }
    /// ```
    pub fn connect<E, R>(
        &self,
        bus: &mut EventBus,
        name: impl Into<String>,
        receiver: R,
    ) -> Result<&Self, BusError>
    where
        E: Event,
        R: TransactionalReceiver<E, S::Database>,
    {
        let receiver = self.receiver(name, receiver);
        let name = receiver.name().to_owned();
        bus.connect::<E, _>(name, receiver)?;
        Ok(self)
    }

    /// Connects a closure as a transactional receiver (see [`connect`](Self::connect)
    /// and the type's example). The closure returns a boxed future:
    /// `|event: &MyEvent, ctx, tx| Box::pin(async move { … })`.
    pub fn connect_fn<E, F>(
        &self,
        bus: &mut EventBus,
        name: impl Into<String>,
        f: F,
    ) -> Result<&Self, BusError>
    where
        E: Event,
        F: TransactionalClosure<E, S::Database>,
    {
        self.connect::<E, _>(bus, name, TransactionalFn::new(f))
    }
}
