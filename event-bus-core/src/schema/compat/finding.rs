//! What the reader/writer walk finds, and how it is told to a person.

use super::issue::IssueKind;

/// One reason a reader schema cannot read a writer schema, before it is put into words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Finding {
    /// The reader has a field without default that the writer lacks.
    MissingField { field_type: String },
    /// The types cannot be resolved (no promotion applies).
    TypeMismatch { writer: String, reader: String },
    /// The writer's union has a branch the (non-union) reader cannot read.
    UnreadableUnionBranch {
        writer_union: String,
        branch: String,
        reader: String,
    },
    /// Named types differ in name and the reader has no matching alias.
    NameMismatch { writer: String, reader: String },
    /// Fixed types differ in size.
    FixedSize {
        name: String,
        writer: usize,
        reader: usize,
    },
    /// The writer can write enum symbols the reader lacks, and the reader has no default.
    MissingSymbols { name: String, symbols: Vec<String> },
    /// No branch of the reader's union reads the writer's type.
    MissingUnionBranch { writer: String, reader: String },
    /// Decimal precision or scale differ.
    DecimalMismatch {
        writer: (usize, usize),
        reader: (usize, usize),
    },
    /// Anything else apache-avro's check reports.
    Other { reason: String },
}

impl Finding {
    /// The registry-style category of this finding.
    pub(crate) fn kind(&self) -> IssueKind {
        match self {
            Finding::MissingField { .. } => IssueKind::ReaderFieldMissingDefaultValue,
            Finding::TypeMismatch { .. } | Finding::UnreadableUnionBranch { .. } => {
                IssueKind::TypeMismatch
            }
            Finding::NameMismatch { .. } => IssueKind::NameMismatch,
            Finding::FixedSize { .. } => IssueKind::FixedSizeMismatch,
            Finding::MissingSymbols { .. } => IssueKind::MissingEnumSymbols,
            Finding::MissingUnionBranch { .. } => IssueKind::MissingUnionBranch,
            Finding::DecimalMismatch { .. } => IssueKind::DecimalMismatch,
            Finding::Other { .. } => IssueKind::Other,
        }
    }

    /// Puts the finding into words. `path` is the dotted field path (empty for the
    /// top-level schema); `reader` and `writer` name the two schemas ("version 2",
    /// "the new schema").
    pub(crate) fn render(&self, path: &str, reader: &str, writer: &str) -> String {
        let at = if path.is_empty() {
            "the top-level schema".to_string()
        } else {
            format!("field `{path}`")
        };
        match self {
            Finding::MissingField { field_type } => format!(
                "{at} ({field_type}) is required by {reader}: it has no default and {writer} \
                 does not have it"
            ),
            Finding::TypeMismatch {
                writer: w,
                reader: r,
            } => format!("{at} is {w} in {writer} but {r} in {reader}, which cannot read it"),
            Finding::UnreadableUnionBranch {
                writer_union,
                branch,
                reader: r,
            } => format!(
                "{at} is {writer_union} in {writer} but {r} in {reader}, which cannot read \
                 its {branch} branch"
            ),
            Finding::NameMismatch {
                writer: w,
                reader: r,
            } => format!(
                "{at} is {w} in {writer} but {r} in {reader}: a named type keeps its name \
                 unless the reader lists the old full name in \"aliases\""
            ),
            Finding::FixedSize {
                name,
                writer: w,
                reader: r,
            } => format!("{at}: fixed {name} has size {w} in {writer} but {r} in {reader}"),
            Finding::MissingSymbols { name, symbols } => format!(
                "{at}: enum {name} in {reader} lacks symbol(s) {} that {writer} can write, \
                 and has no default symbol",
                symbols.join(", ")
            ),
            Finding::MissingUnionBranch {
                writer: w,
                reader: r,
            } => format!("{at} is {w} in {writer}, but no branch of {r} in {reader} can read it"),
            Finding::DecimalMismatch {
                writer: (wp, ws),
                reader: (rp, rs),
            } => format!(
                "{at} is decimal({wp},{ws}) in {writer} but decimal({rp},{rs}) in {reader}: \
                 precision and scale must not change"
            ),
            Finding::Other { reason } => format!("{at}: {reason} ({writer} → {reader})"),
        }
    }
}

/// A finding with the field path where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Located {
    /// Dotted field path; empty for the top-level schema.
    pub(crate) path: String,
    /// What is wrong there.
    pub(crate) finding: Finding,
}
