//! Turns typed events into [`EncodedRecord`]s, registering their schemas once.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use apache_avro::writer::datum::GenericDatumWriter;
use apache_avro::Schema;
use event_bus_core::codec::{self, CodecError};
use event_bus_core::{Event, EventKey, EventMetadata};

use super::error::ProducerError;
use super::record::EncodedRecord;
use crate::registry::RegistryClient;
use crate::topic;

/// Schema ids registered for one event type on one topic.
///
/// ```
/// let ids = event_bus_kafka::producer::RegisteredIds { value_id: 3, key_id: Some(1) };
/// assert_eq!(ids.value_id, 3);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegisteredIds {
    /// Id of the value schema.
    pub value_id: u32,
    /// Id of the key schema, when the event type has a key.
    pub key_id: Option<u32>,
}

/// What the encoder keeps per (topic, event type).
#[derive(Debug, Clone)]
struct Registered {
    ids: RegisteredIds,
    key_schema: Option<Arc<Schema>>,
}

/// Encodes events for Kafka: Avro datum, Confluent framing, key, CloudEvents headers.
///
/// Before the first event of a type goes to a topic it sets the value and key subjects
/// to FULL_TRANSITIVE and registers the schemas; the ids are cached, so the registry
/// is not called per event. Used by the [`Producer`](super::Producer) and by the
/// outbox, which stores the same bytes.
///
/// ```no_run
/// use std::sync::Arc;
/// use event_bus_kafka::{config::RegistryConfig, producer::EventEncoder, registry::RegistryClient};
/// # use event_bus_kafka::prelude::*;
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Serialize, Deserialize, Event)]
/// # #[event(type = "org.example.shop.order.placed.v1", topic = "orders", key = "id")]
/// # struct OrderPlaced { id: String }
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let registry = Arc::new(RegistryClient::new(RegistryConfig::new("http://localhost:8081"))?);
/// let encoder = EventEncoder::new(registry, None, "shop");
/// let record = encoder.encode(&OrderPlaced { id: "o-1".into() }, None, None).await?;
/// assert_eq!(record.value[0], 0);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct EventEncoder {
    registry: Arc<RegistryClient>,
    topic_prefix: Option<String>,
    source: String,
    registered: RwLock<HashMap<(String, &'static str), Registered>>,
}

impl EventEncoder {
    /// An encoder using `registry`, prefixing topics with `topic_prefix`, and
    /// stamping `source` as `ce_source`.
    ///
    /// See the type's example.
    pub fn new(
        registry: Arc<RegistryClient>,
        topic_prefix: Option<String>,
        source: impl Into<String>,
    ) -> Self {
        Self {
            registry,
            topic_prefix,
            source: source.into(),
            registered: RwLock::new(HashMap::new()),
        }
    }

    /// The registry client.
    pub fn registry(&self) -> &Arc<RegistryClient> {
        &self.registry
    }

    /// The topic on the broker for `topic` (prefix applied).
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use event_bus_kafka::{config::RegistryConfig, producer::EventEncoder, registry::RegistryClient};
    /// let registry = Arc::new(RegistryClient::new(RegistryConfig::new("http://r:8081")).unwrap());
    /// let encoder = EventEncoder::new(registry, Some("dev".into()), "svc");
    /// assert_eq!(encoder.full_topic("orders"), "dev-orders");
    /// ```
    pub fn full_topic(&self, topic: &str) -> String {
        topic::full_topic(self.topic_prefix.as_deref(), topic)
    }

