//! A schema prepared once for many encodes and decodes.
//!
//! apache-avro resolves a schema's named types into a lookup table every time a datum
//! writer or reader is built. Building one per event cost more than the Avro work of a
//! small event, so each event type keeps one [`PreparedSchema`] for its lifetime.

use std::any::TypeId;
use std::collections::HashMap;
use std::sync::{OnceLock, RwLock};

use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::writer::datum::GenericDatumWriter;
use apache_avro::Schema;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{avro_error, schema_name, CodecError, DatumBounds};
use crate::avro::top_level::TopLevel;

/// A schema with its named types resolved, holding a datum writer and reader of it.
///
/// Events get theirs from [`Event::prepared_schema`](crate::Event::prepared_schema);
/// build one directly for any other schema that lives for the whole program.
///
/// ```
/// use event_bus_core::codec::PreparedSchema;
/// let schema: &'static apache_avro::Schema =
///     Box::leak(Box::new(apache_avro::Schema::parse_str(r#""string""#).unwrap()));
/// let prepared = PreparedSchema::new(schema)?;
/// let bytes = prepared.encode(&"hi")?;
/// assert_eq!(bytes, vec![4, b'h', b'i']);
/// let back: String = prepared.decode(&bytes)?;
/// assert_eq!(back, "hi");
/// # Ok::<(), event_bus_core::codec::CodecError>(())
/// ```
pub struct PreparedSchema {
    schema: &'static Schema,
    writer: GenericDatumWriter<'static>,
    reader: GenericDatumReader<'static>,
    bounds: DatumBounds,
}

impl std::fmt::Debug for PreparedSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedSchema")
            .field("schema", &schema_name(self.schema))
            .finish_non_exhaustive()
    }
}

impl PreparedSchema {
    /// Resolves `schema`'s named types once; fails when it references a name it does
    /// not define.
    ///
    /// See the type's example.
    pub fn new(schema: &'static Schema) -> Result<Self, CodecError> {
        let writer = GenericDatumWriter::builder(schema)
            .human_readable(true)
            .build()
            .map_err(|e| avro_error("preparing", schema, e))?;
        let reader = GenericDatumReader::builder(schema)
            .human_readable(true)
            .build()
            .map_err(|e| avro_error("preparing", schema, e))?;
        let bounds = DatumBounds::new(schema)?;
        Ok(Self {
            schema,
            writer,
            reader,
            bounds,
        })
    }

