//! `EventBus`: the receivers connected to each event type, and dispatch.

use std::any::Any;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use apache_avro::Schema;
use futures::future::{join_all, BoxFuture};
use futures::FutureExt;

use super::context::DeliveryContext;
use super::receiver::{Receiver, ReceiverError};
use super::report::{DispatchReport, ReceiverOutcome};
use crate::codec::CodecError;
use crate::event::Event;

/// A decoded event whose Rust type is known only to the bus.
pub type DecodedEvent = Arc<dyn Any + Send + Sync>;

type ErasedReceiver = dyn Fn(DecodedEvent, Arc<DeliveryContext>) -> ReceiverCall + Send + Sync;

/// What calling an erased receiver gives: a synchronous receiver's result at once (no
/// future to box per event), or the future of an asynchronous one.
enum ReceiverCall {
    Done(Result<(), ReceiverError>),
    Running(BoxFuture<'static, Result<(), ReceiverError>>),
}

struct NamedReceiver {
    /// Shared (see [`shared_text`](crate::shared_text)), so each outcome borrows it.
    name: Cow<'static, str>,
    call: Arc<ErasedReceiver>,
}

impl NamedReceiver {
    /// Runs the receiver, turning a panic into its failure.
    async fn run(&self, event: DecodedEvent, ctx: Arc<DeliveryContext>) -> ReceiverOutcome {
        // A panic while calling (a synchronous receiver's body) or while polling
        // becomes the receiver's error.
        let call = std::panic::catch_unwind(AssertUnwindSafe(|| (self.call)(event, ctx)));
        let result = match call {
            Ok(ReceiverCall::Done(result)) => result,
            Ok(ReceiverCall::Running(future)) => AssertUnwindSafe(future)
                .catch_unwind()
                .await
                .unwrap_or_else(|panic| Err(panic_error(panic.as_ref()))),
            Err(panic) => Err(panic_error(panic.as_ref())),
        };
        ReceiverOutcome {
            receiver: self.name.clone(),
            result,
        }
    }
}

/// Everything the bus holds for one event type.
struct TypeSlot {
    reader_schema: fn() -> &'static Schema,
    decode: fn(&[u8], &Schema) -> Result<DecodedEvent, CodecError>,
    receivers: Vec<NamedReceiver>,
}

fn decode_erased<E: Event>(datum: &[u8], writer: &Schema) -> Result<DecodedEvent, CodecError> {
    E::from_avro_datum(datum, writer).map(|e| Arc::new(e) as DecodedEvent)
}

/// A mistake in wiring receivers.
///
/// ```
/// use event_bus_core::prelude::*;
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Serialize, Deserialize, Event)]
/// # #[event(type = "org.example.docs.note.added.v1", topic = "notes")]
/// # struct NoteAdded { text: String }
/// let mut bus = EventBus::new();
/// bus.connect_fn("audit", |_: &NoteAdded, _| Ok(()))?;
/// let again = bus.connect_fn("audit", |_: &NoteAdded, _| Ok(()));
/// assert!(again.is_err());
/// # Ok::<(), event_bus_core::dispatch::BusError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BusError {
    /// Two receivers of one event type share a name; names identify receivers in
    /// logs, retries and the DLQ, so they must be unique per event type.
    #[error("a receiver named `{receiver}` is already connected to `{event_type}`; give each receiver of an event type its own name")]
    DuplicateReceiver {
        /// The event type.
        event_type: &'static str,
        /// The repeated name.
        receiver: String,
    },
}

/// The receivers of every event type, and dispatch to them.
///
/// Dispatch runs every receiver of the event's type, concurrently, even when some
/// fail or panic, and reports each one's outcome.
///
/// ```
/// use event_bus_core::prelude::*;
/// use event_bus_core::dispatch::DeliveryContext;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, Serialize, Deserialize, Event)]
/// #[event(type = "org.example.docs.user.created.v1", topic = "users", key = "id")]
/// struct UserCreated { id: i64 }
///
/// # tokio_test(async {
/// let mut bus = EventBus::new();
/// bus.connect_fn("counts", |_: &UserCreated, _| Ok(()))?;
/// bus.connect_fn("fails", |_: &UserCreated, _| Err(ReceiverError::new("down")))?;
/// bus.connect_async("welcome", |event: std::sync::Arc<UserCreated>, ctx| async move {
///     assert!(!ctx.from_bus());
///     Ok(())
/// })?;
///
/// let ctx = DeliveryContext::local(EventMetadata::for_event::<UserCreated>());
/// let report = bus.dispatch(UserCreated { id: 1 }, ctx).await;
/// assert_eq!(report.outcomes.len(), 3);
/// assert_eq!(report.failed_receivers(), vec!["fails"]);
/// # Ok::<(), event_bus_core::dispatch::BusError>(())
/// # });
/// # fn tokio_test<F: std::future::Future<Output = Result<(), event_bus_core::dispatch::BusError>>>(f: F) {
/// #     futures::executor::block_on(f).unwrap();
/// # }
/// ```
#[derive(Default)]
pub struct EventBus {
    types: BTreeMap<&'static str, TypeSlot>,
}

