//! What the catalog shows, gathered once from the program: its registered event
//! types, the receivers and declared sends of the application, and the committed
//! schema history. Both renderings (AsyncAPI and HTML) read only this.

use std::path::Path;

use event_bus_core::apache_avro::Schema;
use event_bus_core::{EventBus, EventRegistration};
use serde_json::Value;

use super::history::{self, History};
use super::wire::Key;
use super::CatalogError;
use crate::topic::{full_topic, value_subject};

/// The whole catalog.
#[derive(Debug, Clone)]
pub(crate) struct Catalog {
    /// Title of the document.
    pub title: String,
    /// Version of the application the document describes.
    pub version: String,
    /// The topic prefix applied to every topic, if any.
    pub topic_prefix: Option<String>,
    /// Every registered event type, sorted by name.
    pub events: Vec<CatalogEvent>,
}

/// One event type.
#[derive(Debug, Clone)]
pub(crate) struct CatalogEvent {
    /// The event type name.
    pub event_type: &'static str,
    /// The topic on the broker, prefix applied.
    pub topic: String,
    /// The value's schema registry subject.
    pub value_subject: String,
    /// The record key, when the type declares a key field.
    pub key: Option<Key>,
    /// The minor version the code declares.
    pub minor_version: u32,
    /// The code's current Avro schema, as JSON.
    pub schema_json: Value,
    /// The same schema, parsed.
    pub schema: Schema,
    /// Whether this binary declares that it sends the type.
    pub sent: bool,
    /// The names of this binary's receivers of the type, in connection order.
    pub receivers: Vec<String>,
    /// The committed schema history.
    pub history: History,
}

impl CatalogEvent {
    /// The top-level documentation of the schema, if any.
    pub(crate) fn doc(&self) -> Option<&str> {
        self.schema_json.get("doc").and_then(Value::as_str)
    }
}

/// What [`gather`] needs besides the registrations.
pub(crate) struct Sources<'a> {
    /// The history root (`schemas/`).
    pub schemas_dir: &'a Path,
    /// The topic prefix.
    pub topic_prefix: Option<&'a str>,
    /// The application's receivers.
    pub bus: Option<&'a EventBus>,
    /// The event types the binary declares it sends.
    pub produced: &'a [&'static str],
}

/// Builds the catalog of `registrations` (every registered type, sorted).
pub(crate) fn gather(
    registrations: &[&'static EventRegistration],
    sources: &Sources<'_>,
    title: String,
    version: String,
) -> Result<Catalog, CatalogError> {
    let events = registrations
        .iter()
        .map(|registration| event(registration, sources))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Catalog {
        title,
        version,
        topic_prefix: sources
            .topic_prefix
            .map(str::trim)
            .filter(|prefix| !prefix.is_empty())
            .map(str::to_owned),
        events,
    })
}

fn event(
    registration: &'static EventRegistration,
    sources: &Sources<'_>,
) -> Result<CatalogEvent, CatalogError> {
    let event_type = registration.event_type;
    let topic = full_topic(sources.topic_prefix, registration.topic);
    let schema_json = (registration.schema_json)();
    let schema = Schema::parse(&schema_json).map_err(|source| CatalogError::InvalidSchema {
        event_type: event_type.to_string(),
        source,
    })?;
    let key = match (registration.key_field, (registration.key_schema_json)()) {
        (Some(field), Some(key_schema)) => Some(Key::new(field, &key_schema, &topic)),
        _ => None,
    };
    let history = history::load(sources.schemas_dir, event_type, &schema).map_err(|error| {
        CatalogError::History {
            event_type: event_type.to_string(),
            error,
        }
    })?;
    Ok(CatalogEvent {
        event_type,
        value_subject: value_subject(&topic, event_type),
        topic,
        key,
        minor_version: registration.minor_version,
        schema_json,
        schema,
        sent: sources.produced.contains(&event_type),
        receivers: sources
            .bus
            .map(|bus| {
                bus.receiver_names(event_type)
                    .into_iter()
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
        history,
    })
}

impl Catalog {
    /// The topics, each once, sorted, with the event types on it.
    pub(crate) fn topics(&self) -> Vec<(&str, Vec<&CatalogEvent>)> {
        let mut topics: Vec<(&str, Vec<&CatalogEvent>)> = Vec::new();
        for event in &self.events {
            match topics.iter_mut().find(|(topic, _)| *topic == event.topic) {
                Some((_, events)) => events.push(event),
                None => topics.push((&event.topic, vec![event])),
            }
        }
        topics.sort_by(|a, b| a.0.cmp(b.0));
        topics
    }
}
