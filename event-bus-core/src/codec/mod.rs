//! Avro binary encoding of events and Confluent's wire framing.
//!
//! Framing: one magic byte `0x00`, the schema id as a 4-byte big-endian integer, then
//! the Avro binary datum.

pub(crate) mod bounds;
mod prepared;

pub use bounds::{check_datum, DatumBounds, MalformedDatum, MAX_DEPTH, MAX_EMPTY_ITEMS};
pub use prepared::PreparedSchema;

use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::writer::datum::GenericDatumWriter;
use apache_avro::Schema;

use crate::avro::top_level::TopLevel;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The magic byte that starts every Confluent-framed record.
pub const MAGIC_BYTE: u8 = 0;

/// Why bytes could not become an event, or an event could not become bytes.
///
/// ```
/// let err = event_bus_core::codec::unframe(&[1, 0, 0]).unwrap_err();
/// assert!(matches!(err, event_bus_core::codec::CodecError::TooShort { len: 3 }));
/// ```
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// Fewer than the 5 bytes of the framing header.
    #[error("record value is {len} bytes, shorter than the 5-byte Confluent header; it was not written by a schema-registry serializer")]
    TooShort {
        /// Length received.
        len: usize,
    },
    /// The first byte is not `0x00`.
    #[error("record starts with byte {found:#04x}, not the Confluent magic byte 0x00; it was not written by a schema-registry serializer")]
    BadMagicByte {
        /// The byte found.
        found: u8,
    },
    /// The value does not fit the schema, or the bytes do not decode with it.
    #[error("Avro {operation} failed against schema `{schema}`: {source}")]
    Avro {
        /// "encoding" or "decoding".
        operation: &'static str,
        /// The schema's full name.
        schema: String,
        /// What apache-avro reported.
        #[source]
        source: Box<apache_avro::Error>,
    },
    /// A length field or block count claims more than the bytes left, or the datum is
    /// otherwise malformed for its writer schema; found before anything was allocated
    /// for it (see [`DatumBounds`]).
    #[error("record is malformed at byte {offset} for schema `{schema}`: {problem}; it is corrupt or was written with another schema than the one its id names, so nothing was decoded (dead-letter it and check its producer)")]
    Malformed {
        /// The writer schema's full name.
        schema: String,
        /// Where in the datum the problem was found.
        offset: usize,
        /// What is wrong.
        problem: MalformedDatum,
    },
    /// Bytes were left after the datum was read: the writer schema is not the one used.
    #[error("{trailing} bytes left after decoding with schema `{schema}`: the record was written with another schema")]
    TrailingBytes {
        /// How many bytes were left.
        trailing: usize,
        /// The schema's full name.
        schema: String,
    },
}

fn schema_name(schema: &Schema) -> String {
    match schema {
        Schema::Record(r) => r.name.fullname(None),
        other => format!("{:?}", apache_avro::schema::SchemaKind::from(other)),
    }
}

fn avro_error(operation: &'static str, schema: &Schema, source: apache_avro::Error) -> CodecError {
    CodecError::Avro {
        operation,
        schema: schema_name(schema),
        source: Box::new(source),
    }
}

/// Encodes a serde value as an Avro binary datum of `schema`.
///
/// ```
/// let schema = apache_avro::Schema::parse_str(r#""string""#).unwrap();
/// let bytes = event_bus_core::codec::encode_datum(&"hi", &schema)?;
/// assert_eq!(bytes, vec![4, b'h', b'i']);
/// # Ok::<(), event_bus_core::codec::CodecError>(())
/// ```
pub fn encode_datum<T: Serialize>(value: &T, schema: &Schema) -> Result<Vec<u8>, CodecError> {
    GenericDatumWriter::builder(schema)
        .human_readable(true)
        .build()
        .and_then(|writer| writer.write_ser_to_vec(value))
        .map_err(|e| avro_error("encoding", schema, e))
}

