//! Seed inputs: real records, encoded by the SDK from the example events, in each
//! target's input layout. `cargo run --example write_seeds` (through `scripts/fuzz
//! seeds`) writes them to `corpus/TARGET/`.

use chrono::{DateTime, TimeZone, Utc};
use event_bus_core::apache_avro::types::Value;
use event_bus_core::apache_avro::writer::datum::GenericDatumWriter;
use event_bus_core::codec;
use event_bus_core::{Event, EventMetadata};

use crate::events::login_counted::LoginCounted;
use crate::events::openedx::{
    CourseData, CourseEnrollmentCreated, CourseEnrollmentData, SessionLoginCompleted, UserData,
    UserPersonalData,
};
use crate::events::{writer_changes, writer_schemas};

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(seconds, 0).single().unwrap_or_default()
}

fn users() -> Vec<UserData> {
    let mut other = UserData::example();
    other.id = -1;
    other.is_active = false;
    other.pii = UserPersonalData {
        username: "é中🦀".into(),
        email: String::new(),
        name: "x".repeat(200),
    };
    vec![UserData::example(), other]
}

fn logins() -> Vec<SessionLoginCompleted> {
    users()
        .into_iter()
        .map(|user| SessionLoginCompleted { user })
        .collect()
}

fn enrollments() -> Vec<CourseEnrollmentCreated> {
    let [first, second] = <[UserData; 2]>::try_from(users()).unwrap_or_else(|_| unreachable!());
    let course = |start: Option<DateTime<Utc>>, end| CourseData {
        course_key: "course-v1:edX+DemoX+Demo_Course".into(),
        display_name: "Demo".into(),
        start,
        end,
    };
    let enrollment = |user, course, created_by| CourseEnrollmentCreated {
        enrollment: CourseEnrollmentData {
            user,
            course,
            mode: "audit".into(),
            is_active: true,
            creation_date: at(1_700_000_000),
            created_by,
        },
    };
    vec![
        enrollment(first.clone(), course(None, None), None),
        enrollment(
            second,
            course(Some(at(1_600_000_000)), Some(at(1_900_000_000))),
            Some(first),
        ),
    ]
}

fn counts() -> Vec<LoginCounted> {
    vec![
        LoginCounted {
            username: "foobob".into(),
            user_id: 123,
            login_number: 1,
            source_ce_id: "5d4a3c1e-1111-4b4b-9c9c-0123456789ab".into(),
        },
        LoginCounted {
            username: String::new(),
            user_id: i64::MAX,
            login_number: i64::MIN,
            source_ce_id: String::new(),
        },
    ]
}

fn datum<E: Event>(event: &E) -> Vec<u8> {
    event.to_avro_datum().expect("an example event encodes")
}

/// The datums of every example event, each with the index of its type in
/// [`crate::events::EVENT_TYPES`].
fn datums() -> Vec<(usize, Vec<u8>)> {
    let mut out = Vec::new();
    out.extend(logins().iter().map(|e| (0, datum(e))));
    out.extend(enrollments().iter().map(|e| (1, datum(e))));
    out.extend(counts().iter().map(|e| (2, datum(e))));
    out
}

/// Seeds of `avro_decode`: framed records whose schema id is the event type's index.
pub fn avro_decode() -> Vec<Vec<u8>> {
    datums()
        .into_iter()
        .map(|(index, datum)| codec::frame(index as u32, &datum))
        .collect()
}

/// Gives the extra fields of a writer schema values of every shape (their defaults are
/// empty).
fn fill_extra_fields(value: &mut Value) {
    let Value::Record(fields) = value else { return };
    for (name, field) in fields.iter_mut() {
        let nested = |n, more| {
            Value::Record(vec![
                ("n".into(), Value::Int(n)),
                ("more".into(), Value::Array(more)),
            ])
        };
        *field = match name.as_str() {
            "fz_count" => Value::Long(-5),
            "fz_tags" => Value::Array(vec![Value::String("a".into()), Value::String("".into())]),
            "fz_scores" => Value::Map([("x".to_owned(), Value::Double(1.5))].into()),
            "fz_blob" => Value::Bytes(vec![0, 1, 2, 255]),
            "fz_nothing" => Value::Array(vec![Value::Null; 3]),
            "fz_ratio" => Value::Float(0.25),
            "fz_mode" => Value::Enum(1, "verified".into()),
            "fz_digest" => Value::Fixed(4, b"wxyz".to_vec()),
            "fz_flag" => Value::Boolean(true),
            "fz_nested" => Value::Union(1, Box::new(nested(1, vec![nested(2, vec![])]))),
            _ => continue,
        };
    }
}

/// Seeds of `avro_resolve`: each example event written with each writer schema of its
/// type (resolved from the reader's datum, extra fields filled), framed with the id
/// that selects that writer.
pub fn avro_resolve() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (index, datum) in datums() {
        let reader = match index {
            0 => SessionLoginCompleted::schema(),
            1 => CourseEnrollmentCreated::schema(),
            _ => LoginCounted::schema(),
        };
        for (change, writer) in writer_schemas()[index].iter().enumerate() {
            let mut value = codec::decode_value(&datum, reader, Some(writer))
                .expect("the reader's datum resolves to its writer schema");
            fill_extra_fields(&mut value);
            let written = GenericDatumWriter::builder(writer)
                .build()
                .and_then(|w| w.write_value_to_vec(value))
                .expect("the seed fits its writer schema");
            let id = index + 3 * change;
            debug_assert!(change < writer_changes(index).len());
            out.push(codec::frame(id as u32, &written));
        }
    }
    out
}

/// Seeds of `cloudevents_headers`: the headers the SDK writes for each example event
/// type, in that target's layout (`[name_len][name][flag][value_len][value]`, an even
/// flag for a present value).
pub fn cloudevents_headers() -> Vec<Vec<u8>> {
    let traced = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let metadata = [
        EventMetadata::for_event::<SessionLoginCompleted>(),
        EventMetadata::for_event::<CourseEnrollmentCreated>().with_source("openedx/lms/web"),
        EventMetadata::for_event::<LoginCounted>(),
    ];
    metadata
        .into_iter()
        .enumerate()
        .map(|(i, mut meta)| {
            meta.time = at(1_700_000_000 + i as i64);
            if i == 1 {
                meta.traceparent = Some(traced.into());
            }
            let mut input = Vec::new();
            for (name, value) in meta.to_headers() {
                let length = |bytes: &[u8]| u8::try_from(bytes.len()).unwrap_or(u8::MAX);
                input.push(length(name.as_bytes()));
                input.extend_from_slice(name.as_bytes());
                input.push(0);
                input.push(length(value.as_bytes()));
                input.extend_from_slice(value.as_bytes());
            }
            input
        })
        .collect()
}
