//! The derived Avro binary coding against serde + apache-avro: the same bytes for every
//! shape of the schema table, the same values back, and bad input refused safely.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use event_bus_core::avro::binary::{AvroBinary, AvroReader, SerdePart};
use event_bus_core::codec::{CodecError, MalformedDatum};
use event_bus_core::prelude::*;
use proptest::prelude::*;
use serde::{Deserialize, Serialize, Serializer};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, EventData)]
enum Mode {
    Audit,
    Verified,
    Honor,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, EventData)]
struct Inner {
    name: String,
    score: f64,
    mode: Mode,
}

/// Recursive: a record whose array items are itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, EventData)]
struct Node {
    label: String,
    children: Vec<Node>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, EventData)]
struct Shapes {
    b: bool,
    i: i32,
    l: i64,
    f: f32,
    d: f64,
    s: String,
    #[serde(with = "event_bus_core::avro::bytes")]
    raw: Vec<u8>,
    id: uuid::Uuid,
    at: DateTime<Utc>,
    inner: Inner,
    again: Inner,
    maybe_inner: Option<Inner>,
    inners: Vec<Inner>,
    mode: Mode,
    maybe_mode: Option<Mode>,
    ob: Option<bool>,
    oi: Option<i32>,
    ol: Option<i64>,
    of: Option<f32>,
    od: Option<f64>,
    os: Option<String>,
    ou: Option<uuid::Uuid>,
    ot: Option<DateTime<Utc>>,
    longs: Vec<i64>,
    strings: Vec<String>,
    nested: Vec<Vec<i32>>,
    /// At most one entry, so a decoded map writes its entries in the same order.
    map: HashMap<String, i64>,
    tree: BTreeMap<String, Inner>,
    tree_opt: BTreeMap<String, Option<String>>,
    opt_list: Option<Vec<String>>,
    opt_map: Option<BTreeMap<String, f32>>,
    node: Node,
}

/// Every shape, as an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(type = "org.example.tests.avro.shapes.v1", topic = "shapes")]
struct AllShapes {
    shapes: Shapes,
    more: Option<Shapes>,
    count: i64,
}

fn apache_encode<E: Event>(event: &E) -> Vec<u8> {
    E::prepared_schema()
        .and_then(|p| p.encode(event))
        .expect("apache-avro encodes")
}

fn apache_decode<E: Event>(bytes: &[u8]) -> Result<E, CodecError> {
    E::prepared_schema().and_then(|p| p.decode(bytes))
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![".{0,12}", "[a-z]{0,4}", Just(String::new()), "\\PC{0,6}"]
}

fn f32s() -> impl Strategy<Value = f32> {
    prop_oneof![
        any::<f32>(),
        Just(f32::NAN),
        Just(f32::INFINITY),
        Just(f32::NEG_INFINITY),
        Just(-0.0),
        any::<u32>().prop_map(f32::from_bits),
    ]
}

fn f64s() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(-0.0),
        any::<u64>().prop_map(f64::from_bits),
    ]
}

fn i64s() -> impl Strategy<Value = i64> {
    prop_oneof![
        any::<i64>(),
        Just(i64::MIN),
        Just(i64::MAX),
        Just(0),
        -200..200i64
    ]
}

fn i32s() -> impl Strategy<Value = i32> {
    prop_oneof![any::<i32>(), Just(i32::MIN), Just(i32::MAX), -200..200i32]
}

fn datetimes() -> impl Strategy<Value = DateTime<Utc>> {
    // Years 1..9999, and beyond (chrono writes those with a sign), with no fraction,
    // milli-, micro- and nanoseconds, and leap seconds.
    let seconds = prop_oneof![
        -62_135_596_800i64..253_402_300_799,
        -200_000_000_000i64..400_000_000_000,
        Just(1_700_000_000),
    ];
    let nanos = prop_oneof![
        Just(0u32),
        (0u32..1000).prop_map(|n| n * 1_000_000),
        (0u32..1_000_000).prop_map(|n| n * 1000),
        0u32..1_000_000_000,
        1_000_000_000u32..2_000_000_000,
    ];
    (seconds, nanos).prop_map(|(s, n)| {
        // A leap second must fall on a minute's last second.
        let s = if n >= 1_000_000_000 {
            s - s.rem_euclid(60) + 59
        } else {
            s
        };
        DateTime::from_timestamp(s, n).unwrap_or_default()
    })
}

