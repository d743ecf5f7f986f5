//! The compression codec of the SDK's producers, and how a configuration overrides it.
//!
//! The default was chosen by measuring our own records (the producer benchmark's
//! codec mode, `docs/benchmarks.md`, "Compression"): bytes the broker stores per
//! event, events/s and CPU, for none, lz4, zstd, snappy and gzip.

use std::collections::BTreeMap;

/// The codec of every producer the SDK creates (the event producer, the outbox relay
/// that uses it, the consumer's dead-letter writer, `event-bus dlq redrive`), unless
/// the Kafka options name one (`EVENT_BUS_KAFKA_COMPRESSION_TYPE=none` turns
/// compression off).
///
/// ```
/// assert_eq!(event_bus_kafka::config::DEFAULT_COMPRESSION, "lz4");
/// ```
pub const DEFAULT_COMPRESSION: &str = "lz4";

/// librdkafka's names for the codec setting: `compression.codec` is an alias of
/// `compression.type`, and setting both leaves which one wins to librdkafka.
const CODEC_OPTIONS: [&str; 2] = ["compression.type", "compression.codec"];

/// The `(option, value)` default for the codec, or `None` when `options` already
/// choose one under either of librdkafka's names.
pub(crate) fn default_codec(
    options: &BTreeMap<String, String>,
) -> Option<(&'static str, &'static str)> {
    let chosen = CODEC_OPTIONS.iter().any(|name| options.contains_key(*name));
    (!chosen).then_some((CODEC_OPTIONS[0], DEFAULT_COMPRESSION))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_default_applies_when_no_codec_is_chosen() {
        assert_eq!(
            default_codec(&options(&[("linger.ms", "5")])),
            Some(("compression.type", DEFAULT_COMPRESSION))
        );
    }

    #[test]
    fn either_name_of_the_setting_overrides_it() {
        assert_eq!(
            default_codec(&options(&[("compression.type", "zstd")])),
            None
        );
        assert_eq!(
            default_codec(&options(&[("compression.codec", "none")])),
            None
        );
    }
}
