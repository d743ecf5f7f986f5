//! Record → metadata → event type → writer schema → the local type.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use apache_avro::schema::SchemaKind;
use apache_avro::Schema;
use event_bus_core::codec::{self, CodecError};
use event_bus_core::dispatch::DecodedEvent;
use event_bus_core::headers::{parse_headers, HeaderError};
use event_bus_core::{EventBus, EventMetadata};

use super::record::RecordView;
use crate::registry::{RegistryClient, RegistryError};

/// Why a record could not become an event.
///
/// ```
/// use event_bus_kafka::consumer::DecodeFailure;
/// let f = DecodeFailure::UnknownEventType { event_type: "org.x.y.z.created.v1".into() };
/// assert_eq!(f.kind(), "unknown_event_type");
/// assert!(!f.is_transient());
/// ```
#[derive(Debug, thiserror::Error)]
pub enum DecodeFailure {
    /// The headers do not give valid metadata: among others a missing or empty
    /// `ce_type` (without it no one can tell which event the record is, so it is
    /// dead-lettered, never skipped as an unknown type).
    #[error("invalid headers: {0}")]
    Headers(#[from] HeaderError),
    /// No receiver here handles the record's `ce_type`.
    #[error("no receiver here handles event type `{event_type}`")]
    UnknownEventType {
        /// The record's `ce_type` (never empty: that is [`DecodeFailure::Headers`]).
        event_type: String,
    },
    /// The record has no value (a tombstone): whatever its headers say, there is no
    /// event to read. A tombstone of an event type unknown here is skipped as that
    /// type's events are; any other one (a known type, or no valid CloudEvents headers
    /// at all, as a compaction delete marker has) gets this kind.
    #[error("the record has no value (a tombstone); events always have one")]
    MissingValue,
    /// The value is not Confluent-framed.
    #[error("{0}")]
    Framing(CodecError),
    /// The registry does not know the value's schema id.
    #[error("schema id {id} is unknown to the schema registry: {source}")]
    UnknownSchemaId {
        /// The schema id.
        id: u32,
        /// The registry's answer.
        #[source]
        source: RegistryError,
    },
    /// The value's schema id is registered, but for another record than the one the
    /// record's `ce_type` names (the top-level record's full name is the event type
    /// followed by `.CloudEvent`). The datum is never decoded with it, even when the
    /// shapes are alike enough for Avro resolution to succeed.
    #[error(
        "schema id {id} is a schema of `{writer}`, not of `{reader}` (the schema of ce_type \
         `{event_type}`): the producer framed the value with another event type's schema \
         id, or set the wrong ce_type"
    )]
    SchemaOfAnotherType {
        /// The schema id.
        id: u32,
        /// The writer schema's top-level name.
        writer: String,
        /// The full name of the local type's record.
        reader: String,
        /// The record's `ce_type`.
        event_type: String,
    },
    /// The datum does not decode with its writer schema into the local type.
    #[error("{0}")]
    Undecodable(CodecError),
    /// The registry is not usable now (unreachable, or any answer but its word that
    /// the schema id does not exist: see [`crate::failure::of_registry`]). The
    /// consumer waits and tries again; such a record is never dead-lettered.
    #[error("the schema registry is unavailable: {0}")]
    RegistryUnavailable(#[source] RegistryError),
}

impl DecodeFailure {
    /// A short, stable name of the failure, written to the DLQ's error-kind header.
    ///
    /// See the type's example.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Headers(_) => "invalid_headers",
            Self::UnknownEventType { .. } => "unknown_event_type",
            Self::MissingValue => "missing_value",
            Self::Framing(_) => "invalid_framing",
            Self::UnknownSchemaId { .. } => "unknown_schema_id",
            Self::SchemaOfAnotherType { .. } => "schema_mismatch",
            Self::Undecodable(_) => "undecodable_avro",
            Self::RegistryUnavailable(_) => "registry_unavailable",
        }
    }

    /// Whether the record itself may be fine and only the registry was not usable.
    ///
    /// See the type's example.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::RegistryUnavailable(_))
    }
}

/// A decoded record.
pub(crate) struct Decoded {
    /// The event type as the bus names it.
    pub event_type: &'static str,
    pub metadata: EventMetadata,
    pub event: DecodedEvent,
    pub defaulted: Vec<&'static str>,
}

/// Decodes records for the types of one bus, caching which writer schemas equal the
/// local reader schema so the common case needs no resolution and no registry lookup.
pub(crate) struct RecordDecoder {
    registry: Arc<RegistryClient>,
    /// foldhash: looked up for every record, where SipHash was a visible share.
    same_as_reader: RwLock<HashMap<(u32, &'static str), bool, foldhash::fast::RandomState>>,
}

impl RecordDecoder {
    pub fn new(registry: Arc<RegistryClient>) -> Self {
        Self {
            registry,
            same_as_reader: RwLock::new(HashMap::default()),
        }
    }

    /// The metadata alone (for the unknown-type and DLQ paths).
    pub fn metadata(
        record: &RecordView<'_>,
    ) -> Result<(EventMetadata, Vec<&'static str>), DecodeFailure> {
        let parsed = parse_headers(
            record
                .headers
                .iter()
                .map(|(name, value)| (name.as_ref(), *value)),
        )?;
        Ok((parsed.metadata, parsed.defaulted))
    }