fn modes() -> impl Strategy<Value = Mode> {
    prop_oneof![Just(Mode::Audit), Just(Mode::Verified), Just(Mode::Honor)]
}

fn inners() -> impl Strategy<Value = Inner> {
    (text(), f64s(), modes()).prop_map(|(name, score, mode)| Inner { name, score, mode })
}

fn nodes() -> impl Strategy<Value = Node> {
    let leaf = text().prop_map(|label| Node {
        label,
        children: vec![],
    });
    leaf.prop_recursive(3, 12, 3, |inner| {
        (text(), prop::collection::vec(inner, 0..3))
            .prop_map(|(label, children)| Node { label, children })
    })
}

fn uuids() -> impl Strategy<Value = uuid::Uuid> {
    any::<u128>().prop_map(uuid::Uuid::from_u128)
}

prop_compose! {
    fn scalars()(
        b in any::<bool>(), i in i32s(), l in i64s(), f in f32s(), d in f64s(), s in text(),
        raw in prop::collection::vec(any::<u8>(), 0..8), id in uuids(), at in datetimes(),
    ) -> (bool, i32, i64, f32, f64, String, Vec<u8>, uuid::Uuid, DateTime<Utc>) {
        (b, i, l, f, d, s, raw, id, at)
    }
}

prop_compose! {
    fn options()(
        ob in any::<Option<bool>>(), oi in prop::option::of(i32s()), ol in prop::option::of(i64s()),
        of in prop::option::of(f32s()), od in prop::option::of(f64s()), os in prop::option::of(text()),
        ou in prop::option::of(uuids()), ot in prop::option::of(datetimes()),
    ) -> (Option<bool>, Option<i32>, Option<i64>, Option<f32>, Option<f64>, Option<String>, Option<uuid::Uuid>, Option<DateTime<Utc>>) {
        (ob, oi, ol, of, od, os, ou, ot)
    }
}

prop_compose! {
    fn collections()(
        longs in prop::collection::vec(i64s(), 0..4),
        strings in prop::collection::vec(text(), 0..4),
        nested in prop::collection::vec(prop::collection::vec(i32s(), 0..3), 0..3),
        map in prop::collection::hash_map(text(), i64s(), 0..2),
        tree in prop::collection::btree_map(text(), inners(), 0..3),
        tree_opt in prop::collection::btree_map(text(), prop::option::of(text()), 0..3),
        opt_list in prop::option::of(prop::collection::vec(text(), 0..3)),
        opt_map in prop::option::of(prop::collection::btree_map(text(), f32s(), 0..3)),
    ) -> (Vec<i64>, Vec<String>, Vec<Vec<i32>>, HashMap<String, i64>, BTreeMap<String, Inner>,
          BTreeMap<String, Option<String>>, Option<Vec<String>>, Option<BTreeMap<String, f32>>) {
        (longs, strings, nested, map, tree, tree_opt, opt_list, opt_map)
    }
}

prop_compose! {
    fn shapes()(
        (b, i, l, f, d, s, raw, id, at) in scalars().boxed(),
        (ob, oi, ol, of, od, os, ou, ot) in options().boxed(),
        (longs, strings, nested, map, tree, tree_opt, opt_list, opt_map) in collections().boxed(),
        inner in inners().boxed(), again in inners().boxed(),
        maybe_inner in prop::option::of(inners()).boxed(),
        inners in prop::collection::vec(inners(), 0..3).boxed(), mode in modes(),
        maybe_mode in prop::option::of(modes()), node in nodes().boxed(),
    ) -> Shapes {
        Shapes {
            b, i, l, f, d, s, raw, id, at, inner, again, maybe_inner, inners, mode, maybe_mode,
            ob, oi, ol, of, od, os, ou, ot, longs, strings, nested, map, tree, tree_opt,
            opt_list, opt_map, node,
        }
    }
}

