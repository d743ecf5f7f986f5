//! The derive's schemas, keys and Avro round trips.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use event_bus_core::prelude::*;
use event_bus_core::{codec, EventRegistration};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

/// How a learner takes a course.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, EventData)]
pub enum Mode {
    /// Free.
    Audit,
    /// Paid, with a certificate.
    Verified,
}

/// A user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, EventData)]
pub struct UserData {
    /// Numeric id.
    pub id: i64,
    /// Login name.
    pub username: String,
}

/// Everything the mapping supports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(
    type = "org.example.test.kitchen.sink.created.v1",
    topic = "kitchen",
    key = "owner.username",
    minor_version = 4
)]
pub struct KitchenSink {
    /// A flag.
    pub flag: bool,
    pub small: i32,
    pub big: i64,
    pub ratio: f32,
    pub precise: f64,
    pub text: String,
    #[serde(with = "event_bus_core::avro::bytes")]
    pub blob: Vec<u8>,
    pub tags: Vec<String>,
    pub counts: HashMap<String, i64>,
    pub sorted: BTreeMap<String, String>,
    pub maybe: Option<String>,
    pub id: Uuid,
    pub at: DateTime<Utc>,
    pub owner: UserData,
    pub created_by: Option<UserData>,
    pub mode: Mode,
    pub history: Vec<UserData>,
}

fn sample() -> KitchenSink {
    KitchenSink {
        flag: true,
        small: -3,
        big: 1 << 40,
        ratio: 0.5,
        precise: 2.25,
        text: "héllo".into(),
        blob: vec![0, 1, 255],
        tags: vec!["a".into(), "b".into()],
        counts: HashMap::from([("x".into(), 2)]),
        sorted: BTreeMap::from([("k".into(), "v".into())]),
        maybe: None,
        id: Uuid::from_u128(0x1234),
        at: DateTime::from_timestamp(1_700_000_000, 123_000).expect("valid"),
        owner: UserData {
            id: 9,
            username: "ada".into(),
        },
        created_by: Some(UserData {
            id: 1,
            username: "root".into(),
        }),
        mode: Mode::Verified,
        history: vec![],
    }
}

#[test]
fn schema_maps_every_supported_type() {
    let schema = KitchenSink::schema_json();
    assert_eq!(schema["name"], "CloudEvent");
    assert_eq!(
        schema["namespace"],
        "org.example.test.kitchen.sink.created.v1"
    );
    assert_eq!(schema["doc"], "Everything the mapping supports.");
    let fields: HashMap<String, serde_json::Value> = schema["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .map(|f| (f["name"].as_str().expect("name").to_owned(), f.clone()))
        .collect();
    assert_eq!(fields["flag"]["type"], "boolean");
    assert_eq!(fields["flag"]["doc"], "A flag.");
    assert_eq!(fields["small"]["type"], "int");
    assert_eq!(fields["big"]["type"], "long");
    assert_eq!(fields["ratio"]["type"], "float");
    assert_eq!(fields["precise"]["type"], "double");
    assert_eq!(fields["text"]["type"], "string");
    assert_eq!(fields["blob"]["type"], "bytes");
    assert_eq!(
        fields["tags"]["type"],
        json!({"type": "array", "items": "string"})
    );
    assert_eq!(
        fields["counts"]["type"],
        json!({"type": "map", "values": "long"})
    );
    assert_eq!(
        fields["sorted"]["type"],
        json!({"type": "map", "values": "string"})
    );
    assert_eq!(fields["maybe"]["type"], json!(["null", "string"]));
    assert_eq!(fields["maybe"]["default"], serde_json::Value::Null);
    assert_eq!(fields["id"]["type"], "string");
    assert_eq!(fields["at"]["type"], "string");
    assert_eq!(fields["owner"]["type"]["type"], "record");
    assert_eq!(fields["owner"]["type"]["name"], "UserData");
    assert_eq!(fields["owner"]["type"]["doc"], "A user.");
    // Second use of a record is a reference by name.
    assert_eq!(fields["created_by"]["type"], json!(["null", "UserData"]));
    assert_eq!(
        fields["history"]["type"],
        json!({"type": "array", "items": "UserData"})
    );
    assert_eq!(fields["mode"]["type"]["type"], "enum");
    assert_eq!(
        fields["mode"]["type"]["symbols"],
        json!(["Audit", "Verified"])
    );
}

#[test]
fn event_round_trips_through_avro() {
    let event = sample();
    let bytes = event.to_avro_datum().expect("encodes");
    let back = KitchenSink::from_avro_datum(&bytes, KitchenSink::schema()).expect("decodes");
    assert_eq!(back, event);
}

#[test]
fn uuid_and_time_are_written_as_text() {
    let event = sample();
    let bytes = event.to_avro_datum().expect("encodes");
    let generic = codec::decode_value(&bytes, KitchenSink::schema(), None).expect("decodes");
    let apache_avro::types::Value::Record(fields) = generic else {
        panic!("not a record: {generic:?}");
    };
    let get = |name: &str| {
        fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(
        get("id"),
        Some(apache_avro::types::Value::String(
            "00000000-0000-0000-0000-000000000000"
                .replace("0000-000000000000", "0000-000000001234")
        ))
    );
    let Some(apache_avro::types::Value::String(at)) = get("at") else {
        panic!("time is not a string");
    };
    assert!(at.starts_with("2023-11-14T22:13:20"), "{at}");
}

#[test]
fn key_comes_from_the_dotted_path() {
    let event = sample();
    assert_eq!(event.key(), Some(EventKey::String("ada".into())));
    assert_eq!(KitchenSink::KEY_FIELD, Some("owner.username"));
    assert_eq!(
        KitchenSink::key_schema_json(),
        Some(json!({"name": "username", "type": "string"}))
    );
    assert_eq!(KitchenSink::MINOR_VERSION, 4);
}

#[test]
fn derived_types_register_themselves() {
    let found = EventRegistration::find("org.example.test.kitchen.sink.created.v1")
        .expect("registered by the derive");
    assert_eq!(found.topic, "kitchen");
    assert_eq!(found.minor_version, 4);
    assert_eq!((found.schema_json)(), KitchenSink::schema_json());
}

#[test]
fn evolved_writer_data_resolves_into_the_reader_type() {
    // Written by a newer producer that added an optional field.
    let writer = apache_avro::Schema::parse_str(
        r#"{"type":"record","name":"CloudEvent","namespace":"org.example.test.user.made.v1","fields":[
            {"name":"id","type":"long"},{"name":"username","type":"string"},
            {"name":"nickname","type":["null","string"],"default":null}]}"#,
    )
    .expect("schema");
    #[derive(Debug, PartialEq, Serialize, Deserialize, Event)]
    #[event(type = "org.example.test.user.made.v1", topic = "users")]
    struct UserMade {
        id: i64,
        username: String,
    }
    let mut record = apache_avro::types::Record::new(&writer).expect("record");
    record.put("id", 5_i64);
    record.put("username", "bo");
    record.put(
        "nickname",
        apache_avro::types::Value::Union(1, Box::new("b".into())),
    );
    let bytes = apache_avro::writer::datum::GenericDatumWriter::builder(&writer)
        .build()
        .and_then(|w| w.write_value_to_vec(record))
        .expect("writes");
    let event = UserMade::from_avro_datum(&bytes, &writer).expect("resolves");
    assert_eq!(
        event,
        UserMade {
            id: 5,
            username: "bo".into()
        }
    );
}
