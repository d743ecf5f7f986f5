//! The committed schema history: `schemas/<event type>/v<N>.avsc`.
//!
//! Every event type has a folder under the history root (usually `schemas/` at the top
//! of the repository) holding one file per version, `v1.avsc`, `v2.avsc`, … : pretty
//! JSON with a trailing newline, never rewritten. [`generate`] appends a version when
//! the code's schema changed; [`check`] (and [`assert_schema_history`] in a test) fails
//! unless the code's schema is FULL_TRANSITIVE compatible with every stored version,
//! the level the SDK sets on every registry subject.
//!
//! ```
//! use event_bus_core::schema::history::{check, generate, GenerateOutcome};
//! use serde_json::json;
//!
//! let root = tempfile::tempdir()?;
//! let event_type = "org.example.learning.course.enrollment.created.v1";
//! let v1 = json!({"type": "record", "name": "CloudEvent", "fields": [
//!     {"name": "user_id", "type": "long"}]});
//! assert!(matches!(generate(root.path(), event_type, &v1)?, GenerateOutcome::Written(_)));
//!
//! // A new optional field with a default is a compatible change.
//! let v2 = json!({"type": "record", "name": "CloudEvent", "fields": [
//!     {"name": "user_id", "type": "long"},
//!     {"name": "mode", "type": ["null", "string"], "default": null}]});
//! check(root.path(), event_type, &v2)?;
//! assert!(matches!(generate(root.path(), event_type, &v2)?, GenerateOutcome::Written(_)));
//! assert!(root.path().join(event_type).join("v2.avsc").exists());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use apache_avro::Schema;

use crate::schema::compat::{check_compatibility, CompatibilityLevel};

mod error;
mod files;
mod identity;
mod pretty;

pub use error::HistoryError;

/// The usual history root, relative to the repository (or crate) root.
///
/// ```
/// use event_bus_core::schema::history::DEFAULT_SCHEMAS_DIR;
/// assert_eq!(DEFAULT_SCHEMAS_DIR, "schemas");
/// ```
pub const DEFAULT_SCHEMAS_DIR: &str = "schemas";

/// The file name of a version: `v3.avsc` for 3.
///
/// ```
/// use event_bus_core::schema::history::version_file_name;
/// assert_eq!(version_file_name(3), "v3.avsc");
/// ```
pub fn version_file_name(version: u32) -> String {
    format!("v{version}.avsc")
}

/// One stored version of an event type's schema.
///
/// ```
/// use event_bus_core::schema::history::{generate, SchemaHistory};
///
/// let root = tempfile::tempdir()?;
/// let schema = serde_json::json!({"type": "record", "name": "E", "fields": []});
/// generate(root.path(), "org.example.thing.created.v1", &schema)?;
/// let history = SchemaHistory::load(root.path(), "org.example.thing.created.v1")?;
/// let stored = &history.versions()[0];
/// assert_eq!(stored.version, 1);
/// assert!(stored.path.ends_with("v1.avsc"));
/// assert_eq!(stored.json, schema);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct StoredSchema {
    /// The version number (1, 2, 3…).
    pub version: u32,
    /// The file it was read from.
    pub path: PathBuf,
    /// The parsed schema.
    pub schema: Schema,
    /// The file's JSON, as stored.
    pub json: serde_json::Value,
}

/// The stored versions of one event type, oldest first.
///
/// ```
/// use event_bus_core::schema::history::{generate, SchemaHistory};
///
/// let root = tempfile::tempdir()?;
/// let event_type = "org.example.thing.created.v1";
/// generate(root.path(), event_type, &serde_json::json!(
///     {"type": "record", "name": "E", "fields": []}))?;
/// generate(root.path(), event_type, &serde_json::json!(
///     {"type": "record", "name": "E", "fields": [
///         {"name": "n", "type": "int", "default": 0}]}))?;
///
/// let history = SchemaHistory::load(root.path(), event_type)?;
/// assert_eq!(history.event_type(), event_type);
/// assert_eq!(history.len(), 2);
/// assert_eq!(history.latest().map(|v| v.version), Some(2));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct SchemaHistory {
    event_type: String,
    dir: PathBuf,
    versions: Vec<StoredSchema>,
}

