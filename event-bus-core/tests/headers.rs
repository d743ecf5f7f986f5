//! `EventMetadata` ↔ Kafka headers.

use event_bus_core::headers::{parse_headers, HeaderError};
use event_bus_core::EventMetadata;

fn as_pairs<'a>(headers: &'a [(&'static str, String)]) -> Vec<(&'static str, Option<&'a [u8]>)> {
    headers
        .iter()
        .map(|(k, v)| (*k, Some(v.as_bytes())))
        .collect()
}

#[test]
fn writes_openedx_header_set_in_order() {
    let mut meta = EventMetadata::new("org.openedx.learning.course.enrollment.created.v1")
        .with_source("openedx/lms/web")
        .with_time(chrono::DateTime::from_timestamp(1_700_000_000, 123_456_000).expect("time"));
    meta.sourcehost = "host-1".into();
    meta.sourcelib = "11.2.0".into();
    let headers = meta.to_headers();
    let names: Vec<&str> = headers.iter().map(|(k, _)| *k).collect();
    assert_eq!(
        names,
        [
            "ce_specversion",
            "content-type",
            "ce_datacontenttype",
            "ce_type",
            "ce_id",
            "ce_source",
            "ce_time",
            "ce_minorversion",
            "sourcehost",
            "sourcelib"
        ]
    );
    let value = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(value("ce_specversion"), Some("1.0"));
    assert_eq!(value("content-type"), Some("application/avro"));
    assert_eq!(value("ce_datacontenttype"), Some("application/avro"));
    assert_eq!(
        value("ce_type"),
        Some("org.openedx.learning.course.enrollment.created.v1")
    );
    assert_eq!(value("ce_id"), Some(meta.id.to_string().as_str()));
    assert_eq!(value("ce_time"), Some("2023-11-14T22:13:20.123456+00:00"));
    assert_eq!(value("ce_minorversion"), Some("0"));
    assert_eq!(value("sourcehost"), Some("host-1"));
}

#[test]
fn round_trips_including_trace_context() {
    let mut meta = EventMetadata::new("org.example.a.b.created.v1");
    meta.traceparent = Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into());
    meta.tracestate = Some("vendor=1".into());
    meta.time = chrono::DateTime::from_timestamp(1_700_000_000, 1_000).expect("time");
    let headers = meta.to_headers();
    let parsed = parse_headers(as_pairs(&headers)).expect("parses");
    assert_eq!(parsed.metadata, meta);
    assert!(parsed.defaulted.is_empty());
}

#[test]
fn reads_python_producer_headers() {
    let pairs: Vec<(&str, Option<&[u8]>)> = vec![
        ("ce_specversion", Some(b"1.0")),
        ("content-type", Some(b"application/avro")),
        ("ce_datacontenttype", Some(b"application/avro")),
        (
            "ce_type",
            Some(b"org.openedx.learning.auth.session.login.completed.v1"),
        ),
        ("ce_id", Some(b"3f5b0e7e-7b8c-11ee-b962-0242ac120002")),
        ("ce_source", Some(b"openedx/lms/web")),
        ("ce_time", Some(b"2023-11-06T10:20:30.123456+00:00")),
        ("ce_minorversion", Some(b"0")),
        ("sourcehost", Some(b"lms-1")),
        ("sourcelib", Some(b"11.2.0")),
    ];
    let parsed = parse_headers(pairs).expect("parses");
    assert_eq!(parsed.metadata.source, "openedx/lms/web");
    assert_eq!(parsed.metadata.sourcelib, "11.2.0");
    assert_eq!(parsed.metadata.time.timestamp_subsec_micros(), 123_456);
    assert!(parsed.defaulted.is_empty());
}

