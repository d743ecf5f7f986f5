//! The exact mapping between `EventMetadata` and Kafka record headers.
//!
//! Written in the order Open edX's producer uses: `ce_specversion`, `content-type`,
//! `ce_datacontenttype`, `ce_type`, `ce_id`, `ce_source`, `ce_time`,
//! `ce_minorversion`, `sourcehost`, `sourcelib`; then `traceparent` and `tracestate`
//! when a trace is active. All values are UTF-8.

mod text;

use std::borrow::Cow;

use chrono::{DateTime, Datelike, NaiveDateTime, SecondsFormat, SubsecRound, Utc};
use uuid::Uuid;

use self::text::{parse_canonical_time, DecimalText, TimeText};
use crate::metadata::{host_name, EventMetadata, DEFAULT_SOURCE, SOURCE_LIB};
use crate::shared_text;

/// Header names.
pub mod names {
    /// CloudEvents spec version.
    pub const SPECVERSION: &str = "ce_specversion";
    /// Content type of the value (Kafka binding).
    pub const CONTENT_TYPE: &str = "content-type";
    /// CloudEvents data content type.
    pub const DATACONTENTTYPE: &str = "ce_datacontenttype";
    /// Event type name.
    pub const TYPE: &str = "ce_type";
    /// Event id (UUID).
    pub const ID: &str = "ce_id";
    /// Producing service.
    pub const SOURCE: &str = "ce_source";
    /// Event time, RFC 3339 UTC.
    pub const TIME: &str = "ce_time";
    /// Minor version of the event type.
    pub const MINORVERSION: &str = "ce_minorversion";
    /// Producing host.
    pub const SOURCEHOST: &str = "sourcehost";
    /// Producing library version.
    pub const SOURCELIB: &str = "sourcelib";
    /// W3C trace parent.
    pub const TRACEPARENT: &str = "traceparent";
    /// W3C trace state.
    pub const TRACESTATE: &str = "tracestate";
}

/// The only CloudEvents spec version written and accepted.
pub const SPEC_VERSION: &str = "1.0";
/// Content type of every value.
pub const AVRO_CONTENT_TYPE: &str = "application/avro";

/// Headers that are read into the metadata; each may appear once.
const KNOWN: [&str; 12] = [
    names::SPECVERSION,
    names::CONTENT_TYPE,
    names::DATACONTENTTYPE,
    names::TYPE,
    names::ID,
    names::SOURCE,
    names::TIME,
    names::MINORVERSION,
    names::SOURCEHOST,
    names::SOURCELIB,
    names::TRACEPARENT,
    names::TRACESTATE,
];

/// The places of the known headers in [`KNOWN`].
mod slot {
    pub const SPECVERSION: usize = 0;
    pub const CONTENT_TYPE: usize = 1;
    pub const DATACONTENTTYPE: usize = 2;
    pub const TYPE: usize = 3;
    pub const ID: usize = 4;
    pub const SOURCE: usize = 5;
    pub const TIME: usize = 6;
    pub const MINORVERSION: usize = 7;
    pub const SOURCEHOST: usize = 8;
    pub const SOURCELIB: usize = 9;
    pub const TRACEPARENT: usize = 10;
    pub const TRACESTATE: usize = 11;
}

/// The place of a known header in [`KNOWN`], by its name's bytes (a `match` the
/// compiler turns into a length switch, instead of comparing with every known name).
fn slot_of(name: &[u8]) -> Option<usize> {
    // By length first: most lengths leave one candidate, none more than two.
    let slot = match name.len() {
        5 => slot::ID,
        7 if name[3] == b't' && name[4] == b'y' => slot::TYPE,
        7 => slot::TIME,
        9 if name[0] == b'c' => slot::SOURCE,
        9 => slot::SOURCELIB,
        10 if name[0] == b's' => slot::SOURCEHOST,
        10 => slot::TRACESTATE,
        11 => slot::TRACEPARENT,
        12 => slot::CONTENT_TYPE,
        14 => slot::SPECVERSION,
        15 => slot::MINORVERSION,
        18 => slot::DATACONTENTTYPE,
        _ => return None,
    };
    (name == KNOWN[slot].as_bytes()).then_some(slot)
}