    pub async fn decode(
        &self,
        bus: &EventBus,
        record: &RecordView<'_>,
    ) -> Result<Decoded, DecodeFailure> {
        let (metadata, defaulted) = match Self::metadata(record) {
            Ok(parsed) => parsed,
            // No value and no valid headers (a compaction delete marker, say): the
            // missing value says more than the first header found wrong.
            Err(_) if record.value.is_none() => return Err(DecodeFailure::MissingValue),
            Err(failure) => return Err(failure),
        };
        let Some(event_type) = bus.known_type(&metadata.event_type) else {
            return Err(DecodeFailure::UnknownEventType {
                event_type: metadata.event_type.into_owned(),
            });
        };
        let value = record.value.ok_or(DecodeFailure::MissingValue)?;
        let (id, datum) = codec::unframe(value).map_err(DecodeFailure::Framing)?;
        let decoded = match self.cached_same_as_reader(id, event_type) {
            Some(true) => bus.decode_as_reader(event_type, datum),
            // Boxed: the registry call makes a large future that the per-record
            // future would otherwise carry (and copy) for every record.
            known => Box::pin(self.decode_with_writer(bus, event_type, id, datum, known)).await?,
        };
        let event = decoded
            .ok_or_else(|| DecodeFailure::UnknownEventType {
                event_type: event_type.to_owned(),
            })?
            .map_err(DecodeFailure::Undecodable)?;
        Ok(Decoded {
            event_type,
            metadata,
            event,
            defaulted,
        })
    }

    /// Whether the writer schema `id` is known to equal the reader schema of
    /// `event_type` (`None`: not compared yet).
    fn cached_same_as_reader(&self, id: u32, event_type: &'static str) -> Option<bool> {
        self.same_as_reader
            .read()
            .ok()
            .and_then(|c| c.get(&(id, event_type)).copied())
    }

    /// Fetches the writer schema (cached by the registry client) and decodes with it;
    /// the first time, remembers whether it equals the reader schema. A writer schema
    /// of another record than the reader's is refused before any decoding.
    async fn decode_with_writer(
        &self,
        bus: &EventBus,
        event_type: &'static str,
        id: u32,
        datum: &[u8],
        known: Option<bool>,
    ) -> Result<Option<Result<DecodedEvent, CodecError>>, DecodeFailure> {
        let writer = self.registry.schema_by_id(id).await.map_err(|e| {
            if e.is_retryable() {
                DecodeFailure::RegistryUnavailable(e)
            } else {
                DecodeFailure::UnknownSchemaId { id, source: e }
            }
        })?;
        let same = match known {
            Some(same) => same,
            None => {
                let same = bus
                    .reader_schema(event_type)
                    .is_some_and(|reader| *writer == *reader);
                if let Ok(mut cache) = self.same_as_reader.write() {
                    cache.insert((id, event_type), same);
                }
                same
            }
        };
        if same {
            return Ok(bus.decode_as_reader(event_type, datum));
        }
        let Some(reader) = bus.reader_schema(event_type) else {
            return Ok(None);
        };
        if !same_record(&writer, reader) {
            return Err(DecodeFailure::SchemaOfAnotherType {
                id,
                writer: top_level_name(&writer),
                reader: top_level_name(reader),
                event_type: event_type.to_owned(),
            });
        }
        Ok(bus.decode(event_type, datum, &writer))
    }
}

/// Whether `writer` is a schema of the record `reader` is: both are records with the
/// same full name, or the reader lists the writer's full name among its aliases. The
/// full name, not only the unqualified one as in Avro's resolution rules, because
/// every event's record is called `CloudEvent` and its namespace is the event type.
fn same_record(writer: &Schema, reader: &Schema) -> bool {
    let (Schema::Record(writer), Schema::Record(reader)) = (writer, reader) else {
        return false;
    };
    writer.name == reader.name
        || reader
            .aliases
            .iter()
            .flatten()
            .any(|alias| *alias.fully_qualified_name(reader.name.namespace()) == writer.name)
}

/// A schema's top-level name for messages: a record's full name, else its kind.
fn top_level_name(schema: &Schema) -> String {
    match schema {
        Schema::Record(record) => record.name.fullname(None),
        other => format!("{:?}", SchemaKind::from(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(namespace: &str, aliases: &str) -> Schema {
        Schema::parse_str(&format!(
            r#"{{"type":"record","name":"CloudEvent","namespace":"{namespace}","aliases":[{aliases}],
                "fields":[{{"name":"id","type":"long"}}]}}"#
        ))
        .expect("schema")
    }

    #[test]
    fn a_writer_schema_is_of_the_reader_record_only_with_its_full_name_or_an_alias() {
        let login = record("org.example.auth.login.completed.v1", "");
        let mirror = record("org.example.auth.login.mirrored.v1", "");
        assert!(same_record(&login, &login));
        // Same unqualified name and shape: still another event type.
        assert!(!same_record(&mirror, &login));
        let renamed = record(
            "org.example.auth.login.completed.v1",
            r#""org.example.auth.login.mirrored.v1.CloudEvent""#,
        );
        assert!(same_record(&mirror, &renamed));
        let text = Schema::parse_str(r#""string""#).expect("schema");
        assert!(!same_record(&text, &login));
        assert_eq!(top_level_name(&text), "String");
        assert_eq!(
            top_level_name(&mirror),
            "org.example.auth.login.mirrored.v1.CloudEvent"
        );
    }
}
