//! Serde helpers that write `Vec<u8>` as Avro `bytes`.
//!
//! Serde writes a `Vec<u8>` as a sequence of numbers unless told otherwise, so an
//! event field of type `Vec<u8>` names this module:
//!
//! ```
//! use event_bus_core::prelude::*;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, PartialEq, Serialize, Deserialize, Event)]
//! #[event(type = "org.example.docs.file.uploaded.v1", topic = "files")]
//! struct FileUploaded {
//!     #[serde(with = "event_bus_core::avro::bytes")]
//!     content: Vec<u8>,
//! }
//!
//! let event = FileUploaded { content: vec![1, 2, 3] };
//! let datum = event.to_avro_datum()?;
//! assert_eq!(FileUploaded::from_avro_datum(&datum, FileUploaded::schema())?, event);
//! # Ok::<(), event_bus_core::codec::CodecError>(())
//! ```

use std::fmt;

use serde::de::{SeqAccess, Visitor};
use serde::{Deserializer, Serializer};

/// Writes the bytes as one Avro `bytes` value.
///
/// ```
/// let schema = apache_avro::Schema::parse_str(r#""bytes""#).unwrap();
/// #[derive(serde::Serialize)]
/// struct Blob(#[serde(with = "event_bus_core::avro::bytes")] Vec<u8>);
/// // The module is used through `#[serde(with = ...)]`; see the module docs.
/// # let _ = schema;
/// ```
pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_bytes(bytes)
}

/// Reads Avro `bytes` (or a sequence of numbers) into a `Vec<u8>`.
///
/// ```
/// #[derive(serde::Deserialize)]
/// struct Blob(#[serde(with = "event_bus_core::avro::bytes")] Vec<u8>);
/// // The module is used through `#[serde(with = ...)]`; see the module docs.
/// ```
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
    deserializer.deserialize_byte_buf(BytesVisitor)
}

struct BytesVisitor;

impl<'de> Visitor<'de> for BytesVisitor {
    type Value = Vec<u8>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("bytes")
    }

    fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
        Ok(v.to_vec())
    }

    fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
        Ok(v)
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Vec<u8>, E> {
        Ok(v.as_bytes().to_vec())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
        // The hint is a block count read from the record: trust it only so far.
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(byte) = seq.next_element()? {
            out.push(byte);
        }
        Ok(out)
    }
}