fn events() -> BoxedStrategy<AllShapes> {
    let shapes = shapes().boxed();
    (shapes.clone(), prop::option::of(shapes), i64s())
        .prop_map(|(shapes, more, count)| AllShapes {
            shapes,
            more,
            count,
        })
        .boxed()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// Written: the derived bytes are apache-avro's. Read: the derived decoder reads
    /// apache-avro's bytes back to a value that writes them again, and to the value
    /// serde reads (floats compared by their bytes, since NaN is not equal to itself).
    #[test]
    fn derived_coding_matches_apache_avro(event in events()) {
        let expected = apache_encode(&event);
        let derived = event.to_avro_datum().expect("derived encode");
        prop_assert_eq!(&derived, &expected);
        let framed = event.to_avro_framed(77).expect("framed");
        prop_assert_eq!(&framed[..5], &[0, 0, 0, 0, 77]);
        prop_assert_eq!(&framed[5..], &expected[..]);

        let back = AllShapes::from_avro_datum(&expected, AllShapes::schema()).expect("derived decode");
        prop_assert_eq!(back.to_avro_datum().expect("encode again"), expected.clone());
        let by_serde: AllShapes = apache_decode(&expected).expect("apache decode");
        prop_assert_eq!(
            serde_json::to_value(&back).expect("json"),
            serde_json::to_value(&by_serde).expect("json")
        );
    }

    /// A datum cut anywhere is an error, not a panic and not a value.
    #[test]
    fn every_truncation_is_an_error(event in events()) {
        let bytes = apache_encode(&event);
        for end in 0..bytes.len() {
            prop_assert!(AllShapes::from_own_avro_datum(&bytes[..end]).is_err(), "cut at {}", end);
        }
    }

    /// On any bytes the derived decoder accepts exactly what the apache-avro path
    /// accepts (after its bounds check), and reads the same value.
    #[test]
    fn arbitrary_bytes_are_judged_as_apache_avro_judges_them(
        bytes in prop::collection::vec(any::<u8>(), 0..64),
        event in events(),
        cut in any::<prop::sample::Index>(),
        flip in any::<(prop::sample::Index, u8)>(),
    ) {
        let mut mutated = apache_encode(&event);
        let at = flip.0.index(mutated.len());
        mutated[at] ^= flip.1;
        let cut_len = cut.index(mutated.len() + 1);
        for input in [&bytes[..], &mutated[..], &mutated[..cut_len]] {
            let derived = AllShapes::from_own_avro_datum(input);
            let apache = apache_decode::<AllShapes>(input);
            match (&derived, &apache) {
                (Ok(d), Ok(a)) => prop_assert_eq!(
                    serde_json::to_value(d).expect("json"),
                    serde_json::to_value(a).expect("json")
                ),
                (Err(_), Err(_)) => {}
                _ => prop_assert!(false, "derived {:?} but apache-avro {:?} on {:?}", derived.map(drop), apache.map(drop), input),
            }
        }
    }

    /// A map with many entries: the same bytes, and the same entries back.
    #[test]
    fn hash_maps_match_apache_avro(map in prop::collection::hash_map(text(), i64s(), 0..20)) {
        let event = Counts { counts: map.clone() };
        let expected = apache_encode(&event);
        prop_assert_eq!(event.to_avro_datum().expect("encode"), expected.clone());
        let back = Counts::from_own_avro_datum(&expected).expect("decode");
        prop_assert_eq!(back.counts, map);
    }
}

