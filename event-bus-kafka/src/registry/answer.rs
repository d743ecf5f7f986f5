//! Reading the registry's answers: what [`RegistryClient`](super::RegistryClient) makes
//! of the HTTP status and body of each response, as plain functions of that status and
//! body.
//!
//! Every answer comes from outside the process (a registry, or a proxy in front of it
//! answering with its own pages), so each function returns a typed
//! [`RegistryError`] for anything that is not what the Confluent API promises, and
//! never panics. They are public so that a tool talking to the registry its own way
//! reads answers exactly as the SDK does, and so they can be tested without a server.
//!
//! ```
//! use event_bus_kafka::registry::answer::{read_answer, schema_id_from_answer};
//! use event_bus_kafka::registry::RegistryError;
//!
//! let answer = read_answer("POST /subjects/s/versions", "s", 200, r#"{"id": 7}"#)?;
//! assert_eq!(schema_id_from_answer("POST /subjects/s/versions", &answer)?, 7);
//!
//! let refused = read_answer("POST /subjects/s/versions", "s", 409, r#"{"error_code": 409, "message": "field b"}"#);
//! assert!(matches!(refused, Err(RegistryError::Incompatible { .. })));
//! # Ok::<(), RegistryError>(())
//! ```

use apache_avro::Schema;
use event_bus_core::schema::compat::CompatibilityLevel;
use serde::Deserialize;
use serde_json::Value;

use super::error::RegistryError;

/// The Confluent error code of "invalid schema" (HTTP 422).
const INVALID_SCHEMA: u32 = 42201;

/// At most this many bytes of a body that is not the registry's JSON go into an error.
const QUOTED_BODY_MAX: usize = 300;

/// The error document of the Confluent API.
#[derive(Deserialize)]
struct ErrorBody {
    error_code: Option<u32>,
    message: Option<String>,
}

/// The JSON document of a successful answer (2xx), or the error an unsuccessful one
/// means.
///
/// `request` names the request in messages (`GET /schemas/ids/7`), `subject` is the
/// subject it was about (empty for none). Status and Confluent `error_code` decide:
/// 409 is [`RegistryError::Incompatible`], 422 with code 42201
/// [`RegistryError::InvalidSchema`], 404 [`RegistryError::NotFound`] (with the body's
/// code), any other [`RegistryError::Http`]. A 2xx body that is not JSON is a
/// [`RegistryError::BadResponse`]; an error body that is not JSON (a proxy's HTML
/// page) keeps the status as its code and the start of the text as its message.
///
/// ```
/// use event_bus_kafka::registry::answer::read_answer;
/// use event_bus_kafka::registry::RegistryError;
///
/// let gone = read_answer("GET /schemas/ids/7", "", 404, r#"{"error_code": 40403, "message": "Schema 7 not found"}"#);
/// assert!(matches!(gone, Err(RegistryError::NotFound { code: 40403, .. })));
/// let proxy = read_answer("GET /schemas/ids/7", "", 502, "<html>Bad gateway</html>");
/// assert!(matches!(proxy, Err(RegistryError::Http { status: 502, code: 502, .. })));
/// let page = read_answer("GET /subjects", "", 200, "<html>login</html>");
/// assert!(matches!(page, Err(RegistryError::BadResponse { .. })));
/// ```
pub fn read_answer(
    request: &str,
    subject: &str,
    status: u16,
    body: &str,
) -> Result<Value, RegistryError> {
    if (200..300).contains(&status) {
        return serde_json::from_str(body).map_err(|e| RegistryError::BadResponse {
            request: request.to_owned(),
            detail: format!("body is not JSON ({e}): {}", quote_body(body)),
        });
    }
    let error: Option<ErrorBody> = serde_json::from_str(body).ok();
    let code = error
        .as_ref()
        .and_then(|b| b.error_code)
        .unwrap_or(u32::from(status));
    let message = error
        .and_then(|b| b.message)
        .unwrap_or_else(|| quote_body(body));
    Err(match (status, code) {
        (409, _) => RegistryError::Incompatible {
            subject: subject.to_owned(),
            message,
        },
        (422, INVALID_SCHEMA) => RegistryError::InvalidSchema {
            subject: subject.to_owned(),
            message,
        },
        (404, _) => RegistryError::NotFound { code, message },
        _ => RegistryError::Http {
            status,
            code,
            message,
        },
    })
}

