//! Confluent unframing, then Avro decoding into each example event type through schema
//! resolution from a different writer schema: one with extra fields of every Avro shape
//! (arrays, maps, bytes, enum, fixed, an array of nulls, a recursive optional record),
//! one without the reader's optional fields, one with both; each checked
//! FULL_TRANSITIVE-compatible with the reader (`event_bus_fuzz::events`).
//!
//! Input: a Confluent-framed record; the schema id picks the event type (`id % 3`) and
//! the writer schema (`id / 3`, modulo the writers of that type).
//!
//! What must hold (see `event_bus_fuzz::checks`): no panic; refusals are typed
//! `CodecError`s, and bounds refusals ones apache-avro would make too; what resolves
//! holds the writer's values for the fields both schemas have and the defaults for the
//! others, and re-encodes stably; nothing is allocated by what a length or count
//! claims.

#![no_main]

use event_bus_fuzz::checks::{resolved, unframe};
use event_bus_fuzz::events::login_counted::LoginCounted;
use event_bus_fuzz::events::openedx::{CourseEnrollmentCreated, SessionLoginCompleted};
use event_bus_fuzz::events::writer_schemas;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((id, datum)) = unframe(data) else {
        return;
    };
    let index = (id % 3) as usize;
    let writers = &writer_schemas()[index];
    let writer = &writers[(id / 3) as usize % writers.len()];
    match index {
        0 => resolved::<SessionLoginCompleted>(datum, writer),
        1 => resolved::<CourseEnrollmentCreated>(datum, writer),
        _ => resolved::<LoginCounted>(datum, writer),
    }
});
