//! A bounded cursor over an Avro binary datum, for [`AvroBinary::read_avro`].
//!
//! Every read checks the bytes left before it takes any: a length or block count is
//! compared with them before anything is allocated for it, the same rules
//! [`DatumBounds`](crate::codec::DatumBounds) applies, so the generated decoder needs
//! no walk of its own first.
//!
//! [`AvroBinary::read_avro`]: super::AvroBinary::read_avro

use crate::codec::bounds;
use crate::codec::{CodecError, MalformedDatum, MAX_DEPTH};

/// Why a value could not be read from a datum.
///
/// ```
/// use event_bus_core::avro::binary::{AvroReader, ReadError};
/// use event_bus_core::codec::MalformedDatum;
/// let mut input = AvroReader::new(&[]);
/// assert!(matches!(
///     input.read_long(),
///     Err(ReadError::Malformed(MalformedDatum::Truncated { .. }))
/// ));
/// ```
#[derive(Debug)]
pub enum ReadError {
    /// The bytes do not hold a datum of the type: truncated, a length beyond the end,
    /// an index out of range, nesting too deep.
    Malformed(MalformedDatum),
    /// The bytes are well formed but not a value of the type (text that is not UTF-8,
    /// not a UUID or not a date, an `int` out of range); apache-avro and serde report
    /// these as decoding errors, and so does the generated decoder.
    Invalid(Box<apache_avro::Error>),
    /// A part decoded by apache-avro failed (a type the derive reads through serde).
    Codec(Box<CodecError>),
}

impl From<MalformedDatum> for ReadError {
    fn from(problem: MalformedDatum) -> Self {
        Self::Malformed(problem)
    }
}

impl ReadError {
    /// A value that is not one of the type's, with apache-avro's serde error for it.
    ///
    /// ```
    /// let err = event_bus_core::avro::binary::ReadError::invalid("not a UUID");
    /// assert!(err.to_string().contains("not a UUID"));
    /// ```
    pub fn invalid(message: impl std::fmt::Display) -> Self {
        Self::Invalid(Box::new(<apache_avro::Error as serde::de::Error>::custom(
            message,
        )))
    }
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Malformed(problem) => problem.fmt(f),
            Self::Invalid(source) => source.fmt(f),
            Self::Codec(source) => source.fmt(f),
        }
    }
}

impl std::error::Error for ReadError {}

/// A cursor over a datum's bytes that refuses to read past them.
///
/// ```
/// use event_bus_core::avro::binary::AvroReader;
/// let mut input = AvroReader::new(&[0xf6, 0x01, 4, b'h', b'i']);
/// assert_eq!(input.read_long()?, 123);
/// assert_eq!(input.read_str()?, "hi");
/// assert_eq!(input.remaining(), 0);
/// # Ok::<(), event_bus_core::avro::binary::ReadError>(())
/// ```
#[derive(Debug)]
pub struct AvroReader<'a> {
    bytes: &'a [u8],
    pos: usize,
    depth: usize,
    empty_items: u64,
}

