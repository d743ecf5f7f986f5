//! Errors that end the consumer loop.

use rdkafka::error::KafkaError;

use crate::config::ConfigError;
use crate::registry::RegistryError;

/// Why the consumer loop could not start or had to stop. The binary exits non-zero
/// on these, so its supervisor restarts it.
///
/// ```
/// use event_bus_kafka::consumer::ConsumerError;
/// let err = ConsumerError::TooManyPollFailures { count: 5, last: "all brokers down".into() };
/// assert!(err.to_string().contains("5"));
/// ```
#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    /// The configuration is incomplete or invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// librdkafka refused the client configuration.
    #[error("cannot create the Kafka consumer: {0}; check the EVENT_BUS_KAFKA_* options")]
    Client(#[source] KafkaError),
    /// The schema registry client could not be built.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// Subscribing failed.
    #[error("cannot subscribe to {topics:?}: {source}")]
    Subscribe {
        /// The topics.
        topics: Vec<String>,
        /// librdkafka's error.
        #[source]
        source: KafkaError,
    },
    /// The Kafka client hit an error it cannot recover from (for example the
    /// group's member id was fenced for good).
    #[error("the Kafka client hit a fatal error: {0}; stopping so the supervisor can restart the consumer")]
    Fatal(#[source] KafkaError),
    /// Polling failed too many times in a row.
    #[error("polling failed {count} times in a row (last: {last}); stopping so the supervisor can restart the consumer")]
    TooManyPollFailures {
        /// Failures in a row.
        count: u32,
        /// The last failure.
        last: String,
    },
}
