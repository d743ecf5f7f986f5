//! How Rust types map to Avro schemas, the way openedx-events maps its attrs classes.
//!
//! | Rust | Avro |
//! |---|---|
//! | `bool`, `i32`, `i64`, `f32`, `f64`, `String` | `boolean`, `int`, `long`, `float`, `double`, `string` |
//! | `Vec<u8>` with `#[serde(with = "event_bus_core::avro::bytes")]` | `bytes` |
//! | `Vec<T>` | `{"type": "array", "items": T}` |
//! | `HashMap<String, T>`, `BTreeMap<String, T>` | `{"type": "map", "values": T}` |
//! | `Option<T>` | `["null", T]` with `"default": null` |
//! | `uuid::Uuid`, `chrono::DateTime<Utc>` | `string` (UUID text, ISO-8601 UTC) |
//! | struct with `#[derive(EventData)]` | record named after the struct |
//! | unit-only enum with `#[derive(EventData)]` | enum named after the type |
//!
//! A record or enum used twice is defined once and then referenced by name.

pub mod binary;
pub mod bytes;
pub(crate) mod top_level;

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::{json, Value};

/// Names of records and enums already defined in the schema being built.
///
/// ```
/// use event_bus_core::avro::SchemaNames;
/// let mut names = SchemaNames::default();
/// assert!(names.define("UserData"));
/// assert!(!names.define("UserData"));
/// ```
#[derive(Debug, Default)]
pub struct SchemaNames {
    defined: HashSet<String>,
}

impl SchemaNames {
    /// Records `name` as defined; returns `false` when it was defined before, in which
    /// case the caller must reference it by name instead of defining it again.
    ///
    /// ```
    /// let mut names = event_bus_core::avro::SchemaNames::default();
    /// assert!(names.define("CourseData"));
    /// ```
    pub fn define(&mut self, name: &str) -> bool {
        self.defined.insert(name.to_owned())
    }
}

/// A Rust type with an Avro mapping, usable as an event field.
///
/// Implemented for the types in the module table; `#[derive(EventData)]` implements
/// it for nested structs and unit-only enums.
///
/// ```
/// use event_bus_core::avro::{AvroType, SchemaNames};
/// let schema = <Option<String>>::avro_schema(&mut SchemaNames::default());
/// assert_eq!(schema, serde_json::json!(["null", "string"]));
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no Avro mapping, so it cannot be a field of an event",
    label = "unsupported event field type",
    note = "use bool, i32, i64, f32, f64, String, Vec<u8>, Vec<T>, Option<T>, HashMap<String, T>, BTreeMap<String, T>, uuid::Uuid or chrono::DateTime<Utc>, or add #[derive(EventData)] to your struct or unit-only enum"
)]
pub trait AvroType {
    /// The Avro schema of this type, as JSON.
    fn avro_schema(names: &mut SchemaNames) -> Value;

    /// The field default this type implies (`null` for `Option`).
    ///
    /// ```
    /// use event_bus_core::avro::AvroType;
    /// assert_eq!(<Option<i64>>::field_default(), Some(serde_json::Value::Null));
    /// assert_eq!(<i64>::field_default(), None);
    /// ```
    fn field_default() -> Option<Value> {
        None
    }

    /// The schema of `Vec<Self>`; `Vec<u8>` overrides it to `bytes`.
    #[doc(hidden)]
    fn vec_schema(names: &mut SchemaNames) -> Value {
        json!({"type": "array", "items": Self::avro_schema(names)})
    }
}

macro_rules! primitive {
    ($($ty:ty => $avro:literal),* $(,)?) => {
        $(impl AvroType for $ty {
            fn avro_schema(_: &mut SchemaNames) -> Value {
                Value::String($avro.to_owned())
            }
        })*
    };
}

primitive! {
    bool => "boolean",
    i32 => "int",
    i64 => "long",
    f32 => "float",
    f64 => "double",
    String => "string",
    uuid::Uuid => "string",
    chrono::DateTime<chrono::Utc> => "string",
}

impl AvroType for u8 {
    fn avro_schema(_: &mut SchemaNames) -> Value {
        Value::String("int".to_owned())
    }

    fn vec_schema(_: &mut SchemaNames) -> Value {
        Value::String("bytes".to_owned())
    }
}

impl<T: AvroType> AvroType for Vec<T> {
    fn avro_schema(names: &mut SchemaNames) -> Value {
        T::vec_schema(names)
    }
}

