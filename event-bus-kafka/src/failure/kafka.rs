//! Kafka errors, by librdkafka's error code.

use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode as Code;

use super::Failure;

/// Classifies an error of the rdkafka client.
///
/// Errors without a code say how the client was set up (`ClientConfig`,
/// `ClientCreation`) and are permanent; the rest without a code are transient.
///
/// ```
/// use event_bus_kafka::failure::{of_kafka, Failure};
/// use rdkafka::error::KafkaError;
/// use rdkafka::types::RDKafkaErrorCode;
///
/// let denied = KafkaError::MessageProduction(RDKafkaErrorCode::TopicAuthorizationFailed);
/// assert_eq!(of_kafka(&denied), Failure::Permanent);
/// let moving = KafkaError::MessageProduction(RDKafkaErrorCode::NotLeaderForPartition);
/// assert_eq!(of_kafka(&moving), Failure::Transient);
/// ```
pub fn of_kafka(error: &KafkaError) -> Failure {
    match error.rdkafka_error_code() {
        Some(code) => of_kafka_code(code),
        None => match error {
            KafkaError::ClientConfig(..) | KafkaError::ClientCreation(_) => Failure::Permanent,
            _ => Failure::Transient,
        },
    }
}

/// Classifies a librdkafka error code (see [`of_kafka`]). Codes not named here are
/// transient: librdkafka retries what it can itself, and an unknown code is no reason
/// to give up on a record.
///
/// ```
/// use event_bus_kafka::failure::{of_kafka_code, Failure};
/// use rdkafka::types::RDKafkaErrorCode;
/// assert_eq!(of_kafka_code(RDKafkaErrorCode::MessageTimedOut), Failure::Unavailable);
/// assert_eq!(of_kafka_code(RDKafkaErrorCode::UnknownTopic), Failure::Permanent);
/// ```
pub fn of_kafka_code(code: Code) -> Failure {
    match code {
        Code::MessageSizeTooLarge
        | Code::InvalidMessageSize
        | Code::MessageBatchTooLarge
        | Code::OffsetMetadataTooLarge => Failure::TooLarge,

        Code::MessageTimedOut
        | Code::AllBrokersDown
        | Code::BrokerTransportFailure
        | Code::Resolve
        | Code::RequestTimedOut
        | Code::OperationTimedOut
        | Code::TimedOutQueue
        | Code::NetworkException
        | Code::BrokerNotAvailable
        | Code::QueueFull
        | Code::ThrottlingQuotaExceeded
        | Code::KafkaStorageError
        // The client itself is dead (an idempotent producer's fatal error, fenced):
        // no request through it succeeds until the process makes a new one, so no
        // record is to blame (the relay must not park rows for it; the DLQ writer
        // shows stuck). Restarting the process recovers.
        | Code::Fatal
        | Code::Fenced
        | Code::ProducerFenced
        | Code::InvalidProducerEpoch => Failure::Unavailable,

        // A topic that does not exist (with auto-create off) or that the client may not
        // use, a record the broker refuses, or a client set up wrongly.
        Code::UnknownTopic
        | Code::UnknownTopicOrPartition
        | Code::UnknownTopicId
        | Code::UnknownPartition
        | Code::InvalidTopic
        | Code::TopicAuthorizationFailed
        | Code::ClusterAuthorizationFailed
        | Code::GroupAuthorizationFailed
        | Code::TransactionalIdAuthorizationFailed
        | Code::DelegationTokenAuthorizationFailed
        | Code::SaslAuthenticationFailed
        | Code::UnsupportedSASLMechanism
        | Code::IllegalSASLState
        | Code::Authentication
        | Code::SSL
        | Code::UnacceptableCredential
        | Code::InvalidMessage
        | Code::InvalidRecord
        | Code::BadMessage
        | Code::InvalidTimestamp
        | Code::InvalidRequiredAcks
        | Code::InvalidRequest
        | Code::InvalidConfig
        | Code::InvalidArgument
        | Code::PolicyViolation
        | Code::UnsupportedForMessageFormat
        | Code::UnsupportedCompressionType
        | Code::UnsupportedVersion
        | Code::BadCompression
        | Code::KeySerialization
        | Code::ValueSerialization => Failure::Permanent,

        _ => Failure::Transient,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_setup_errors_are_permanent_and_cancellation_transient() {
        let config = KafkaError::ClientCreation("bad bootstrap".into());
        assert_eq!(of_kafka(&config), Failure::Permanent);
        assert_eq!(of_kafka(&KafkaError::Canceled), Failure::Transient);
    }

    #[test]
    fn leadership_and_coordinator_moves_are_transient() {
        for code in [
            Code::NotLeaderForPartition,
            Code::LeaderNotAvailable,
            Code::NotEnoughReplicas,
            Code::NotCoordinator,
            Code::RebalanceInProgress,
        ] {
            assert_eq!(of_kafka_code(code), Failure::Transient, "{code:?}");
        }
    }
}
