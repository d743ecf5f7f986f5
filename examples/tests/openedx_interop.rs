//! The Rust declarations of Open edX events derive the schemas the Python event bus
//! registers, and read its published wire vector.

use apache_avro::Schema;
use event_bus_core::{codec, Event};
use event_bus_examples::openedx::{CourseEnrollmentCreated, SessionLoginCompleted, UserData};

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/fixtures/openedx-events-11.2.0"
);

fn published(file: &str) -> Schema {
    let text = std::fs::read_to_string(format!("{FIXTURES}/{file}")).expect("fixture present");
    Schema::parse_str(&text).expect("fixture parses")
}

fn canonical(schema: &Schema) -> String {
    schema.canonical_form()
}

#[test]
fn login_schema_equals_openedx() {
    let ours = SessionLoginCompleted::schema();
    let theirs = published("org+openedx+learning+auth+session+login+completed+v1_schema.avsc");
    assert_eq!(canonical(ours), canonical(&theirs));
}

#[test]
fn enrollment_schema_equals_openedx() {
    let ours = CourseEnrollmentCreated::schema();
    let theirs = published("org+openedx+learning+course+enrollment+created+v1_schema.avsc");
    assert_eq!(canonical(ours), canonical(&theirs));
}

#[test]
fn decodes_openedx_wire_vector() {
    let wire: Vec<u8> = "00 00 01 86 b3 f6 01 01 0c 66 6f 6f 62 6f 62 1e 62 6f 62 40 66 6f 6f 2e 65 78 61 6d 70 6c 65 0e 42 6f 62 20 46 6f 6f"
        .split(' ')
        .map(|b| u8::from_str_radix(b, 16).expect("hex"))
        .collect();
    let (id, datum) = codec::unframe(&wire).expect("framed");
    assert_eq!(id, 100019);
    let writer = published("org+openedx+learning+auth+session+login+completed+v1_schema.avsc");
    let event = SessionLoginCompleted::from_avro_datum(datum, &writer).expect("decodes");
    assert_eq!(event.user, UserData::example());
    // And we write the very same bytes.
    let ours = SessionLoginCompleted {
        user: UserData::example(),
    }
    .to_avro_datum()
    .expect("encodes");
    assert_eq!(codec::frame(100019, &ours), wire);
}
