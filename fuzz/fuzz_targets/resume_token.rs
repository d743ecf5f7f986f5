//! Resume tokens (`event_bus_kafka::replay::ResumeToken`): any text given as a token
//! (`event-bus offsets reset --to-token`, or a service reading one back), and tokens
//! built from any entries.
//!
//! What must hold:
//! - parsing never panics and refuses with a typed `TokenError`;
//! - an accepted token holds only what a consumer can write (non-blank topics,
//!   partitions and timestamps not negative), and is canonical once written: writing it
//!   gives URL-safe base64 that parses to the same token and writes to the same text;
//! - a token built from valid entries parses back, equal, from its text; one with an
//!   invalid entry is refused with the error that names it.
//!
//! Input layout: the whole input is the token text (UTF-8, lossily). The same bytes
//! are also read as entries `[topic_len u8][topic][partition i32 le][millis i64 le]`.

#![no_main]

use event_bus_kafka::replay::{ResumeToken, TokenError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    parse_any_text(&String::from_utf8_lossy(data));
    write_and_read_entries(data);
});

fn parse_any_text(text: &str) {
    match ResumeToken::parse(text) {
        Ok(token) => {
            for (topic, partition, millis) in token.entries() {
                assert!(!topic.trim().is_empty() && partition >= 0 && millis >= 0);
            }
            assert_round_trip(&token);
        }
        Err(error) => {
            assert!(!error.to_string().is_empty());
            assert_eq!(
                matches!(error, TokenError::Empty),
                text.trim().is_empty(),
                "{error}"
            );
        }
    }
}

/// parse(write(t)) == t, and write(parse(write(t))) == write(t).
fn assert_round_trip(token: &ResumeToken) {
    let text = token.to_string();
    assert!(
        text.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "{text}"
    );
    let again = ResumeToken::parse(&text)
        .unwrap_or_else(|e| panic!("a written token parses again: {e} ({token:?})"));
    assert_eq!(&again, token);
    assert_eq!(again.to_string(), text, "the written form is canonical");
}

fn write_and_read_entries(mut data: &[u8]) {
    let mut entries = Vec::new();
    while let [topic_len, rest @ ..] = data {
        let topic_len = usize::from(*topic_len);
        if rest.len() < topic_len + 12 {
            break;
        }
        let (topic, rest) = rest.split_at(topic_len);
        let (partition, rest) = rest.split_at(4);
        let (millis, rest) = rest.split_at(8);
        let partition = i32::from_le_bytes(partition.try_into().expect("4 bytes"));
        let millis = i64::from_le_bytes(millis.try_into().expect("8 bytes"));
        entries.push((
            String::from_utf8_lossy(topic).into_owned(),
            partition,
            millis,
        ));
        data = rest;
    }
    let token = ResumeToken::from_timestamps(entries);
    let invalid = token
        .entries()
        .find(|(topic, partition, millis)| topic.trim().is_empty() || *partition < 0 || *millis < 0)
        .map(|(topic, partition, millis)| (topic.to_owned(), partition, millis));
    let Some((topic, partition, millis)) = invalid else {
        assert_round_trip(&token);
        return;
    };
    // A token a consumer could not have written: refused, with a reason.
    let error = ResumeToken::parse(&token.to_string()).expect_err("invalid entries are refused");
    assert!(
        matches!(
            error,
            TokenError::EmptyTopic
                | TokenError::InvalidPartition { .. }
                | TokenError::InvalidTimestamp { .. }
        ),
        "{error} for {topic:?} {partition} {millis}"
    );
}
