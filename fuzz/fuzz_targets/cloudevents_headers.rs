//! CloudEvents header parsing (`event_bus_core::headers::parse_headers`) on arbitrary
//! header lists: names and values are any bytes, a value may be absent, a name may
//! repeat.
//!
//! What must hold:
//! - parsing never panics and returns a typed `HeaderError` for what it refuses;
//! - what it accepts round-trips: the metadata written back as headers
//!   (`EventMetadata::to_headers`) parses to the same metadata.
//!
//! Input layout: a sequence of entries `[name_len u8][name][flag u8][value_len u8][value]`,
//! where an even flag means the value is present; a short tail ends the list.

#![no_main]

use event_bus_core::headers::parse_headers;
use libfuzzer_sys::fuzz_target;

/// Takes up to `len` bytes off the front of `data`.
fn take<'a>(len: usize, data: &mut &'a [u8]) -> &'a [u8] {
    let (head, tail) = data.split_at(len.min(data.len()));
    *data = tail;
    head
}

/// Splits the fuzzer's bytes into (name, value) header pairs.
fn header_pairs(mut data: &[u8]) -> Vec<(&[u8], Option<&[u8]>)> {
    let mut pairs = Vec::new();
    while data.len() >= 3 {
        let name_len = usize::from(data[0]);
        data = &data[1..];
        let name = take(name_len, &mut data);
        let [flag, value_len, ..] = *data else { break };
        data = &data[2..];
        let value = take(usize::from(value_len), &mut data);
        pairs.push((name, (flag % 2 == 0).then_some(value)));
    }
    pairs
}

fuzz_target!(|data: &[u8]| {
    let pairs = header_pairs(data);
    // Kafka header names are strings; values are bytes. Names that are not UTF-8 cannot
    // reach the parser (rdkafka hands out &str), so they are skipped here too.
    let headers: Vec<(&str, Option<&[u8]>)> = pairs
        .iter()
        .filter_map(|(name, value)| std::str::from_utf8(name).ok().map(|n| (n, *value)))
        .collect();
    let Ok(parsed) = parse_headers(headers.iter().copied()) else {
        return;
    };
    let written = parsed.metadata.to_headers();
    let again = parse_headers(
        written
            .iter()
            .map(|(name, value)| (*name, Some(value.as_bytes()))),
    )
    .expect("headers the SDK writes from accepted metadata parse again");
    assert_eq!(
        again.metadata, parsed.metadata,
        "metadata survives a write and a re-read"
    );
});
