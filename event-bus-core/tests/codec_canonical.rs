//! Where Avro binary is not canonical: other encodings of the same event that the
//! decoder accepts, and that re-encode to the SDK's one form (docs/testing.md,
//! "Fuzzing"). The fuzz target `avro_decode` asserts byte equality only where none of
//! these applies.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use event_bus_core::prelude::*;
use serde::{Deserialize, Serialize};

/// An event with every shape that has more than one encoding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(type = "org.example.tests.canonical.tagged.v1", topic = "canonical")]
pub struct Tagged {
    /// A number.
    pub n: i64,
    /// An array.
    pub tags: Vec<String>,
    /// A map.
    pub scores: BTreeMap<String, i32>,
    /// An instant, written as text.
    pub at: DateTime<Utc>,
}

fn text(s: &str) -> Vec<u8> {
    let mut out = vec![(s.len() * 2) as u8];
    out.extend(s.as_bytes());
    out
}

/// The SDK's encoding of `Tagged { n: 1, tags: ["a", "b"], scores: {x: 1, y: 2}, at }`,
/// with `n`, the tags block and the scores block replaceable.
fn datum(n: &[u8], tags: &[u8], scores: &[u8], at: &str) -> Vec<u8> {
    [n, tags, scores, &text(at)].concat()
}

fn canonical_tags() -> Vec<u8> {
    [&[4][..], &text("a"), &text("b"), &[0]].concat()
}

fn canonical_scores() -> Vec<u8> {
    [&[4][..], &text("x"), &[2], &text("y"), &[4], &[0]].concat()
}

const AT: &str = "2024-05-01T12:00:00Z";

fn decode(bytes: &[u8]) -> Tagged {
    Tagged::from_avro_datum(bytes, Tagged::schema()).expect("decodes")
}

#[test]
fn the_sdk_writes_one_form() {
    let canonical = datum(&[2], &canonical_tags(), &canonical_scores(), AT);
    let event = decode(&canonical);
    assert_eq!(event.to_avro_datum().expect("encodes"), canonical);
}

#[test]
fn each_other_form_decodes_to_the_same_event_and_re_encodes_to_the_one_form() {
    let canonical = datum(&[2], &canonical_tags(), &canonical_scores(), AT);
    let event = decode(&canonical);
    let other_forms: [(&str, Vec<u8>); 6] = [
        // A varint with needless continuation bytes (up to 10 are read).
        (
            "overlong varint",
            datum(
                &[0x82, 0x80, 0x00],
                &canonical_tags(),
                &canonical_scores(),
                AT,
            ),
        ),
        // A negative block count, followed by the block's size in bytes (ignored).
        (
            "negative block count",
            datum(
                &[2],
                &[&[3][..], &[4], &text("a"), &text("b"), &[0]].concat(),
                &canonical_scores(),
                AT,
            ),
        ),
        // The same items in two blocks.
        (
            "two blocks",
            datum(
                &[2],
                &[&[2][..], &text("a"), &[2], &text("b"), &[0]].concat(),
                &canonical_scores(),
                AT,
            ),
        ),
        // Map entries in another order (the SDK writes a BTreeMap in key order).
        (
            "map order",
            datum(
                &[2],
                &canonical_tags(),
                &[&[4][..], &text("y"), &[4], &text("x"), &[2], &[0]].concat(),
                AT,
            ),
        ),
        // A key written twice: the last value wins.
        (
            "duplicate map key",
            datum(
                &[2],
                &canonical_tags(),
                &[
                    &[6][..],
                    &text("x"),
                    &[8],
                    &text("x"),
                    &[2],
                    &text("y"),
                    &[4],
                    &[0],
                ]
                .concat(),
                AT,
            ),
        ),
        // The same instant written with an offset and a fraction.
        (
            "instant text",
            datum(
                &[2],
                &canonical_tags(),
                &canonical_scores(),
                "2024-05-01T14:00:00.000+02:00",
            ),
        ),
    ];
    for (form, bytes) in other_forms {
        assert_ne!(bytes, canonical, "{form}");
        assert_eq!(decode(&bytes), event, "{form}");
        assert_eq!(
            decode(&bytes).to_avro_datum().expect("encodes"),
            canonical,
            "{form}"
        );
    }
}