    /// The schema.
    ///
    /// ```
    /// # use event_bus_core::codec::PreparedSchema;
    /// let schema = Box::leak(Box::new(apache_avro::Schema::parse_str(r#""long""#).unwrap()));
    /// assert!(std::ptr::eq(PreparedSchema::new(schema)?.schema(), schema));
    /// # Ok::<(), event_bus_core::codec::CodecError>(())
    /// ```
    pub fn schema(&self) -> &'static Schema {
        self.schema
    }

    /// Encodes a serde value as an Avro binary datum of the schema.
    ///
    /// See the type's example.
    pub fn encode<T: Serialize>(&self, value: &T) -> Result<Vec<u8>, CodecError> {
        let mut out = Vec::with_capacity(64);
        self.writer
            .write_ser(&mut out, value)
            .map_err(|e| avro_error("encoding", self.schema, e))?;
        Ok(out)
    }

    /// Encodes a serde value framed for the wire: the magic byte, `schema_id`, then the
    /// datum, written into one buffer.
    ///
    /// ```
    /// # use event_bus_core::codec::PreparedSchema;
    /// let schema = Box::leak(Box::new(apache_avro::Schema::parse_str(r#""long""#).unwrap()));
    /// let framed = PreparedSchema::new(schema)?.encode_framed(7, &123_i64)?;
    /// assert_eq!(framed, vec![0, 0, 0, 0, 7, 0xf6, 0x01]);
    /// # Ok::<(), event_bus_core::codec::CodecError>(())
    /// ```
    pub fn encode_framed<T: Serialize>(
        &self,
        schema_id: u32,
        value: &T,
    ) -> Result<Vec<u8>, CodecError> {
        let mut out = Vec::with_capacity(64);
        super::write_frame_header(&mut out, schema_id);
        self.writer
            .write_ser(&mut out, value)
            .map_err(|e| avro_error("encoding", self.schema, e))?;
        Ok(out)
    }

    /// Decodes a datum written with this very schema, rejecting trailing bytes; its
    /// lengths and counts are checked against its bytes first ([`DatumBounds`]).
    ///
    /// The top-level record is read whatever its name, so an event's `CloudEvent`
    /// record fills the event's struct. See the type's example.
    pub fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, CodecError> {
        self.bounds.check(bytes)?;
        let mut cursor = bytes;
        let value = self
            .reader
            .read_deser::<TopLevel<T>>(&mut cursor)
            .map(|top| top.0)
            .map_err(|e| avro_error("decoding", self.schema, e))?;
        if !cursor.is_empty() {
            return Err(CodecError::TrailingBytes {
                trailing: cursor.len(),
                schema: schema_name(self.schema),
            });
        }
        Ok(value)
    }

    /// Appends a serde value's datum to `out` (for a part of a larger datum).
    pub(crate) fn write_into<T: Serialize>(
        &self,
        out: &mut Vec<u8>,
        value: &T,
    ) -> Result<(), CodecError> {
        self.writer
            .write_ser(out, value)
            .map(drop)
            .map_err(|e| avro_error("encoding", self.schema, e))
    }

    /// Reads one value from the start of `bytes` (a part of a larger datum, so bytes
    /// may follow it), checking its bounds first; returns it and the bytes it took.
    /// Records keep apache-avro's name check.
    pub(crate) fn read_part<T: DeserializeOwned>(
        &self,
        bytes: &[u8],
    ) -> Result<(T, usize), CodecError> {
        self.bounds.check(bytes)?;
        let mut cursor = bytes;
        let value = self
            .reader
            .read_deser::<T>(&mut cursor)
            .map_err(|e| avro_error("decoding", self.schema, e))?;
        Ok((value, bytes.len() - cursor.len()))
    }

    /// The prepared schema of the type `T`, made from `schema()` on the first call and
    /// kept for the life of the program (for `Event` implementations written by hand;
    /// derived events keep theirs in a static of their own). A schema that does not
    /// resolve is an error, returned on every call.
    ///
    /// ```
    /// use event_bus_core::codec::PreparedSchema;
    /// fn schema() -> &'static apache_avro::Schema {
    ///     static S: std::sync::OnceLock<apache_avro::Schema> = std::sync::OnceLock::new();
    ///     S.get_or_init(|| apache_avro::Schema::parse_str(r#""int""#).unwrap())
    /// }
    /// struct Marker;
    /// let first = PreparedSchema::for_type::<Marker>(schema)?;
    /// let again = PreparedSchema::for_type::<Marker>(schema)?;
    /// assert!(std::ptr::eq(first, again));
    /// # Ok::<(), event_bus_core::codec::CodecError>(())
    /// ```
    pub fn for_type<T: 'static>(
        schema: fn() -> &'static Schema,
    ) -> Result<&'static PreparedSchema, CodecError> {
        type Cache = RwLock<HashMap<TypeId, &'static PreparedSchema>>;
        static CACHE: OnceLock<Cache> = OnceLock::new();
        let cache = CACHE.get_or_init(Cache::default);
        let id = TypeId::of::<T>();
        if let Some(found) = cache.read().ok().and_then(|c| c.get(&id).copied()) {
            return Ok(found);
        }
        // Prepared outside the lock: `schema()` is the implementor's code.
        let prepared = Self::new(schema())?;
        let mut cache = cache
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(*cache
            .entry(id)
            .or_insert_with(|| Box::leak(Box::new(prepared))))
    }

    /// Prepares a schema the program itself defines (a derived event's); such a schema
    /// always resolves, so a failure is a bug in the derive, not bad input.
    #[doc(hidden)]
    pub fn prepare_or_panic(schema: &'static Schema) -> Self {
        Self::new(schema).unwrap_or_else(|e| {
            panic!("an event's own schema does not resolve ({e}); this is a signal-bridge bug, please report it")
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use apache_avro::Schema;
    use serde::{Deserialize, Serialize};

    use crate::codec::CodecError;
    use crate::{Event, EventKey};

    /// An event written by hand whose schema names a record it does not define (it
    /// came from `Schema::parse_list` with a sibling schema).
    #[derive(Serialize, Deserialize)]
    struct HandWritten {
        inner: Inner,
    }

    #[derive(Serialize, Deserialize)]
    struct Inner {
        n: i32,
    }

    impl Event for HandWritten {
        const EVENT_TYPE: &'static str = "org.example.tests.hand.written.v1";
        const TOPIC: &'static str = "hand";
        const KEY_FIELD: Option<&'static str> = None;
        const MINOR_VERSION: u32 = 0;

        fn schema_json() -> serde_json::Value {
            serde_json::json!({"type": "record", "name": "CloudEvent", "fields": [
                {"name": "inner", "type": "Inner"}
            ]})
        }

        fn schema() -> &'static Schema {
            static SCHEMA: OnceLock<Schema> = OnceLock::new();
            SCHEMA.get_or_init(|| {
                let inner = r#"{"type": "record", "name": "Inner", "fields": [{"name": "n", "type": "int"}]}"#;
                let outer = Self::schema_json().to_string();
                Schema::parse_list([inner, outer.as_str()])
                    .ok()
                    .and_then(|mut all| all.pop())
                    .unwrap_or(Schema::Null)
            })
        }

        fn key(&self) -> Option<EventKey> {
            None
        }

        fn key_schema_json() -> Option<serde_json::Value> {
            None
        }
    }

    #[test]
    fn a_hand_written_schema_that_does_not_resolve_is_an_error_not_a_panic() {
        assert!(matches!(HandWritten::schema(), Schema::Record(_)));
        let event = HandWritten {
            inner: Inner { n: 1 },
        };
        for _ in 0..2 {
            let err = event.to_avro_datum().expect_err("unresolvable schema");
            assert!(
                matches!(
                    err,
                    CodecError::Avro {
                        operation: "preparing",
                        ..
                    }
                ),
                "{err}"
            );
            assert!(HandWritten::from_avro_datum(&[2], HandWritten::schema()).is_err());
        }
    }
}