/// Decodes an Avro binary datum written with `writer`, resolved against `reader`.
///
/// ```
/// let schema = apache_avro::Schema::parse_str(r#""long""#).unwrap();
/// let n: i64 = event_bus_core::codec::decode_datum(&[0xf6, 0x01], &schema, &schema)?;
/// assert_eq!(n, 123);
/// # Ok::<(), event_bus_core::codec::CodecError>(())
/// ```
pub fn decode_datum<T: DeserializeOwned>(
    bytes: &[u8],
    writer: &Schema,
    reader: &Schema,
) -> Result<T, CodecError> {
    if std::ptr::eq(writer, reader) || writer == reader {
        check_datum(bytes, writer)?;
        return read_exact(bytes, reader);
    }
    // Resolve the writer's datum into the reader's shape (`decode_value` checks its
    // bounds first), then read that.
    let value = decode_value(bytes, writer, Some(reader))?;
    let resolved = GenericDatumWriter::builder(reader)
        .build()
        .and_then(|w| w.write_value_to_vec(value))
        .map_err(|e| avro_error("decoding", reader, e))?;
    read_exact(&resolved, reader)
}

/// Deserializes a datum of `schema` straight into `T`, rejecting trailing bytes; the
/// caller has checked the datum's bounds.
fn read_exact<T: DeserializeOwned>(bytes: &[u8], schema: &Schema) -> Result<T, CodecError> {
    let mut cursor = bytes;
    let value = GenericDatumReader::builder(schema)
        .human_readable(true)
        .build()
        .and_then(|r| r.read_deser::<TopLevel<T>>(&mut cursor))
        .map(|top| top.0)
        .map_err(|e| avro_error("decoding", schema, e))?;
    if !cursor.is_empty() {
        return Err(CodecError::TrailingBytes {
            trailing: cursor.len(),
            schema: schema_name(schema),
        });
    }
    Ok(value)
}

/// Decodes an Avro datum to a generic Avro value, resolved against `reader` if given.
///
/// The datum's lengths and counts are checked against its bytes first
/// ([`DatumBounds`]).
///
/// ```
/// use apache_avro::{types::Value, Schema};
/// let schema = Schema::parse_str(r#""boolean""#).unwrap();
/// let value = event_bus_core::codec::decode_value(&[1], &schema, None)?;
/// assert_eq!(value, Value::Boolean(true));
/// # Ok::<(), event_bus_core::codec::CodecError>(())
/// ```
pub fn decode_value(
    bytes: &[u8],
    writer: &Schema,
    reader: Option<&Schema>,
) -> Result<apache_avro::types::Value, CodecError> {
    check_datum(bytes, writer)?;
    let mut cursor = bytes;
    let value = GenericDatumReader::builder(writer)
        .maybe_reader_schema(reader)
        .build()
        .and_then(|r| r.read_value(&mut cursor))
        .map_err(|e| avro_error("decoding", writer, e))?;
    if !cursor.is_empty() {
        return Err(CodecError::TrailingBytes {
            trailing: cursor.len(),
            schema: schema_name(writer),
        });
    }
    Ok(value)
}

/// Prefixes a datum with the Confluent header for `schema_id`.
///
/// ```
/// let framed = event_bus_core::codec::frame(100019, &[0xf6, 0x01]);
/// assert_eq!(framed, vec![0, 0, 1, 0x86, 0xb3, 0xf6, 0x01]);
/// ```
pub fn frame(schema_id: u32, datum: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + datum.len());
    write_frame_header(&mut out, schema_id);
    out.extend_from_slice(datum);
    out
}

/// Appends the 5-byte Confluent header for `schema_id` to `out`; the datum goes after.
///
/// ```
/// let mut out = Vec::new();
/// event_bus_core::codec::write_frame_header(&mut out, 100019);
/// assert_eq!(out, vec![0, 0, 1, 0x86, 0xb3]);
/// ```
pub fn write_frame_header(out: &mut Vec<u8>, schema_id: u32) {
    out.push(MAGIC_BYTE);
    out.extend_from_slice(&schema_id.to_be_bytes());
}

/// Splits Confluent-framed bytes into the schema id and the datum.
///
/// ```
/// let (id, datum) = event_bus_core::codec::unframe(&[0, 0, 1, 0x86, 0xb3, 0xf6, 0x01])?;
/// assert_eq!(id, 100019);
/// assert_eq!(datum, &[0xf6, 0x01]);
/// # Ok::<(), event_bus_core::codec::CodecError>(())
/// ```
pub fn unframe(bytes: &[u8]) -> Result<(u32, &[u8]), CodecError> {
    if bytes.len() < 5 {
        return Err(CodecError::TooShort { len: bytes.len() });
    }
    if bytes[0] != MAGIC_BYTE {
        return Err(CodecError::BadMagicByte { found: bytes[0] });
    }
    let id = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
    Ok((id, &bytes[5..]))
}
