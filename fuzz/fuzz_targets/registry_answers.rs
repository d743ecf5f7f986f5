//! The schema registry client's reading of answers
//! (`event_bus_kafka::registry::answer`): any HTTP status with any body, read as the
//! answer to each request the client makes (schema by id, register, compatibility,
//! subjects, set compatibility).
//!
//! What must hold:
//! - no panic; an answer is a JSON document only when the status is 2xx and the body is
//!   JSON, otherwise a typed `RegistryError` whose variant follows the status (409
//!   incompatible, 404 not found, 422 with code 42201 invalid schema, any other status
//!   `Http` with that status, a 2xx that is not JSON `BadResponse`);
//! - the classification (`failure::of_registry`) is total and a verdict (permanent)
//!   only for 404/40403, 409, 422/42201, a schema that is not Avro;
//! - a quoted body is cut short (no megabyte HTML page in a log line);
//! - a schema the client accepts parses again, the same, in apache-avro from its
//!   canonical form (one apache-avro panics on is refused, `UnusableSchema`); an id
//!   it accepts is the document's `id`; a compatibility level it
//!   accepts is the one the document names; subjects are the document's strings.
//!
//! Input layout: `[request u8][status u16 big-endian][body…]` (the body read as UTF-8
//! lossily, as the HTTP client does).

#![no_main]

use apache_avro::Schema;
use event_bus_kafka::failure::{of_registry, Failure};
use event_bus_kafka::registry::answer::{
    compatibility_from_answer, read_answer, schema_from_answer, schema_id_from_answer,
    subjects_from_answer,
};
use event_bus_kafka::registry::RegistryError;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// The most a message may quote of a body that is not the registry's JSON.
const QUOTE_MAX: usize = 300 + '…'.len_utf8();

const SUBJECT: &str = "orders-org.example.Placed";

/// libFuzzer's panic hook aborts on any panic, even one the code under test catches.
/// apache-avro panics on some schemas and the client catches those (turning them into
/// `RegistryError::UnusableSchema`), so panics raised inside apache-avro may unwind;
/// any other panic, or one that escapes the client, still aborts the run.
fn tolerate_panics_the_client_catches() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let fuzzer_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_avro = info
                .location()
                .is_some_and(|at| at.file().contains("apache-avro"));
            if !in_avro {
                fuzzer_hook(info);
            }
        }));
    });
}

fuzz_target!(|data: &[u8]| {
    tolerate_panics_the_client_catches();
    let [request, hi, lo, body @ ..] = data else {
        return;
    };
    let status = u16::from_be_bytes([*hi, *lo]);
    let body = String::from_utf8_lossy(body);
    let as_json: Option<Value> = serde_json::from_str(&body).ok();

    let answer = read_answer("GET /x", SUBJECT, status, &body);
    check_answer(status, &body, as_json.as_ref(), &answer);

    let Ok(document) = answer else {
        if request % 5 == 2 {
            check_compatibility(answer);
        }
        return;
    };
    match request % 5 {
        0 => check_schema(&document),
        1 => check_schema_id(&document),
        2 => check_compatibility(Ok(document)),
        3 => check_subjects(document),
        // Set compatibility: the client only needs the answer to be a success.
        _ => {}
    }
});