/// The schema of a `GET /schemas/ids/{id}` answer, parsed as Avro: a
/// [`RegistryError::UnparsableSchema`] when apache-avro refuses it, a
/// [`RegistryError::UnusableSchema`] when apache-avro fails on it (panics) while parsing
/// it or writing its canonical form.
///
/// ```
/// use event_bus_kafka::registry::answer::schema_from_answer;
/// use event_bus_kafka::registry::RegistryError;
///
/// let schema = schema_from_answer(3, &serde_json::json!({"schema": "\"string\""}))?;
/// assert_eq!(schema, apache_avro::Schema::String);
/// let missing = schema_from_answer(3, &serde_json::json!({"id": 3}));
/// assert!(matches!(missing, Err(RegistryError::BadResponse { .. })));
/// let not_avro = schema_from_answer(3, &serde_json::json!({"schema": "{\"type\": \"wat\"}"}));
/// assert!(matches!(not_avro, Err(RegistryError::UnparsableSchema { id: 3, .. })));
/// # Ok::<(), RegistryError>(())
/// ```
pub fn schema_from_answer(id: u32, answer: &Value) -> Result<Schema, RegistryError> {
    let text = answer
        .get("schema")
        .and_then(Value::as_str)
        .ok_or_else(|| RegistryError::BadResponse {
            request: format!("GET /schemas/ids/{id}"),
            detail: "no `schema` field".into(),
        })?;
    // apache-avro 0.22 panics on some schemas rather than refusing them, in
    // `parse_str` (an alias or a type reference that is not a name) and in
    // `canonical_form` (a `size`, `precision` or `scale` attribute that is not a
    // number). The schema comes from outside the process, so a panic there becomes an
    // error; the canonical form is computed here once so that a schema the client
    // accepts is one every later use of it can rely on.
    let parsed = std::panic::catch_unwind(|| {
        Schema::parse_str(text).inspect(|schema| {
            let _ = schema.canonical_form();
        })
    });
    match parsed {
        Ok(Ok(schema)) => Ok(schema),
        Ok(Err(source)) => Err(RegistryError::UnparsableSchema {
            id,
            source: Box::new(source),
        }),
        Err(panic) => Err(RegistryError::UnusableSchema {
            id,
            reason: panic_message(panic.as_ref()),
        }),
    }
}

/// The text of a panic's payload (a `&str` or a `String`, as `panic!` makes them).
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|text| (*text).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

/// The schema id of a register answer (`POST /subjects/{subject}/versions`): a
/// non-negative number that fits 32 bits (the Confluent framing's id field).
///
/// ```
/// use event_bus_kafka::registry::answer::schema_id_from_answer;
/// use serde_json::json;
///
/// assert_eq!(schema_id_from_answer("POST /subjects/s/versions", &json!({"id": 12})).ok(), Some(12));
/// assert!(schema_id_from_answer("POST /subjects/s/versions", &json!({"id": -1})).is_err());
/// assert!(schema_id_from_answer("POST /subjects/s/versions", &json!({"id": "12"})).is_err());
/// ```
pub fn schema_id_from_answer(request: &str, answer: &Value) -> Result<u32, RegistryError> {
    answer
        .get("id")
        .and_then(Value::as_u64)
        .and_then(|id| u32::try_from(id).ok())
        .ok_or_else(|| RegistryError::BadResponse {
            request: request.to_owned(),
            detail: format!("no schema id in {}", quote_body(&answer.to_string())),
        })
}

