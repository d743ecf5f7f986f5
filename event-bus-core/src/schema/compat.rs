//! Schema compatibility rules (NONE, BACKWARD, FORWARD, FULL and their transitive forms).
//!
//! The same code answers `event-bus schemas check` and the embedded registry's
//! compatibility questions. The rules are those of Confluent Schema Registry, which runs
//! Apache Avro's (Java) `SchemaCompatibility`:
//!
//! - a reader field without a default must exist in the writer (by name or by one of the
//!   reader field's aliases), so adding a required field breaks BACKWARD and removing one
//!   breaks FORWARD; a rename is a removal plus an addition unless the reader aliases it;
//! - types must match or promote (`int`→`long`→`float`→`double`, `string`↔`bytes`);
//! - named types (record, enum, fixed) keep their unqualified name, or the reader lists
//!   the writer's full name in `aliases`; `fixed` keeps its size;
//! - an enum reader without a default symbol must have every symbol the writer has;
//! - every branch of a writer union must be readable by the reader, and a non-union
//!   writer needs a reader union branch that reads it.
//!
//! One rule is stricter than Java's checker: a decimal must keep its precision and scale
//! (apache-avro's rule; Java ignores logical types and would let every value be misread).
//!
//! ```
//! use event_bus_core::apache_avro::Schema;
//! use event_bus_core::schema::compat::{check_compatibility, CompatibilityLevel};
//!
//! let v1 = Schema::parse_str(
//!     r#"{"type":"record","name":"E","fields":[{"name":"id","type":"long"}]}"#,
//! )?;
//! let v2 = Schema::parse_str(
//!     r#"{"type":"record","name":"E","fields":[
//!         {"name":"id","type":"long"},
//!         {"name":"note","type":["null","string"],"default":null}]}"#,
//! )?;
//! assert!(check_compatibility(CompatibilityLevel::FullTransitive, &v2, &[v1]).is_ok());
//! # Ok::<(), event_bus_core::apache_avro::Error>(())
//! ```

use apache_avro::Schema;

mod describe;
mod finding;
mod issue;
mod level;
mod rules;

pub use describe::describe;
pub use issue::{CompatibilityIssue, Direction, IssueKind};
pub use level::{CompatibilityLevel, UnknownCompatibilityLevel};

/// How the new schema is named in messages.
const NEW_SCHEMA: &str = "the new schema";

/// Checks `new` against `existing` (oldest first) at `level`.
///
/// Versions are numbered from 1 in the order given; the latest is the last one.
/// BACKWARD checks that `new` reads data written with the latest version, FORWARD that
/// the latest version reads data written with `new`, FULL both; the `_TRANSITIVE` forms
/// check every version instead of only the latest. With no existing version every level
/// passes. The issues come by version, backward before forward.
///
/// ```
/// use event_bus_core::apache_avro::Schema;
/// use event_bus_core::schema::compat::{check_compatibility, CompatibilityLevel, Direction};
///
/// let v1 = Schema::parse_str(
///     r#"{"type":"record","name":"E","fields":[{"name":"id","type":"long"}]}"#,
/// )?;
/// let v2 = Schema::parse_str(
///     r#"{"type":"record","name":"E","fields":[
///         {"name":"id","type":"long"},{"name":"email","type":"string"}]}"#,
/// )?;
/// // Readers of v1 ignore the new field, but v2 cannot read v1 data: `email` has no default.
/// assert!(check_compatibility(CompatibilityLevel::Forward, &v2, &[v1.clone()]).is_ok());
/// let issues = check_compatibility(CompatibilityLevel::Backward, &v2, &[v1]).unwrap_err();
/// assert_eq!(issues[0].direction, Direction::NewReadsOld);
/// assert_eq!(
///     issues[0].message,
///     "the new schema cannot read data written with version 1: field `email` (string) \
///      is required by the new schema: it has no default and version 1 does not have it"
/// );
/// # Ok::<(), event_bus_core::apache_avro::Error>(())
/// ```
pub fn check_compatibility(
    level: CompatibilityLevel,
    new: &Schema,
    existing: &[Schema],
) -> Result<(), Vec<CompatibilityIssue>> {
    let numbered: Vec<(u32, &Schema)> = (1u32..).zip(existing.iter()).collect();
    check_compatibility_with_versions(level, new, &numbered)
}