impl SchemaHistory {
    /// Loads `<root>/<event_type>/v1.avsc`, `v2.avsc`, … oldest first.
    ///
    /// Fails with [`HistoryError::NoHistory`] when the folder does not exist,
    /// [`HistoryError::Gap`] when a number is skipped, [`HistoryError::UnexpectedFile`]
    /// for an `.avsc` file with another name, and [`HistoryError::InvalidJson`] or
    /// [`HistoryError::InvalidSchema`] naming a file that does not parse. A folder with
    /// no version yet loads as an empty history. Other files (a README) are ignored.
    ///
    /// ```
    /// use event_bus_core::schema::history::{HistoryError, SchemaHistory};
    ///
    /// let root = tempfile::tempdir()?;
    /// let dir = root.path().join("org.example.thing.created.v1");
    /// std::fs::create_dir(&dir)?;
    /// std::fs::write(dir.join("v1.avsc"), "{\"type\": \"record\", \"name\": \"E\", \"fields\": []}\n")?;
    /// std::fs::write(dir.join("v3.avsc"), "{\"type\": \"record\", \"name\": \"E\", \"fields\": []}\n")?;
    ///
    /// let err = SchemaHistory::load(root.path(), "org.example.thing.created.v1").unwrap_err();
    /// assert!(matches!(&err, HistoryError::Gap { missing, .. } if missing.ends_with("v2.avsc")));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn load(root: &Path, event_type: &str) -> Result<SchemaHistory, HistoryError> {
        let dir = files::event_dir(root, event_type)?;
        let Some(numbered) = files::list_versions(&dir)? else {
            return Err(HistoryError::NoHistory {
                event_type: event_type.to_string(),
                dir,
            });
        };
        files::check_numbering(event_type, &dir, &numbered)?;
        let versions = numbered
            .into_iter()
            .map(|(version, path)| files::read_version(version, path))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SchemaHistory {
            event_type: event_type.to_string(),
            dir,
            versions,
        })
    }

    /// The event type.
    ///
    /// ```
    /// use event_bus_core::schema::history::{generate, SchemaHistory};
    ///
    /// let root = tempfile::tempdir()?;
    /// let json = serde_json::json!({"type": "record", "name": "E", "fields": []});
    /// generate(root.path(), "org.example.thing.created.v1", &json)?;
    /// let history = SchemaHistory::load(root.path(), "org.example.thing.created.v1")?;
    /// assert_eq!(history.event_type(), "org.example.thing.created.v1");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn event_type(&self) -> &str {
        &self.event_type
    }

    /// The folder holding the versions (`<root>/<event type>`).
    ///
    /// ```no_run
    /// use event_bus_core::schema::history::SchemaHistory;
    /// use std::path::Path;
    ///
    /// let history = SchemaHistory::load(Path::new("schemas"), "org.example.thing.created.v1")?;
    /// assert_eq!(history.dir(), Path::new("schemas/org.example.thing.created.v1"));
    /// # Ok::<(), event_bus_core::schema::history::HistoryError>(())
    /// ```
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every stored version, oldest first (`versions()[0]` is v1).
    ///
    /// ```
    /// use event_bus_core::schema::history::{generate, SchemaHistory};
    ///
    /// let root = tempfile::tempdir()?;
    /// let json = serde_json::json!({"type": "record", "name": "E", "fields": []});
    /// generate(root.path(), "org.example.thing.created.v1", &json)?;
    /// let history = SchemaHistory::load(root.path(), "org.example.thing.created.v1")?;
    /// assert_eq!(history.versions()[0].version, 1);
    /// assert_eq!(history.versions()[0].json, json);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn versions(&self) -> &[StoredSchema] {
        &self.versions
    }

    /// The latest stored version, if any.
    ///
    /// ```
    /// use event_bus_core::schema::history::{generate, SchemaHistory};
    ///
    /// let root = tempfile::tempdir()?;
    /// let json = serde_json::json!({"type": "record", "name": "E", "fields": []});
    /// generate(root.path(), "org.example.thing.created.v1", &json)?;
    /// let history = SchemaHistory::load(root.path(), "org.example.thing.created.v1")?;
    /// assert_eq!(history.latest().map(|latest| latest.version), Some(1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn latest(&self) -> Option<&StoredSchema> {
        self.versions.last()
    }

    /// How many versions are stored.
    ///
    /// ```
    /// use event_bus_core::schema::history::{generate, SchemaHistory};
    ///
    /// let root = tempfile::tempdir()?;
    /// let json = serde_json::json!({"type": "record", "name": "E", "fields": []});
    /// generate(root.path(), "org.example.thing.created.v1", &json)?;
    /// let history = SchemaHistory::load(root.path(), "org.example.thing.created.v1")?;
    /// assert_eq!(history.len(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn len(&self) -> usize {
        self.versions.len()
    }

    /// Whether no version is stored yet.
    ///
    /// ```
    /// use event_bus_core::schema::history::SchemaHistory;
    ///
    /// let root = tempfile::tempdir()?;
    /// std::fs::create_dir(root.path().join("org.example.thing.created.v1"))?;
    /// let history = SchemaHistory::load(root.path(), "org.example.thing.created.v1")?;
    /// assert!(history.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.versions.is_empty()
    }

    /// The parsed schemas, oldest first, as [`check_compatibility`] takes them.
    ///
    /// ```
    /// use event_bus_core::schema::compat::{check_compatibility, CompatibilityLevel};
    /// use event_bus_core::schema::history::{generate, SchemaHistory};
    /// use event_bus_core::apache_avro::Schema;
    ///
    /// let root = tempfile::tempdir()?;
    /// let json = serde_json::json!({"type": "record", "name": "E", "fields": []});
    /// generate(root.path(), "org.example.thing.created.v1", &json)?;
    /// let history = SchemaHistory::load(root.path(), "org.example.thing.created.v1")?;
    /// let current = Schema::parse(&json)?;
    /// assert!(check_compatibility(CompatibilityLevel::Full, &current, &history.schemas()).is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn schemas(&self) -> Vec<Schema> {
        self.versions
            .iter()
            .map(|stored| stored.schema.clone())
            .collect()
    }

    /// Whether `current` is the latest stored version (same Parsing Canonical Form and
    /// the same defaults, aliases and logical types), i.e. nothing is left to generate.
    ///
    /// ```
    /// use event_bus_core::schema::history::{generate, SchemaHistory};
    /// use event_bus_core::apache_avro::Schema;
    ///
    /// let root = tempfile::tempdir()?;
    /// let json = serde_json::json!({"type": "record", "name": "E", "fields": []});
    /// generate(root.path(), "org.example.thing.created.v1", &json)?;
    /// let history = SchemaHistory::load(root.path(), "org.example.thing.created.v1")?;
    /// assert!(history.is_recorded(&Schema::parse(&json)?));
    /// assert!(!history.is_recorded(&Schema::parse_str(r#"{"type":"record","name":"F","fields":[]}"#)?));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_recorded(&self, current: &Schema) -> bool {
        self.latest()
            .is_some_and(|latest| identity::same_schema(&latest.schema, current))
    }

    /// Checks that `current` is FULL_TRANSITIVE compatible with every stored version.
    /// An empty history fails with [`HistoryError::NoHistory`].
    ///
    /// ```
    /// use event_bus_core::schema::history::{generate, HistoryError, SchemaHistory};
    /// use event_bus_core::apache_avro::Schema;
    ///
    /// let root = tempfile::tempdir()?;
    /// generate(root.path(), "org.example.thing.created.v1", &serde_json::json!(
    ///     {"type": "record", "name": "E", "fields": [{"name": "id", "type": "long"}]}))?;
    /// let history = SchemaHistory::load(root.path(), "org.example.thing.created.v1")?;
    /// let renamed = Schema::parse_str(
    ///     r#"{"type":"record","name":"E","fields":[{"name":"user_id","type":"long"}]}"#)?;
    /// let err = history.check(&renamed).unwrap_err();
    /// assert!(matches!(err, HistoryError::Incompatible { .. }));
    /// assert!(err.to_string().contains("field `user_id`"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check(&self, current: &Schema) -> Result<(), HistoryError> {
        if self.is_empty() {
            return Err(HistoryError::NoHistory {
                event_type: self.event_type.clone(),
                dir: self.dir.clone(),
            });
        }
        check_compatibility(CompatibilityLevel::FullTransitive, current, &self.schemas()).map_err(
            |issues| HistoryError::Incompatible {
                event_type: self.event_type.clone(),
                dir: self.dir.clone(),
                issues,
            },
        )
    }
}

