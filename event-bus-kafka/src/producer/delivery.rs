//! Where a delivered event landed.

use uuid::Uuid;

/// The broker's acknowledgement of one event.
///
/// ```
/// let d = event_bus_kafka::producer::Delivery { topic: "t".into(), partition: 0, offset: 41, event_id: uuid::Uuid::nil() };
/// assert_eq!(d.to_string(), "t[0]@41 (ce_id 00000000-0000-0000-0000-000000000000)");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The topic (with prefix).
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The offset.
    pub offset: i64,
    /// The event's `ce_id`.
    pub event_id: Uuid,
}

impl std::fmt::Display for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}[{}]@{} (ce_id {})",
            self.topic, self.partition, self.offset, self.event_id
        )
    }
}
