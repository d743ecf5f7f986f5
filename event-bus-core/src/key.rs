//! Event keys: the value of an event's key field, which Kafka partitions by.
//!
//! Like Open edX's producer, the key is Avro-encoded with the key field's own schema
//! (`{"name": "<field>", "type": "<avro type>"}`), so Rust and Python producers of
//! the same key write the same bytes.

use std::fmt;

use apache_avro::types::Value as AvroValue;
use serde_json::{json, Value};

use crate::avro::binary;

/// The key of one event.
///
/// ```
/// use event_bus_core::EventKey;
/// let key = EventKey::String("ada".into());
/// assert_eq!(key.to_string(), "ada");
/// assert_eq!(key.avro_type(), "string");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EventKey {
    /// An Avro `string` key.
    String(String),
    /// An Avro `long` key.
    Long(i64),
    /// An Avro `int` key.
    Int(i32),
    /// An Avro `boolean` key.
    Boolean(bool),
}

impl EventKey {
    /// The Avro primitive type of the key.
    ///
    /// ```
    /// assert_eq!(event_bus_core::EventKey::Long(4).avro_type(), "long");
    /// ```
    pub fn avro_type(&self) -> &'static str {
        match self {
            Self::String(_) => "string",
            Self::Long(_) => "long",
            Self::Int(_) => "int",
            Self::Boolean(_) => "boolean",
        }
    }

    /// The key as an Avro value, ready to encode with the key schema.
    ///
    /// ```
    /// use apache_avro::types::Value;
    /// assert_eq!(event_bus_core::EventKey::Int(3).to_avro(), Value::Int(3));
    /// ```
    pub fn to_avro(&self) -> AvroValue {
        match self {
            Self::String(s) => AvroValue::String(s.clone()),
            Self::Long(n) => AvroValue::Long(*n),
            Self::Int(n) => AvroValue::Int(*n),
            Self::Boolean(b) => AvroValue::Boolean(*b),
        }
    }

    /// Appends the key's Avro datum in its primitive schema (`string`, `long`, `int`
    /// or `boolean`): the bytes apache-avro writes for it.
    ///
    /// ```
    /// use event_bus_core::EventKey;
    /// let mut out = Vec::new();
    /// EventKey::String("ada".into()).write_avro_datum(&mut out);
    /// EventKey::Long(-1).write_avro_datum(&mut out);
    /// EventKey::Boolean(true).write_avro_datum(&mut out);
    /// assert_eq!(out, vec![6, b'a', b'd', b'a', 1, 1]);
    /// ```
    pub fn write_avro_datum(&self, out: &mut Vec<u8>) {
        match self {
            Self::String(s) => binary::write_bytes(out, s.as_bytes()),
            Self::Long(n) => binary::write_long(out, *n),
            Self::Int(n) => binary::write_long(out, i64::from(*n)),
            Self::Boolean(b) => out.push(u8::from(*b)),
        }
    }

    /// The key framed for the wire: the Confluent header for `schema_id`, then its
    /// datum.
    ///
    /// ```
    /// let framed = event_bus_core::EventKey::Int(3).to_avro_framed(1);
    /// assert_eq!(framed, vec![0, 0, 0, 0, 1, 6]);
    /// ```
    pub fn to_avro_framed(&self, schema_id: u32) -> Vec<u8> {
        let len = match self {
            Self::String(s) => s.len() + 10,
            _ => 10,
        };
        let mut out = Vec::with_capacity(5 + len);
        self.write_avro_framed(schema_id, &mut out);
        out
    }

    /// Appends the key framed for the wire to `out` (a buffer the caller reuses).
    ///
    /// ```
    /// let mut out = Vec::new();
    /// event_bus_core::EventKey::Long(3).write_avro_framed(1, &mut out);
    /// assert_eq!(out, vec![0, 0, 0, 0, 1, 6]);
    /// ```
    pub fn write_avro_framed(&self, schema_id: u32, out: &mut Vec<u8>) {
        crate::codec::write_frame_header(out, schema_id);
        self.write_avro_datum(out);
    }

    /// Reads a key back from a decoded Avro value; `None` for other value kinds.
    ///
    /// ```
    /// use apache_avro::types::Value;
    /// use event_bus_core::EventKey;
    /// assert_eq!(EventKey::from_avro(&Value::String("x".into())), Some(EventKey::String("x".into())));
    /// assert_eq!(EventKey::from_avro(&Value::Null), None);
    /// ```
    pub fn from_avro(value: &AvroValue) -> Option<Self> {
        match value {
            AvroValue::String(s) => Some(Self::String(s.clone())),
            AvroValue::Long(n) => Some(Self::Long(*n)),
            AvroValue::Int(n) => Some(Self::Int(*n)),
            AvroValue::Boolean(b) => Some(Self::Boolean(*b)),
            _ => None,
        }
    }
}

