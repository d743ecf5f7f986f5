//! [`AvroBinary`] for the types of the module table that are not records or enums.

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;

use super::{write_bytes, write_long, AvroBinary, AvroReader, ReadError};
use crate::codec::CodecError;

impl AvroBinary for bool {
    const MIN_BYTES: usize = 1;

    fn write_avro(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        out.push(u8::from(*self));
        Ok(())
    }

    fn read_avro(input: &mut AvroReader<'_>) -> Result<Self, ReadError> {
        input.read_bool()
    }
}

impl AvroBinary for i32 {
    const MIN_BYTES: usize = 1;

    fn write_avro(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        write_long(out, i64::from(*self));
        Ok(())
    }

    fn read_avro(input: &mut AvroReader<'_>) -> Result<Self, ReadError> {
        input.read_int()
    }
}

impl AvroBinary for i64 {
    const MIN_BYTES: usize = 1;

    fn write_avro(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        write_long(out, *self);
        Ok(())
    }

    fn read_avro(input: &mut AvroReader<'_>) -> Result<Self, ReadError> {
        input.read_long()
    }
}

impl AvroBinary for f32 {
    const MIN_BYTES: usize = 4;

    fn write_avro(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        out.extend_from_slice(&self.to_le_bytes());
        Ok(())
    }

    fn read_avro(input: &mut AvroReader<'_>) -> Result<Self, ReadError> {
        input.read_f32()
    }
}

impl AvroBinary for f64 {
    const MIN_BYTES: usize = 8;

    fn write_avro(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        out.extend_from_slice(&self.to_le_bytes());
        Ok(())
    }

    fn read_avro(input: &mut AvroReader<'_>) -> Result<Self, ReadError> {
        input.read_f64()
    }
}

impl AvroBinary for String {
    const MIN_BYTES: usize = 1;

    fn write_avro(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        write_bytes(out, self.as_bytes());
        Ok(())
    }

    fn read_avro(input: &mut AvroReader<'_>) -> Result<Self, ReadError> {
        input.read_str().map(str::to_owned)
    }
}

/// An Avro `int` on its own (as serde writes a `u8`); a `Vec<u8>` is `bytes`.
impl AvroBinary for u8 {
    const MIN_BYTES: usize = 1;

    fn write_avro(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        write_long(out, i64::from(*self));
        Ok(())
    }

    fn read_avro(input: &mut AvroReader<'_>) -> Result<Self, ReadError> {
        let n = input.read_int()?;
        u8::try_from(n).map_err(|_| ReadError::invalid(format!("int {n} is not a u8")))
    }

    fn write_vec(items: &[Self], out: &mut Vec<u8>) -> Result<(), CodecError> {
        write_bytes(out, items);
        Ok(())
    }

    fn read_vec(input: &mut AvroReader<'_>) -> Result<Vec<Self>, ReadError> {
        input.read_bytes().map(<[u8]>::to_vec)
    }
}

impl<T: AvroBinary> AvroBinary for Vec<T> {
    const MIN_BYTES: usize = 1;

    fn write_avro(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        T::write_vec(self, out)
    }

    fn read_avro(input: &mut AvroReader<'_>) -> Result<Self, ReadError> {
        T::read_vec(input)
    }
}

/// The union `["null", T]`: branch 0 for `None`, 1 then the value for `Some`.
impl<T: AvroBinary> AvroBinary for Option<T> {
    const MIN_BYTES: usize = 1;

    fn write_avro(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        match self {
            None => {
                out.push(0);
                Ok(())
            }
            Some(value) => {
                out.push(2);
                value.write_avro(out)
            }
        }
    }

    fn read_avro(input: &mut AvroReader<'_>) -> Result<Self, ReadError> {
        input.enter()?;
        let value = match input.read_union_index(2)? {
            0 => None,
            _ => Some(T::read_avro(input)?),
        };
        input.leave();
        Ok(value)
    }
}

/// Writes a map's entries as apache-avro does: one block of all of them, then the
/// end block (just the end block when empty).
fn write_map<'a, T: AvroBinary + 'a>(
    len: usize,
    entries: impl Iterator<Item = (&'a String, &'a T)>,
    out: &mut Vec<u8>,
) -> Result<(), CodecError> {
    if len != 0 {
        write_long(out, len as i64);
        for (key, value) in entries {
            write_bytes(out, key.as_bytes());
            value.write_avro(out)?;
        }
    }
    out.push(0);
    Ok(())
}

/// A map being read: room for a checked block count, then its entries.
trait MapSink<T> {
    fn reserve_entries(&mut self, count: usize);
    fn insert_entry(&mut self, key: String, value: T);
}

impl<T, S: BuildHasher> MapSink<T> for HashMap<String, T, S> {
    fn reserve_entries(&mut self, count: usize) {
        self.reserve(count);
    }

    fn insert_entry(&mut self, key: String, value: T) {
        self.insert(key, value);
    }
}

impl<T> MapSink<T> for BTreeMap<String, T> {
    fn reserve_entries(&mut self, _: usize) {}

    fn insert_entry(&mut self, key: String, value: T) {
        self.insert(key, value);
    }
}

/// Reads a map's blocks into `map`; a later duplicate key replaces the earlier one,
/// as serde's map visitors do.
fn read_map<T: AvroBinary, M: MapSink<T>>(
    input: &mut AvroReader<'_>,
    mut map: M,
) -> Result<M, ReadError> {
    input.enter()?;
    loop {
        let count = input.read_block_count(T::MIN_BYTES, 1)?;
        if count == 0 {
            break;
        }
        map.reserve_entries(count);
        for _ in 0..count {
            let key = input.read_str()?.to_owned();
            map.insert_entry(key, T::read_avro(input)?);
        }
    }
    input.leave();
    Ok(map)
}

impl<T: AvroBinary, S: BuildHasher + Default> AvroBinary for HashMap<String, T, S> {
    const MIN_BYTES: usize = 1;

    fn write_avro(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        write_map(self.len(), self.iter(), out)
    }

    fn read_avro(input: &mut AvroReader<'_>) -> Result<Self, ReadError> {
        read_map(input, HashMap::with_hasher(S::default()))
    }
}

impl<T: AvroBinary> AvroBinary for BTreeMap<String, T> {
    const MIN_BYTES: usize = 1;

    fn write_avro(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        write_map(self.len(), self.iter(), out)
    }

    fn read_avro(input: &mut AvroReader<'_>) -> Result<Self, ReadError> {
        read_map(input, BTreeMap::new())
    }
}
