//! Lets a Rust struct read the top-level `CloudEvent` record whatever its own name.
//!
//! apache-avro's schema-aware deserializer matches a struct's name against the record
//! name; an event's record is always `CloudEvent`, so the top level is read as "any
//! record" instead. Nested records keep the name check.

use serde::de::{DeserializeOwned, Deserializer, Visitor};
use serde::Deserialize;

/// Wraps an event while it is deserialized from its top-level record.
pub(crate) struct TopLevel<T>(pub T);

impl<'de, T: DeserializeOwned> Deserialize<'de> for TopLevel<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(AnyRecord(deserializer)).map(TopLevel)
    }
}

/// A deserializer that answers every request as `deserialize_any`.
struct AnyRecord<D>(D);

impl<'de, D: Deserializer<'de>> Deserializer<'de> for AnyRecord<D> {
    type Error = D::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        self.0.deserialize_any(visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}