impl fmt::Debug for EventBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (event_type, slot) in &self.types {
            let names: Vec<_> = slot.receivers.iter().map(|r| r.name.as_ref()).collect();
            map.entry(event_type, &names);
        }
        map.finish()
    }
}

impl EventBus {
    /// An empty bus.
    ///
    /// ```
    /// assert_eq!(event_bus_core::EventBus::new().receiver_count(), 0);
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Connects a [`Receiver`] of `E` under `name`.
    ///
    /// ```
    /// # use event_bus_core::prelude::*;
    /// # use event_bus_core::dispatch::DeliveryContext;
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Serialize, Deserialize, Event)]
    /// # #[event(type = "org.example.docs.user.deleted.v1", topic = "users")]
    /// # struct UserDeleted { id: i64 }
    /// struct Cleanup;
    /// #[async_trait::async_trait]
    /// impl Receiver<UserDeleted> for Cleanup {
    ///     async fn receive(&self, _: &UserDeleted, _: &DeliveryContext) -> Result<(), ReceiverError> { Ok(()) }
    /// }
    /// let mut bus = EventBus::new();
    /// bus.connect("cleanup", Cleanup)?;
    /// assert_eq!(bus.receiver_names("org.example.docs.user.deleted.v1"), vec!["cleanup"]);
    /// # Ok::<(), event_bus_core::dispatch::BusError>(())
    /// ```
    pub fn connect<E: Event, R: Receiver<E>>(
        &mut self,
        name: impl Into<String>,
        receiver: R,
    ) -> Result<&mut Self, BusError> {
        let receiver = Arc::new(receiver);
        self.insert::<E>(
            name.into(),
            Arc::new(move |event, ctx| {
                let receiver = Arc::clone(&receiver);
                ReceiverCall::Running(Box::pin(async move {
                    let event = downcast::<E>(event)?;
                    receiver.receive(&event, &ctx).await
                }))
            }),
        )
    }

    /// Connects a synchronous function of `E` under `name`.
    ///
    /// ```
    /// # use event_bus_core::prelude::*;
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Serialize, Deserialize, Event)]
    /// # #[event(type = "org.example.docs.user.renamed.v1", topic = "users")]
    /// # struct UserRenamed { id: i64 }
    /// let mut bus = EventBus::new();
    /// bus.connect_fn("log", |event: &UserRenamed, ctx| {
    ///     println!("{} renamed ({})", event.id, ctx.metadata.id);
    ///     Ok(())
    /// })?;
    /// # Ok::<(), event_bus_core::dispatch::BusError>(())
    /// ```
    pub fn connect_fn<E, F>(&mut self, name: impl Into<String>, f: F) -> Result<&mut Self, BusError>
    where
        E: Event,
        F: Fn(&E, &DeliveryContext) -> Result<(), ReceiverError> + Send + Sync + 'static,
    {
        self.insert::<E>(
            name.into(),
            Arc::new(move |event, ctx| {
                ReceiverCall::Done(downcast::<E>(event).and_then(|event| f(&event, &ctx)))
            }),
        )
    }

    /// Connects an async function of `E` under `name`.
    ///
    /// ```
    /// # use event_bus_core::prelude::*;
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Serialize, Deserialize, Event)]
    /// # #[event(type = "org.example.docs.user.merged.v1", topic = "users")]
    /// # struct UserMerged { id: i64 }
    /// let mut bus = EventBus::new();
    /// bus.connect_async("sync", |event: std::sync::Arc<UserMerged>, _ctx| async move {
    ///     let _ = event.id;
    ///     Ok(())
    /// })?;
    /// # Ok::<(), event_bus_core::dispatch::BusError>(())
    /// ```
    pub fn connect_async<E, F, Fut>(
        &mut self,
        name: impl Into<String>,
        f: F,
    ) -> Result<&mut Self, BusError>
    where
        E: Event,
        F: Fn(Arc<E>, Arc<DeliveryContext>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), ReceiverError>> + Send + 'static,
    {
        let f = Arc::new(f);
        self.insert::<E>(
            name.into(),
            Arc::new(move |event, ctx| {
                let f = Arc::clone(&f);
                ReceiverCall::Running(Box::pin(async move {
                    let event = downcast::<E>(event)?;
                    f(event, ctx).await
                }))
            }),
        )
    }

    fn insert<E: Event>(
        &mut self,
        name: String,
        call: Arc<ErasedReceiver>,
    ) -> Result<&mut Self, BusError> {
        let slot = self.types.entry(E::EVENT_TYPE).or_insert_with(|| TypeSlot {
            reader_schema: E::schema,
            decode: decode_erased::<E>,
            receivers: Vec::new(),
        });
        if slot.receivers.iter().any(|r| r.name == name.as_str()) {
            return Err(BusError::DuplicateReceiver {
                event_type: E::EVENT_TYPE,
                receiver: name,
            });
        }
        slot.receivers.push(NamedReceiver {
            name: crate::shared_text::shared(&name),
            call,
        });
        Ok(self)
    }

    /// How many receivers are connected, over all event types.
    ///
    /// ```
    /// assert_eq!(event_bus_core::EventBus::new().receiver_count(), 0);
    /// ```
    pub fn receiver_count(&self) -> usize {
        self.types.values().map(|s| s.receivers.len()).sum()
    }

    /// The event types with at least one receiver.
    ///
    /// ```
    /// assert!(event_bus_core::EventBus::new().event_types().is_empty());
    /// ```
    pub fn event_types(&self) -> Vec<&'static str> {
        self.types.keys().copied().collect()
    }

    /// Names of the receivers of `event_type`, in connection order.
    ///
    /// ```
    /// assert!(event_bus_core::EventBus::new().receiver_names("org.example.a.b.created.v1").is_empty());
    /// ```
    pub fn receiver_names(&self, event_type: &str) -> Vec<&str> {
        self.types
            .get(event_type)
            .map(|s| s.receivers.iter().map(|r| r.name.as_ref()).collect())
            .unwrap_or_default()
    }

    /// The bus's own `'static` name for `event_type`, when it has receivers for it
    /// (lets callers key caches by event type without allocating).
    ///
    /// ```
    /// # use event_bus_core::prelude::*;
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Serialize, Deserialize, Event)]
    /// # #[event(type = "org.example.docs.tag.renamed.v1", topic = "tags")]
    /// # struct TagRenamed { tag: String }
    /// let mut bus = EventBus::new();
    /// bus.connect_fn("x", |_: &TagRenamed, _| Ok(()))?;
    /// let name = String::from("org.example.docs.tag.renamed.v1");
    /// assert_eq!(bus.known_type(&name), Some(TagRenamed::EVENT_TYPE));
    /// assert_eq!(bus.known_type("org.example.docs.tag.deleted.v1"), None);
    /// # Ok::<(), event_bus_core::dispatch::BusError>(())
    /// ```
    pub fn known_type(&self, event_type: &str) -> Option<&'static str> {
        self.types.get_key_value(event_type).map(|(name, _)| *name)
    }

    /// The reader schema of `event_type`, when the bus has receivers for it.
    ///
    /// ```
    /// assert!(event_bus_core::EventBus::new().reader_schema("org.example.a.b.created.v1").is_none());
    /// ```
    pub fn reader_schema(&self, event_type: &str) -> Option<&'static Schema> {
        self.types.get(event_type).map(|s| (s.reader_schema)())
    }

    /// Decodes a datum of `event_type` written with `writer` into the local type;
    /// `None` when the bus has no receivers for that type.
    ///
    /// ```
    /// # use event_bus_core::prelude::*;
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Serialize, Deserialize, Event)]
    /// # #[event(type = "org.example.docs.tag.added.v1", topic = "tags")]
    /// # struct TagAdded { tag: String }
    /// let mut bus = EventBus::new();
    /// bus.connect_fn("x", |_: &TagAdded, _| Ok(()))?;
    /// let datum = TagAdded { tag: "rust".into() }.to_avro_datum().unwrap();
    /// let decoded = bus.decode("org.example.docs.tag.added.v1", &datum, TagAdded::schema());
    /// assert!(matches!(decoded, Some(Ok(_))));
    /// # Ok::<(), event_bus_core::dispatch::BusError>(())
    /// ```
    pub fn decode(
        &self,
        event_type: &str,
        datum: &[u8],
        writer: &Schema,
    ) -> Option<Result<DecodedEvent, CodecError>> {
        self.types
            .get(event_type)
            .map(|slot| (slot.decode)(datum, writer))
    }

    /// Decodes a datum of `event_type` written with the local type's own schema (the
    /// caller knows the writer schema equals it, e.g. from a cache by schema id), so no
    /// schema comparison or resolution is done.
    ///
    /// ```
    /// # use event_bus_core::prelude::*;
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Serialize, Deserialize, Event)]
    /// # #[event(type = "org.example.docs.tag.removed.v1", topic = "tags")]
    /// # struct TagRemoved { tag: String }
    /// let mut bus = EventBus::new();
    /// bus.connect_fn("x", |_: &TagRemoved, _| Ok(()))?;
    /// let datum = TagRemoved { tag: "rust".into() }.to_avro_datum().unwrap();
    /// assert!(matches!(bus.decode_as_reader("org.example.docs.tag.removed.v1", &datum), Some(Ok(_))));
    /// # Ok::<(), event_bus_core::dispatch::BusError>(())
    /// ```
    pub fn decode_as_reader(
        &self,
        event_type: &str,
        datum: &[u8],
    ) -> Option<Result<DecodedEvent, CodecError>> {
        self.types
            .get(event_type)
            .map(|slot| (slot.decode)(datum, (slot.reader_schema)()))
    }

    /// Dispatches a typed event to every receiver of its type.
    ///
    /// See the type's example.
    pub async fn dispatch<E: Event>(&self, event: E, ctx: DeliveryContext) -> DispatchReport {
        self.dispatch_decoded(E::EVENT_TYPE, Arc::new(event), ctx, None)
            .await
    }

    /// Dispatches a decoded event to the receivers of `event_type`; when `only` is
    /// given, to those receivers alone (a retry of the ones that failed). The context
    /// may come shared (`Arc`), so a retry loop need not copy it per attempt.
    ///
    /// ```
    /// # use event_bus_core::prelude::*;
    /// # use event_bus_core::dispatch::DeliveryContext;
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Serialize, Deserialize, Event)]
    /// # #[event(type = "org.example.docs.page.viewed.v1", topic = "pages")]
    /// # struct PageViewed { path: String }
    /// let mut bus = EventBus::new();
    /// bus.connect_fn("a", |_: &PageViewed, _| Ok(()))?;
    /// bus.connect_fn("b", |_: &PageViewed, _| Ok(()))?;
    /// let event = std::sync::Arc::new(PageViewed { path: "/".into() });
    /// let ctx = DeliveryContext::local(EventMetadata::for_event::<PageViewed>());
    /// let only = vec!["b".to_string()];
    /// let report = futures::executor::block_on(
    ///     bus.dispatch_decoded("org.example.docs.page.viewed.v1", event, ctx, Some(&only)));
    /// assert_eq!(report.outcomes.len(), 1);
    /// assert_eq!(report.outcomes[0].receiver, "b");
    /// # Ok::<(), event_bus_core::dispatch::BusError>(())
    /// ```
    pub async fn dispatch_decoded(
        &self,
        event_type: &str,
        event: DecodedEvent,
        ctx: impl Into<Arc<DeliveryContext>>,
        only: Option<&[String]>,
    ) -> DispatchReport {
        let Some(slot) = self.types.get(event_type) else {
            return DispatchReport::default();
        };
        let ctx = ctx.into();
        let mut selected = slot
            .receivers
            .iter()
            .filter(|r| only.is_none_or(|names| names.iter().any(|n| *n == r.name)));
        let outcomes = if slot.receivers.len() == 1 {
            // The common single-receiver case needs no join.
            match selected.next() {
                Some(receiver) => vec![receiver.run(event, ctx).await],
                None => Vec::new(),
            }
        } else {
            join_all(selected.map(|r| r.run(Arc::clone(&event), Arc::clone(&ctx)))).await
        };
        DispatchReport { outcomes }
    }
}

fn downcast<E: Event>(event: DecodedEvent) -> Result<Arc<E>, ReceiverError> {
    event.downcast::<E>().map_err(|_| {
        ReceiverError::permanent(format!(
            "internal: event given to a receiver of `{}` is of another type",
            E::EVENT_TYPE
        ))
    })
}

fn panic_error(panic: &(dyn Any + Send)) -> ReceiverError {
    let text = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-text panic payload".to_owned());
    ReceiverError::new(format!("receiver panicked: {text}"))
}