/// What [`generate`] did.
///
/// ```
/// use event_bus_core::schema::history::{generate, GenerateOutcome};
///
/// let root = tempfile::tempdir()?;
/// let json = serde_json::json!({"type": "record", "name": "E", "fields": []});
/// match generate(root.path(), "org.example.thing.created.v1", &json)? {
///     GenerateOutcome::Written(path) => assert!(path.ends_with("v1.avsc")),
///     GenerateOutcome::Unchanged => unreachable!("the history was empty"),
/// }
/// assert_eq!(generate(root.path(), "org.example.thing.created.v1", &json)?, GenerateOutcome::Unchanged);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GenerateOutcome {
    /// The latest stored version is the current schema already; nothing was written.
    Unchanged,
    /// A new version was written to this file.
    Written(PathBuf),
}

/// Writes `<root>/<event_type>/v<N+1>.avsc` when `current` differs from the latest
/// stored version (or v1.avsc when there is none), creating the folders it needs.
///
/// Two schemas are the same when their Parsing Canonical Forms are, and their defaults,
/// aliases and logical types too (the canonical form drops those, yet schema resolution
/// uses them); key order, whitespace and `doc` do not count. The file holds `current` as
/// pretty JSON (`name` and `type` first) with a trailing newline. An existing file is
/// never overwritten ([`HistoryError::AlreadyExists`]). This does not check
/// compatibility: run [`check`] before, as `event-bus schemas check` does.
///
/// ```
/// use event_bus_core::schema::history::{generate, GenerateOutcome};
/// use serde_json::json;
///
/// let root = tempfile::tempdir()?;
/// let event_type = "org.example.thing.created.v1";
/// generate(root.path(), event_type, &json!({"type": "record", "name": "E", "fields": []}))?;
/// // Same schema, other key order and a doc string: nothing to write.
/// let same = json!({"fields": [], "doc": "An E.", "name": "E", "type": "record"});
/// assert_eq!(generate(root.path(), event_type, &same)?, GenerateOutcome::Unchanged);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn generate(
    root: &Path,
    event_type: &str,
    current: &serde_json::Value,
) -> Result<GenerateOutcome, HistoryError> {
    let schema = parse_current(event_type, current)?;
    let (dir, next) = match SchemaHistory::load(root, event_type) {
        Ok(history) if history.is_recorded(&schema) => return Ok(GenerateOutcome::Unchanged),
        Ok(history) => (history.dir, history.versions.len() + 1),
        Err(HistoryError::NoHistory { dir, .. }) => (dir, 1),
        Err(err) => return Err(err),
    };
    let next = u32::try_from(next).unwrap_or(u32::MAX);
    let path = dir.join(version_file_name(next));
    let text = pretty::to_pretty_json(current).map_err(|source| HistoryError::Encode {
        path: path.clone(),
        source,
    })?;
    fs::create_dir_all(&dir).map_err(|source| HistoryError::Io {
        path: dir.clone(),
        source,
    })?;
    write_new(&path, &text)?;
    Ok(GenerateOutcome::Written(path))
}

