//! The SDK's own errors that wrap Kafka, registry and database errors: their verdict
//! is the wrapped error's.

#[cfg(any(feature = "postgres", feature = "sqlite"))]
use super::of_database;
use super::{of_kafka, of_registry, Failure};
#[cfg(any(feature = "postgres", feature = "sqlite"))]
use crate::inbox::InboxError;
#[cfg(any(feature = "postgres", feature = "sqlite"))]
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
#[cfg(any(feature = "postgres", feature = "sqlite"))]
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
        | OutboxError::StoreNotBuilt { .. }
        | OutboxError::NoOutboxTable { .. }
        | OutboxError::Config(_)
        | OutboxError::RelayTask(_) => Failure::Permanent,
    }
}

/// Classifies an inbox error.
///
/// A transaction that cannot begin is [`Failure::Unavailable`] whatever the database
/// said (even "database does not exist" while it is being recreated): it says nothing
/// about the event. A missing inbox table is `Unavailable` too: the database cannot
/// serve the inbox until someone migrates it, and the events must wait for that (retried
/// with backoff, their failures naming the migration) rather than be judged. A failed
/// commit is at least [`Failure::Transient`]: its outcome may be unknown, and a retry of
/// an event that did commit is skipped as a duplicate. Other statements go by
/// [`of_database`]; a failed migration or an unsupported URL is permanent.
///
/// ```
/// use event_bus_kafka::failure::{of_inbox, Failure};
/// use event_bus_kafka::inbox::InboxError;
///
/// let down = InboxError::Begin { source: sqlx::Error::PoolTimedOut };
/// assert_eq!(of_inbox(&down), Failure::Unavailable);
/// let missing = InboxError::NoInboxTable { table: "event_bus.inbox" };
/// assert!(of_inbox(&missing).is_retryable());
/// let bad = InboxError::Database { operation: "recording the event", source: sqlx::Error::RowNotFound };
/// assert_eq!(of_inbox(&bad), Failure::Permanent);
/// ```
#[cfg(any(feature = "postgres", feature = "sqlite"))]
pub fn of_inbox(error: &InboxError) -> Failure {
    match error {
        InboxError::Begin { .. } | InboxError::NoInboxTable { .. } => Failure::Unavailable,
        InboxError::Commit { source } => match of_database(source) {
            Failure::Unavailable => Failure::Unavailable,
            _ => Failure::Transient,
        },
        InboxError::Database { source, .. } => of_database(source),
        InboxError::Aborted { .. } => Failure::Transient,
        InboxError::Connect(source) => of_outbox(source),
        InboxError::Migrate(_) | InboxError::UnsupportedUrl { .. } => Failure::Permanent,
    }
}
