//! Event keys: the value of an event's key field, which Kafka partitions by.
//!
//! Like Open edX's producer, the key is Avro-encoded with the key field's own schema
//! (`{"name": "<field>", "type": "<avro type>"}`), so Rust and Python producers of
//! the same key write the same bytes.

use std::fmt;

use apache_avro::types::Value as AvroValue;
use serde_json::{json, Value};

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
