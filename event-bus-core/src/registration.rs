//! Every `#[derive(Event)]` type registers itself here (with `inventory`), so command
//! line tools know an application's event types without a hand-written list.

use serde_json::Value;

use crate::codec::CodecError;
use crate::event::Event;
use crate::key::EventKey;
use crate::topic_settings::TopicSettings;

/// What the SDK knows about one event type without naming the Rust type.
///
/// ```
/// # use event_bus_core::prelude::*;
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Serialize, Deserialize, Event)]
/// # #[event(type = "org.example.docs.thing.registered.v1", topic = "things", key = "name")]
/// # struct ThingRegistered { name: String }
/// use event_bus_core::EventRegistration;
/// let found = EventRegistration::find("org.example.docs.thing.registered.v1").unwrap();
/// assert_eq!(found.topic, "things");
/// let (datum, key) = (found.json_to_datum)(&serde_json::json!({"name": "x"}))?;
/// assert_eq!(key.unwrap().to_string(), "x");
/// assert_eq!(datum, vec![2, b'x']);
/// # Ok::<(), event_bus_core::registration::JsonEventError>(())
/// ```
#[derive(Debug)]
pub struct EventRegistration {
    /// The event type name.
    pub event_type: &'static str,
    /// Default topic.
    pub topic: &'static str,
    /// Dotted path of the key field.
    pub key_field: Option<&'static str>,
    /// Minor version.
    pub minor_version: u32,
    /// What the type asks of its topic (see [`crate::topic_settings`]).
    pub topic_settings: TopicSettings,
    /// The Avro schema as JSON.
    pub schema_json: fn() -> Value,
    /// The key's Avro schema as JSON.
    pub key_schema_json: fn() -> Option<Value>,
    /// Turns a JSON event into its Avro datum and key (checks it against the type).
    pub json_to_datum: JsonToDatum,
}

/// Turns a JSON event into its Avro datum and key.
pub type JsonToDatum = fn(&Value) -> Result<(Vec<u8>, Option<EventKey>), JsonEventError>;

inventory::collect!(EventRegistration);

/// A JSON document that is not a valid event of the type it was given for.
///
/// ```
/// # use event_bus_core::prelude::*;
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Serialize, Deserialize, Event)]
/// # #[event(type = "org.example.docs.gadget.registered.v1", topic = "gadgets")]
/// # struct GadgetRegistered { name: String }
/// let found = event_bus_core::EventRegistration::find("org.example.docs.gadget.registered.v1").unwrap();
/// let err = (found.json_to_datum)(&serde_json::json!({"nom": "x"})).unwrap_err();
/// assert!(err.to_string().contains("org.example.docs.gadget.registered.v1"));
/// ```
#[derive(Debug, thiserror::Error)]
pub enum JsonEventError {
    /// The JSON does not have the type's shape.
    #[error("the JSON is not a `{event_type}` event: {source}")]
    Shape {
        /// The event type.
        event_type: &'static str,
        /// What serde reported.
        #[source]
        source: serde_json::Error,
    },
    /// The event does not encode with its schema.
    #[error(transparent)]
    Codec(#[from] CodecError),
}

fn json_to_datum<E: Event>(json: &Value) -> Result<(Vec<u8>, Option<EventKey>), JsonEventError> {
    let event: E = E::deserialize(json).map_err(|source| JsonEventError::Shape {
        event_type: E::EVENT_TYPE,
        source,
    })?;
    Ok((event.to_avro_datum()?, event.key()))
}

impl EventRegistration {
    /// The registration of `E` (the derive submits it).
    ///
    /// ```
    /// # use event_bus_core::prelude::*;
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Serialize, Deserialize, Event)]
    /// # #[event(type = "org.example.docs.widget.made.v1", topic = "widgets")]
    /// # struct WidgetMade { n: i32 }
    /// let reg = event_bus_core::EventRegistration::of::<WidgetMade>();
    /// assert_eq!(reg.event_type, "org.example.docs.widget.made.v1");
    /// ```
    pub const fn of<E: Event>() -> Self {
        Self {
            event_type: E::EVENT_TYPE,
            topic: E::TOPIC,
            key_field: E::KEY_FIELD,
            minor_version: E::MINOR_VERSION,
            topic_settings: E::TOPIC_SETTINGS,
            schema_json: E::schema_json,
            key_schema_json: E::key_schema_json,
            json_to_datum: json_to_datum::<E>,
        }
    }

    /// Every registered event type in the program, sorted by name.
    ///
    /// ```
    /// let all = event_bus_core::EventRegistration::all();
    /// assert!(all.windows(2).all(|w| w[0].event_type <= w[1].event_type));
    /// ```
    pub fn all() -> Vec<&'static EventRegistration> {
        let mut all: Vec<_> = inventory::iter::<EventRegistration>.into_iter().collect();
        all.sort_by_key(|r| r.event_type);
        all
    }

    /// The registration of `event_type`, if the program has one.
    ///
    /// ```
    /// assert!(event_bus_core::EventRegistration::find("org.example.no.such.thing.v1").is_none());
    /// ```
    pub fn find(event_type: &str) -> Option<&'static EventRegistration> {
        inventory::iter::<EventRegistration>
            .into_iter()
            .find(|r| r.event_type == event_type)
    }
}