/// `bytes` as text when they are UTF-8; ASCII, as header names and values nearly
/// always are, is recognised without `from_utf8`'s general walk.
///
/// ```
/// use event_bus_core::headers::utf8_text;
/// assert_eq!(utf8_text(b"ce_id"), Some("ce_id"));
/// assert_eq!(utf8_text("é".as_bytes()), Some("é"));
/// assert_eq!(utf8_text(b"\xff"), None);
/// ```
// Inlined across crates: the consumer calls it for every header of every record
// (`scripts/callgrind sdk-decode`: 7 305 -> 7 103 instructions a record).
#[inline]
pub fn utf8_text(bytes: &[u8]) -> Option<&str> {
    if bytes.is_ascii() {
        // SAFETY: ASCII bytes are valid UTF-8.
        return Some(unsafe { std::str::from_utf8_unchecked(bytes) });
    }
    std::str::from_utf8(bytes).ok()
}

/// Why a record's headers cannot give event metadata.
///
/// ```
/// use event_bus_core::headers::{parse_headers, HeaderError};
/// let err = parse_headers([("ce_type", Some(&b"org.example.a.b.created.v1"[..]))]).unwrap_err();
/// assert!(matches!(err, HeaderError::Missing { header: "ce_id" }));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// A required header is absent.
    #[error("header `{header}` is missing; every event needs it (the producer sets it)")]
    Missing {
        /// The header's name.
        header: &'static str,
    },
    /// A header appears more than once, so its value is ambiguous.
    #[error("header `{header}` appears {count} times; it must appear once")]
    Duplicated {
        /// The header's name.
        header: &'static str,
        /// How many times it appeared.
        count: usize,
    },
    /// A header value is not UTF-8 text.
    #[error("header `{header}` is not UTF-8 text")]
    NotUtf8 {
        /// The header's name.
        header: &'static str,
    },
    /// A header value does not parse.
    #[error("header `{header}` has invalid value `{value}`: {expected}")]
    Invalid {
        /// The header's name.
        header: &'static str,
        /// The value received.
        value: String,
        /// What was expected instead.
        expected: &'static str,
    },
}

/// Metadata read from headers, with the headers that were absent and took defaults.
///
/// ```
/// # use event_bus_core::{EventMetadata, headers::parse_headers};
/// // `ce_time` carries microseconds, so use a time without nanoseconds.
/// let time = chrono::DateTime::from_timestamp(1_700_000_000, 250_000).unwrap();
/// let meta = EventMetadata::new("org.example.a.b.created.v1").with_time(time);
/// let headers = meta.to_headers();
/// let parsed = parse_headers(headers.iter().map(|(k, v)| (*k, Some(v.as_bytes()))))?;
/// assert_eq!(parsed.metadata, meta);
/// assert!(parsed.defaulted.is_empty());
/// # Ok::<(), event_bus_core::headers::HeaderError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedMetadata {
    /// The metadata.
    pub metadata: EventMetadata,
    /// Headers that were absent and took a default value.
    pub defaulted: Vec<&'static str>,
}

impl EventMetadata {
    /// The Kafka headers of this metadata, in Open edX's order.
    ///
    /// ```
    /// let meta = event_bus_core::EventMetadata::new("org.example.a.b.created.v1");
    /// let headers = meta.to_headers();
    /// assert_eq!(headers[0], ("ce_specversion", "1.0".to_string()));
    /// assert_eq!(headers.len(), 10);
    /// ```
    pub fn to_headers(&self) -> Vec<(&'static str, String)> {
        let mut headers = Vec::with_capacity(12);
        self.for_each_header(|name, value| headers.push((name, value.to_owned())));
        headers
    }