impl<'a> AvroReader<'a> {
    /// A cursor at the start of `bytes`.
    ///
    /// See the type's example.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            pos: 0,
            depth: 0,
            empty_items: 0,
        }
    }

    /// How many bytes have been read.
    ///
    /// ```
    /// let mut input = event_bus_core::avro::binary::AvroReader::new(&[1, 2]);
    /// input.read_bool()?;
    /// assert_eq!(input.position(), 1);
    /// # Ok::<(), event_bus_core::avro::binary::ReadError>(())
    /// ```
    pub fn position(&self) -> usize {
        self.pos
    }

    /// How many bytes are left.
    ///
    /// See the type's example.
    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    /// Takes the next `len` bytes, or reports the value `what` as cut off.
    fn take(&mut self, len: usize, what: &'static str) -> Result<&'a [u8], ReadError> {
        if len > self.remaining() {
            return Err(MalformedDatum::Truncated { what }.into());
        }
        let taken = &self.bytes[self.pos..self.pos + len];
        self.pos += len;
        Ok(taken)
    }

    /// A zigzag varint as apache-avro reads it: up to 10 bytes, bits past 64 dropped.
    fn varint(&mut self, what: &'static str) -> Result<i64, ReadError> {
        Ok(bounds::varint(self.bytes, &mut self.pos, what)?)
    }

    /// An Avro `long`.
    ///
    /// See the type's example.
    pub fn read_long(&mut self) -> Result<i64, ReadError> {
        self.varint("long")
    }

    /// An Avro `int`; a varint beyond `i32` is refused, as apache-avro refuses it.
    ///
    /// ```
    /// let mut input = event_bus_core::avro::binary::AvroReader::new(&[0x80, 0x80, 0x80, 0x80, 0x10]);
    /// assert!(input.read_int().is_err());
    /// ```
    pub fn read_int(&mut self) -> Result<i32, ReadError> {
        let n = self.varint("int")?;
        i32::try_from(n).map_err(|_| ReadError::invalid(format!("int {n} is out of range")))
    }

    /// An Avro `boolean`: the byte 0 or 1.
    ///
    /// ```
    /// let mut input = event_bus_core::avro::binary::AvroReader::new(&[1, 2]);
    /// assert!(input.read_bool()?);
    /// assert!(input.read_bool().is_err());
    /// # Ok::<(), event_bus_core::avro::binary::ReadError>(())
    /// ```
    pub fn read_bool(&mut self) -> Result<bool, ReadError> {
        match self.take(1, "boolean")?[0] {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(ReadError::invalid(format!(
                "byte {other} is not a boolean (0 or 1)"
            ))),
        }
    }

    /// An Avro `float`: 4 bytes, little-endian.
    ///
    /// ```
    /// let bytes = 1.5_f32.to_le_bytes();
    /// let mut input = event_bus_core::avro::binary::AvroReader::new(&bytes);
    /// assert_eq!(input.read_f32()?, 1.5);
    /// # Ok::<(), event_bus_core::avro::binary::ReadError>(())
    /// ```
    pub fn read_f32(&mut self) -> Result<f32, ReadError> {
        let bytes = self.take(4, "float")?;
        Ok(f32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    /// An Avro `double`: 8 bytes, little-endian.
    ///
    /// ```
    /// let bytes = 2.5_f64.to_le_bytes();
    /// let mut input = event_bus_core::avro::binary::AvroReader::new(&bytes);
    /// assert_eq!(input.read_f64()?, 2.5);
    /// # Ok::<(), event_bus_core::avro::binary::ReadError>(())
    /// ```
    pub fn read_f64(&mut self) -> Result<f64, ReadError> {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(self.take(8, "double")?);
        Ok(f64::from_le_bytes(bytes))
    }

    /// An Avro `bytes` value, borrowed; its length is checked against the bytes left.
    ///
    /// ```
    /// use event_bus_core::avro::binary::{AvroReader, ReadError};
    /// use event_bus_core::codec::MalformedDatum;
    /// assert_eq!(AvroReader::new(&[4, 1, 2]).read_bytes()?, &[1, 2]);
    /// // Claims 100 bytes, has 1.
    /// assert!(matches!(
    ///     AvroReader::new(&[200, 1, 9]).read_bytes(),
    ///     Err(ReadError::Malformed(MalformedDatum::LengthBeyondEnd { claimed: 100, left: 1, .. }))
    /// ));
    /// # Ok::<(), ReadError>(())
    /// ```
    pub fn read_bytes(&mut self) -> Result<&'a [u8], ReadError> {
        self.sized("bytes")
    }

    /// An Avro `string`, borrowed; refused when it is not UTF-8.
    ///
    /// ```
    /// use event_bus_core::avro::binary::AvroReader;
    /// assert_eq!(AvroReader::new(&[4, b'o', b'k']).read_str()?, "ok");
    /// assert!(AvroReader::new(&[2, 0xff]).read_str().is_err());
    /// # Ok::<(), event_bus_core::avro::binary::ReadError>(())
    /// ```
    pub fn read_str(&mut self) -> Result<&'a str, ReadError> {
        let bytes = self.sized("string")?;
        std::str::from_utf8(bytes).map_err(ReadError::invalid)
    }

    fn sized(&mut self, what: &'static str) -> Result<&'a [u8], ReadError> {
        let at = self.pos;
        let claimed = self.varint(what)?;
        let Ok(claimed) = u64::try_from(claimed) else {
            self.pos = at;
            return Err(MalformedDatum::NegativeLength { what, claimed }.into());
        };
        let left = self.remaining();
        match usize::try_from(claimed) {
            Ok(len) if len <= left => self.take(len, what),
            _ => Err(MalformedDatum::LengthBeyondEnd {
                what,
                claimed,
                left,
            }
            .into()),
        }
    }

    /// A union's branch index, which must be below `branches`.
    ///
    /// ```
    /// let mut input = event_bus_core::avro::binary::AvroReader::new(&[2, 4]);
    /// assert_eq!(input.read_union_index(2)?, 1);
    /// assert!(input.read_union_index(2).is_err());
    /// # Ok::<(), event_bus_core::avro::binary::ReadError>(())
    /// ```
    pub fn read_union_index(&mut self, branches: usize) -> Result<usize, ReadError> {
        let at = self.pos;
        let index = self.varint("union")?;
        match usize::try_from(index) {
            Ok(i) if i < branches => Ok(i),
            _ => {
                self.pos = at;
                Err(MalformedDatum::UnionIndex { index, branches }.into())
            }
        }
    }

    /// An enum's symbol index, which must be below `symbols`.
    ///
    /// ```
    /// let mut input = event_bus_core::avro::binary::AvroReader::new(&[2, 6]);
    /// assert_eq!(input.read_enum_index(3)?, 1);
    /// assert!(input.read_enum_index(3).is_err());
    /// # Ok::<(), event_bus_core::avro::binary::ReadError>(())
    /// ```
    pub fn read_enum_index(&mut self, symbols: usize) -> Result<usize, ReadError> {
        let at = self.pos;
        let index = self.varint("enum")?;
        match usize::try_from(index) {
            Ok(i) if i < symbols => Ok(i),
            _ => {
                self.pos = at;
                Err(MalformedDatum::EnumIndex { index, symbols }.into())
            }
        }
    }

    /// Goes one level deeper (a record, array, map or union); refused past
    /// [`MAX_DEPTH`]. Pair it with [`leave`](Self::leave).
    ///
    /// ```
    /// let mut input = event_bus_core::avro::binary::AvroReader::new(&[]);
    /// for _ in 0..event_bus_core::codec::MAX_DEPTH {
    ///     input.enter()?;
    /// }
    /// assert!(input.enter().is_err());
    /// # Ok::<(), event_bus_core::avro::binary::ReadError>(())
    /// ```
    pub fn enter(&mut self) -> Result<(), ReadError> {
        if self.depth >= MAX_DEPTH {
            return Err(MalformedDatum::TooDeep { limit: MAX_DEPTH }.into());
        }
        self.depth += 1;
        Ok(())
    }

    /// Comes back up one level.
    ///
    /// See [`enter`](Self::enter).
    pub fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    /// The next block's item count of an array (`key_bytes` 0) or map (1, for the
    /// string key), checked against the bytes left given that one item takes at least
    /// `min_item_bytes`; 0 ends the array or map.
    ///
    /// The count is what the caller may reserve room for: it is at most the bytes left
    /// (or [`MAX_EMPTY_ITEMS`](crate::codec::MAX_EMPTY_ITEMS) for items that take no bytes).
    ///
    /// ```
    /// use event_bus_core::avro::binary::{AvroReader, ReadError};
    /// use event_bus_core::codec::MalformedDatum;
    /// assert_eq!(AvroReader::new(&[4, 2, 4, 0]).read_block_count(1, 0)?, 2);
    /// // A million longs claimed in 2 bytes.
    /// assert!(matches!(
    ///     AvroReader::new(&[0x80, 0x89, 0x7a, 2, 0]).read_block_count(1, 0),
    ///     Err(ReadError::Malformed(MalformedDatum::BlockBeyondEnd { .. }))
    /// ));
    /// # Ok::<(), ReadError>(())
    /// ```
    pub fn read_block_count(
        &mut self,
        min_item_bytes: usize,
        key_bytes: usize,
    ) -> Result<usize, ReadError> {
        let count = self.varint("block count")?;
        if count == 0 {
            return Ok(0);
        }
        if count < 0 {
            // A negative count is followed by the block's size in bytes, which
            // apache-avro reads and ignores.
            self.varint("block size")?;
        }
        let left = self.remaining();
        Ok(bounds::block_fits(
            count.unsigned_abs(),
            min_item_bytes.saturating_add(key_bytes),
            left,
            &mut self.empty_items,
        )?)
    }

    /// Ends a top-level read: trailing bytes and read errors become the
    /// [`CodecError`] the apache-avro path gives, naming the writer schema `schema`.
    ///
    /// ```
    /// use event_bus_core::avro::binary::AvroReader;
    /// use event_bus_core::codec::CodecError;
    /// let mut input = AvroReader::new(&[2, 9]);
    /// let n = input.read_long();
    /// let err = input.finish(n, "Demo").unwrap_err();
    /// assert!(matches!(err, CodecError::TrailingBytes { trailing: 1, .. }));
    /// ```
    pub fn finish<T>(self, read: Result<T, ReadError>, schema: &str) -> Result<T, CodecError> {
        match read {
            Ok(value) if self.remaining() == 0 => Ok(value),
            Ok(_) => Err(CodecError::TrailingBytes {
                trailing: self.remaining(),
                schema: schema.to_owned(),
            }),
            Err(ReadError::Malformed(problem)) => Err(CodecError::Malformed {
                schema: schema.to_owned(),
                offset: self.pos,
                problem,
            }),
            Err(ReadError::Invalid(source)) => Err(CodecError::Avro {
                operation: "decoding",
                schema: schema.to_owned(),
                source,
            }),
            Err(ReadError::Codec(err)) => Err(*err),
        }
    }

    /// The bytes not read yet, for a part decoded by apache-avro; `advance` then moves
    /// past what it read.
    pub(crate) fn rest(&self) -> &'a [u8] {
        &self.bytes[self.pos..]
    }

    /// Moves `len` bytes on (at most to the end).
    pub(crate) fn advance(&mut self, len: usize) {
        self.pos = (self.pos + len).min(self.bytes.len());
    }
}
