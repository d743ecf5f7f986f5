//! Events given as JSON (the `produce-event` command, scripts, replays by hand):
//! checked against their registered type, then encoded exactly as
//! [`EventEncoder::encode`] encodes a typed event — same subjects, FULL_TRANSITIVE
//! registration, Confluent framing of key and value, CloudEvents headers.
//!
//! ```no_run
//! use std::sync::Arc;
//! use event_bus_core::EventRegistration;
//! use event_bus_kafka::prelude::*;
//! use event_bus_kafka::producer::JsonEvent;
//! # async fn demo(producer: Producer) -> Result<(), Box<dyn std::error::Error>> {
//! let registration = EventRegistration::find("org.example.shop.order.placed.v1").ok_or("unknown type")?;
//! let data = serde_json::json!({"id": "o-1"});
//! let event = JsonEvent::parse(registration, &data, None)?;
//! let metadata = event.metadata(producer.config().event_source());
//! let record = producer.encoder().encode_json(&event, metadata, None).await?;
//! let delivery = producer.send_encoded(&record).await?;
//! # Ok(()) }
//! ```

use std::fmt;

use apache_avro::schema::{NamesRef, ResolvedSchema};
use apache_avro::Schema;
use event_bus_core::codec::{self, CodecError};
use event_bus_core::registration::JsonEventError;
use event_bus_core::{EventKey, EventMetadata, EventRegistration};
use serde_json::Value;

use crate::producer::{EncodedRecord, EventEncoder, ProducerError};
use crate::topic;

/// An event given as JSON, checked against its registered type: its Avro datum and
/// its key are ready, nothing has been registered or sent yet.
///
/// ```
/// # use event_bus_core::prelude::*;
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Serialize, Deserialize, Event)]
/// # #[event(type = "org.example.docs.parcel.sent.v1", topic = "parcels", key = "parcel.code")]
/// # struct ParcelSent { parcel: Parcel }
/// # #[derive(Serialize, Deserialize, EventData)]
/// # struct Parcel { code: String, weight: i64 }
/// use event_bus_core::{EventKey, EventRegistration};
/// use event_bus_kafka::producer::JsonEvent;
///
/// let registration = EventRegistration::find("org.example.docs.parcel.sent.v1").unwrap();
/// let data = serde_json::json!({"parcel": {"code": "P-7", "weight": 12}});
///
/// // The type's own key field...
/// let event = JsonEvent::parse(registration, &data, None)?;
/// assert_eq!(event.key(), Some(&EventKey::String("P-7".into())));
/// // ...or another one, typed by the event's schema.
/// let event = JsonEvent::parse(registration, &data, Some("parcel.weight"))?;
/// assert_eq!(event.key(), Some(&EventKey::Long(12)));
/// assert_eq!(event.key_field(), Some("parcel.weight"));
/// # Ok::<(), event_bus_kafka::producer::JsonInputError>(())
/// ```
#[derive(Debug, Clone)]
pub struct JsonEvent {
    registration: &'static EventRegistration,
    datum: Vec<u8>,
    key: Option<EventKey>,
    key_field: Option<String>,
    key_schema: Option<Value>,
}

/// Why a JSON document is not an event that can be sent. Nothing was registered or
/// sent.
///
/// ```
/// # use event_bus_core::prelude::*;
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Serialize, Deserialize, Event)]
/// # #[event(type = "org.example.docs.crate.packed.v1", topic = "crates", key = "code")]
/// # struct CratePacked { code: String, weight: f64 }
/// use event_bus_core::EventRegistration;
/// use event_bus_kafka::producer::{JsonEvent, JsonInputError, KeyFieldProblem};
///
/// let registration = EventRegistration::find("org.example.docs.crate.packed.v1").unwrap();
/// let data = serde_json::json!({"code": "C-1", "weight": 2.5});
/// let err = JsonEvent::parse(registration, &data, Some("weight")).unwrap_err();
/// assert!(matches!(
///     err,
///     JsonInputError::KeyField { problem: KeyFieldProblem::UnsupportedType { .. }, .. }
/// ));
/// assert!(err.to_string().contains("org.example.docs.crate.packed.v1"));
///
/// let err = JsonEvent::parse(registration, &serde_json::json!({"code": 1}), None).unwrap_err();
/// assert!(matches!(err, JsonInputError::Event(_)));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JsonInputError {
    /// The JSON does not have the shape of the event type (the message names the type
    /// and the first field that is wrong).
    #[error(transparent)]
    Event(#[from] JsonEventError),
    /// The key field path does not lead to a key in this event type or in the JSON.
    #[error(
        "key field `{path}` of `{event_type}`: {problem}; point the key field at a string, \
         long, int or boolean field of the event (dotted path, e.g. `user.pii.username`)"
    )]
    KeyField {
        /// The event type.
        event_type: &'static str,
        /// The key field path that was given.
        path: String,
        /// What is wrong with it.
        problem: KeyFieldProblem,
    },
}