impl fmt::Display for EventKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::String(s) => f.write_str(s),
            Self::Long(n) => write!(f, "{n}"),
            Self::Int(n) => write!(f, "{n}"),
            Self::Boolean(b) => write!(f, "{b}"),
        }
    }
}

/// A type that can be an event's key field.
///
/// ```
/// use event_bus_core::key::KeyField;
/// assert_eq!(<Option<String> as KeyField>::AVRO_TYPE, "string");
/// assert_eq!(Some(5_i64).to_event_key(), Some(event_bus_core::EventKey::Long(5)));
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be an event key",
    label = "the `key` path of #[event(...)] ends at this type",
    note = "point `key` at a String, i64, i32, bool or uuid::Uuid field (or an Option of one)"
)]
pub trait KeyField {
    /// The Avro primitive type the key is encoded as.
    const AVRO_TYPE: &'static str;

    /// This field's value as a key; `None` means the record has no key.
    fn to_event_key(&self) -> Option<EventKey>;
}

impl KeyField for String {
    const AVRO_TYPE: &'static str = "string";
    fn to_event_key(&self) -> Option<EventKey> {
        Some(EventKey::String(self.clone()))
    }
}

impl KeyField for uuid::Uuid {
    const AVRO_TYPE: &'static str = "string";
    fn to_event_key(&self) -> Option<EventKey> {
        Some(EventKey::String(self.to_string()))
    }
}

impl KeyField for i64 {
    const AVRO_TYPE: &'static str = "long";
    fn to_event_key(&self) -> Option<EventKey> {
        Some(EventKey::Long(*self))
    }
}

impl KeyField for i32 {
    const AVRO_TYPE: &'static str = "int";
    fn to_event_key(&self) -> Option<EventKey> {
        Some(EventKey::Int(*self))
    }
}

impl KeyField for bool {
    const AVRO_TYPE: &'static str = "boolean";
    fn to_event_key(&self) -> Option<EventKey> {
        Some(EventKey::Boolean(*self))
    }
}

impl<T: KeyField> KeyField for Option<T> {
    const AVRO_TYPE: &'static str = T::AVRO_TYPE;
    fn to_event_key(&self) -> Option<EventKey> {
        self.as_ref().and_then(KeyField::to_event_key)
    }
}

/// The key schema Open edX's producer registers: the key field's own entry.
///
/// ```
/// let schema = event_bus_core::key::key_schema("enrollment.user.pii.username", "string");
/// assert_eq!(schema, serde_json::json!({"name": "username", "type": "string"}));
/// ```
pub fn key_schema(key_path: &str, avro_type: &str) -> Value {
    let field = key_path.rsplit('.').next().unwrap_or(key_path);
    json!({"name": field, "type": avro_type})
}

/// Helper for the derive: the key schema of the field `path` reaches.
#[doc(hidden)]
pub fn key_schema_of<E, K, F>(path: &str, _reach: F) -> Value
where
    K: KeyField + ?Sized,
    F: Fn(&E) -> &K,
{
    key_schema(path, K::AVRO_TYPE)
}

#[cfg(test)]
mod tests {
    use apache_avro::writer::datum::GenericDatumWriter;
    use apache_avro::Schema;

    use super::*;

    fn apache_bytes(key: &EventKey) -> Vec<u8> {
        let schema = Schema::parse(&key_schema("user.key", key.avro_type())).expect("schema");
        let writer = GenericDatumWriter::builder(&schema)
            .build()
            .expect("writer");
        match key {
            EventKey::String(s) => writer.write_ser_to_vec(s),
            EventKey::Long(n) => writer.write_ser_to_vec(n),
            EventKey::Int(n) => writer.write_ser_to_vec(n),
            EventKey::Boolean(b) => writer.write_ser_to_vec(b),
        }
        .expect("apache-avro writes the key")
    }

    proptest::proptest! {
        #[test]
        fn every_key_kind_is_written_as_apache_avro_writes_it(
            text in ".{0,40}", long: i64, int: i32, boolean: bool, id: u32,
        ) {
            let keys = [
                EventKey::String(text),
                EventKey::Long(long),
                EventKey::Long(i64::MIN),
                EventKey::Long(i64::MAX),
                EventKey::Int(int),
                EventKey::Int(i32::MIN),
                EventKey::Boolean(boolean),
            ];
            for key in keys {
                let framed = key.to_avro_framed(id);
                proptest::prop_assert_eq!(&framed[..5], &crate::codec::frame(id, &[])[..]);
                proptest::prop_assert_eq!(&framed[5..], &apache_bytes(&key)[..]);
            }
        }
    }
}
