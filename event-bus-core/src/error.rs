//! The crate's error type.

use crate::codec::CodecError;
use crate::dispatch::BusError;
use crate::event_type::InvalidEventTypeName;
use crate::headers::HeaderError;
use crate::registration::JsonEventError;

/// Any error of this crate.
///
/// ```
/// let err: event_bus_core::Error = event_bus_core::codec::unframe(&[]).unwrap_err().into();
/// assert!(err.to_string().contains("shorter than the 5-byte"));
/// ```
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Encoding, decoding or framing.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// Record headers.
    #[error(transparent)]
    Header(#[from] HeaderError),
    /// Receiver wiring.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// An event type name.
    #[error(transparent)]
    EventType(#[from] InvalidEventTypeName),
    /// A JSON event.
    #[error(transparent)]
    Json(#[from] JsonEventError),
}
