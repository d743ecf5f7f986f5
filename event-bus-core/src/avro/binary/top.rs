//! Whole datums: what a derived `Event` calls to write and read itself.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::{AvroBinary, AvroReader};
use crate::codec::{write_frame_header, CodecError};

/// The buffer size the next datum of a type starts with: the largest seen so far
/// (within 64 KiB), so a type's datums take one allocation each once one was written.
///
/// ```
/// use event_bus_core::avro::binary::SizeHint;
/// static HINT: SizeHint = SizeHint::new();
/// assert_eq!(HINT.get(), 64);
/// HINT.saw(100);
/// assert_eq!(HINT.get(), 100);
/// ```
#[derive(Debug)]
pub struct SizeHint(AtomicUsize);

impl SizeHint {
    const MAX: usize = 64 * 1024;

    /// A hint of 64 bytes.
    ///
    /// See the type's example.
    pub const fn new() -> Self {
        Self(AtomicUsize::new(64))
    }

    /// The capacity to start with.
    ///
    /// See the type's example.
    pub fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }

    /// Records a datum of `len` bytes.
    ///
    /// See the type's example.
    pub fn saw(&self, len: usize) {
        let len = len.min(Self::MAX);
        if len > self.get() {
            self.0.store(len, Ordering::Relaxed);
        }
    }
}

impl Default for SizeHint {
    fn default() -> Self {
        Self::new()
    }
}

/// `value`'s datum framed for the wire: the Confluent header for `schema_id`, then the
/// datum, in one buffer.
///
/// ```
/// use event_bus_core::avro::binary::{write_framed, SizeHint};
/// let framed = write_framed(&123_i64, 7, &SizeHint::new())?;
/// assert_eq!(framed, vec![0, 0, 0, 0, 7, 0xf6, 0x01]);
/// # Ok::<(), event_bus_core::codec::CodecError>(())
/// ```
pub fn write_framed<T: AvroBinary>(
    value: &T,
    schema_id: u32,
    hint: &SizeHint,
) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::with_capacity(hint.get());
    write_frame_header(&mut out, schema_id);
    value.write_avro(&mut out)?;
    hint.saw(out.len());
    Ok(out)
}

/// Appends `value`'s datum framed for the wire to `out` (a buffer the caller reuses);
/// on an error, what was appended is partial and the caller discards it.
///
/// ```
/// use event_bus_core::avro::binary::write_framed_into;
/// let mut out = Vec::new();
/// write_framed_into(&123_i64, 7, &mut out)?;
/// assert_eq!(out, vec![0, 0, 0, 0, 7, 0xf6, 0x01]);
/// # Ok::<(), event_bus_core::codec::CodecError>(())
/// ```
pub fn write_framed_into<T: AvroBinary>(
    value: &T,
    schema_id: u32,
    out: &mut Vec<u8>,
) -> Result<(), CodecError> {
    write_frame_header(out, schema_id);
    value.write_avro(out)
}

/// `value`'s datum, unframed.
///
/// ```
/// use event_bus_core::avro::binary::{write_datum, SizeHint};
/// assert_eq!(write_datum(&true, &SizeHint::new())?, vec![1]);
/// # Ok::<(), event_bus_core::codec::CodecError>(())
/// ```
pub fn write_datum<T: AvroBinary>(value: &T, hint: &SizeHint) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::with_capacity(hint.get());
    value.write_avro(&mut out)?;
    hint.saw(out.len());
    Ok(out)
}

/// Reads a whole datum written with `T`'s own schema, named `schema` in errors;
/// bytes left after it are an error, as on the apache-avro path.
///
/// ```
/// use event_bus_core::avro::binary::read_datum;
/// use event_bus_core::codec::CodecError;
/// assert_eq!(read_datum::<i64>(&[0xf6, 0x01], "long")?, 123);
/// assert!(matches!(read_datum::<i64>(&[0xf6], "long"), Err(CodecError::Malformed { .. })));
/// assert!(matches!(read_datum::<i64>(&[2, 2], "long"), Err(CodecError::TrailingBytes { .. })));
/// # Ok::<(), CodecError>(())
/// ```
pub fn read_datum<T: AvroBinary>(bytes: &[u8], schema: &str) -> Result<T, CodecError> {
    let mut input = AvroReader::new(bytes);
    let read = T::read_avro(&mut input);
    input.finish(read, schema)
}