/// What is wrong with a key field path.
///
/// ```
/// use event_bus_kafka::producer::KeyFieldProblem;
/// let problem = KeyFieldProblem::NoSuchField { field: "nope".into(), record: "UserData".into() };
/// assert_eq!(problem.to_string(), "record `UserData` has no field `nope`");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyFieldProblem {
    /// The path is empty or has an empty segment.
    #[error("the path is empty or has an empty segment")]
    Empty,
    /// A record on the path has no field of that name.
    #[error("record `{record}` has no field `{field}`")]
    NoSuchField {
        /// The missing field.
        field: String,
        /// The record that lacks it.
        record: String,
    },
    /// The path goes through something that is not a record.
    #[error("`{prefix}` is a `{avro_type}`, not a record, so it has no field `{field}`")]
    NotARecord {
        /// The path up to the value that is not a record.
        prefix: String,
        /// Its Avro type.
        avro_type: String,
        /// The field asked for inside it.
        field: String,
    },
    /// The field exists, but keys of its type cannot be encoded the way Open edX does.
    #[error("the field is a `{avro_type}`")]
    UnsupportedType {
        /// The field's Avro type.
        avro_type: String,
    },
    /// The schema could not be read.
    #[error("the event type's schema cannot be read: {0}")]
    Schema(String),
    /// The JSON has no value at the path, or `null`.
    #[error("the JSON has no value there (absent or null)")]
    MissingInJson,
    /// The JSON value at the path does not fit the field's Avro type.
    #[error("the JSON value there, {found}, is not a valid `{avro_type}`")]
    WrongJsonValue {
        /// The field's Avro type.
        avro_type: &'static str,
        /// The JSON value found (shortened).
        found: String,
    },
}

impl JsonEvent {
    /// Checks `data` against `registration`'s type (every field, as the typed event
    /// would deserialize it) and reads its key.
    ///
    /// The key is read at `key_field` (a dotted path such as `user.pii.username`), or at
    /// the type's own key field when `None` (or the same path) is given; the field's
    /// type in the event's schema gives the key's Avro type (`string`, `long`, `int` or
    /// `boolean`). Another field than the type's own must hold a value; the type's own
    /// key field, when it is optional and empty, gives a record without a key, as
    /// [`Producer::send`](super::Producer::send) does.
    ///
    /// See the type's example.
    pub fn parse(
        registration: &'static EventRegistration,
        data: &Value,
        key_field: Option<&str>,
    ) -> Result<Self, JsonInputError> {
        let (datum, own_key) = (registration.json_to_datum)(data)?;
        let own_field = registration.key_field;
        let (key, key_field, key_schema) = match key_field {
            None => (
                own_key,
                own_field.map(str::to_owned),
                (registration.key_schema_json)(),
            ),
            Some(path) if Some(path) == own_field => (
                own_key,
                Some(path.to_owned()),
                (registration.key_schema_json)(),
            ),
            Some(path) => {
                let key_error = |problem| JsonInputError::KeyField {
                    event_type: registration.event_type,
                    path: path.to_owned(),
                    problem,
                };
                let avro_type =
                    key_type_in_schema(&(registration.schema_json)(), path).map_err(key_error)?;
                let key = key_from_json(data, path, avro_type).map_err(key_error)?;
                (
                    Some(key),
                    Some(path.to_owned()),
                    Some(event_bus_core::key::key_schema(path, avro_type)),
                )
            }
        };
        Ok(Self {
            registration,
            datum,
            key,
            key_field,
            key_schema,
        })
    }

