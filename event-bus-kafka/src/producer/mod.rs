//! The producer: registers schemas under FULL_TRANSITIVE, frames values and keys the
//! Confluent way, adds CloudEvents headers, and reports every delivery.

mod buffers;
mod delivery;
mod encoder;
mod error;
mod json;
mod kafka_client;
mod outgoing;
mod record;
mod reporter;
mod sender;

pub use delivery::Delivery;
pub use encoder::{EventEncoder, RegisteredIds};
pub use error::ProducerError;
pub use json::{JsonEvent, JsonInputError, KeyFieldProblem};
pub use kafka_client::{KafkaProducer, Placement};
pub use record::EncodedRecord;
pub use sender::Producer;

pub(crate) use outgoing::{KeyText, RecordLabels};
