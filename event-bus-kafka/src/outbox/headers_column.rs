//! The `headers` column of an outbox row: a record's Kafka headers as JSON text.
//!
//! The form is a JSON array of `[name, value]` pairs, in the record's order (names may
//! repeat, as in Kafka). A value is a JSON string when its bytes are UTF-8 (always, for
//! the SDK's own CloudEvents headers) and `{"hex": "…"}` (two hex digits a byte)
//! otherwise, so rows stay readable in `psql` and any byte value survives:
//!
//! ```text
//! [["ce_id","0b6f…"],["bin",{"hex":"00ff07"}],["empty",""]]
//! ```
//!
//! Rows are read back from a database that other processes (and people) can write, so
//! [`headers_from_json`] accepts exactly this form and returns
//! [`OutboxError::CorruptRow`] for anything else; the relay then treats the row as
//! unreadable (its key waits, other keys publish).

use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

use super::error::OutboxError;

/// One stored header: `[name, value]`.
#[derive(Debug, Serialize, Deserialize)]
struct StoredHeader(String, StoredValue);

/// A stored header value: text, or the bytes in hex when they are not UTF-8.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum StoredValue {
    Text(String),
    Bytes { hex: String },
}

/// Reads a value as exactly one of the two forms `Serialize` writes: a string, or an
/// object whose one member is `hex`. (A derived untagged reader would also take
/// `["00"]`, extra members, or `hex` twice.)
impl<'de> Deserialize<'de> for StoredValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StoredValueVisitor)
    }
}

struct StoredValueVisitor;

impl<'de> Visitor<'de> for StoredValueVisitor {
    type Value = StoredValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(r#"a string, or {"hex": "…"} for a value that is not UTF-8"#)
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<StoredValue, E> {
        Ok(StoredValue::Text(text.to_owned()))
    }

    fn visit_string<E: de::Error>(self, text: String) -> Result<StoredValue, E> {
        Ok(StoredValue::Text(text))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut members: A) -> Result<StoredValue, A::Error> {
        let hex = match members.next_key::<String>()? {
            Some(name) if name == "hex" => members.next_value::<String>()?,
            _ => return Err(de::Error::custom(r#"expected {"hex": "…"}"#)),
        };
        if members.next_key::<IgnoredAny>()?.is_some() {
            return Err(de::Error::custom(r#"{"hex": "…"} has another member"#));
        }
        Ok(StoredValue::Bytes { hex })
    }
}

/// Headers as the JSON text the stores write to the `headers` column.
///
/// ```
/// use event_bus_kafka::outbox::headers_to_json;
/// let headers = vec![
///     ("ce_id".to_string(), b"0b6f".to_vec()),
///     ("bin".to_string(), vec![0, 255, 7]),
/// ];
/// assert_eq!(headers_to_json(&headers), r#"[["ce_id","0b6f"],["bin",{"hex":"00ff07"}]]"#);
/// ```
pub fn headers_to_json(headers: &[(String, Vec<u8>)]) -> String {
    let stored: Vec<StoredHeader> = headers
        .iter()
        .map(|(name, value)| {
            let value = match std::str::from_utf8(value) {
                Ok(text) => StoredValue::Text(text.to_owned()),
                Err(_) => StoredValue::Bytes { hex: to_hex(value) },
            };
            StoredHeader(name.clone(), value)
        })
        .collect();
    // Serializing strings into JSON cannot fail.
    serde_json::to_string(&stored).unwrap_or_else(|_| "[]".to_owned())
}

/// Headers back from the `headers` column of row `id` (the id only names the row in
/// the error). Whatever [`headers_to_json`] wrote comes back unchanged; text in any
/// other form is an [`OutboxError::CorruptRow`].
///
/// ```
/// use event_bus_kafka::outbox::{headers_from_json, headers_to_json, OutboxError};
///
/// let headers = vec![("bin".to_string(), vec![0, 255]), ("ce_type".to_string(), b"x".to_vec())];
/// assert_eq!(headers_from_json(1, &headers_to_json(&headers))?, headers);
///
/// let err = headers_from_json(9, r#"[["x", {"hex": "zz"}]]"#).unwrap_err();
/// assert!(matches!(err, OutboxError::CorruptRow { id: 9, .. }));
/// # Ok::<(), OutboxError>(())
/// ```
pub fn headers_from_json(id: i64, json: &str) -> Result<Vec<(String, Vec<u8>)>, OutboxError> {
    let corrupt = |reason: String| OutboxError::CorruptRow { id, reason };
    let stored: Vec<StoredHeader> = serde_json::from_str(json)
        .map_err(|e| corrupt(format!("headers are not the stored JSON form: {e}")))?;
    stored
        .into_iter()
        .map(|StoredHeader(name, value)| match value {
            StoredValue::Text(text) => Ok((name, text.into_bytes())),
            StoredValue::Bytes { hex } => match from_hex(&hex) {
                Some(bytes) => Ok((name, bytes)),
                None => Err(corrupt(format!(
                    "header `{name}` has invalid hex (two hex digits a byte expected)"
                ))),
            },
        })
        .collect()
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Bytes from pairs of hex digits (either case); `None` for anything else.
fn from_hex(hex: &str) -> Option<Vec<u8>> {
    let digits = hex.as_bytes();
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    digits
        .chunks_exact(2)
        .map(|pair| Some(hex_digit(pair[0])? << 4 | hex_digit(pair[1])?))
        .collect()
}

fn hex_digit(digit: u8) -> Option<u8> {
    char::from(digit)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip_text_and_bytes() {
        let headers = vec![
            ("ce_id".to_owned(), b"0b6f".to_vec()),
            ("bin".to_owned(), vec![0, 255, 7]),
            ("empty".to_owned(), vec![]),
        ];
        let json = headers_to_json(&headers);
        assert_eq!(
            json,
            r#"[["ce_id","0b6f"],["bin",{"hex":"00ff07"}],["empty",""]]"#
        );
        assert_eq!(headers_from_json(1, &json).expect("decodes"), headers);
    }

    #[test]
    fn corrupt_headers_name_the_row() {
        let err = headers_from_json(9, r#"[["x",{"hex":"zz"}]]"#).expect_err("bad hex");
        assert!(err.to_string().contains("row 9"), "{err}");
        assert!(headers_from_json(9, "{").is_err());
    }

    #[test]
    fn hex_is_pairs_of_hex_digits_and_nothing_else() {
        assert_eq!(
            headers_from_json(1, r#"[["b",{"hex":"0aFf"}]]"#).expect("either case"),
            vec![("b".to_owned(), vec![0x0a, 0xff])]
        );
        // `u8::from_str_radix` took the sign in "+f".
        for bad in ["+f", "-0", "0", "0g", "٣٣"] {
            let json = format!(r#"[["b",{{"hex":"{bad}"}}]]"#);
            assert!(headers_from_json(1, &json).is_err(), "{bad}");
        }
        // Only a string or an object whose one member is `hex` (found by the
        // outbox_headers fuzz target: `["00"]` read as hex).
        for bad in [
            r#"[["b",{"hex":"00","more":1}]]"#,
            r#"[["b",{"hex":"00","hex":"11"}]]"#,
            r#"[["b",["00"]]]"#,
            r#"[["b",{}]]"#,
            r#"[["b",1]]"#,
            r#"[["b","x","y"]]"#,
        ] {
            assert!(headers_from_json(1, bad).is_err(), "{bad}");
        }
    }
}