#[test]
fn missing_or_invalid_id_is_an_error() {
    let none = parse_headers(Vec::<(&str, Option<&[u8]>)>::new());
    assert_eq!(none.unwrap_err(), HeaderError::Missing { header: "ce_id" });
    let bad = parse_headers([("ce_id", Some(&b"not-a-uuid"[..]))]).unwrap_err();
    assert!(
        matches!(
            bad,
            HeaderError::Invalid {
                header: "ce_id",
                ..
            }
        ),
        "{bad:?}"
    );
    assert!(bad.to_string().contains("not-a-uuid"));
    let null = parse_headers([("ce_id", None)]).unwrap_err();
    assert!(
        matches!(
            null,
            HeaderError::Invalid {
                header: "ce_id",
                ..
            }
        ),
        "{null:?}"
    );
}

#[test]
fn a_missing_or_empty_type_is_an_error() {
    let id = uuid::Uuid::new_v4().to_string();
    let without = parse_headers([("ce_id", Some(id.as_bytes()))]).unwrap_err();
    assert_eq!(without, HeaderError::Missing { header: "ce_type" });
    for empty in [&b""[..], b"  "] {
        let err =
            parse_headers([("ce_id", Some(id.as_bytes())), ("ce_type", Some(empty))]).unwrap_err();
        assert!(
            matches!(
                err,
                HeaderError::Invalid {
                    header: "ce_type",
                    ..
                }
            ),
            "{err:?}"
        );
    }
    let null = parse_headers([("ce_id", Some(id.as_bytes())), ("ce_type", None)]).unwrap_err();
    assert!(
        matches!(
            null,
            HeaderError::Invalid {
                header: "ce_type",
                ..
            }
        ),
        "{null:?}"
    );
}

#[test]
fn duplicated_header_is_an_error() {
    let meta = EventMetadata::new("org.example.a.b.created.v1");
    let mut headers = meta.to_headers();
    headers.push(("ce_type", "org.example.other.thing.created.v1".into()));
    let err = parse_headers(as_pairs(&headers)).unwrap_err();
    assert_eq!(
        err,
        HeaderError::Duplicated {
            header: "ce_type",
            count: 2
        }
    );
}

#[test]
fn bad_time_minor_version_spec_and_utf8_are_errors() {
    let id = uuid::Uuid::new_v4().to_string();
    let with = |name: &'static str, value: &'static [u8]| {
        parse_headers(vec![
            ("ce_id", Some(id.as_bytes())),
            ("ce_type", Some(&b"org.example.a.b.created.v1"[..])),
            (name, Some(value)),
        ])
    };
    assert!(matches!(
        with("ce_time", b"yesterday"),
        Err(HeaderError::Invalid {
            header: "ce_time",
            ..
        })
    ));
    assert!(matches!(
        with("ce_minorversion", b"-1"),
        Err(HeaderError::Invalid {
            header: "ce_minorversion",
            ..
        })
    ));
    assert!(matches!(
        with("ce_specversion", b"0.3"),
        Err(HeaderError::Invalid {
            header: "ce_specversion",
            ..
        })
    ));
    assert!(matches!(
        with("ce_source", b"\xff\xfe"),
        Err(HeaderError::NotUtf8 {
            header: "ce_source"
        })
    ));
}

#[test]
fn other_missing_headers_take_defaults_and_are_reported() {
    let id = uuid::Uuid::new_v4().to_string();
    let parsed = parse_headers([
        ("ce_id", Some(id.as_bytes())),
        ("ce_type", Some(&b"org.example.a.b.created.v1"[..])),
    ])
    .expect("parses");
    for header in [
        "ce_source",
        "ce_time",
        "ce_minorversion",
        "sourcehost",
        "sourcelib",
        "ce_specversion",
    ] {
        assert!(parsed.defaulted.contains(&header), "{header} not reported");
    }
    assert!(!parsed.defaulted.contains(&"traceparent"));
    assert_eq!(parsed.metadata.minorversion, 0);
}

#[test]
fn unknown_headers_are_ignored() {
    let meta = EventMetadata::new("org.example.a.b.created.v1");
    let mut headers = meta.to_headers();
    headers.push(("x-dlq-reason", "boom".into()));
    let parsed = parse_headers(as_pairs(&headers)).expect("parses");
    assert_eq!(parsed.metadata.id, meta.id);
}

