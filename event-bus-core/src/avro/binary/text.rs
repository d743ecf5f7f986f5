//! Types written as Avro `string`s in the text serde gives them (apache-avro's
//! serializer is human-readable): `uuid::Uuid` and `chrono::DateTime<Utc>`.

use chrono::{DateTime, Datelike, FixedOffset, SecondsFormat, Timelike, Utc};

use super::{write_bytes, AvroBinary, AvroReader, ReadError};
use crate::codec::CodecError;

/// Hyphenated lowercase, as `Uuid`'s `Serialize` writes it for a human-readable format.
impl AvroBinary for uuid::Uuid {
    const MIN_BYTES: usize = 1;

    fn write_avro(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        let mut buf = uuid::Uuid::encode_buffer();
        write_bytes(out, self.hyphenated().encode_lower(&mut buf).as_bytes());
        Ok(())
    }

    fn read_avro(input: &mut AvroReader<'_>) -> Result<Self, ReadError> {
        let text = input.read_str()?;
        uuid::Uuid::parse_str(text).map_err(ReadError::invalid)
    }
}

/// RFC 3339 with `Z` and as many fraction digits as needed (0, 3, 6 or 9), as
/// `DateTime`'s `Serialize` writes it; read back as its `Deserialize` reads it (any
/// offset, converted to UTC).
impl AvroBinary for DateTime<Utc> {
    const MIN_BYTES: usize = 1;

    fn write_avro(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        let mut buf = [0u8; 32];
        match rfc3339(self, &mut buf) {
            Some(len) => write_bytes(out, &buf[..len]),
            // Years outside 0..=9999 and leap seconds: chrono's own formatter.
            None => write_bytes(
                out,
                self.to_rfc3339_opts(SecondsFormat::AutoSi, true).as_bytes(),
            ),
        }
        Ok(())
    }

    fn read_avro(input: &mut AvroReader<'_>) -> Result<Self, ReadError> {
        let text = input.read_str()?;
        text.parse::<DateTime<FixedOffset>>()
            .map(|t| t.with_timezone(&Utc))
            .map_err(ReadError::invalid)
    }
}

/// Formats the common case (year 0..=9999, no leap second) into `buf` without
/// allocating; `None` otherwise.
fn rfc3339(t: &DateTime<Utc>, buf: &mut [u8; 32]) -> Option<usize> {
    let year = u32::try_from(t.year()).ok().filter(|y| *y <= 9999)?;
    let nano = t.nanosecond();
    if nano >= 1_000_000_000 {
        return None;
    }
    let mut text = Digits { buf, len: 0 };
    text.number(4, year);
    for (separator, value) in [
        (b'-', t.month()),
        (b'-', t.day()),
        (b'T', t.hour()),
        (b':', t.minute()),
        (b':', t.second()),
    ] {
        text.byte(separator);
        text.number(2, value);
    }
    if nano != 0 {
        let (digits, value) = if nano.is_multiple_of(1_000_000) {
            (3, nano / 1_000_000)
        } else if nano.is_multiple_of(1_000) {
            (6, nano / 1_000)
        } else {
            (9, nano)
        };
        text.byte(b'.');
        text.number(digits, value);
    }
    text.byte(b'Z');
    Some(text.len)
}

/// A fixed buffer written left to right (at most 30 bytes are written to it).
struct Digits<'a> {
    buf: &'a mut [u8; 32],
    len: usize,
}

impl Digits<'_> {
    fn byte(&mut self, b: u8) {
        self.buf[self.len] = b;
        self.len += 1;
    }

    /// `n` in exactly `digits` decimal digits, zero-padded.
    fn number(&mut self, digits: usize, mut n: u32) {
        for i in (0..digits).rev() {
            self.buf[self.len + i] = b'0' + (n % 10) as u8;
            n /= 10;
        }
        self.len += digits;
    }
}
