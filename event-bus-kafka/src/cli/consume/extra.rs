//! `--extra '<json>'`: librdkafka options as a JSON object of strings.

use std::collections::BTreeMap;

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
}

/// Parses `--extra`: a JSON object whose values are all strings, e.g.
/// `{"session.timeout.ms": "6000", "fetch.min.bytes": "1"}`. The options are passed
/// to librdkafka untouched, after the SDK's defaults and the `EVENT_BUS_KAFKA_*`
/// variables (so they win).
///
/// ```
/// use event_bus_kafka::cli::consume::parse_extra;
/// let options = parse_extra(r#"{"session.timeout.ms": "6000"}"#)?;
/// assert_eq!(options["session.timeout.ms"], "6000");
/// assert!(parse_extra("[1]").is_err());
/// assert!(parse_extra("{oops").is_err());
/// # Ok::<(), event_bus_kafka::cli::consume::ExtraOptionsError>(())
/// ```
pub fn parse_extra(text: &str) -> Result<BTreeMap<String, String>, ExtraOptionsError> {
    let value: Value = serde_json::from_str(text).map_err(ExtraOptionsError::NotJson)?;
    let Value::Object(object) = value else {
        return Err(ExtraOptionsError::NotAnObject {
            found: kind(&value),
        });
    };
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
    }
}
