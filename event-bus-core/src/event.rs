//! The `Event` trait, implemented by `#[derive(Event)]`.

use apache_avro::Schema;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::codec::{self, CodecError, PreparedSchema};
use crate::key::EventKey;
use crate::topic_settings::TopicSettings;

/// A typed event: its type name, default topic, key, and Avro schema.
///
/// Implement it with `#[derive(Event)]`:
///
/// ```
/// use event_bus_core::prelude::*;
/// use serde::{Deserialize, Serialize};
///
/// /// A course was published.
/// #[derive(Debug, Serialize, Deserialize, Event)]
/// #[event(type = "org.example.learning.course.catalog.published.v1", topic = "course-catalog", key = "course_key", minor_version = 2)]
/// pub struct CoursePublished {
///     /// The course's key.
///     pub course_key: String,
/// }
///
/// assert_eq!(CoursePublished::TOPIC, "course-catalog");
/// assert_eq!(CoursePublished::MINOR_VERSION, 2);
/// assert_eq!(CoursePublished::schema_json()["name"], "CloudEvent");
/// let bytes = CoursePublished { course_key: "course-v1:X+Y+Z".into() }.to_avro_datum()?;
/// let back = CoursePublished::from_avro_datum(&bytes, CoursePublished::schema())?;
/// assert_eq!(back.course_key, "course-v1:X+Y+Z");
/// # Ok::<(), event_bus_core::codec::CodecError>(())
/// ```
pub trait Event: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The event type name, `{reverse-dns}.{domain}.{subject}.{action}.v{major}`.
    const EVENT_TYPE: &'static str;
    /// The topic events of this type go to by default (before any prefix).
    const TOPIC: &'static str;
    /// The dotted path of the key field, if the event has a key.
    const KEY_FIELD: Option<&'static str>;
    /// The minor version, sent as `ce_minorversion`.
    const MINOR_VERSION: u32;
    /// What the type asks of its topic (partitions, replication factor, configs);
    /// `#[event(topic_settings(...))]` sets it, nothing declared by default. Only
    /// `event-bus topics ensure` reads it; see [`crate::topic_settings`].
    const TOPIC_SETTINGS: TopicSettings = TopicSettings::NONE;

    /// The Avro schema of the event as JSON.
    fn schema_json() -> Value;

    /// The parsed Avro schema of the event (parsed once, then cached).
    fn schema() -> &'static Schema;

    /// The event's key, read from its key field.
    fn key(&self) -> Option<EventKey>;

    /// The Avro schema of the key, registered as Open edX's producer does it.
    fn key_schema_json() -> Option<Value>;

    /// The event's schema prepared for encoding and decoding (resolved once, then
    /// cached); an error when the schema references a name it does not define. The
    /// derive keeps it in a static of the type's own.
    fn prepared_schema() -> Result<&'static PreparedSchema, CodecError> {
        PreparedSchema::for_type::<Self>(Self::schema)
    }

    /// The event as an Avro binary datum (no framing) in its own schema.
    fn to_avro_datum(&self) -> Result<Vec<u8>, CodecError> {
        Self::prepared_schema()?.encode(self)
    }

    /// The event framed for the wire: the Confluent header for `schema_id`, then its
    /// datum in its own schema, in one buffer.
    ///
    /// This default writes through serde and apache-avro; `#[derive(Event)]` writes
    /// the struct's fields straight to Avro binary instead
    /// ([`avro::binary`](crate::avro::binary)), the same bytes.
    ///
    /// ```
    /// # use event_bus_core::prelude::*;
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Serialize, Deserialize, Event)]
    /// # #[event(type = "org.example.docs.page.read.v1", topic = "pages")]
    /// # struct PageRead { page: i64 }
    /// let framed = PageRead { page: 2 }.to_avro_framed(9)?;
    /// assert_eq!(framed, vec![0, 0, 0, 0, 9, 4]);
    /// # Ok::<(), event_bus_core::codec::CodecError>(())
    /// ```
    fn to_avro_framed(&self, schema_id: u32) -> Result<Vec<u8>, CodecError> {
        Self::prepared_schema()?.encode_framed(schema_id, self)
    }

    /// Appends the event framed for the wire to `out`, as
    /// [`to_avro_framed`](Self::to_avro_framed) writes it, so a producer can reuse its
    /// buffers; on an error what was appended is partial. `#[derive(Event)]` writes
    /// straight into `out`; this default copies `to_avro_framed`'s bytes.
    ///
    /// ```
    /// # use event_bus_core::prelude::*;
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Serialize, Deserialize, Event)]
    /// # #[event(type = "org.example.docs.page.shared.v1", topic = "pages")]
    /// # struct PageShared { page: i64 }
    /// let mut out = Vec::with_capacity(64);
    /// PageShared { page: 2 }.write_avro_framed(9, &mut out)?;
    /// assert_eq!(out, vec![0, 0, 0, 0, 9, 4]);
    /// # Ok::<(), event_bus_core::codec::CodecError>(())
    /// ```
    fn write_avro_framed(&self, schema_id: u32, out: &mut Vec<u8>) -> Result<(), CodecError> {
        out.extend_from_slice(&self.to_avro_framed(schema_id)?);
        Ok(())
    }

    /// Reads a datum written with this type's own schema (no resolution).
    ///
    /// This default reads through apache-avro and serde after checking the datum's
    /// bounds; `#[derive(Event)]` reads the fields straight from Avro binary instead,
    /// with the same checks ([`avro::binary`](crate::avro::binary)).
    ///
    /// ```
    /// # use event_bus_core::prelude::*;
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Serialize, Deserialize, Event)]
    /// # #[event(type = "org.example.docs.page.skipped.v1", topic = "pages")]
    /// # struct PageSkipped { page: i64 }
    /// assert_eq!(PageSkipped::from_own_avro_datum(&[4])?.page, 2);
    /// assert!(PageSkipped::from_own_avro_datum(&[]).is_err());
    /// # Ok::<(), event_bus_core::codec::CodecError>(())
    /// ```
    fn from_own_avro_datum(bytes: &[u8]) -> Result<Self, CodecError> {
        Self::prepared_schema()?.decode(bytes)
    }

    /// Reads a datum written with `writer`, resolved against this type's schema; a
    /// writer schema that is the type's own is read by
    /// [`from_own_avro_datum`](Self::from_own_avro_datum).
    fn from_avro_datum(bytes: &[u8], writer: &Schema) -> Result<Self, CodecError> {
        let own = Self::schema();
        if std::ptr::eq(writer, own) || writer == own {
            return Self::from_own_avro_datum(bytes);
        }
        codec::decode_datum(bytes, writer, own)
    }
}
