//! The example events written and read by the derived Avro coding give the bytes and
//! values serde + apache-avro give.

use chrono::{DateTime, TimeZone, Utc};
use event_bus_core::Event;
use event_bus_examples::openedx::{
    CourseData, CourseEnrollmentCreated, CourseEnrollmentData, SessionLoginCompleted, UserData,
    UserPersonalData,
};

/// Encodes with the derive and with apache-avro, decodes apache-avro's bytes with the
/// derive and with serde: all four agree.
fn matches_apache_avro<E: Event + PartialEq + std::fmt::Debug>(event: &E) {
    let prepared = E::prepared_schema().expect("prepared");
    let expected = prepared.encode(event).expect("apache-avro encodes");
    assert_eq!(event.to_avro_datum().expect("derived encode"), expected);
    assert_eq!(
        event.to_avro_framed(100_019).expect("framed"),
        prepared.encode_framed(100_019, event).expect("framed")
    );
    let derived = E::from_avro_datum(&expected, E::schema()).expect("derived decode");
    let by_serde: E = prepared.decode(&expected).expect("serde decode");
    assert_eq!(&derived, event);
    assert_eq!(derived, by_serde);
    for end in 0..expected.len() {
        assert!(
            E::from_own_avro_datum(&expected[..end]).is_err(),
            "cut at {end}"
        );
    }
}

fn user(id: i64, name: &str) -> UserData {
    UserData {
        id,
        is_active: id % 2 == 0,
        pii: UserPersonalData {
            username: name.into(),
            email: format!("{name}@example.org"),
            name: format!("{name} Ünïcødé 名前"),
        },
    }
}

fn at(seconds: i64, nanos: u32) -> DateTime<Utc> {
    Utc.timestamp_opt(seconds, nanos)
        .single()
        .expect("valid instant")
}

#[test]
fn login_events_match_apache_avro() {
    matches_apache_avro(&SessionLoginCompleted {
        user: UserData::example(),
    });
    for (id, name) in [(0, ""), (i64::MIN, "a"), (i64::MAX, "bob"), (-1, "x\u{0}y")] {
        matches_apache_avro(&SessionLoginCompleted {
            user: user(id, name),
        });
    }
}

#[test]
fn enrollment_events_match_apache_avro() {
    let instants = [
        at(0, 0),
        at(1_700_000_000, 123_000_000),
        at(1_700_000_000, 123_456_000),
        at(1_700_000_000, 123_456_789),
        at(-62_135_596_800, 0),
        at(253_402_300_799, 999_999_999),
    ];
    for (i, created) in instants.iter().enumerate() {
        let start = (i % 2 == 0).then_some(*created);
        let end = (i % 3 == 0).then(|| at(1_800_000_000, 1));
        matches_apache_avro(&CourseEnrollmentCreated {
            enrollment: CourseEnrollmentData {
                user: user(i as i64, "learner"),
                course: CourseData {
                    course_key: "course-v1:edX+DemoX+Demo_Course".into(),
                    display_name: "Demo".into(),
                    start,
                    end,
                },
                mode: "verified".into(),
                is_active: i % 2 == 1,
                creation_date: *created,
                created_by: (i % 2 == 0).then(|| user(7, "staff")),
            },
        });
    }
}
