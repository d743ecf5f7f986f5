//! `--extra '<json>'`: librdkafka options as a JSON object of strings.

use std::collections::{BTreeMap, BTreeSet};

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;

/// Why `--extra` is not a JSON object of strings.
///
/// ```
/// use event_bus_kafka::cli::consume::{parse_extra, ExtraOptionsError};
/// let err = parse_extra(r#"{"session.timeout.ms": 6000}"#).unwrap_err();
/// assert!(matches!(err, ExtraOptionsError::NotAString { .. }));
/// assert!(err.to_string().contains("\"6000\""));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExtraOptionsError {
    /// The text is not JSON.
    #[error(
        "--extra is not valid JSON ({0}); pass an object of librdkafka options, e.g. \
         '{{\"session.timeout.ms\": \"6000\"}}'"
    )]
    NotJson(#[source] serde_json::Error),
    /// The JSON is not an object.
    #[error(
        "--extra must be a JSON object of librdkafka options, not {found}, e.g. \
         '{{\"session.timeout.ms\": \"6000\"}}'"
    )]
    NotAnObject {
        /// What it is instead (`an array`, `a string`…).
        found: &'static str,
    },
    /// An option's value is not a string.
    #[error(
        "--extra option `{option}` is {found}, but librdkafka options are strings: write \
         \"{option}\": \"{suggestion}\""
    )]
    NotAString {
        /// The option.
        option: String,
        /// What its value is instead.
        found: &'static str,
        /// The value written as a string.
        suggestion: String,
    },
    /// An option's name is empty.
    #[error("--extra has an option with an empty name")]
    EmptyName,
    /// An option is given twice (a JSON parser would keep only one of the values).
    #[error("--extra gives option `{option}` twice; keep one of them")]
    Repeated {
        /// The option.
        option: String,
    },
}

/// Parses `--extra`: a JSON object whose values are all strings, e.g.
/// `{"session.timeout.ms": "6000", "fetch.min.bytes": "1"}`. The options are passed
/// to librdkafka untouched, after the SDK's defaults and the `EVENT_BUS_KAFKA_*`
/// variables (so they win). An option given twice is refused, not resolved silently.
///
/// ```
/// use event_bus_kafka::cli::consume::{parse_extra, ExtraOptionsError};
/// let options = parse_extra(r#"{"session.timeout.ms": "6000"}"#)?;
/// assert_eq!(options["session.timeout.ms"], "6000");
/// assert!(parse_extra("[1]").is_err());
/// assert!(parse_extra("{oops").is_err());
/// let twice = parse_extra(r#"{"acks": "1", "acks": "all"}"#);
/// assert!(matches!(twice, Err(ExtraOptionsError::Repeated { .. })));
/// # Ok::<(), event_bus_kafka::cli::consume::ExtraOptionsError>(())
/// ```
pub fn parse_extra(text: &str) -> Result<BTreeMap<String, String>, ExtraOptionsError> {
    let value: Value = serde_json::from_str(text).map_err(ExtraOptionsError::NotJson)?;
    let Value::Object(object) = value else {
        return Err(ExtraOptionsError::NotAnObject {
            found: kind(&value),
        });
    };
    // The object's members as written: a `Value` keeps one of a repeated name.
    let OptionNames(names) = serde_json::from_str(text).map_err(ExtraOptionsError::NotJson)?;
    let mut seen = BTreeSet::new();
    if let Some(repeated) = names.into_iter().find(|name| !seen.insert(name.clone())) {
        return Err(ExtraOptionsError::Repeated { option: repeated });
    }
    object
        .into_iter()
        .map(|(option, value)| {
            if option.trim().is_empty() {
                return Err(ExtraOptionsError::EmptyName);
            }
            match value {
                Value::String(text) => Ok((option, text)),
                other => Err(ExtraOptionsError::NotAString {
                    found: kind(&other),
                    suggestion: match &other {
                        Value::Number(_) | Value::Bool(_) => other.to_string(),
                        _ => "…".to_owned(),
                    },
                    option,
                }),
            }
        })
        .collect()
}

/// The member names of a JSON object, in order, repeats kept.
struct OptionNames(Vec<String>);

impl<'de> Deserialize<'de> for OptionNames {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(OptionNamesVisitor)
    }
}

struct OptionNamesVisitor;

impl<'de> Visitor<'de> for OptionNamesVisitor {
    type Value = OptionNames;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut members: A) -> Result<OptionNames, A::Error> {
        let mut names = Vec::new();
        while let Some((name, IgnoredAny)) = members.next_entry::<String, IgnoredAny>()? {
            names.push(name);
        }
        Ok(OptionNames(names))
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_of_bad_input_is_named() {
        assert!(matches!(
            parse_extra("nope"),
            Err(ExtraOptionsError::NotJson(_))
        ));
        assert!(matches!(
            parse_extra("\"x\""),
            Err(ExtraOptionsError::NotAnObject { found: "a string" })
        ));
        assert!(matches!(
            parse_extra(r#"{"a": null}"#),
            Err(ExtraOptionsError::NotAString { found: "null", .. })
        ));
        assert!(matches!(
            parse_extra(r#"{"": "x"}"#),
            Err(ExtraOptionsError::EmptyName)
        ));
        assert_eq!(parse_extra("{}").map(|o| o.len()).ok(), Some(0));
        assert!(matches!(
            parse_extra(r#"{"a": "1", "b": "2", "a": "1"}"#),
            Err(ExtraOptionsError::Repeated { option }) if option == "a"
        ));
    }
}