/// The answer's outcome follows the status, and its error is classified.
fn check_answer(
    status: u16,
    body: &str,
    as_json: Option<&Value>,
    answer: &Result<Value, RegistryError>,
) {
    let success = (200..300).contains(&status);
    let error = match answer {
        Ok(document) => {
            assert!(success, "a {status} answer is an error");
            assert_eq!(Some(document), as_json, "the document is the body's JSON");
            return;
        }
        Err(error) => error,
    };
    assert!(!error.to_string().is_empty());
    let failure = of_registry(error);
    match error {
        RegistryError::BadResponse { detail, .. } => {
            assert!(success && as_json.is_none(), "{status}: {error}");
            assert!(
                detail.len() <= QUOTE_MAX + 200,
                "quoted body is cut: {detail}"
            );
        }
        RegistryError::Incompatible { subject, .. } => {
            assert_eq!((status, subject.as_str()), (409, SUBJECT));
        }
        RegistryError::InvalidSchema { subject, .. } => {
            assert_eq!((status, subject.as_str()), (422, SUBJECT));
        }
        RegistryError::NotFound { code, .. } => {
            assert_eq!(status, 404);
            assert_eq!(failure == Failure::Permanent, *code == 40403, "{error}");
        }
        RegistryError::Http {
            status: s, code, ..
        } => {
            assert_eq!(*s, status);
            assert!(
                !matches!(status, 404 | 409) && !success,
                "{status}: {error}"
            );
            assert!(!(status == 422 && *code == 42201), "{error}");
        }
        other => panic!("reading an answer cannot fail with {other:?}"),
    }
    if !matches!(error, RegistryError::NotFound { .. }) {
        let verdict = matches!(
            error,
            RegistryError::Incompatible { .. } | RegistryError::InvalidSchema { .. }
        );
        assert_eq!(failure == Failure::Permanent, verdict, "{error}");
    }
    if let RegistryError::NotFound { message, code } | RegistryError::Http { message, code, .. } =
        error
    {
        if as_json.is_none() {
            assert_eq!(
                *code,
                u32::from(status),
                "a body that is not JSON has no code"
            );
            assert!(
                message.len() <= QUOTE_MAX,
                "quoted body is cut: {} bytes",
                message.len()
            );
            assert!(body.starts_with(message.trim_end_matches('…')));
        }
    }
}

/// `GET /schemas/ids/{id}`: an accepted schema is Avro that survives its canonical form.
fn check_schema(document: &Value) {
    let text = document.get("schema").and_then(Value::as_str);
    match schema_from_answer(7, document) {
        Ok(schema) => {
            let canonical = schema.canonical_form();
            let again = Schema::parse_str(&canonical)
                .unwrap_or_else(|e| panic!("canonical form {canonical} does not parse: {e}"));
            assert_eq!(again.canonical_form(), canonical);
        }
        Err(RegistryError::BadResponse { .. }) => assert!(text.is_none()),
        Err(
            RegistryError::UnparsableSchema { id, .. } | RegistryError::UnusableSchema { id, .. },
        ) => {
            assert_eq!(id, 7);
            assert!(text.is_some());
        }
        Err(other) => panic!("a schema answer cannot fail with {other:?}"),
    }
}

/// `POST /subjects/{subject}/versions`: the id is the document's `id`.
fn check_schema_id(document: &Value) {
    let given = document.get("id").and_then(Value::as_u64);
    match schema_id_from_answer("POST /subjects/s/versions", document) {
        Ok(id) => assert_eq!(Some(u64::from(id)), given),
        Err(RegistryError::BadResponse { detail, .. }) => {
            assert!(given.is_none_or(|id| id > u64::from(u32::MAX)));
            assert!(
                detail.len() <= QUOTE_MAX + 100,
                "quoted body is cut: {detail}"
            );
        }
        Err(other) => panic!("a register answer cannot fail with {other:?}"),
    }
}

/// `GET /config/{subject}`: the level is the one the document names, `None` on a 404.
fn check_compatibility(answer: Result<Value, RegistryError>) {
    let not_found = matches!(answer, Err(RegistryError::NotFound { .. }));
    let named = answer.as_ref().ok().and_then(|document| {
        document
            .get("compatibilityLevel")
            .or_else(|| document.get("compatibility"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    match compatibility_from_answer(SUBJECT, answer) {
        Ok(Some(level)) => {
            let named = named.expect("a level comes from the document");
            assert!(level.as_str().eq_ignore_ascii_case(named.trim()), "{named}");
        }
        Ok(None) => assert!(not_found),
        Err(error) => {
            assert!(!not_found);
            let _ = of_registry(&error);
        }
    }
}

/// `GET /subjects`: the subjects are the document's strings, in order.
fn check_subjects(document: Value) {
    let expected: Option<Vec<String>> = document.as_array().and_then(|items| {
        items
            .iter()
            .map(|item| item.as_str().map(str::to_owned))
            .collect()
    });
    match subjects_from_answer(document) {
        Ok(subjects) => assert_eq!(Some(subjects), expected),
        Err(RegistryError::BadResponse { .. }) => assert!(expected.is_none()),
        Err(other) => panic!("a subjects answer cannot fail with {other:?}"),
    }
}