#[derive(Debug, Serialize, Deserialize, Event)]
#[event(type = "org.example.tests.avro.counts.v1", topic = "counts")]
struct Counts {
    counts: HashMap<String, i64>,
}

#[derive(Debug, Serialize, Deserialize, Event)]
#[event(type = "org.example.tests.avro.texts.v1", topic = "texts")]
struct Texts {
    text: String,
    items: Vec<i64>,
    blob_holder: Blob,
}

#[derive(Debug, Serialize, Deserialize, EventData)]
struct Blob {
    #[serde(with = "event_bus_core::avro::bytes")]
    raw: Vec<u8>,
    empties: Vec<Empty>,
}

#[derive(Debug, Serialize, Deserialize, EventData)]
struct Empty {}

fn malformed(err: CodecError) -> MalformedDatum {
    match err {
        CodecError::Malformed { problem, .. } => problem,
        other => panic!("expected Malformed, got {other}"),
    }
}

#[test]
fn lengths_and_counts_beyond_the_bytes_are_malformed() {
    // A string claiming 2^31 bytes.
    let err = Texts::from_own_avro_datum(&[0x80, 0x80, 0x80, 0x80, 0x10, b'x']).unwrap_err();
    assert!(matches!(
        malformed(err),
        MalformedDatum::LengthBeyondEnd {
            what: "string",
            claimed: 2_147_483_648,
            left: 1
        }
    ));
    // A negative length.
    let err = Texts::from_own_avro_datum(&[1, 0]).unwrap_err();
    assert!(matches!(
        malformed(err),
        MalformedDatum::NegativeLength { claimed: -1, .. }
    ));
    // An array block claiming a million longs in 3 bytes.
    let err = Texts::from_own_avro_datum(&[0, 0x80, 0x89, 0x7a, 2, 2, 0]).unwrap_err();
    assert!(matches!(
        malformed(err),
        MalformedDatum::BlockBeyondEnd {
            count: 1_000_000,
            ..
        }
    ));
    // Bytes claiming more than there is.
    let err = Texts::from_own_avro_datum(&[0, 0, 0xfe, 0x01]).unwrap_err();
    assert!(matches!(
        malformed(err),
        MalformedDatum::LengthBeyondEnd { what: "bytes", .. }
    ));
    // Empty records take no bytes: a count of them is bounded by MAX_EMPTY_ITEMS.
    let err = Texts::from_own_avro_datum(&[0, 0, 0, 0x80, 0x89, 0x7a, 0]).unwrap_err();
    assert!(matches!(
        malformed(err),
        MalformedDatum::TooManyEmptyItems { .. }
    ));
    let ok = Texts::from_own_avro_datum(&[0, 0, 0, 6, 0]).expect("three empty records");
    assert_eq!(ok.blob_holder.empties.len(), 3);
}

#[test]
fn trailing_bytes_and_bad_values_are_the_errors_of_the_apache_avro_path() {
    let err = Texts::from_own_avro_datum(&[0, 0, 0, 0, 7]).unwrap_err();
    assert!(
        matches!(err, CodecError::TrailingBytes { trailing: 1, ref schema } if schema == "org.example.tests.avro.texts.v1.CloudEvent")
    );
    // Not UTF-8: a decoding error, as apache-avro gives.
    let bad = [2, 0xff, 0, 0, 0];
    assert!(matches!(
        Texts::from_own_avro_datum(&bad),
        Err(CodecError::Avro {
            operation: "decoding",
            ..
        })
    ));
    assert!(matches!(
        apache_decode::<Texts>(&bad),
        Err(CodecError::Avro {
            operation: "decoding",
            ..
        })
    ));
    // An enum index out of range.
    let err = <Mode as AvroBinary>::read_avro(&mut AvroReader::new(&[6])).unwrap_err();
    assert!(err.to_string().contains("enum symbol 3"), "{err}");
}

