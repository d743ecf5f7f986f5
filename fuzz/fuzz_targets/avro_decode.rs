//! Confluent unframing, then Avro decoding into each example event type with the
//! writer schema equal to the reader's (the consumer's common path).
//!
//! Input: a Confluent-framed record; the schema id picks the event type
//! (`id % 3`: SessionLoginCompleted, CourseEnrollmentCreated, LoginCounted).
//!
//! What must hold (see `event_bus_fuzz::checks`):
//! - unframing accepts exactly what frames back to the same bytes, and refuses the rest
//!   with the reason the bytes show;
//! - the derived decoder (the own-schema path) accepts exactly what serde +
//!   apache-avro accept, and reads the same event;
//! - decoding never panics; what it refuses is a `CodecError` (`Malformed`, `Avro` or
//!   `TrailingBytes`), and a `Malformed` refusal is one apache-avro would make too
//!   (bar the documented limits);
//! - what it accepts re-encodes to bytes that decode to the same event, stably, and to
//!   the very same bytes when the record is canonical Avro;
//! - nothing is allocated by what a length or count claims (run with
//!   `-malloc_limit_mb`, see `scripts/fuzz`).

#![no_main]

use event_bus_fuzz::checks::{same_schema, unframe};
use event_bus_fuzz::events::login_counted::LoginCounted;
use event_bus_fuzz::events::openedx::{CourseEnrollmentCreated, SessionLoginCompleted};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((id, datum)) = unframe(data) else {
        return;
    };
    match id % 3 {
        0 => same_schema::<SessionLoginCompleted>(datum),
        1 => same_schema::<CourseEnrollmentCreated>(datum),
        _ => same_schema::<LoginCounted>(datum),
    }
});
