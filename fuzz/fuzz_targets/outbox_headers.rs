//! The `headers` column of outbox rows (`event_bus_kafka::outbox::headers_from_json`,
//! `headers_to_json`): rows come from a database that other processes and people
//! write, so any text may be in it.
//!
//! What must hold:
//! - any header list (any names, any byte values, UTF-8 or not, repeated names) written
//!   by `headers_to_json` reads back equal;
//! - any text read without error is the stored form exactly (an array of
//!   `[name, value]` where value is a string or `{"hex": pairs of hex digits}`), and
//!   what it reads to writes and reads back equal;
//! - anything else is `OutboxError::CorruptRow` naming the row; no panic.
//!
//! Input layout: `[mode u8][rest…]`. An even mode reads `rest` as the column's text
//! (UTF-8, lossily: the column is text); an odd mode reads it as a header list, entries
//! `[name_len u8][name][value_len u8][value]`.

#![no_main]

use event_bus_kafka::outbox::{headers_from_json, headers_to_json, OutboxError};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const ROW: i64 = 42;

fuzz_target!(|data: &[u8]| {
    let [mode, rest @ ..] = data else {
        return;
    };
    if mode % 2 == 0 {
        read_any_text(&String::from_utf8_lossy(rest));
    } else {
        round_trip(&header_list(rest));
    }
});

fn round_trip(headers: &[(String, Vec<u8>)]) {
    let json = headers_to_json(headers);
    assert!(
        is_stored_form(&json),
        "written text is the stored form: {json}"
    );
    match headers_from_json(ROW, &json) {
        Ok(again) => assert_eq!(again, headers, "{json}"),
        Err(e) => panic!("written headers read back: {e} ({json})"),
    }
}

fn read_any_text(text: &str) {
    match headers_from_json(ROW, text) {
        Ok(headers) => {
            assert!(
                is_stored_form(text),
                "accepted text that is not the stored form: {text}"
            );
            round_trip(&headers);
            let written = headers_to_json(&headers);
            let again = headers_from_json(ROW, &written).expect("written headers read back");
            assert_eq!(
                headers_to_json(&again),
                written,
                "the written form is canonical"
            );
        }
        Err(OutboxError::CorruptRow { id, reason }) => {
            assert_eq!(id, ROW);
            assert!(!reason.is_empty());
        }
        Err(other) => panic!("reading headers cannot fail with {other:?}"),
    }
}

/// Whether `text` is a JSON array of `[name, value]` pairs, each value a string or an
/// object with exactly one `hex` member holding an even number of hex digits.
fn is_stored_form(text: &str) -> bool {
    let Ok(Value::Array(pairs)) = serde_json::from_str::<Value>(text) else {
        return false;
    };
    pairs
        .iter()
        .all(|pair| match pair.as_array().map(Vec::as_slice) {
            Some([Value::String(_), Value::String(_)]) => true,
            Some([Value::String(_), Value::Object(value)]) => {
                value.len() == 1
                    && value.get("hex").and_then(Value::as_str).is_some_and(|hex| {
                        hex.len() % 2 == 0 && hex.bytes().all(|b| b.is_ascii_hexdigit())
                    })
            }
            _ => false,
        })
}

/// Header pairs from the fuzzer's bytes; names are text (lossily), values any bytes.
fn header_list(mut data: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut headers = Vec::new();
    while let [name_len, rest @ ..] = data {
        let (name, rest) = rest.split_at(usize::from(*name_len).min(rest.len()));
        let Some((value_len, rest)) = rest.split_first() else {
            break;
        };
        let (value, rest) = rest.split_at(usize::from(*value_len).min(rest.len()));
        headers.push((String::from_utf8_lossy(name).into_owned(), value.to_vec()));
        data = rest;
    }
    headers
}