#[test]
fn text_that_is_not_a_uuid_or_a_date_is_a_decoding_error_as_through_serde() {
    #[derive(Debug, Serialize, Deserialize, Event)]
    #[event(type = "org.example.tests.avro.stamped.v1", topic = "stamped")]
    struct Stamped {
        id: uuid::Uuid,
        at: DateTime<Utc>,
    }
    let mut bytes = vec![];
    "not-a-uuid"
        .to_string()
        .write_avro(&mut bytes)
        .expect("write");
    "2024-01-01T00:00:00Z"
        .to_string()
        .write_avro(&mut bytes)
        .expect("write");
    let derived = Stamped::from_own_avro_datum(&bytes).unwrap_err();
    let apache = apache_decode::<Stamped>(&bytes).unwrap_err();
    assert!(
        matches!(
            derived,
            CodecError::Avro {
                operation: "decoding",
                ..
            }
        ),
        "{derived}"
    );
    assert!(
        matches!(
            apache,
            CodecError::Avro {
                operation: "decoding",
                ..
            }
        ),
        "{apache}"
    );
    // A date with an offset is read as UTC, as serde reads it.
    let mut bytes = vec![];
    uuid::Uuid::nil().write_avro(&mut bytes).expect("write");
    "2024-01-01T02:00:00+02:00"
        .to_string()
        .write_avro(&mut bytes)
        .expect("write");
    let derived = Stamped::from_own_avro_datum(&bytes).expect("decodes");
    let apache = apache_decode::<Stamped>(&bytes).expect("decodes");
    assert_eq!(derived.at, apache.at);
    assert_eq!(derived.at.to_rfc3339(), "2024-01-01T00:00:00+00:00");
}

#[test]
fn nesting_deeper_than_the_limit_is_refused() {
    // Node { label: "", children: [Node { ... }] } nested 100 deep: a label, then one
    // block of one child, and the end blocks after the innermost.
    let mut bytes = Vec::new();
    for _ in 0..100 {
        bytes.extend_from_slice(&[0, 2]);
    }
    bytes.extend_from_slice(&[0, 0]);
    bytes.extend(std::iter::repeat_n(0, 100));
    let err = <Node as AvroBinary>::read_avro(&mut AvroReader::new(&bytes)).unwrap_err();
    assert!(err.to_string().contains("nest deeper"), "{err}");
}

/// Writes a string in capitals: a serde form the fields alone do not show.
fn shout<S: Serializer>(word: &str, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&word.to_uppercase())
}

#[derive(Debug, PartialEq, Serialize, Deserialize, EventData)]
struct Shouted {
    #[serde(serialize_with = "shout")]
    word: String,
}

#[derive(Debug, PartialEq, Serialize, Deserialize, Event)]
#[event(type = "org.example.tests.avro.shouted.v1", topic = "shouted")]
struct ShoutedNested {
    before: String,
    shouted: Shouted,
    after: i64,
}

#[derive(Debug, PartialEq, Serialize, Deserialize, Event)]
#[event(type = "org.example.tests.avro.shouted.top.v1", topic = "shouted")]
struct ShoutedTop {
    #[serde(serialize_with = "shout")]
    word: String,
}

#[test]
fn types_with_serde_attributes_the_derive_cannot_mirror_are_written_through_serde() {
    let nested = ShoutedNested {
        before: "a".into(),
        shouted: Shouted { word: "hey".into() },
        after: 3,
    };
    let expected = apache_encode(&nested);
    assert_eq!(nested.to_avro_datum().expect("encode"), expected);
    let back = ShoutedNested::from_own_avro_datum(&expected).expect("decode");
    assert_eq!(back.shouted.word, "HEY");
    assert_eq!(back.after, 3);
    assert!(SerdePart::of::<Shouted>().is_ok());

    let top = ShoutedTop { word: "hey".into() };
    assert_eq!(top.to_avro_datum().expect("encode"), apache_encode(&top));
    assert_eq!(
        top.to_avro_framed(1).expect("framed")[5..],
        apache_encode(&top)[..]
    );
}
