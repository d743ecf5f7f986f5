//! Turns typed events into [`EncodedRecord`]s, registering their schemas once.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use apache_avro::Schema;
use event_bus_core::codec::CodecError;
use event_bus_core::{shared_text, Event, EventKey, EventMetadata};

use super::buffers;
use super::error::ProducerError;
use super::outgoing::OutgoingRecord;
use super::record::EncodedRecord;
use crate::observability::metrics::FixedCounter;
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
#[derive(Debug)]
struct Registered {
    full_topic: Arc<str>,
    /// Events of this type produced to this topic (a handle kept, not looked up).
    produced: Arc<FixedCounter>,
    ids: RegisteredIds,
    key_schema: Option<Schema>,
}

/// Registrations by event type, then by topic as the caller names it (before the
/// prefix), so the lookup on every send allocates nothing. foldhash: the keys are the
/// program's own type and topic names, and SipHash cost a send about 450 instructions.
type RegisteredCache = HashMap<&'static str, HashMap<String, Arc<Registered>, FastHash>, FastHash>;

/// The hasher of the registration cache.
type FastHash = foldhash::fast::RandomState;

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
    /// Shared for the life of the process, so each event's metadata borrows it.
    source: Cow<'static, str>,
    registered: RwLock<RegisteredCache>,
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
            source: shared_text::shared(&source.into()),
            registered: RwLock::new(RegisteredCache::default()),
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
        self.registered_for::<E>(topic.unwrap_or(E::TOPIC))
            .await
            .map(|r| r.ids)
    }

    fn cached<E: Event>(&self, topic: &str) -> Option<Arc<Registered>> {
        let cache = self.registered.read().ok()?;
        cache.get(E::EVENT_TYPE)?.get(topic).cloned()
    }

    async fn registered_for<E: Event>(
        &self,
        topic: &str,
    ) -> Result<Arc<Registered>, ProducerError> {
        match self.cached::<E>(topic) {
            Some(found) => Ok(found),
            // Boxed: the registry calls make a large future, which would otherwise be
            // part of (and copied with) every send's future.
            None => Box::pin(self.register_now::<E>(topic)).await,
        }
    }

    async fn register_now<E: Event>(&self, topic: &str) -> Result<Arc<Registered>, ProducerError> {
        let full_topic = self.full_topic(topic);
        let value_subject = topic::value_subject(&full_topic, E::EVENT_TYPE);
        let value_id = self
            .register_subject(&value_subject, &E::schema_json().to_string())
            .await?;
        let (key_id, key_schema) = match E::key_schema_json() {
            Some(key_json) => {
                let avro_type = key_json
                    .get("type")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or("string");
                let subject = topic::key_subject(&full_topic, avro_type);
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
                (Some(id), Some(schema))
            }
            None => (None, None),
        };
        let registered = Arc::new(Registered {
            produced: Arc::new(FixedCounter::produced(E::EVENT_TYPE, &full_topic)),
            full_topic: full_topic.into(),
            ids: RegisteredIds { value_id, key_id },
            key_schema,
        });
        if let Ok(mut cache) = self.registered.write() {
            cache
                .entry(E::EVENT_TYPE)
                .or_default()
                .insert(topic.to_owned(), Arc::clone(&registered));
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
        self.encode_outgoing(event, metadata, topic)
            .await
            .map(OutgoingRecord::into_encoded)
    }

    /// Encodes `event` as [`encode`](Self::encode) does, leaving the headers as
    /// metadata for the producer to hand to librdkafka directly.
    pub(crate) async fn encode_outgoing<E: Event>(
        &self,
        event: &E,
        metadata: Option<EventMetadata>,
        topic: Option<&str>,
    ) -> Result<OutgoingRecord, ProducerError> {
        let registered = self.registered_for::<E>(topic.unwrap_or(E::TOPIC)).await?;
        let encode_error = |source| ProducerError::Encode {
            event_type: E::EVENT_TYPE.to_owned(),
            source,
        };
        // Reused buffers (see `buffers`): the record gives them back when dropped (a
        // failed encode just drops them).
        let mut value = buffers::take();
        event
            .write_avro_framed(registered.ids.value_id, &mut value)
            .map_err(encode_error)?;
        let key_value = event.key();
        let key = match (&key_value, registered.ids.key_id, &registered.key_schema) {
            (Some(key), Some(id), Some(schema)) => {
                let mut framed = buffers::take();
                write_key_framed(key, id, schema, &mut framed).map_err(encode_error)?;
                Some(framed)
            }
            _ => None,
        };
        let mut metadata = metadata.unwrap_or_else(|| self.metadata_for::<E>());
        // A traceparent set by the caller names the producing span; else continue the
        // current trace (a receiver publishing, a traced request), if any.
        crate::observability::trace::inject_current(&mut metadata);
        Ok(OutgoingRecord {
            topic: Arc::clone(&registered.full_topic),
            produced: Arc::clone(&registered.produced),
            key,
            value,
            metadata,
            event_type: E::EVENT_TYPE,
            key_value,
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

/// A key framed for the wire: the Confluent header for `schema_id`, then the key's
/// Avro datum in its primitive schema, written directly (the bytes apache-avro
/// writes; see `EventKey::write_avro_datum`). A key whose kind is not the registered
/// schema's (a hand-written `Event` whose `key` and `key_schema_json` disagree) is
/// an error, as apache-avro made it.
pub(super) fn encode_key_framed(
    key: &EventKey,
    schema_id: u32,
    schema: &Schema,
) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::with_capacity(32);
    write_key_framed(key, schema_id, schema, &mut out)?;
    Ok(out)
}

/// Appends the framed key to `out`, as [`encode_key_framed`] makes it.
fn write_key_framed(
    key: &EventKey,
    schema_id: u32,
    schema: &Schema,
    out: &mut Vec<u8>,
) -> Result<(), CodecError> {
    let fits = matches!(
        (key, schema),
        (EventKey::String(_), Schema::String)
            | (EventKey::Long(_), Schema::Long)
            | (EventKey::Int(_), Schema::Int)
            | (EventKey::Boolean(_), Schema::Boolean)
    );
    if !fits {
        return Err(CodecError::Avro {
            operation: "encoding the key",
            schema: key.avro_type().to_owned(),
            source: Box::new(<apache_avro::Error as serde::ser::Error>::custom(format!(
                "a {} key does not fit the registered key schema {schema:?}",
                key.avro_type()
            ))),
        });
    }
    key.write_avro_framed(schema_id, out);
    Ok(())
}
