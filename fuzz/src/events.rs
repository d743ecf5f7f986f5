//! The example event types, and which one (with which writer schema) a fuzz input's
//! schema id selects.

use std::sync::OnceLock;

use event_bus_core::apache_avro::Schema;
use event_bus_core::schema::compat::{check_compatibility, CompatibilityLevel};
use event_bus_core::Event;
use serde_json::{json, Value};

/// `SessionLoginCompleted`, `CourseEnrollmentCreated` and their nested records.
#[path = "../../examples/src/openedx.rs"]
#[allow(missing_docs)]
pub mod openedx;

/// `LoginCounted`, the event the `exactly_once_effect` example emits.
#[path = "../../examples/src/bin/exactly_once_effect/login_counted.rs"]
#[allow(missing_docs)]
pub mod login_counted;

/// The example event types; a fuzz input's schema id picks one (`id % 3`).
pub const EVENT_TYPES: [&str; 3] = [
    openedx::SessionLoginCompleted::EVENT_TYPE,
    openedx::CourseEnrollmentCreated::EVENT_TYPE,
    login_counted::LoginCounted::EVENT_TYPE,
];

/// How a writer schema differs from the reader's, each way FULL_TRANSITIVE allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriterChange {
    /// The writer has fields the reader does not know, with defaults, of every Avro
    /// shape (arrays, maps, bytes, an enum, a fixed, a nested optional record, an array
    /// of nulls), so the reader skips each kind.
    ExtraFields,
    /// The writer lacks the reader's optional fields (default `null`), at every level.
    FewerFields,
    /// Both.
    Both,
}

/// The writer changes a resolution input's schema id picks for each event type (the
/// id's `% 3` picks the type, its `/ 3 % n` the change).
pub const fn writer_changes(event_type_index: usize) -> &'static [WriterChange] {
    match event_type_index {
        // Only CourseEnrollmentCreated has optional fields to drop.
        1 => &[
            WriterChange::ExtraFields,
            WriterChange::FewerFields,
            WriterChange::Both,
        ],
        _ => &[WriterChange::ExtraFields],
    }
}

/// The extra fields of [`WriterChange::ExtraFields`].
fn extra_fields() -> Vec<Value> {
    vec![
        json!({"name": "fz_count", "type": "long", "default": 0}),
        json!({"name": "fz_tags", "type": {"type": "array", "items": "string"}, "default": []}),
        json!({"name": "fz_scores", "type": {"type": "map", "values": "double"}, "default": {}}),
        json!({"name": "fz_blob", "type": "bytes", "default": ""}),
        json!({"name": "fz_nothing", "type": {"type": "array", "items": "null"}, "default": []}),
        json!({"name": "fz_ratio", "type": "float", "default": 0.0}),
        json!({"name": "fz_mode", "type": {"type": "enum", "name": "FzMode", "symbols": ["audit", "verified"]}, "default": "audit"}),
        json!({"name": "fz_digest", "type": {"type": "fixed", "name": "FzDigest", "size": 4}, "default": "abcd"}),
        json!({"name": "fz_flag", "type": "boolean", "default": false}),
        json!({"name": "fz_nested", "type": ["null", {"type": "record", "name": "FzNested", "fields": [
            {"name": "n", "type": "int"},
            {"name": "more", "type": {"type": "array", "items": "FzNested"}}
        ]}], "default": null}),
    ]
}

/// Removes, at every level, the record fields whose default is `null`.
fn drop_optional_fields(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            if let Some(Value::Array(fields)) = map.get_mut("fields") {
                fields.retain(|field| field.get("default") != Some(&Value::Null));
            }
            map.values_mut().for_each(drop_optional_fields);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_optional_fields),
        _ => {}
    }
}

/// The reader schema of `E` changed by `change`, checked FULL_TRANSITIVE-compatible
/// with the reader (a failure is a bug in this file, found on the first input).
pub fn writer_schema<E: Event>(change: WriterChange) -> Schema {
    let mut json = E::schema_json();
    if matches!(change, WriterChange::FewerFields | WriterChange::Both) {
        drop_optional_fields(&mut json);
    }
    if matches!(change, WriterChange::ExtraFields | WriterChange::Both) {
        if let Some(Value::Array(fields)) = json.get_mut("fields") {
            fields.extend(extra_fields());
        }
    }
    let writer = Schema::parse(&json).expect("the derived writer schema parses");
    assert_ne!(&writer, E::schema(), "{change:?} changes the schema");
    if let Err(issues) = check_compatibility(
        CompatibilityLevel::FullTransitive,
        &writer,
        &[E::schema().clone()],
    ) {
        panic!(
            "{change:?} writer of {} is not FULL_TRANSITIVE: {issues:?}",
            E::EVENT_TYPE
        );
    }
    writer
}

/// The writer schemas of every (event type, change) pair, built once.
pub fn writer_schemas() -> &'static [Vec<Schema>; 3] {
    static WRITERS: OnceLock<[Vec<Schema>; 3]> = OnceLock::new();
    WRITERS.get_or_init(|| {
        let of = |index: usize, build: fn(WriterChange) -> Schema| {
            writer_changes(index).iter().map(|&c| build(c)).collect()
        };
        [
            of(0, writer_schema::<openedx::SessionLoginCompleted>),
            of(1, writer_schema::<openedx::CourseEnrollmentCreated>),
            of(2, writer_schema::<login_counted::LoginCounted>),
        ]
    })
}