    /// The event type's registration.
    ///
    /// ```no_run
    /// # fn demo(event: event_bus_kafka::producer::JsonEvent) {
    /// println!("{}", event.registration().topic);
    /// # }
    /// ```
    pub fn registration(&self) -> &'static EventRegistration {
        self.registration
    }

    /// The event type.
    ///
    /// ```no_run
    /// # fn demo(event: event_bus_kafka::producer::JsonEvent) {
    /// println!("{}", event.event_type());
    /// # }
    /// ```
    pub fn event_type(&self) -> &'static str {
        self.registration.event_type
    }

    /// The key, if the event has one.
    ///
    /// See the type's example.
    pub fn key(&self) -> Option<&EventKey> {
        self.key.as_ref()
    }

    /// The dotted path the key was read from, if any.
    ///
    /// See the type's example.
    pub fn key_field(&self) -> Option<&str> {
        self.key_field.as_deref()
    }

    /// The event's Avro datum (unframed).
    ///
    /// ```no_run
    /// # fn demo(event: event_bus_kafka::producer::JsonEvent) {
    /// assert!(!event.datum().is_empty());
    /// # }
    /// ```
    pub fn datum(&self) -> &[u8] {
        &self.datum
    }

    /// Fresh metadata for this event: a new `ce_id`, the current time, the type's
    /// minor version and `source` as `ce_source` (use the producer's,
    /// [`ProducerConfig::event_source`](crate::config::ProducerConfig::event_source)).
    ///
    /// ```no_run
    /// # fn demo(event: event_bus_kafka::producer::JsonEvent) {
    /// let metadata = event.metadata("openedx/lms/web");
    /// assert_eq!(metadata.source, "openedx/lms/web");
    /// # }
    /// ```
    pub fn metadata(&self, source: &str) -> EventMetadata {
        let mut metadata = EventMetadata::new(self.registration.event_type)
            .with_source(event_bus_core::shared_text::shared(source));
        metadata.minorversion = self.registration.minor_version;
        metadata
    }
}

impl EventEncoder {
    /// Encodes a JSON event for `topic` (default: its type's topic; the prefix is
    /// applied) with `metadata` (its `ce_type` is always the event's type).
    ///
    /// Registers the value and key schemas under FULL_TRANSITIVE exactly as
    /// [`encode`](Self::encode) does for a typed event, on every call (it is meant for
    /// one-off sends; typed events cache their ids).
    ///
    /// See [`JsonEvent`]'s example.
    pub async fn encode_json(
        &self,
        event: &JsonEvent,
        mut metadata: EventMetadata,
        topic: Option<&str>,
    ) -> Result<EncodedRecord, ProducerError> {
        let event_type = event.event_type();
        let full_topic = self.full_topic(topic.unwrap_or(event.registration.topic));
        let value_subject = topic::value_subject(&full_topic, event_type);
        let value_schema = (event.registration.schema_json)().to_string();
        let value_id = self.register_subject(&value_subject, &value_schema).await?;
        let key = match (&event.key, &event.key_schema) {
            (Some(key), Some(key_schema)) => {
                let subject = topic::key_subject(&full_topic, key.avro_type());
                let key_id = self
                    .register_subject(&subject, &key_schema.to_string())
                    .await?;
                let framed = encode_key(key, key_id, key_schema).map_err(|source| {
                    ProducerError::Encode {
                        event_type: event_type.to_owned(),
                        source,
                    }
                })?;
                Some(framed)
            }
            _ => None,
        };
        metadata.event_type = event_type.into();
        Ok(EncodedRecord {
            topic: full_topic,
            key,
            value: codec::frame(value_id, &event.datum),
            headers: super::encoder::record_headers(&metadata),
            event_type: event_type.to_owned(),
            event_id: metadata.id,
            key_text: event.key.as_ref().map(ToString::to_string),
        })
    }
}

/// The key framed with `key_id`, its datum in its key schema
/// (`{"name": …, "type": <primitive>}`).
fn encode_key(key: &EventKey, key_id: u32, key_schema: &Value) -> Result<Vec<u8>, CodecError> {
    let schema = Schema::parse(key_schema).map_err(|source| CodecError::Avro {
        operation: "parsing the key schema",
        schema: key_schema.to_string(),
        source: Box::new(source),
    })?;
    super::encoder::encode_key_framed(key, key_id, &schema)
}