#[test]
fn an_unreadable_trace_context_is_left_out_and_the_event_is_fine() {
    let meta = EventMetadata::new("org.example.a.b.created.v1");
    let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let with = |extra: Vec<(&'static str, &'static [u8])>| {
        let mut headers = meta.to_headers();
        headers.retain(|(name, _)| !extra.iter().any(|(n, _)| n == name));
        let mut pairs = as_pairs(&headers);
        pairs.extend(extra.into_iter().map(|(n, v)| (n, Some(v))));
        parse_headers(pairs).map(|parsed| parsed.metadata)
    };
    let not_utf8 = with(vec![("traceparent", b"00-\xff"), ("tracestate", b"v=\x80")])
        .expect("the event is fine");
    assert_eq!(not_utf8.id, meta.id);
    assert_eq!((not_utf8.traceparent, not_utf8.tracestate), (None, None));
    let twice = with(vec![
        ("traceparent", parent.as_bytes()),
        ("traceparent", parent.as_bytes()),
        ("tracestate", b"v=1"),
    ])
    .expect("the event is fine");
    assert_eq!(twice.traceparent, None);
    assert_eq!(twice.tracestate.as_deref(), Some("v=1"));
    // A header this crate does not read may hold any bytes.
    let foreign = with(vec![("x-origin", b"\x80abc\xff")]).expect("ignored");
    assert_eq!(foreign.id, meta.id);
    // The CloudEvents headers themselves stay strict, optional ones included.
    for header in [
        "ce_id",
        "ce_type",
        "ce_source",
        "sourcehost",
        "sourcelib",
        "ce_time",
    ] {
        assert_eq!(
            with(vec![(header, b"\x80abc\xff")]),
            Err(HeaderError::NotUtf8 { header }),
            "{header}"
        );
    }
}

/// Found by the fuzz target `cloudevents_headers`: a time with more than microseconds
/// (a missing `ce_time` defaulted to now, or one written with nanoseconds) changed when
/// the SDK wrote the headers again, as the DLQ and redrive do.
#[test]
fn a_time_read_or_defaulted_survives_being_written_again() {
    let mut meta = EventMetadata::new("org.example.tests.time.kept.v1");
    meta.time = chrono::DateTime::from_timestamp(1_700_000_000, 5_123_456).expect("time");
    let mut headers = meta.to_headers();
    let with_nanos = "2023-11-14T22:13:20.005123456+00:00".to_owned();
    for (name, value) in headers.iter_mut() {
        if *name == "ce_time" {
            *value = with_nanos.clone();
        }
    }
    let without_time: Vec<_> = headers
        .iter()
        .filter(|(name, _)| *name != "ce_time")
        .cloned()
        .collect();
    for (case, headers) in [("nanoseconds", headers), ("no ce_time", without_time)] {
        let read = parse_headers(as_pairs(&headers)).expect("parses").metadata;
        let written = read.to_headers();
        let again = parse_headers(as_pairs(&written)).expect("parses").metadata;
        assert_eq!(again, read, "{case}");
    }
}

/// Found by the `cloudevents_headers` fuzz target: a `ce_time` without an offset and a
/// signed year (`-023-…`) was read, then written back as `-0023-…`, which no RFC 3339
/// reader takes, so the DLQ copy or a redrive of such a record could not be read again.
/// Years outside 0000–9999 (also reached through an offset, `0000-01-01T00:30+01:00`)
/// are refused as an invalid `ce_time`.
#[test]
fn a_time_rfc_3339_cannot_write_is_refused() {
    for time in [
        "-023-11-14T22:13:21.7",
        "0000-01-01T00:30:00+01:00",
        "+10000-01-01T00:00:00",
    ] {
        let mut meta = EventMetadata::new("org.example.tests.time.kept.v1").to_headers();
        for (name, value) in meta.iter_mut() {
            if *name == "ce_time" {
                *value = time.to_owned();
            }
        }
        let parsed = parse_headers(as_pairs(&meta));
        assert!(
            matches!(
                parsed,
                Err(HeaderError::Invalid {
                    header: "ce_time",
                    ..
                })
            ),
            "{time}: {parsed:?}"
        );
    }
}