/// A subject's own compatibility level from the outcome of `GET /config/{subject}`:
/// `None` when the registry has none for it (404), the level named by
/// `compatibilityLevel` (or `compatibility`, as some registries write it) otherwise.
///
/// ```
/// use event_bus_kafka::registry::answer::{compatibility_from_answer, read_answer};
/// use event_bus_core::schema::compat::CompatibilityLevel;
///
/// let set = read_answer("GET /config/s", "s", 200, r#"{"compatibilityLevel": "FULL_TRANSITIVE"}"#);
/// assert_eq!(compatibility_from_answer("s", set).ok(), Some(Some(CompatibilityLevel::FullTransitive)));
/// let unset = read_answer("GET /config/s", "s", 404, r#"{"error_code": 40408, "message": "no config"}"#);
/// assert_eq!(compatibility_from_answer("s", unset).ok(), Some(None));
/// let odd = read_answer("GET /config/s", "s", 200, r#"{"compatibilityLevel": "SOMETIMES"}"#);
/// assert!(compatibility_from_answer("s", odd).is_err());
/// ```
pub fn compatibility_from_answer(
    subject: &str,
    answer: Result<Value, RegistryError>,
) -> Result<Option<CompatibilityLevel>, RegistryError> {
    let answer = match answer {
        Ok(answer) => answer,
        Err(RegistryError::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    let text = answer
        .get("compatibilityLevel")
        .or_else(|| answer.get("compatibility"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    text.parse()
        .map(Some)
        .map_err(|_| RegistryError::BadResponse {
            request: format!("GET /config/{subject}"),
            detail: format!("unknown compatibility level `{}`", quote_body(text)),
        })
}

/// The subject names of a `GET /subjects` answer (a JSON array of strings).
///
/// ```
/// use event_bus_kafka::registry::answer::subjects_from_answer;
/// use serde_json::json;
///
/// assert_eq!(subjects_from_answer(json!(["a-value", "b-key"])).ok(), Some(vec!["a-value".to_string(), "b-key".to_string()]));
/// assert!(subjects_from_answer(json!({"subjects": []})).is_err());
/// ```
pub fn subjects_from_answer(answer: Value) -> Result<Vec<String>, RegistryError> {
    serde_json::from_value(answer).map_err(|e| RegistryError::BadResponse {
        request: "GET /subjects".into(),
        detail: e.to_string(),
    })
}

/// The start of a body for an error message: at most [`QUOTED_BODY_MAX`] bytes, cut at
/// a character boundary, with `…` when cut.
fn quote_body(text: &str) -> String {
    if text.len() <= QUOTED_BODY_MAX {
        return text.to_owned();
    }
    let mut end = QUOTED_BODY_MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_bodies_are_cut_at_a_character_boundary() {
        let body = "é".repeat(400);
        let Err(RegistryError::Http { message, .. }) = read_answer("GET /x", "", 500, &body) else {
            panic!("a 500 is an error");
        };
        assert!(message.ends_with('…'));
        assert!(message.len() <= QUOTED_BODY_MAX + '…'.len_utf8());
    }

    #[test]
    fn schemas_the_avro_library_panics_on_are_refused() {
        // Found by the registry_answers fuzz target: a record with a `precision`
        // attribute that is not a number parses, and its canonical form panics.
        let precision = r#"{"type": "record", "name": "R", "precision": "x", "fields": []}"#;
        // apache-avro's issue 547: an alias that is not a name panics in parse_str.
        let alias = r#"{"type": "record", "name": "R", "aliases": [":"], "fields": []}"#;
        for text in [precision, alias] {
            let answer = serde_json::json!({ "schema": text });
            let refused = schema_from_answer(9, &answer);
            assert!(
                matches!(
                    refused,
                    Err(RegistryError::UnusableSchema { id: 9, .. }
                        | RegistryError::UnparsableSchema { id: 9, .. })
                ),
                "{text}: {refused:?}"
            );
        }
        let answer = serde_json::json!({ "schema": precision });
        assert!(matches!(
            schema_from_answer(9, &answer),
            Err(RegistryError::UnusableSchema { .. })
        ));
    }

    #[test]
    fn a_422_without_the_invalid_schema_code_is_an_http_error() {
        let answer = read_answer("POST /x", "s", 422, r#"{"error_code": 42202}"#);
        assert!(matches!(
            answer,
            Err(RegistryError::Http {
                status: 422,
                code: 42202,
                ..
            })
        ));
    }
}
