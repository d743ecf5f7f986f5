//! What the inbox records about one handled event.

use event_bus_core::dispatch::{DeliveryContext, Origin};
use uuid::Uuid;

/// The consumer group recorded for a local dispatch (no consumer delivered the event).
///
/// ```
/// assert_eq!(event_bus_kafka::inbox::LOCAL_GROUP, "");
/// ```
pub const LOCAL_GROUP: &str = "";

/// One inbox row: event `ce_id` handled by `receiver` in `consumer_group`. The first
/// three fields are the key; the rest say where the event was read, for operators.
///
/// ```
/// use event_bus_core::{EventMetadata, dispatch::DeliveryContext};
/// use event_bus_kafka::inbox::InboxEntry;
///
/// let ctx = DeliveryContext::from_record(EventMetadata::new("org.example.a.b.created.v1"), "orders", 2, 40)
///     .with_consumer_group("billing");
/// let entry = InboxEntry::for_delivery("invoice", &ctx);
/// assert_eq!(entry.consumer_group, "billing");
/// assert_eq!(entry.ce_id, ctx.metadata.id);
/// assert_eq!((entry.topic, entry.partition, entry.offset), (Some("orders"), Some(2), Some(40)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InboxEntry<'a> {
    /// The consumer group ([`LOCAL_GROUP`] for a local dispatch).
    pub consumer_group: &'a str,
    /// The receiver's name, as connected to the bus.
    pub receiver: &'a str,
    /// The event's `ce_id`.
    pub ce_id: Uuid,
    /// The topic it was read from (`None` for a local dispatch).
    pub topic: Option<&'a str>,
    /// The partition.
    pub partition: Option<i32>,
    /// The offset.
    pub offset: Option<i64>,
}

impl<'a> InboxEntry<'a> {
    /// The row for `receiver` handling the delivery `ctx`: its group (or
    /// [`LOCAL_GROUP`]), `ce_id`, and topic, partition and offset when read from Kafka.
    ///
    /// See the type's example.
    pub fn for_delivery(receiver: &'a str, ctx: &'a DeliveryContext) -> Self {
        let (topic, partition, offset) = match &ctx.origin {
            Origin::Bus {
                topic,
                partition,
                offset,
            } => (Some(topic.as_ref()), Some(*partition), Some(*offset)),
            Origin::Local => (None, None, None),
        };
        Self {
            consumer_group: ctx.consumer_group.as_deref().unwrap_or(LOCAL_GROUP),
            receiver,
            ce_id: ctx.metadata.id,
            topic,
            partition,
            offset,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use event_bus_core::EventMetadata;

    #[test]
    fn a_local_dispatch_has_the_local_group_and_no_position() {
        let ctx = DeliveryContext::local(EventMetadata::new("org.example.a.b.created.v1"));
        let entry = InboxEntry::for_delivery("r", &ctx);
        assert_eq!(entry.consumer_group, LOCAL_GROUP);
        assert_eq!(
            (entry.topic, entry.partition, entry.offset),
            (None, None, None)
        );
    }
}