/// The Avro primitive type of the field `path` reaches in `schema_json`.
fn key_type_in_schema(schema_json: &Value, path: &str) -> Result<&'static str, KeyFieldProblem> {
    if path.split('.').any(str::is_empty) {
        return Err(KeyFieldProblem::Empty);
    }
    let schema = Schema::parse(schema_json).map_err(|e| KeyFieldProblem::Schema(e.to_string()))?;
    let resolved =
        ResolvedSchema::try_from(&schema).map_err(|e| KeyFieldProblem::Schema(e.to_string()))?;
    let names = resolved.get_names();
    let mut current = &schema;
    let mut walked = String::new();
    for field in path.split('.') {
        current = unwrap_schema(current, names)?;
        let Schema::Record(record) = current else {
            return Err(KeyFieldProblem::NotARecord {
                prefix: walked,
                avro_type: describe(current),
                field: field.to_owned(),
            });
        };
        let index =
            record
                .lookup
                .get(field)
                .copied()
                .ok_or_else(|| KeyFieldProblem::NoSuchField {
                    field: field.to_owned(),
                    record: record.name.name().to_owned(),
                })?;
        current = &record.fields[index].schema;
        if !walked.is_empty() {
            walked.push('.');
        }
        walked.push_str(field);
    }
    match unwrap_schema(current, names)? {
        Schema::String | Schema::Uuid(_) => Ok("string"),
        Schema::Long => Ok("long"),
        Schema::Int => Ok("int"),
        Schema::Boolean => Ok("boolean"),
        other => Err(KeyFieldProblem::UnsupportedType {
            avro_type: describe(other),
        }),
    }
}

/// Follows a named reference and looks through a `["null", T]` union to `T`.
fn unwrap_schema<'s>(
    mut schema: &'s Schema,
    names: &NamesRef<'s>,
) -> Result<&'s Schema, KeyFieldProblem> {
    loop {
        schema = match schema {
            Schema::Ref { name } => names.get(name).copied().ok_or_else(|| {
                KeyFieldProblem::Schema(format!("unresolved reference `{}`", name.fullname(None)))
            })?,
            Schema::Union(union) => {
                let mut non_null = union
                    .variants()
                    .iter()
                    .filter(|v| !matches!(v, Schema::Null));
                match (non_null.next(), non_null.next()) {
                    (Some(only), None) => only,
                    _ => return Ok(schema),
                }
            }
            _ => return Ok(schema),
        };
    }
}

fn describe(schema: &Schema) -> String {
    match schema {
        Schema::Record(record) => format!("record {}", record.name.name()),
        Schema::Union(_) => "union".to_owned(),
        other => {
            let kind: apache_avro::schema::SchemaKind = other.into();
            format!("{kind:?}").to_ascii_lowercase()
        }
    }
}

/// The key at `path` in `data`, as a value of `avro_type`.
fn key_from_json(
    data: &Value,
    path: &str,
    avro_type: &'static str,
) -> Result<EventKey, KeyFieldProblem> {
    let value = path
        .split('.')
        .try_fold(data, |node, field| node.get(field))
        .ok_or(KeyFieldProblem::MissingInJson)?;
    let wrong = || KeyFieldProblem::WrongJsonValue {
        avro_type,
        found: Shortened(value).to_string(),
    };
    let key = match (avro_type, value) {
        (_, Value::Null) => return Err(KeyFieldProblem::MissingInJson),
        ("string", Value::String(text)) => EventKey::String(text.clone()),
        ("long", Value::Number(n)) => EventKey::Long(n.as_i64().ok_or_else(wrong)?),
        ("int", Value::Number(n)) => EventKey::Int(
            n.as_i64()
                .and_then(|n| i32::try_from(n).ok())
                .ok_or_else(wrong)?,
        ),
        ("boolean", Value::Bool(b)) => EventKey::Boolean(*b),
        _ => return Err(wrong()),
    };
    Ok(key)
}

/// A JSON value, cut to a readable length for an error message.
struct Shortened<'a>(&'a Value);

impl fmt::Display for Shortened<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MAX: usize = 60;
        let text = self.0.to_string();
        match text.char_indices().nth(MAX) {
            Some((end, _)) => write!(f, "{}…", &text[..end]),
            None => f.write_str(&text),
        }
    }
}
