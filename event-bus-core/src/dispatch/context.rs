//! What a receiver knows about the delivery of an event.

use std::borrow::Cow;
use std::sync::Arc;

use crate::metadata::EventMetadata;
use crate::shared_text;

/// Where an event being delivered came from.
///
/// ```
/// use event_bus_core::dispatch::Origin;
/// let origin = Origin::Bus { topic: "t".into(), partition: 0, offset: 12 };
/// assert!(origin.is_bus());
/// assert!(!Origin::Local.is_bus());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Dispatched in this process (e.g. a local signal), not read from Kafka.
    Local,
    /// Read from the event bus.
    Bus {
        /// The topic it was read from (shared: see
        /// [`shared_text`](crate::shared_text)).
        topic: Cow<'static, str>,
        /// The partition.
        partition: i32,
        /// The offset.
        offset: i64,
    },
}

impl Origin {
    /// Whether the event came from the bus. A service that consumes and re-publishes
    /// checks this so it does not publish what it just read (no loops).
    ///
    /// ```
    /// assert!(event_bus_core::dispatch::Origin::Bus { topic: "t".into(), partition: 1, offset: 0 }.is_bus());
    /// ```
    pub fn is_bus(&self) -> bool {
        matches!(self, Self::Bus { .. })
    }
}

/// The delivery of one event to a receiver.
///
/// ```
/// use event_bus_core::{EventMetadata, dispatch::DeliveryContext};
/// let ctx = DeliveryContext::local(EventMetadata::new("org.example.a.b.created.v1"));
/// assert!(!ctx.from_bus());
/// assert_eq!(ctx.attempt, 1);
/// assert_eq!(ctx.consumer_group, None);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryContext {
    /// The event's metadata.
    pub metadata: EventMetadata,
    /// Where it came from.
    pub origin: Origin,
    /// 1 on the first try; higher when a failed receiver is retried.
    pub attempt: u32,
    /// The consumer group whose consumer delivered the event (`None` for a local
    /// dispatch). Receivers that remember what they handled (the inbox) key their
    /// records by it, so two groups reading one topic each handle every event.
    pub consumer_group: Option<Arc<str>>,
}

impl DeliveryContext {
    /// A first delivery of an event dispatched in this process.
    ///
    /// ```
    /// # use event_bus_core::{EventMetadata, dispatch::{DeliveryContext, Origin}};
    /// let ctx = DeliveryContext::local(EventMetadata::new("org.example.a.b.created.v1"));
    /// assert_eq!(ctx.origin, Origin::Local);
    /// ```
    pub fn local(metadata: EventMetadata) -> Self {
        Self {
            metadata,
            origin: Origin::Local,
            attempt: 1,
            consumer_group: None,
        }
    }

    /// A first delivery of an event read from `topic`/`partition` at `offset`, with no
    /// consumer group yet (see [`with_consumer_group`](Self::with_consumer_group)).
    ///
    /// ```
    /// # use event_bus_core::{EventMetadata, dispatch::DeliveryContext};
    /// let ctx = DeliveryContext::from_record(EventMetadata::new("org.example.a.b.created.v1"), "t", 0, 5);
    /// assert!(ctx.from_bus());
    /// assert_eq!(ctx.consumer_group, None);
    /// ```
    pub fn from_record(metadata: EventMetadata, topic: &str, partition: i32, offset: i64) -> Self {
        Self {
            metadata,
            origin: Origin::Bus {
                topic: shared_text::shared(topic),
                partition,
                offset,
            },
            attempt: 1,
            consumer_group: None,
        }
    }

    /// The same delivery, made by a consumer of `group` (the consumer loop sets it).
    ///
    /// ```
    /// # use event_bus_core::{EventMetadata, dispatch::DeliveryContext};
    /// let ctx = DeliveryContext::from_record(EventMetadata::new("org.example.a.b.created.v1"), "t", 0, 5)
    ///     .with_consumer_group("billing");
    /// assert_eq!(ctx.consumer_group.as_deref(), Some("billing"));
    /// ```
    pub fn with_consumer_group(mut self, group: impl Into<Arc<str>>) -> Self {
        self.consumer_group = Some(group.into());
        self
    }

    /// Whether the event came from the bus (see [`Origin::is_bus`]).
    ///
    /// ```
    /// # use event_bus_core::{EventMetadata, dispatch::DeliveryContext};
    /// assert!(!DeliveryContext::local(EventMetadata::new("org.example.a.b.created.v1")).from_bus());
    /// ```
    pub fn from_bus(&self) -> bool {
        self.origin.is_bus()
    }
}
