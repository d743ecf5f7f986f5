//! Whether an error is worth trying again: the one place that decides, for Kafka,
//! schema registry and database errors alike.
//!
//! The producer's emergency path, the outbox relay, the DLQ writer and the consumer's
//! decoder all ask here, so they agree: an error is either a passing condition of the
//! service on the other side ([`Failure::Unavailable`], [`Failure::Transient`]) or a
//! verdict on this one request that will not change by itself ([`Failure::TooLarge`],
//! [`Failure::Permanent`]).
//!
//! ```
//! use event_bus_kafka::failure::{self, Failure};
//! use rdkafka::error::KafkaError;
//! use rdkafka::types::RDKafkaErrorCode;
//!
//! let down = KafkaError::MessageProduction(RDKafkaErrorCode::AllBrokersDown);
//! assert_eq!(failure::of_kafka(&down), Failure::Unavailable);
//! let huge = KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge);
//! assert_eq!(failure::of_kafka(&huge), Failure::TooLarge);
//! assert!(!failure::of_kafka(&huge).is_retryable());
//! ```

#[cfg(any(feature = "postgres", feature = "sqlite"))]
mod database;
mod kafka;
mod registry;
mod sdk;

#[cfg(any(feature = "postgres", feature = "sqlite"))]
pub use database::of_database;
#[cfg(any(feature = "postgres", feature = "sqlite"))]
pub(crate) use database::{is_missing_column, is_missing_table};
pub use kafka::{of_kafka, of_kafka_code};
pub use registry::of_registry;
pub use sdk::of_producer;
#[cfg(any(feature = "postgres", feature = "sqlite"))]
pub use sdk::{of_inbox, of_outbox};

/// What an error says about trying the same request again.
///
/// ```
/// use event_bus_kafka::failure::Failure;
/// assert!(Failure::Unavailable.is_retryable());
/// assert!(Failure::Transient.is_retryable());
/// assert!(!Failure::Permanent.is_retryable());
/// assert_eq!(Failure::TooLarge.as_str(), "too_large");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Failure {
    /// The service cannot be reached or is not serving (connection refused, timeouts,
    /// all brokers down, a registry answering 5xx, 429 or an error page, a database
    /// connection lost). Back off and try the same request again; it is an outage,
    /// not a fault of the request.
    Unavailable,
    /// The service answered but cannot take the request right now (a leader moving, a
    /// rebalance, a database deadlock or busy lock). Try again soon.
    Transient,
    /// The request is larger than the service accepts. It will never go through as it
    /// is.
    TooLarge,
    /// The service refused this request for a reason that only a person can change
    /// (authorization, a missing or invalid topic, an invalid record, a schema id the
    /// registry does not have, a row that cannot be read, a configuration error).
    Permanent,
}

impl Failure {
    /// Whether the same request may succeed later without anyone acting.
    ///
    /// See the type's example.
    pub fn is_retryable(self) -> bool {
        matches!(self, Self::Unavailable | Self::Transient)
    }

    /// A short stable name, for logs, metric labels and headers.
    ///
    /// See the type's example.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unavailable => "unavailable",
            Self::Transient => "transient",
            Self::TooLarge => "too_large",
            Self::Permanent => "permanent",
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
