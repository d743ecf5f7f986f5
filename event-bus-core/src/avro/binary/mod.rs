//! Avro binary encoding and decoding straight between Rust values and bytes.
//!
//! `#[derive(Event)]` and `#[derive(EventData)]` implement [`AvroBinary`] for their
//! types, so an event is written and read without apache-avro's value tree or serde.
//! The bytes are the ones serde and apache-avro write for the type's schema (the test
//! `avro_binary_matches_apache_avro` checks every shape of the
//! [module table](crate::avro)), and a read refuses what
//! [`DatumBounds`](crate::codec::DatumBounds) refuses: nothing is allocated for a
//! length or count before it is checked against the bytes left.
//!
//! ```
//! use event_bus_core::avro::binary::{AvroBinary, AvroReader};
//! let mut out = Vec::new();
//! Some("hi".to_string()).write_avro(&mut out)?;
//! assert_eq!(out, vec![2, 4, b'h', b'i']); // union branch 1, then the string
//! let back = <Option<String>>::read_avro(&mut AvroReader::new(&out)).unwrap();
//! assert_eq!(back.as_deref(), Some("hi"));
//! # Ok::<(), event_bus_core::codec::CodecError>(())
//! ```

mod impls;
mod reader;
mod serde_part;
mod text;
mod top;
mod writer;

pub use reader::{AvroReader, ReadError};
pub use serde_part::SerdePart;
pub use top::{read_datum, write_datum, write_framed, write_framed_into, SizeHint};
pub use writer::{write_bytes, write_long};

use crate::codec::CodecError;

/// A type written and read as Avro binary without serde.
///
/// Implemented for the types of the [module table](crate::avro); the derives implement
/// it for records and enums. A derived type whose serde attributes change its serde
/// form (a `rename`, `skip`, `with` other than `avro::bytes`...) is written and read
/// through serde and apache-avro instead ([`SerdePart`]), so its bytes stay the same.
///
/// ```
/// use event_bus_core::avro::binary::{AvroBinary, AvroReader};
/// let mut out = Vec::new();
/// vec![1_i64, 2].write_avro(&mut out)?;
/// assert_eq!(out, vec![4, 2, 4, 0]); // one block of 2 items, then the end block
/// assert_eq!(<Vec<i64>>::read_avro(&mut AvroReader::new(&out)).unwrap(), vec![1, 2]);
/// # Ok::<(), event_bus_core::codec::CodecError>(())
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no Avro binary coding, so it cannot be a field of an event",
    label = "unsupported event field type",
    note = "use bool, i32, i64, f32, f64, String, Vec<u8>, Vec<T>, Option<T>, HashMap<String, T>, BTreeMap<String, T>, uuid::Uuid or chrono::DateTime<Utc>, or add #[derive(EventData)] to your struct or unit-only enum"
)]
pub trait AvroBinary: Sized {
    /// The fewest bytes a value takes on the wire; bounds the item count an array
    /// block may claim.
    const MIN_BYTES: usize;

    /// Appends the value's Avro binary datum to `out`; only a part written through
    /// apache-avro can fail.
    fn write_avro(&self, out: &mut Vec<u8>) -> Result<(), CodecError>;

    /// Reads a value, checking the bytes left before each part.
    fn read_avro(input: &mut AvroReader<'_>) -> Result<Self, ReadError>;

    /// Writes a `Vec<Self>`: an Avro array (one block, then the end), or `bytes` for
    /// `Vec<u8>`.
    #[doc(hidden)]
    fn write_vec(items: &[Self], out: &mut Vec<u8>) -> Result<(), CodecError> {
        if !items.is_empty() {
            write_long(out, items.len() as i64);
            for item in items {
                item.write_avro(out)?;
            }
        }
        out.push(0);
        Ok(())
    }

    /// Reads a `Vec<Self>` written by [`write_vec`](Self::write_vec).
    #[doc(hidden)]
    fn read_vec(input: &mut AvroReader<'_>) -> Result<Vec<Self>, ReadError> {
        input.enter()?;
        let mut items = Vec::new();
        loop {
            let count = input.read_block_count(Self::MIN_BYTES, 0)?;
            if count == 0 {
                break;
            }
            items.reserve(count);
            for _ in 0..count {
                items.push(Self::read_avro(input)?);
            }
        }
        input.leave();
        Ok(items)
    }
}