/// Creates `path` with `text`; fails if it exists.
fn write_new(path: &Path, text: &str) -> Result<(), HistoryError> {
    let file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path);
    let mut file = match file {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
            return Err(HistoryError::AlreadyExists {
                path: path.to_path_buf(),
            })
        }
        Err(source) => {
            return Err(HistoryError::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|source| HistoryError::Io {
            path: path.to_path_buf(),
            source,
        })
}

/// Fails unless `current` is FULL_TRANSITIVE compatible with every stored version of
/// `event_type` under `root`.
///
/// The error names the event type and, for every problem, the stored version, the
/// direction (backward: the current schema reads old data; forward: old readers read
/// current data) and the field. A missing history is [`HistoryError::NoHistory`], which
/// tells the user to run `event-bus schemas generate`.
///
/// ```
/// use event_bus_core::schema::history::{check, generate, HistoryError};
/// use event_bus_core::schema::compat::Direction;
/// use serde_json::json;
///
/// let root = tempfile::tempdir()?;
/// let event_type = "org.example.thing.created.v1";
/// generate(root.path(), event_type, &json!({"type": "record", "name": "E", "fields": [
///     {"name": "id", "type": "long"}, {"name": "email", "type": "string"}]}))?;
///
/// // Dropping a field without a default breaks readers of v1.
/// let current = json!({"type": "record", "name": "E", "fields": [{"name": "id", "type": "long"}]});
/// let err = check(root.path(), event_type, &current).unwrap_err();
/// let HistoryError::Incompatible { issues, .. } = &err else { panic!("{err}") };
/// assert_eq!((issues[0].version, issues[0].direction), (1, Direction::OldReadsNew));
/// assert_eq!(issues[0].path, "email");
/// assert!(err.to_string().contains(event_type));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn check(
    root: &Path,
    event_type: &str,
    current: &serde_json::Value,
) -> Result<(), HistoryError> {
    let schema = parse_current(event_type, current)?;
    SchemaHistory::load(root, event_type)?.check(&schema)
}

/// Panics with [`check`]'s message unless `current` is FULL_TRANSITIVE compatible with
/// the stored history: one line in an application's own tests keeps its schemas honest.
///
/// ```no_run
/// // In the application's tests, with the history committed under `schemas/`:
/// use event_bus_core::schema::history::assert_schema_history;
/// use std::path::Path;
///
/// let current = serde_json::json!({"type": "record", "name": "CloudEvent", "fields": []});
/// let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
/// assert_schema_history(&root, "org.example.thing.created.v1", &current);
/// ```
#[track_caller]
pub fn assert_schema_history(root: &Path, event_type: &str, current: &serde_json::Value) {
    if let Err(err) = check(root, event_type, current) {
        panic!("{err}");
    }
}

fn parse_current(event_type: &str, current: &serde_json::Value) -> Result<Schema, HistoryError> {
    Schema::parse(current).map_err(|source| HistoryError::InvalidCurrentSchema {
        event_type: event_type.to_string(),
        source,
    })
}