    /// Calls `add` with every header of this metadata, in the order of
    /// [`to_headers`](Self::to_headers), without building owned strings: `ce_id`,
    /// `ce_time` and `ce_minorversion` are formatted on the stack (chrono writes
    /// `ce_time` only for a leap second or a year beyond four digits). Producers use
    /// it to hand headers straight to the Kafka client.
    ///
    /// ```
    /// let meta = event_bus_core::EventMetadata::new("org.example.a.b.created.v1");
    /// let mut names = Vec::new();
    /// meta.for_each_header(|name, _| names.push(name));
    /// assert_eq!(names.len(), 10);
    /// assert_eq!(names[4], "ce_id");
    /// ```
    pub fn for_each_header(&self, mut add: impl FnMut(&'static str, &str)) {
        let mut id_text = Uuid::encode_buffer();
        add(names::SPECVERSION, SPEC_VERSION);
        add(names::CONTENT_TYPE, AVRO_CONTENT_TYPE);
        add(names::DATACONTENTTYPE, AVRO_CONTENT_TYPE);
        add(names::TYPE, &self.event_type);
        add(names::ID, self.id.hyphenated().encode_lower(&mut id_text));
        add(names::SOURCE, &self.source);
        match TimeText::of(&self.time) {
            Some(text) => add(names::TIME, text.as_str()),
            // A year beyond four digits: chrono's own RFC 3339 writer copes.
            None => add(names::TIME, &format_time(&self.time)),
        }
        add(
            names::MINORVERSION,
            DecimalText::of(self.minorversion).as_str(),
        );
        add(names::SOURCEHOST, &self.sourcehost);
        add(names::SOURCELIB, &self.sourcelib);
        if let Some(parent) = &self.traceparent {
            add(names::TRACEPARENT, parent);
        }
        if let Some(state) = &self.tracestate {
            add(names::TRACESTATE, state);
        }
    }
}

/// `ce_time` text: RFC 3339 in UTC with microseconds and `+00:00`, as Python's
/// `isoformat()` writes it.
///
/// ```
/// let t = chrono::DateTime::from_timestamp(1_700_000_000, 5_000).unwrap();
/// assert_eq!(event_bus_core::headers::format_time(&t), "2023-11-14T22:13:20.000005+00:00");
/// ```
pub fn format_time(time: &DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Micros, false)
}

/// Parses `ce_time`: RFC 3339 with any offset (converted to UTC), or a time without
/// offset, taken as UTC.
///
/// ```
/// let t = event_bus_core::headers::parse_time("2023-11-14T22:13:20Z").unwrap();
/// assert_eq!(t.timestamp(), 1_700_000_000);
/// assert!(event_bus_core::headers::parse_time("yesterday").is_none());
/// // Years RFC 3339 cannot write are refused, so what is read can be written back.
/// assert!(event_bus_core::headers::parse_time("-023-11-14T22:13:21.7").is_none());
/// assert!(event_bus_core::headers::parse_time("0000-01-01T00:30:00+01:00").is_none());
/// ```
pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    if let Some(time) = parse_canonical_time(text) {
        return Some(time);
    }
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
                .ok()
                .map(|t| t.and_utc())
        })
        .filter(|t| (0..=9999).contains(&t.year()))
}