/// Like [`check_compatibility`], for callers whose versions are not numbered 1, 2, 3…
/// (a registry subject whose versions were deleted): each existing schema comes with
/// its version number, oldest first; the latest is the last one.
///
/// ```
/// use event_bus_core::apache_avro::Schema;
/// use event_bus_core::schema::compat::{check_compatibility_with_versions, CompatibilityLevel};
///
/// let v4 = Schema::parse_str(
///     r#"{"type":"record","name":"E","fields":[{"name":"id","type":"long"}]}"#,
/// )?;
/// let new = Schema::parse_str(
///     r#"{"type":"record","name":"E","fields":[{"name":"id","type":"string"}]}"#,
/// )?;
/// let issues =
///     check_compatibility_with_versions(CompatibilityLevel::Full, &new, &[(4, &v4)]).unwrap_err();
/// assert!(issues.iter().all(|issue| issue.version == 4));
/// assert!(issues[0].message.contains("version 4"));
/// # Ok::<(), event_bus_core::apache_avro::Error>(())
/// ```
pub fn check_compatibility_with_versions(
    level: CompatibilityLevel,
    new: &Schema,
    existing: &[(u32, &Schema)],
) -> Result<(), Vec<CompatibilityIssue>> {
    let against = if level.is_transitive() {
        existing
    } else {
        existing
            .last()
            .map(std::slice::from_ref)
            .unwrap_or_default()
    };
    let mut issues = Vec::new();
    for &(version, old) in against {
        let old_label = format!("version {version}");
        if level.checks_backward() {
            issues.extend(issues_for(
                version,
                Direction::NewReadsOld,
                old,
                new,
                &old_label,
                NEW_SCHEMA,
            ));
        }
        if level.checks_forward() {
            issues.extend(issues_for(
                version,
                Direction::OldReadsNew,
                new,
                old,
                NEW_SCHEMA,
                &old_label,
            ));
        }
    }
    if issues.is_empty() {
        Ok(())
    } else {
        Err(issues)
    }
}

fn issues_for(
    version: u32,
    direction: Direction,
    writer: &Schema,
    reader: &Schema,
    writer_label: &str,
    reader_label: &str,
) -> Vec<CompatibilityIssue> {
    rules::find_issues(writer, reader)
        .into_iter()
        .map(|found| CompatibilityIssue {
            version,
            direction,
            kind: found.finding.kind(),
            message: format!(
                "{reader_label} cannot read data written with {writer_label}: {}",
                found
                    .finding
                    .render(&found.path, reader_label, writer_label)
            ),
            path: found.path,
        })
        .collect()
}

/// Whether `reader` can read every datum written with `writer` (Avro schema
/// resolution, by the rules above). The error lists every reason, separated by `"; "`.
///
/// ```
/// use event_bus_core::apache_avro::Schema;
/// use event_bus_core::schema::compat::can_read;
///
/// let writer = Schema::parse_str(
///     r#"{"type":"record","name":"E","fields":[{"name":"n","type":"int"}]}"#,
/// )?;
/// let reader = Schema::parse_str(
///     r#"{"type":"record","name":"E","fields":[{"name":"n","type":"long"}]}"#,
/// )?;
/// assert!(can_read(&writer, &reader).is_ok()); // int promotes to long
/// let err = can_read(&reader, &writer).unwrap_err(); // long does not fit an int
/// assert_eq!(
///     err,
///     "field `n` is long in the writer schema but int in the reader schema, which cannot read it"
/// );
/// # Ok::<(), event_bus_core::apache_avro::Error>(())
/// ```
pub fn can_read(writer: &Schema, reader: &Schema) -> Result<(), String> {
    let found = rules::find_issues(writer, reader);
    if found.is_empty() {
        return Ok(());
    }
    let reasons: Vec<String> = found
        .iter()
        .map(|issue| {
            issue
                .finding
                .render(&issue.path, "the reader schema", "the writer schema")
        })
        .collect();
    Err(reasons.join("; "))
}
