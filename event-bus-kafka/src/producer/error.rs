//! Producer errors.

use event_bus_core::codec::CodecError;
use event_bus_core::registration::JsonEventError;
use rdkafka::error::KafkaError;
use uuid::Uuid;

use crate::config::ConfigError;
use crate::registry::RegistryError;

/// Why an event was not produced. Nothing was sent when this is returned, except for
/// [`ProducerError::Delivery`], where the broker did not acknowledge in time.
///
/// ```
/// use event_bus_kafka::producer::ProducerError;
/// use event_bus_kafka::registry::RegistryError;
/// let err = ProducerError::Registry {
///     subject: "t-x.CloudEvent".into(),
///     source: RegistryError::Incompatible { subject: "t-x.CloudEvent".into(), message: "field b".into() },
/// };
/// assert!(err.to_string().contains("t-x.CloudEvent"));
/// ```
#[derive(Debug, thiserror::Error)]
pub enum ProducerError {
    /// The configuration is incomplete or invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// librdkafka refused the client configuration.
    #[error("cannot create the Kafka producer: {0}; check the EVENT_BUS_KAFKA_* options")]
    Client(#[source] KafkaError),
    /// Setting compatibility or registering a schema failed; nothing was sent.
    #[error("cannot register the schema of subject `{subject}`: {source}")]
    Registry {
        /// The subject.
        subject: String,
        /// The registry's error.
        #[source]
        source: RegistryError,
    },
    /// The event did not encode with its schema; nothing was sent.
    #[error("cannot encode a `{event_type}` event: {source}")]
    Encode {
        /// The event type.
        event_type: String,
        /// The codec's error.
        #[source]
        source: CodecError,
    },
    /// A JSON event (CLI) does not match its type.
    #[error(transparent)]
    Json(#[from] JsonEventError),
    /// The broker did not acknowledge the event.
    #[error("event {event_id} was not delivered to topic `{topic}`: {source}")]
    Delivery {
        /// The topic.
        topic: String,
        /// The event's `ce_id`.
        event_id: Uuid,
        /// librdkafka's error.
        #[source]
        source: KafkaError,
    },
    /// The producer was dropped while the event was in flight.
    #[error("the producer shut down before event {event_id} was acknowledged")]
    Cancelled {
        /// The event's `ce_id`.
        event_id: Uuid,
    },
}
