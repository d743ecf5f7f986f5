//! [`HistoryError`]: what can go wrong with the committed schema history.

use std::io;
use std::path::PathBuf;

use crate::schema::compat::CompatibilityIssue;

/// What can go wrong while loading, extending or checking a schema history.
///
/// ```
/// use event_bus_core::schema::history::{check, HistoryError};
///
/// let root = tempfile::tempdir()?;
/// let current = serde_json::json!({"type": "record", "name": "E", "fields": []});
/// let err = check(root.path(), "org.example.thing.created.v1", &current).unwrap_err();
/// assert!(matches!(err, HistoryError::NoHistory { .. }));
/// assert!(err.to_string().contains("event-bus schemas generate"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HistoryError {
    /// There is no stored version for the event type (no folder, or no `v<N>.avsc` in it).
    #[error(
        "no schema history for `{event_type}` in {}: run `event-bus schemas generate` to \
         write v1.avsc, then commit it",
        dir.display()
    )]
    NoHistory {
        /// The event type.
        event_type: String,
        /// The folder that should hold its versions.
        dir: PathBuf,
    },
    /// The event type cannot name a folder.
    #[error("`{event_type}` cannot name a schema history folder: {reason}")]
    InvalidEventType {
        /// The event type as given.
        event_type: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A file or folder could not be read or written.
    #[error("cannot access {}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A stored file is not JSON.
    #[error("{} is not valid JSON: {source}", path.display())]
    InvalidJson {
        /// The file.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// A stored file is JSON but not an Avro schema.
    #[error("{} is not a valid Avro schema: {source}", path.display())]
    InvalidSchema {
        /// The file.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: apache_avro::Error,
    },
    /// An `.avsc` file whose name is not `v<N>.avsc` (N = 1, 2, 3… without leading zeros).
    #[error(
        "unexpected file {} in the schema history: versions are named v1.avsc, v2.avsc, …",
        path.display()
    )]
    UnexpectedFile {
        /// The file.
        path: PathBuf,
    },
    /// The numbering skips a version.
    #[error(
        "gap in the schema history of `{event_type}`: {} is missing but {} exists",
        missing.display(),
        found.display()
    )]
    Gap {
        /// The event type.
        event_type: String,
        /// The file that should exist.
        missing: PathBuf,
        /// The first file after the gap.
        found: PathBuf,
    },
    /// The current schema (the one the code derives) is not a valid Avro schema.
    #[error("the current schema of `{event_type}` is not a valid Avro schema: {source}")]
    InvalidCurrentSchema {
        /// The event type.
        event_type: String,
        /// The parse error.
        #[source]
        source: apache_avro::Error,
    },
    /// The current schema could not be written as JSON.
    #[error("cannot encode the schema written to {}: {source}", path.display())]
    Encode {
        /// The file being written.
        path: PathBuf,
        /// The encoding error.
        #[source]
        source: serde_json::Error,
    },
    /// The next version's file exists already; history files are never overwritten.
    #[error("{} exists already: schema history files are never overwritten", path.display())]
    AlreadyExists {
        /// The file.
        path: PathBuf,
    },
    /// The current schema is not FULL_TRANSITIVE compatible with the stored versions.
    #[error("{}", incompatible_message(event_type, dir, issues))]
    Incompatible {
        /// The event type.
        event_type: String,
        /// The folder holding its versions.
        dir: PathBuf,
        /// Every problem found, by version, backward before forward.
        issues: Vec<CompatibilityIssue>,
    },
}

fn incompatible_message(
    event_type: &str,
    dir: &std::path::Path,
    issues: &[CompatibilityIssue],
) -> String {
    let mut message = format!(
        "the schema of `{event_type}` is not FULL_TRANSITIVE compatible with its history in {}:",
        dir.display()
    );
    for issue in issues {
        message.push_str(&format!(
            "\n  - v{}.avsc, {}: {}",
            issue.version,
            issue.direction.as_str(),
            issue.message
        ));
    }
    message.push_str(
        "\nOnly add or remove fields that have a default (optional fields are \
         [\"null\", T] with default null), and keep names and types; a breaking change \
         needs a new event type (next major version, `.v2`).",
    );
    message
}
