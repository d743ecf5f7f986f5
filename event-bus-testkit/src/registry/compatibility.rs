//! Compatibility levels as the REST API names them, and the check itself, delegated to
//! `event_bus_core::schema::compat` so the registry and `schemas check` agree.

use std::panic::{catch_unwind, AssertUnwindSafe};

use apache_avro::Schema;
use event_bus_core::schema::compat::{
    check_compatibility_with_versions, CompatibilityIssue, CompatibilityLevel,
};

use super::errors::RegistryError;

/// The level a registry uses when neither the subject nor the global config sets one
/// (Confluent's default).
pub(crate) const DEFAULT_LEVEL: CompatibilityLevel = CompatibilityLevel::Backward;

/// Parses a level name as given in `PUT /config` (case-insensitive).
pub(crate) fn parse_level(given: &str) -> Result<CompatibilityLevel, RegistryError> {
    given
        .parse::<CompatibilityLevel>()
        .map_err(|_| RegistryError::InvalidCompatibilityLevel {
            given: given.to_owned(),
        })
}

/// The name the REST API answers with, e.g. `FULL_TRANSITIVE`.
pub(crate) fn level_name(level: CompatibilityLevel) -> &'static str {
    level.as_str()
}

/// Checks `new` against `existing` (oldest first, each with its registry version number)
/// at `level`. Returns no messages when compatible, otherwise one message per problem
/// and a last one naming the level, as Confluent's verbose answers do.
pub(crate) fn check(
    level: CompatibilityLevel,
    new: &Schema,
    existing: &[(u32, &Schema)],
) -> Result<Vec<String>, RegistryError> {
    if existing.is_empty() {
        return Ok(Vec::new());
    }
    // A panic in the rules must answer 500/50001, not drop the connection.
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        check_compatibility_with_versions(level, new, existing)
    }))
    .map_err(|panic| RegistryError::Store {
        detail: format!(
            "the compatibility check panicked: {}",
            panic_text(panic.as_ref())
        ),
    })?;
    match outcome {
        Ok(()) => Ok(Vec::new()),
        Err(issues) => {
            let mut messages: Vec<String> = issues.iter().map(describe).collect();
            if messages.is_empty() {
                messages.push("the schema is not compatible".to_owned());
            }
            messages.push(format!("compatibility: {}", level_name(level)));
            Ok(messages)
        }
    }
}

/// One issue as text: its Avro `errorType` name, then the reason (which names the
/// version and the direction).
fn describe(issue: &CompatibilityIssue) -> String {
    format!("{}: {}", issue.kind.as_str(), issue.message)
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = panic.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text.clone()
    } else {
        "unknown panic".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_kind_the_version_and_the_level() {
        let old = Schema::parse_str(r#"{"type":"record","name":"R","fields":[]}"#);
        let new = Schema::parse_str(
            r#"{"type":"record","name":"R","fields":[{"name":"b","type":"string"}]}"#,
        );
        let (Ok(old), Ok(new)) = (old, new) else {
            panic!("test schemas must parse");
        };
        let messages = check(CompatibilityLevel::Backward, &new, &[(7, &old)]);
        let Ok(messages) = messages else {
            panic!("the check must run");
        };
        assert_eq!(messages.len(), 2, "{messages:?}");
        assert!(
            messages[0].starts_with("READER_FIELD_MISSING_DEFAULT_VALUE: "),
            "{messages:?}"
        );
        assert!(messages[0].contains("version 7"), "{messages:?}");
        assert_eq!(messages[1], "compatibility: BACKWARD");
    }

    #[test]
    fn level_names_round_trip_case_insensitively() {
        for name in [
            "NONE",
            "BACKWARD",
            "BACKWARD_TRANSITIVE",
            "FORWARD",
            "FORWARD_TRANSITIVE",
            "FULL",
            "FULL_TRANSITIVE",
        ] {
            let level = parse_level(&name.to_ascii_lowercase());
            assert!(
                matches!(level, Ok(level) if level_name(level) == name),
                "{name}"
            );
        }
        assert!(matches!(
            parse_level("SIDEWAYS"),
            Err(RegistryError::InvalidCompatibilityLevel { .. })
        ));
    }
}