/// Reads event metadata from record headers (`(name, value)` pairs, in any order;
/// names as `&str` or as raw bytes).
///
/// Fails on a missing or invalid `ce_id`, on a missing or empty `ce_type`, on a
/// duplicated header, on a bad `ce_time`, `ce_minorversion` or `ce_specversion`, and on
/// non-UTF-8 values. Other absent headers take defaults and are listed in
/// [`ParsedMetadata::defaulted`]. Headers this crate does not know are ignored, whatever
/// their bytes. The trace context is the exception among the headers read: a
/// `traceparent` or `tracestate` that is not UTF-8 or appears twice is left out, as W3C
/// Trace Context treats a trace context it cannot read; the event itself is fine.
///
/// `ce_type` is required, as in Open edX's event bus (its consumer refuses a record
/// without one): without it no one can tell which event the value is, so such a record
/// is invalid, never an event of an "unknown" type that a consumer may skip.
///
/// ```
/// use event_bus_core::headers::{parse_headers, HeaderError};
/// let id = "8c6d3f0e-2a63-4f64-9f53-4b4a9f6a0c11";
/// let event_type = "org.openedx.learning.auth.session.login.completed.v1";
/// let parsed = parse_headers([("ce_id", Some(id.as_bytes())), ("ce_type", Some(event_type.as_bytes()))])?;
/// assert_eq!(parsed.metadata.id.to_string(), id);
/// assert!(parsed.defaulted.contains(&"ce_source"));
///
/// let untyped = parse_headers([("ce_id", Some(id.as_bytes()))]);
/// assert!(matches!(untyped, Err(HeaderError::Missing { header: "ce_type" })));
/// let empty = parse_headers([("ce_id", Some(id.as_bytes())), ("ce_type", Some(&b" "[..]))]);
/// assert!(matches!(empty, Err(HeaderError::Invalid { header: "ce_type", .. })));
/// let dup = parse_headers([("ce_id", Some(id.as_bytes())), ("ce_id", Some(id.as_bytes()))]);
/// assert!(matches!(dup, Err(HeaderError::Duplicated { header: "ce_id", count: 2 })));
/// # Ok::<(), HeaderError>(())
/// ```
pub fn parse_headers<'a, I, N>(headers: I) -> Result<ParsedMetadata, HeaderError>
where
    I: IntoIterator<Item = (N, Option<&'a [u8]>)>,
    N: AsRef<[u8]>,
{
    let mut reader = HeaderReader::default();
    for (name, value) in headers {
        if let Some(slot) = slot_of(name.as_ref()) {
            reader.found[slot] = Some(value);
            reader.count[slot] += 1;
        }
    }
    let id_text = reader
        .text(slot::ID)?
        .ok_or(HeaderError::Missing { header: names::ID })?;
    let id = Uuid::parse_str(id_text).map_err(|_| HeaderError::Invalid {
        header: names::ID,
        value: id_text.to_owned(),
        expected: "a UUID such as 8c6d3f0e-2a63-4f64-9f53-4b4a9f6a0c11",
    })?;
    let event_type = reader.text(slot::TYPE)?.ok_or(HeaderError::Missing {
        header: names::TYPE,
    })?;
    // Only a text that starts with white space can be all white space (and `trim`
    // walks the whole text).
    if event_type.is_empty()
        || event_type.starts_with(char::is_whitespace) && event_type.trim().is_empty()
    {
        return Err(HeaderError::Invalid {
            header: names::TYPE,
            value: event_type.to_owned(),
            expected:
                "an event type name such as org.openedx.learning.auth.session.login.completed.v1",
        });
    }
    if let Some(spec) = reader.text(slot::SPECVERSION)? {
        if spec != SPEC_VERSION {
            return Err(HeaderError::Invalid {
                header: names::SPECVERSION,
                value: spec.to_owned(),
                expected: "CloudEvents spec version 1.0",
            });
        }
    }
    reader.text(slot::CONTENT_TYPE)?;
    reader.text(slot::DATACONTENTTYPE)?;
    let time = match reader.text(slot::TIME)? {
        Some(text) => parse_time(text).ok_or_else(|| HeaderError::Invalid {
            header: names::TIME,
            value: text.to_owned(),
            expected: "an RFC 3339 time such as 2024-05-01T12:00:00.000000+00:00",
        })?,
        None => chrono::Utc::now(),
    };
    // `ce_time` carries microseconds: a time read or defaulted with more would not
    // survive the SDK writing these headers again (DLQ, redrive). Found by fuzzing.
    let time = time.trunc_subsecs(6);
    let minorversion = match reader.text(slot::MINORVERSION)? {
        Some(text) => text.trim().parse().map_err(|_| HeaderError::Invalid {
            header: names::MINORVERSION,
            value: text.to_owned(),
            expected: "a non-negative integer",
        })?,
        None => 0,
    };
    // The texts every record repeats are shared, not copied per record; an absent
    // one takes its default.
    let text_or = |text: Option<&str>, default: &'static str| {
        text.map_or(Cow::Borrowed(default), shared_text::shared)
    };
    let metadata = EventMetadata {
        id,
        event_type: shared_text::shared(event_type),
        minorversion,
        source: text_or(reader.text(slot::SOURCE)?, DEFAULT_SOURCE),
        sourcehost: text_or(reader.text(slot::SOURCEHOST)?, host_name()),
        time,
        sourcelib: text_or(reader.text(slot::SOURCELIB)?, SOURCE_LIB),
        traceparent: reader.trace_text(slot::TRACEPARENT).map(str::to_owned),
        tracestate: reader.trace_text(slot::TRACESTATE).map(str::to_owned),
    };
    Ok(ParsedMetadata {
        metadata,
        defaulted: reader.defaulted,
    })
}

/// The value and the number of occurrences of each known header, without allocating.
#[derive(Default)]
struct HeaderReader<'a> {
    found: [Option<Option<&'a [u8]>>; KNOWN.len()],
    count: [usize; KNOWN.len()],
    defaulted: Vec<&'static str>,
}

