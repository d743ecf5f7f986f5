//! The committed schema history of one event type (`schemas/<event type>/v<N>.avsc`)
//! and what changed from each version to the next: fields added or removed, defaults
//! and types changed.

use std::path::{Path, PathBuf};

use event_bus_core::apache_avro::Schema;
use event_bus_core::schema::history::{HistoryError, SchemaHistory};
use serde_json::Value;

use super::fields::{by_path, Field};

/// One stored version and how it differs from the one before.
#[derive(Debug, Clone)]
pub(crate) struct Version {
    /// 1, 2, 3…
    pub number: u32,
    /// The file it was read from.
    pub path: PathBuf,
    /// What changed since the previous version; empty for v1.
    pub changes: Vec<Change>,
    /// The file's JSON, as stored.
    pub json: Value,
}

/// A difference between two consecutive versions, for one field path.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Change {
    /// A field that the previous version did not have.
    Added {
        /// Dotted path.
        path: String,
        /// Its type.
        type_text: String,
        /// Its default, if any.
        default: Option<Value>,
    },
    /// A field that the new version no longer has.
    Removed {
        /// Dotted path.
        path: String,
        /// Its type in the previous version.
        type_text: String,
    },
    /// The field's default changed, appeared or went away.
    DefaultChanged {
        /// Dotted path.
        path: String,
        /// The previous default.
        from: Option<Value>,
        /// The new default.
        to: Option<Value>,
    },
    /// The field's type changed.
    TypeChanged {
        /// Dotted path.
        path: String,
        /// The previous type.
        from: String,
        /// The new type.
        to: String,
    },
}

/// The stored history of an event type, or why there is none to show.
#[derive(Debug, Clone)]
pub(crate) enum History {
    /// No folder for it under the history root.
    Missing {
        /// The folder that would hold it.
        dir: PathBuf,
    },
    /// The versions, oldest first.
    Versions {
        /// The stored versions.
        versions: Vec<Version>,
        /// Whether the latest version is the code's current schema (else `event-bus
        /// schemas generate` has a version to write).
        current_recorded: bool,
    },
}

/// Loads the history of `event_type` under `root` and compares its latest version with
/// the code's `current` schema. A missing folder is not an error (the catalog says so);
/// a gap, a stray file or a file that does not parse is.
pub(crate) fn load(
    root: &Path,
    event_type: &str,
    current: &Schema,
) -> Result<History, HistoryError> {
    let history = match SchemaHistory::load(root, event_type) {
        Ok(history) => history,
        Err(HistoryError::NoHistory { dir, .. }) => return Ok(History::Missing { dir }),
        Err(error) => return Err(error),
    };
    let mut previous: Option<&Schema> = None;
    let mut versions = Vec::with_capacity(history.len());
    for stored in history.versions() {
        versions.push(Version {
            number: stored.version,
            path: stored.path.clone(),
            changes: previous.map_or_else(Vec::new, |old| changes(old, &stored.schema)),
            json: stored.json.clone(),
        });
        previous = Some(&stored.schema);
    }
    Ok(History::Versions {
        versions,
        current_recorded: history.is_recorded(current),
    })
}

/// What changed from `old` to `new`, in path order: for each path, an addition or a
/// removal, else a type change and then a default change.
pub(crate) fn changes(old: &Schema, new: &Schema) -> Vec<Change> {
    let old_fields = by_path(old);
    let new_fields = by_path(new);
    let mut paths: Vec<&String> = old_fields.keys().chain(new_fields.keys()).collect();
    paths.sort();
    paths.dedup();
    let mut found = Vec::new();
    for path in paths {
        match (old_fields.get(path), new_fields.get(path)) {
            (None, Some(added)) => found.push(Change::Added {
                path: path.clone(),
                type_text: added.type_text.clone(),
                default: added.default.clone(),
            }),
            (Some(removed), None) => found.push(Change::Removed {
                path: path.clone(),
                type_text: removed.type_text.clone(),
            }),
            (Some(before), Some(after)) => found.extend(field_changes(before, after)),
            (None, None) => {}
        }
    }
    found
}

fn field_changes(before: &Field, after: &Field) -> Vec<Change> {
    let mut found = Vec::new();
    if before.type_text != after.type_text {
        found.push(Change::TypeChanged {
            path: after.path.clone(),
            from: before.type_text.clone(),
            to: after.type_text.clone(),
        });
    }
    if before.default != after.default {
        found.push(Change::DefaultChanged {
            path: after.path.clone(),
            from: before.default.clone(),
            to: after.default.clone(),
        });
    }
    found
}

impl Change {
    /// One line for people: `added enrollment.mode (string, default "audit")`.
    pub(crate) fn describe(&self) -> String {
        match self {
            Change::Added {
                path,
                type_text,
                default,
            } => match default {
                Some(default) => format!("added {path} ({type_text}, default {default})"),
                None => format!("added {path} ({type_text}, no default)"),
            },
            Change::Removed { path, type_text } => format!("removed {path} ({type_text})"),
            Change::DefaultChanged { path, from, to } => format!(
                "default of {path} changed from {} to {}",
                default_text(from.as_ref()),
                default_text(to.as_ref())
            ),
            Change::TypeChanged { path, from, to } => {
                format!("type of {path} changed from {from} to {to}")
            }
        }
    }
}

fn default_text(default: Option<&Value>) -> String {
    default.map_or_else(|| "none".to_string(), Value::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(json: Value) -> Schema {
        Schema::parse(&json).expect("valid schema")
    }

    #[test]
    fn additions_removals_and_default_changes_are_found_by_path() {
        let v1 = parse(json!({"type": "record", "name": "E", "fields": [
            {"name": "id", "type": "long"},
            {"name": "mode", "type": "string", "default": "audit"},
            {"name": "old", "type": ["null", "string"], "default": null}]}));
        let v2 = parse(json!({"type": "record", "name": "E", "fields": [
            {"name": "id", "type": "long"},
            {"name": "mode", "type": "string", "default": "honor"},
            {"name": "course", "type": {"type": "record", "name": "C", "fields": [
                {"name": "key", "type": "string", "default": ""}]}, "default": {"key": ""}}]}));
        let lines: Vec<String> = changes(&v1, &v2).iter().map(Change::describe).collect();
        assert_eq!(
            lines,
            [
                r#"added course (record C, default {"key":""})"#,
                r#"added course.key (string, default "")"#,
                r#"default of mode changed from "audit" to "honor""#,
                "removed old ([null, string])",
            ]
        );
    }

    #[test]
    fn a_type_change_is_reported() {
        let v1 = parse(json!({"type": "record", "name": "E", "fields": [
            {"name": "n", "type": "int"}]}));
        let v2 = parse(json!({"type": "record", "name": "E", "fields": [
            {"name": "n", "type": "long"}]}));
        assert_eq!(
            changes(&v1, &v2),
            [Change::TypeChanged {
                path: "n".into(),
                from: "int".into(),
                to: "long".into()
            }]
        );
    }

    #[test]
    fn identical_versions_have_no_changes() {
        let v1 = parse(json!({"type": "record", "name": "E", "fields": [
            {"name": "n", "type": "int", "doc": "a number"}]}));
        assert!(changes(&v1, &v1).is_empty());
    }
}