impl<T: AvroType> AvroType for Option<T> {
    fn avro_schema(names: &mut SchemaNames) -> Value {
        json!(["null", T::avro_schema(names)])
    }

    fn field_default() -> Option<Value> {
        Some(Value::Null)
    }
}

impl<T: AvroType, S> AvroType for HashMap<String, T, S> {
    fn avro_schema(names: &mut SchemaNames) -> Value {
        json!({"type": "map", "values": T::avro_schema(names)})
    }
}

impl<T: AvroType> AvroType for BTreeMap<String, T> {
    fn avro_schema(names: &mut SchemaNames) -> Value {
        json!({"type": "map", "values": T::avro_schema(names)})
    }
}

/// One field of a record schema, with its default and doc when it has them.
///
/// ```
/// use event_bus_core::avro::{field, SchemaNames};
/// let f = field::<Option<String>>("start", Some("When it starts."), &mut SchemaNames::default());
/// assert_eq!(f["default"], serde_json::Value::Null);
/// assert_eq!(f["doc"], "When it starts.");
/// ```
pub fn field<T: AvroType>(name: &str, doc: Option<&str>, names: &mut SchemaNames) -> Value {
    let mut entry = json!({"name": name, "type": T::avro_schema(names)});
    if let Some(default) = T::field_default() {
        entry["default"] = default;
    }
    if let Some(doc) = doc.filter(|d| !d.is_empty()) {
        entry["doc"] = Value::String(doc.to_owned());
    }
    entry
}

/// A record schema named `name`, or a reference to it when it is already defined.
///
/// ```
/// use event_bus_core::avro::{record, SchemaNames};
/// let mut names = SchemaNames::default();
/// let first = record("UserData", None, &mut names, |_| vec![]);
/// assert_eq!(first["type"], "record");
/// let again = record("UserData", None, &mut names, |_| vec![]);
/// assert_eq!(again, "UserData");
/// ```
pub fn record(
    name: &str,
    doc: Option<&str>,
    names: &mut SchemaNames,
    fields: impl FnOnce(&mut SchemaNames) -> Vec<Value>,
) -> Value {
    if !names.define(name) {
        return Value::String(name.to_owned());
    }
    let mut schema = json!({"name": name, "type": "record", "fields": fields(names)});
    if let Some(doc) = doc.filter(|d| !d.is_empty()) {
        schema["doc"] = Value::String(doc.to_owned());
    }
    schema
}

/// An enum schema named `name`, or a reference to it when it is already defined.
///
/// ```
/// use event_bus_core::avro::{enumeration, SchemaNames};
/// let schema = enumeration("Mode", None, &["audit", "verified"], &mut SchemaNames::default());
/// assert_eq!(schema["symbols"], serde_json::json!(["audit", "verified"]));
/// ```
pub fn enumeration(
    name: &str,
    doc: Option<&str>,
    symbols: &[&str],
    names: &mut SchemaNames,
) -> Value {
    if !names.define(name) {
        return Value::String(name.to_owned());
    }
    let mut schema = json!({"name": name, "type": "enum", "symbols": symbols});
    if let Some(doc) = doc.filter(|d| !d.is_empty()) {
        schema["doc"] = Value::String(doc.to_owned());
    }
    schema
}

/// The doc string openedx-events gives every top-level event record.
pub const CLOUD_EVENT_DOC: &str =
    "Avro Event Format for CloudEvents created with openedx_events/schema";

/// The top-level schema of an event: a record named `CloudEvent` in the event type's
/// namespace, as openedx-events builds it.
///
/// ```
/// use event_bus_core::avro::{cloud_event_record, field, SchemaNames};
/// let schema = cloud_event_record("org.example.thing.created.v1", None, |names| {
///     vec![field::<String>("name", None, names)]
/// });
/// assert_eq!(schema["name"], "CloudEvent");
/// assert_eq!(schema["namespace"], "org.example.thing.created.v1");
/// ```
pub fn cloud_event_record(
    event_type: &str,
    doc: Option<&str>,
    fields: impl FnOnce(&mut SchemaNames) -> Vec<Value>,
) -> Value {
    let mut names = SchemaNames::default();
    let fields = fields(&mut names);
    json!({
        "name": "CloudEvent",
        "type": "record",
        "namespace": event_type,
        "doc": doc.filter(|d| !d.is_empty()).unwrap_or(CLOUD_EVENT_DOC),
        "fields": fields,
    })
}