impl<'a> HeaderReader<'a> {
    /// The value of the header in `slot` (of [`slot`]) as text, if present once.
    ///
    /// Inlined for the usual case, a header present once as text; the rest (absent,
    /// repeated, not UTF-8) is [`text_otherwise`](Self::text_otherwise). It runs a
    /// dozen times per record: the split took `scripts/callgrind sdk-decode` from 7 103
    /// to 6 833 instructions a record.
    #[inline(always)]
    fn text(&mut self, slot: usize) -> Result<Option<&'a str>, HeaderError> {
        if self.count[slot] == 1 {
            if let Some(Some(text)) =
                self.found[slot].map(|value| utf8_text(value.unwrap_or_default()))
            {
                return Ok(Some(text));
            }
        }
        self.text_otherwise(slot)
    }

    /// [`text`](Self::text) for a header absent, repeated or not UTF-8.
    #[cold]
    #[inline(never)]
    fn text_otherwise(&mut self, slot: usize) -> Result<Option<&'a str>, HeaderError> {
        let header = KNOWN[slot];
        match (self.count[slot], self.found[slot]) {
            (0, _) | (_, None) => {
                // The trace context's absence is not worth reporting.
                if slot < slot::TRACEPARENT {
                    self.defaulted.push(header);
                }
                Ok(None)
            }
            (1, Some(value)) => utf8_text(value.unwrap_or_default())
                .map(Some)
                .ok_or(HeaderError::NotUtf8 { header }),
            (count, Some(_)) => Err(HeaderError::Duplicated { header, count }),
        }
    }

    /// A W3C trace context header, or `None` when it is absent or unusable (not UTF-8,
    /// or more than one): a trace context that cannot be read is ignored, as W3C Trace
    /// Context asks, and the event is handled without a parent span.
    fn trace_text(&mut self, slot: usize) -> Option<&'a str> {
        self.text(slot).ok().flatten()
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn header_value(meta: &EventMetadata, wanted: &str) -> String {
        let mut found = String::new();
        meta.for_each_header(|name, value| {
            if name == wanted {
                found = value.to_owned();
            }
        });
        found
    }

    #[test]
    fn time_written_on_the_stack_matches_format_time() {
        let times = [
            Utc.timestamp_opt(1_700_000_000, 5_000).single(),
            Utc.timestamp_opt(0, 0).single(),
            Utc.timestamp_opt(1_700_000_000, 123_456_789).single(),
            Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).single(),
            Utc.with_ymd_and_hms(12345, 1, 2, 3, 4, 5).single(),
            Utc.with_ymd_and_hms(-44, 3, 15, 12, 0, 0).single(),
            chrono::NaiveDate::from_ymd_opt(2016, 12, 31)
                .and_then(|d| d.and_hms_micro_opt(23, 59, 59, 1_500_000))
                .map(|t| t.and_utc()),
        ];
        for time in times.into_iter().flatten() {
            let meta = EventMetadata::new("org.example.a.b.created.v1").with_time(time);
            assert_eq!(
                header_value(&meta, names::TIME),
                format_time(&time),
                "{time:?}"
            );
        }
    }

    #[test]
    fn every_known_name_has_its_own_slot() {
        for (slot, name) in KNOWN.iter().enumerate() {
            assert_eq!(slot_of(name.as_bytes()), Some(slot), "{name}");
        }
        let named = [
            (slot::SPECVERSION, names::SPECVERSION),
            (slot::CONTENT_TYPE, names::CONTENT_TYPE),
            (slot::DATACONTENTTYPE, names::DATACONTENTTYPE),
            (slot::TYPE, names::TYPE),
            (slot::ID, names::ID),
            (slot::SOURCE, names::SOURCE),
            (slot::TIME, names::TIME),
            (slot::MINORVERSION, names::MINORVERSION),
            (slot::SOURCEHOST, names::SOURCEHOST),
            (slot::SOURCELIB, names::SOURCELIB),
            (slot::TRACEPARENT, names::TRACEPARENT),
            (slot::TRACESTATE, names::TRACESTATE),
        ];
        for (slot, name) in named {
            assert_eq!(KNOWN[slot], name);
        }
        assert_eq!(slot_of(b"ce_idx"), None);
        assert_eq!(slot_of(b"CE_ID"), None);
    }

    #[test]
    fn minor_version_is_written_in_decimal() {
        for version in [0, 7, u32::MAX] {
            let mut meta = EventMetadata::new("org.example.a.b.created.v1");
            meta.minorversion = version;
            assert_eq!(
                header_value(&meta, names::MINORVERSION),
                version.to_string()
            );
        }
    }
}