    /// Fresh metadata for an event of type `E` with this encoder's source.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use event_bus_kafka::{config::RegistryConfig, producer::EventEncoder, registry::RegistryClient};
    /// # use event_bus_kafka::prelude::*;
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Serialize, Deserialize, Event)]
    /// # #[event(type = "org.example.shop.cart.emptied.v1", topic = "carts")]
    /// # struct CartEmptied { id: i64 }
    /// let registry = Arc::new(RegistryClient::new(RegistryConfig::new("http://r:8081")).unwrap());
    /// let encoder = EventEncoder::new(registry, None, "shop/web");
    /// assert_eq!(encoder.metadata_for::<CartEmptied>().source, "shop/web");
    /// ```
    pub fn metadata_for<E: Event>(&self) -> EventMetadata {
        EventMetadata::for_event::<E>().with_source(self.source.clone())
    }

    /// Sets FULL_TRANSITIVE on the value and key subjects of `E` on `topic` (default:
    /// its own) and registers its schemas; cached after the first call.
    ///
    /// ```no_run
    /// # use event_bus_kafka::producer::EventEncoder;
    /// # use event_bus_kafka::prelude::*;
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Serialize, Deserialize, Event)]
    /// # #[event(type = "org.example.shop.order.shipped.v1", topic = "orders")]
    /// # struct OrderShipped { id: i64 }
    /// # async fn demo(encoder: EventEncoder) -> Result<(), ProducerError> {
    /// let ids = encoder.register::<OrderShipped>(None).await?;
    /// # Ok(()) }
    /// ```
    pub async fn register<E: Event>(
        &self,
        topic: Option<&str>,
    ) -> Result<RegisteredIds, ProducerError> {
        let full_topic = self.full_topic(topic.unwrap_or(E::TOPIC));
        self.registered_for::<E>(&full_topic).await.map(|r| r.ids)
    }

    async fn registered_for<E: Event>(
        &self,
        full_topic: &str,
    ) -> Result<Registered, ProducerError> {
        let cache_key = (full_topic.to_owned(), E::EVENT_TYPE);
        if let Some(found) = self
            .registered
            .read()
            .ok()
            .and_then(|cache| cache.get(&cache_key).cloned())
        {
            return Ok(found);
        }
        let value_subject = topic::value_subject(full_topic, E::EVENT_TYPE);
        let value_id = self
            .register_subject(&value_subject, &E::schema_json().to_string())
            .await?;
        let (key_id, key_schema) = match E::key_schema_json() {
            Some(key_json) => {
                let avro_type = key_json
                    .get("type")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or("string");
                let subject = topic::key_subject(full_topic, avro_type);
                let id = self
                    .register_subject(&subject, &key_json.to_string())
                    .await?;
                let schema = Schema::parse(&key_json).map_err(|e| ProducerError::Encode {
                    event_type: E::EVENT_TYPE.to_owned(),
                    source: CodecError::Avro {
                        operation: "parsing the key schema",
                        schema: key_json.to_string(),
                        source: Box::new(e),
                    },
                })?;
                (Some(id), Some(Arc::new(schema)))
            }
            None => (None, None),
        };
        let registered = Registered {
            ids: RegisteredIds { value_id, key_id },
            key_schema,
        };
        if let Ok(mut cache) = self.registered.write() {
            cache.insert(cache_key, registered.clone());
        }
        Ok(registered)
    }

    pub(super) async fn register_subject(
        &self,
        subject: &str,
        schema: &str,
    ) -> Result<u32, ProducerError> {
        self.registry
            .register_full_transitive(subject, schema)
            .await
            .map_err(|source| ProducerError::Registry {
                subject: subject.to_owned(),
                source,
            })
    }

    /// Encodes `event` for `topic` (default: its type's topic) with `metadata`
    /// (default: fresh metadata with this encoder's source). Metadata without a
    /// `traceparent` gets a child of the current trace context, when there is one (see
    /// [`observability::trace`](crate::observability::trace)).
    ///
    /// See the type's example.
    pub async fn encode<E: Event>(
        &self,
        event: &E,
        metadata: Option<EventMetadata>,
        topic: Option<&str>,
    ) -> Result<EncodedRecord, ProducerError> {
        let full_topic = self.full_topic(topic.unwrap_or(E::TOPIC));
        let registered = self.registered_for::<E>(&full_topic).await?;
        let encode_error = |source| ProducerError::Encode {
            event_type: E::EVENT_TYPE.to_owned(),
            source,
        };
        let datum = event.to_avro_datum().map_err(encode_error)?;
        let key = event.key();
        let key_bytes = match (&key, registered.ids.key_id, &registered.key_schema) {
            (Some(key), Some(id), Some(schema)) => Some(codec::frame(
                id,
                &encode_key(key, schema).map_err(encode_error)?,
            )),
            _ => None,
        };
        let mut metadata = metadata.unwrap_or_else(|| self.metadata_for::<E>());
        // A traceparent set by the caller names the producing span; else continue the
        // current trace (a receiver publishing, a traced request), if any.
        crate::observability::trace::inject_current(&mut metadata);
        Ok(EncodedRecord {
            topic: full_topic,
            key: key_bytes,
            value: codec::frame(registered.ids.value_id, &datum),
            headers: record_headers(&metadata),
            event_type: E::EVENT_TYPE.to_owned(),
            event_id: metadata.id,
            key_text: key.map(|k| k.to_string()),
        })
    }
}

/// The metadata as record headers.
pub(super) fn record_headers(metadata: &EventMetadata) -> Vec<(String, Vec<u8>)> {
    metadata
        .to_headers()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.into_bytes()))
        .collect()
}

/// The Avro datum of a key in its primitive schema.
pub(super) fn encode_key(key: &EventKey, schema: &Schema) -> Result<Vec<u8>, CodecError> {
    GenericDatumWriter::builder(schema)
        .build()
        .and_then(|w| w.write_value_to_vec(key.to_avro()))
        .map_err(|e| CodecError::Avro {
            operation: "encoding the key",
            schema: key.avro_type().to_owned(),
            source: Box::new(e),
        })
}
