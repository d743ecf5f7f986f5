//! [`CompatibilityIssue`] and its parts: which way the check read and what kind of
//! problem it found.

use std::fmt;

/// Which way a compatibility check reads.
///
/// ```
/// use event_bus_core::schema::compat::Direction;
/// assert_eq!(Direction::NewReadsOld.to_string(), "backward: the new schema reads old data");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// The new schema cannot read data written with the old one.
    NewReadsOld,
    /// The old schema cannot read data written with the new one.
    OldReadsNew,
}

impl Direction {
    /// `"backward"` for [`Direction::NewReadsOld`], `"forward"` for
    /// [`Direction::OldReadsNew`], as the registry's levels name them.
    ///
    /// ```
    /// use event_bus_core::schema::compat::Direction;
    /// assert_eq!(Direction::OldReadsNew.as_str(), "forward");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::NewReadsOld => "backward",
            Direction::OldReadsNew => "forward",
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Direction::NewReadsOld => f.write_str("backward: the new schema reads old data"),
            Direction::OldReadsNew => f.write_str("forward: the old schema reads new data"),
        }
    }
}

/// The category of a compatibility problem. The names match Apache Avro's
/// `SchemaIncompatibilityType`, which Confluent Schema Registry reports as `errorType`.
///
/// ```
/// use event_bus_core::schema::compat::IssueKind;
/// assert_eq!(
///     IssueKind::ReaderFieldMissingDefaultValue.as_str(),
///     "READER_FIELD_MISSING_DEFAULT_VALUE"
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IssueKind {
    /// The reader has a field without a default that the writer lacks.
    ReaderFieldMissingDefaultValue,
    /// The types cannot be resolved (`string` read as `long`, …).
    TypeMismatch,
    /// A named type (record, enum, fixed) changed its name without a reader alias.
    NameMismatch,
    /// A `fixed` changed its size.
    FixedSizeMismatch,
    /// The writer's enum has symbols the reader lacks and the reader has no default.
    MissingEnumSymbols,
    /// The reader's union has no branch for a type the writer can write.
    MissingUnionBranch,
    /// A decimal changed its precision or scale (stricter than the Java checker, which
    /// ignores logical types: such a change would misread every value).
    DecimalMismatch,
    /// Any other problem apache-avro reports.
    Other,
}

impl IssueKind {
    /// The upper-case name (`"TYPE_MISMATCH"` …).
    ///
    /// ```
    /// use event_bus_core::schema::compat::IssueKind;
    /// assert_eq!(IssueKind::MissingUnionBranch.as_str(), "MISSING_UNION_BRANCH");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            IssueKind::ReaderFieldMissingDefaultValue => "READER_FIELD_MISSING_DEFAULT_VALUE",
            IssueKind::TypeMismatch => "TYPE_MISMATCH",
            IssueKind::NameMismatch => "NAME_MISMATCH",
            IssueKind::FixedSizeMismatch => "FIXED_SIZE_MISMATCH",
            IssueKind::MissingEnumSymbols => "MISSING_ENUM_SYMBOLS",
            IssueKind::MissingUnionBranch => "MISSING_UNION_BRANCH",
            IssueKind::DecimalMismatch => "DECIMAL_MISMATCH",
            IssueKind::Other => "OTHER",
        }
    }
}

impl fmt::Display for IssueKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a schema is not compatible with an earlier version.
///
/// ```
/// use event_bus_core::apache_avro::Schema;
/// use event_bus_core::schema::compat::{check_compatibility, CompatibilityLevel, Direction};
///
/// let v1 = Schema::parse_str(
///     r#"{"type":"record","name":"E","fields":[{"name":"email","type":"string"}]}"#,
/// )?;
/// let new = Schema::parse_str(r#"{"type":"record","name":"E","fields":[]}"#)?;
/// let issues = check_compatibility(CompatibilityLevel::Full, &new, &[v1]).unwrap_err();
/// assert_eq!(issues.len(), 1);
/// assert_eq!(issues[0].version, 1);
/// assert_eq!(issues[0].direction, Direction::OldReadsNew);
/// assert_eq!(issues[0].path, "email");
/// assert!(issues[0].message.contains("field `email`"));
/// assert!(issues[0].message.contains("version 1"));
/// # Ok::<(), event_bus_core::apache_avro::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompatibilityIssue {
    /// Version number (1-based, oldest first) of the earlier schema involved.
    pub version: u32,
    /// Which reading failed.
    pub direction: Direction,
    /// Human-readable reason naming the field involved.
    pub message: String,
    /// The category of the problem.
    pub kind: IssueKind,
    /// Dotted path of the field involved (`enrollment.user.email`); empty for the
    /// top-level schema. Array items add `[]`, map values `{}` (`tags[]`, `attrs{}`).
    pub path: String,
}

impl fmt::Display for CompatibilityIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}
