//! Ordering lanes: which outbox rows must be published in id order.

use crate::producer::EncodedRecord;

/// The ordering unit of the outbox: a stable 64-bit hash (FNV-1a) of the topic and the
/// framed key bytes, so the same key on the same topic always lands in the same lane,
/// across processes and versions. Rows of one lane are published in id order; a
/// failing row holds back its lane only. Two keys may share a lane (a hash collision):
/// they are then ordered together, which is stricter, never wrong.
///
/// Records without a key have no order to keep: each gets a lane of its own (from its
/// `ce_id`).
///
/// ```
/// use event_bus_kafka::outbox::Lane;
/// use event_bus_kafka::producer::EncodedRecord;
/// let record = |key: &[u8]| EncodedRecord {
///     topic: "orders".into(),
///     key: Some(key.to_vec()),
///     value: vec![0],
///     headers: vec![],
///     event_type: "t".into(),
///     event_id: uuid::Uuid::new_v4(),
///     key_text: None,
/// };
/// assert_eq!(Lane::of(&record(b"a")), Lane::of(&record(b"a")));
/// assert_ne!(Lane::of(&record(b"a")), Lane::of(&record(b"b")));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Lane(pub i64);

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

impl Lane {
    /// The lane of `record`.
    ///
    /// See the type's example.
    pub fn of(record: &EncodedRecord) -> Self {
        let mut hash = FNV_OFFSET;
        let mut write = |bytes: &[u8]| {
            for byte in bytes {
                hash ^= u64::from(*byte);
                hash = hash.wrapping_mul(FNV_PRIME);
            }
        };
        write(record.topic.as_bytes());
        match &record.key {
            Some(key) => {
                write(&[0xff, b'k']);
                write(key);
            }
            None => {
                write(&[0xff, b'i']);
                write(record.event_id.as_bytes());
            }
        }
        // Same 64 bits, as the signed integer both databases store.
        Self(i64::from_ne_bytes(hash.to_ne_bytes()))
    }

    /// Whether the record has a key, i.e. whether its lane orders anything.
    ///
    /// ```
    /// use event_bus_kafka::outbox::Lane;
    /// # use event_bus_kafka::producer::EncodedRecord;
    /// # let record = EncodedRecord { topic: "t".into(), key: None, value: vec![], headers: vec![],
    /// #     event_type: "t".into(), event_id: uuid::Uuid::nil(), key_text: None };
    /// assert!(!Lane::is_ordered(&record));
    /// ```
    pub fn is_ordered(record: &EncodedRecord) -> bool {
        record.key.is_some()
    }
}

impl std::fmt::Display for Lane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(topic: &str, key: Option<&[u8]>) -> EncodedRecord {
        EncodedRecord {
            topic: topic.into(),
            key: key.map(<[u8]>::to_vec),
            value: vec![],
            headers: vec![],
            event_type: "t".into(),
            event_id: uuid::Uuid::new_v4(),
            key_text: None,
        }
    }

    #[test]
    fn lanes_are_stable_across_runs() {
        // A fixed value (FNV-1a 64 of 0xff "k", checked independently): lanes are stored in
        // databases, so the hash must never change.
        assert_eq!(
            Lane::of(&record("orders", Some(b"o-1"))).0,
            Lane::of(&record("orders", Some(b"o-1"))).0
        );
        assert_eq!(
            Lane::of(&record("", Some(b""))),
            Lane(763_708_715_159_607_679)
        );
    }

    #[test]
    fn topic_separates_lanes() {
        assert_ne!(
            Lane::of(&record("a", Some(b"k"))),
            Lane::of(&record("b", Some(b"k")))
        );
    }

    #[test]
    fn keyless_records_get_lanes_of_their_own() {
        assert_ne!(Lane::of(&record("a", None)), Lane::of(&record("a", None)));
    }
}
