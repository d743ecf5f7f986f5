//! Finding and reading the `v<N>.avsc` files of one event type.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use apache_avro::Schema;

use super::error::HistoryError;
use super::StoredSchema;

/// The folder of `event_type` under `root`, after checking the name is a plain folder name.
pub(super) fn event_dir(root: &Path, event_type: &str) -> Result<PathBuf, HistoryError> {
    let refuse = |reason| HistoryError::InvalidEventType {
        event_type: event_type.to_string(),
        reason,
    };
    if event_type.is_empty() {
        return Err(refuse("it is empty"));
    }
    if event_type == "." || event_type == ".." {
        return Err(refuse("it is a relative folder name"));
    }
    if event_type.contains(['/', '\\', '\0']) {
        return Err(refuse("it contains a path separator"));
    }
    Ok(root.join(event_type))
}

/// `Some(n)` for `v<n>.avsc` (n ≥ 1, no leading zero), `None` for any other name.
pub(super) fn parse_version(file_name: &str) -> Option<u32> {
    let digits = file_name.strip_prefix('v')?.strip_suffix(".avsc")?;
    if digits.is_empty() || digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The numbered `.avsc` files of `dir`, sorted by version; `Ok(None)` when `dir` does
/// not exist. Files that do not end in `.avsc` (a README, `.gitkeep`) are ignored.
pub(super) fn list_versions(dir: &Path) -> Result<Option<Vec<(u32, PathBuf)>>, HistoryError> {
    let io_error = |source| HistoryError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(io_error(err)),
    };
    let mut versions = Vec::new();
    for entry in entries {
        let path = entry.map_err(io_error)?.path();
        if path.extension().is_none_or(|ext| ext != "avsc") || path.is_dir() {
            continue;
        }
        let version = path
            .file_name()
            .and_then(|name| name.to_str())
            .and_then(parse_version);
        match version {
            Some(version) => versions.push((version, path)),
            None => return Err(HistoryError::UnexpectedFile { path }),
        }
    }
    versions.sort_by_key(|(version, _)| *version);
    Ok(Some(versions))
}

/// Fails on the first version number that is not the previous one plus one.
pub(super) fn check_numbering(
    event_type: &str,
    dir: &Path,
    versions: &[(u32, PathBuf)],
) -> Result<(), HistoryError> {
    for (expected, (version, path)) in (1u32..).zip(versions) {
        if *version != expected {
            return Err(HistoryError::Gap {
                event_type: event_type.to_string(),
                missing: dir.join(super::version_file_name(expected)),
                found: path.clone(),
            });
        }
    }
    Ok(())
}

/// Reads and parses one stored version.
pub(super) fn read_version(version: u32, path: PathBuf) -> Result<StoredSchema, HistoryError> {
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(source) => return Err(HistoryError::Io { path, source }),
    };
    let json: serde_json::Value = match serde_json::from_str(&text) {
        Ok(json) => json,
        Err(source) => return Err(HistoryError::InvalidJson { path, source }),
    };
    match Schema::parse(&json) {
        Ok(schema) => Ok(StoredSchema {
            version,
            path,
            schema,
            json,
        }),
        Err(source) => Err(HistoryError::InvalidSchema { path, source }),
    }
}
