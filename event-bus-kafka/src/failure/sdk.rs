//! The SDK's own errors that wrap Kafka, registry and database errors: their verdict
//! is the wrapped error's.

use super::{of_database, of_kafka, of_registry, Failure};
use crate::outbox::OutboxError;
use crate::producer::ProducerError;

/// Classifies a producer error: a delivery error by its Kafka code, a registration
/// error by the registry's answer; a configuration, client or encoding error is
/// permanent; an event in flight when the producer shut down may be sent again.
///
/// ```
/// use event_bus_kafka::failure::{of_producer, Failure};
/// use event_bus_kafka::producer::ProducerError;
/// use rdkafka::error::KafkaError;
/// use rdkafka::types::RDKafkaErrorCode;
///
/// let timed_out = ProducerError::Delivery {
///     topic: "orders".into(),
///     event_id: uuid::Uuid::nil(),
///     source: KafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut),
/// };
/// assert_eq!(of_producer(&timed_out), Failure::Unavailable);
/// ```
pub fn of_producer(error: &ProducerError) -> Failure {
    match error {
        ProducerError::Delivery { source, .. } => of_kafka(source),
        ProducerError::Registry { source, .. } => of_registry(source),
        ProducerError::Cancelled { .. } => Failure::Transient,
        ProducerError::Config(_)
        | ProducerError::Client(_)
        | ProducerError::Encode { .. }
        | ProducerError::Json(_) => Failure::Permanent,
    }
}

/// Classifies an outbox error: a database error by its code, a producer error as
/// [`of_producer`]; a full outbox, a relay lease held or lost and an event whose
/// key order could not be checked are transient; a missing table, a corrupt row, a
/// failed migration or a bad configuration are permanent.
///
/// ```
/// use event_bus_kafka::failure::{of_outbox, Failure};
/// use event_bus_kafka::outbox::OutboxError;
///
/// let full = OutboxError::Full { pending: 10, max_backlog: 10 };
/// assert_eq!(of_outbox(&full), Failure::Transient);
/// let missing = OutboxError::NoOutboxTable { table: "event_bus_outbox" };
/// assert_eq!(of_outbox(&missing), Failure::Permanent);
/// ```
pub fn of_outbox(error: &OutboxError) -> Failure {
    match error {
        OutboxError::Database { source, .. } => of_database(source),
        OutboxError::Producer(source) => of_producer(source),
        OutboxError::OrderUnknown { insert, .. } => of_outbox(insert),
        OutboxError::Full { .. }
        | OutboxError::RelayBusy { .. }
        | OutboxError::LeaseLost { .. } => Failure::Transient,
        OutboxError::Migrate(_)
        | OutboxError::CorruptRow { .. }
        | OutboxError::UnsupportedUrl { .. }
        | OutboxError::NoOutboxTable { .. }
        | OutboxError::Config(_)
        | OutboxError::RelayTask(_) => Failure::Permanent,
    }
}
