//! The way out for derived types whose serde form the derive cannot mirror: their part
//! of the datum is written and read by apache-avro through serde, as before.

use std::any::TypeId;
use std::collections::HashMap;
use std::sync::{OnceLock, RwLock};

use apache_avro::Schema;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{AvroReader, ReadError};
use crate::avro::{AvroType, SchemaNames};
use crate::codec::{CodecError, PreparedSchema};

/// A derived type's own schema, prepared, for writing and reading its part of a datum
/// through serde and apache-avro.
///
/// `#[derive(EventData)]` uses it for a type with a serde attribute that changes its
/// serde form (`rename`, `skip`, `serialize_with`...), so the bytes are the ones serde
/// gives, not what the fields alone would give.
///
/// ```
/// use event_bus_core::avro::binary::{AvroReader, SerdePart};
/// let part = SerdePart::of::<String>()?;
/// let mut out = Vec::new();
/// part.write(&"hi".to_string(), &mut out)?;
/// assert_eq!(out, vec![4, b'h', b'i']);
/// let back: String = part.read(&mut AvroReader::new(&out)).unwrap();
/// assert_eq!(back, "hi");
/// # Ok::<(), event_bus_core::codec::CodecError>(())
/// ```
#[derive(Debug)]
pub struct SerdePart {
    prepared: PreparedSchema,
}

impl SerdePart {
    /// The part for `T`, its schema built and prepared on the first call and kept.
    ///
    /// See the type's example.
    pub fn of<T: AvroType + 'static>() -> Result<&'static SerdePart, CodecError> {
        type Cache = RwLock<HashMap<TypeId, &'static SerdePart>>;
        static CACHE: OnceLock<Cache> = OnceLock::new();
        let cache = CACHE.get_or_init(Cache::default);
        let id = TypeId::of::<T>();
        if let Some(found) = cache.read().ok().and_then(|c| c.get(&id).copied()) {
            return Ok(found);
        }
        let json = T::avro_schema(&mut SchemaNames::default());
        let schema = Schema::parse(&json).map_err(|e| CodecError::Avro {
            operation: "preparing",
            schema: json.to_string(),
            source: Box::new(e),
        })?;
        let prepared = PreparedSchema::new(Box::leak(Box::new(schema)))?;
        let mut cache = cache
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(*cache
            .entry(id)
            .or_insert_with(|| Box::leak(Box::new(SerdePart { prepared }))))
    }

    /// Appends `value`'s datum, written by apache-avro from its serde form.
    ///
    /// See the type's example.
    pub fn write<T: Serialize>(&self, value: &T, out: &mut Vec<u8>) -> Result<(), CodecError> {
        self.prepared.write_into(out, value)
    }

    /// Reads a value from where `input` is, by apache-avro into its serde form, after
    /// checking the bounds of its part ([`DatumBounds`](crate::codec::DatumBounds)).
    ///
    /// See the type's example.
    pub fn read<T: DeserializeOwned>(&self, input: &mut AvroReader<'_>) -> Result<T, ReadError> {
        let (value, used) = self
            .prepared
            .read_part(input.rest())
            .map_err(|e| ReadError::Codec(Box::new(e)))?;
        input.advance(used);
        Ok(value)
    }
}
