//! Why `topics ensure` could not look at or change the cluster.

use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

use super::desired::DesiredError;
use super::refusal::broker_hint;
use crate::failure::{self, Failure};

/// Why the topics could not be planned or changed. Refusals of single changes are
/// not errors: they are in the plan ([`Refusal`](super::Refusal)).
///
/// ```
/// use event_bus_kafka::provision::ProvisionError;
/// use rdkafka::error::KafkaError;
/// use rdkafka::types::RDKafkaErrorCode;
/// let err = ProvisionError::kafka("reading the topics", "b:9092", KafkaError::MetadataFetch(RDKafkaErrorCode::AllBrokersDown));
/// assert!(err.is_retryable());
/// assert!(err.to_string().contains("try again"));
///
/// let denied = ProvisionError::Change {
///     operation: "adding partitions to topic",
///     topic: "orders".into(),
///     code: RDKafkaErrorCode::TopicAuthorizationFailed,
///     failure: event_bus_kafka::failure::Failure::Permanent,
/// };
/// assert!(denied.to_string().starts_with("adding partitions to topic `orders` failed"));
/// assert!(denied.to_string().contains("grant it CREATE and ALTER_CONFIGS"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProvisionError {
    /// librdkafka refused the client configuration.
    #[error("cannot create the Kafka admin client: {0}; check the EVENT_BUS_KAFKA_* options")]
    Client(#[source] Box<KafkaError>),
    /// A request to the cluster failed as a whole.
    #[error("{operation} failed against {bootstrap_servers}: {source} ({failure}): {}", advice(*failure))]
    Kafka {
        /// What was asked.
        operation: String,
        /// The brokers.
        bootstrap_servers: String,
        /// How the failure classifier sees it.
        failure: Failure,
        /// librdkafka's error.
        #[source]
        source: Box<KafkaError>,
    },
    /// The broker described a topic without any config.
    #[error(
        "the broker returned no configs for topic `{topic}`: this client may lack the \
         DESCRIBE_CONFIGS permission on it"
    )]
    ConfigsUnreadable {
        /// The topic.
        topic: String,
    },
    /// A change the broker had accepted in validation failed when made.
    #[error("{operation} `{topic}` failed ({code:?}, {failure}): {}", if failure.is_retryable() { "the cluster is busy or unreachable; run ensure again" } else { broker_hint(*code) })]
    Change {
        /// What was asked, e.g. `creating topic`, `adding partitions to topic`.
        operation: &'static str,
        /// The topic.
        topic: String,
        /// The broker's code.
        code: RDKafkaErrorCode,
        /// How the failure classifier sees it.
        failure: Failure,
    },
    /// The desired topics cannot be worked out from the event types.
    #[error(transparent)]
    Desired(#[from] DesiredError),
}

impl ProvisionError {
    /// A [`ProvisionError::Kafka`], classified by [`failure::of_kafka`].
    ///
    /// See the type's example.
    pub fn kafka(operation: &str, bootstrap_servers: &str, source: KafkaError) -> Self {
        ProvisionError::Kafka {
            operation: operation.to_owned(),
            bootstrap_servers: bootstrap_servers.to_owned(),
            failure: failure::of_kafka(&source),
            source: Box::new(source),
        }
    }

    /// Whether running ensure again may succeed without anyone changing anything.
    ///
    /// See the type's example.
    pub fn is_retryable(&self) -> bool {
        match self {
            ProvisionError::Kafka { failure, .. } | ProvisionError::Change { failure, .. } => {
                failure.is_retryable()
            }
            ProvisionError::Client(_)
            | ProvisionError::ConfigsUnreadable { .. }
            | ProvisionError::Desired(_) => false,
        }
    }
}

fn advice(failure: Failure) -> &'static str {
    if failure.is_retryable() {
        "the cluster is unreachable or busy; check the brokers and try again"
    } else {
        "check the credentials and the EVENT_BUS_KAFKA_* options; this client needs DESCRIBE, \
         DESCRIBE_CONFIGS, CREATE and ALTER_CONFIGS on the topics"
    }
}
