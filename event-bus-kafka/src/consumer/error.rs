//! Errors that end the consumer loop.

use rdkafka::error::KafkaError;

use crate::config::ConfigError;
use crate::failure::Failure;
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
    /// The dead-letter topic refused a record for good (authorization, a missing or
    /// invalid topic, a record too large even without its value). The loop stopped
    /// without committing the record or anything after it in its partition, so nothing
    /// is lost: it is read again after a restart.
    ///
    /// ```
    /// use event_bus_kafka::consumer::ConsumerError;
    /// use event_bus_kafka::failure::Failure;
    /// use rdkafka::error::KafkaError;
    /// use rdkafka::types::RDKafkaErrorCode;
    /// let err = ConsumerError::DeadLetterRefused {
    ///     dlq_topic: "orders.dlq".into(), topic: "orders".into(), partition: 0, offset: 7,
    ///     failure: Failure::Permanent,
    ///     source: Box::new(KafkaError::MessageProduction(RDKafkaErrorCode::TopicAuthorizationFailed)),
    /// };
    /// assert!(err.to_string().contains("orders[0]@7"));
    /// assert!(err.to_string().contains("WRITE"));
    /// assert!(err.to_string().contains("anything after it in its partition"));
    /// ```
    #[error(
        "the dead-letter topic `{dlq_topic}` refused record {topic}[{partition}]@{offset} \
         for good ({failure}: {source}); the consumer stopped without committing it or \
         anything after it in its partition. {}, then start the consumer again: it reads \
         the record again",
        refused_hint(*.failure)
    )]
    DeadLetterRefused {
        /// The dead-letter topic.
        dlq_topic: String,
        /// The record's topic.
        topic: String,
        /// Its partition.
        partition: i32,
        /// Its offset.
        offset: i64,
        /// How [`crate::failure::of_kafka`] classified the refusal.
        failure: Failure,
        /// librdkafka's error.
        #[source]
        source: Box<KafkaError>,
    },
    /// Polling failed too many times in a row.
    #[error("polling failed {count} times in a row (last: {last}); stopping so the supervisor can restart the consumer")]
    TooManyPollFailures {
        /// Failures in a row.
        count: u32,
        /// The last failure.
        last: String,
    },
}

/// What an operator does about a dead-letter topic that refuses records.
fn refused_hint(failure: Failure) -> &'static str {
    match failure {
        Failure::TooLarge => {
            "Even the record's key and headers alone are too large for it: raise the \
             topic's max.message.bytes (and the client's message.max.bytes)"
        }
        _ => {
            "Create the topic (or enable auto-creation), grant this consumer's principal \
             WRITE on it, or point EVENT_BUS_CONSUMER_DLQ_TOPIC / --dlq-topic at a topic \
             that exists"
        }
    }
}
