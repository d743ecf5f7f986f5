//! `event-bus schemas generate|check`: the committed Avro schema history of the
//! program's event types, `schemas/<event type>/v<N>.avsc` (see
//! [`event_bus_core::schema::history`]).
//!
//! - `generate` writes `v<N+1>.avsc` for every event type whose current schema differs
//!   from its latest stored version (`v1.avsc` when it has none), and refuses a change
//!   that is not FULL_TRANSITIVE compatible with the stored versions.
//! - `check` fails unless every event type's current schema is recorded (it is the
//!   latest stored version) and FULL_TRANSITIVE compatible with every stored version.
//!
//! ```no_run
//! use clap::Parser;
//! use event_bus_kafka::cli::{run, Cli};
//!
//! # async fn demo() -> Result<(), event_bus_kafka::cli::CliError> {
//! let cli = Cli::try_parse_from(["event-bus", "schemas", "check", "--dir", "schemas"])
//!     .expect("valid flags");
//! run(cli, &mut std::io::stdout()).await?;
//! # Ok(()) }
//! ```

use std::collections::BTreeSet;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use event_bus_core::apache_avro::Schema;
use event_bus_core::schema::compat::CompatibilityIssue;
use event_bus_core::schema::history::{self, HistoryError, SchemaHistory, DEFAULT_SCHEMAS_DIR};
use event_bus_core::EventRegistration;
use serde_json::{json, Value};

use super::exit_code;
use super::OutputFormat;

/// `event-bus schemas …`.
///
/// ```
/// use clap::Parser;
/// use event_bus_kafka::cli::schemas::{SchemasArgs, SchemasCommand};
///
/// #[derive(Parser)]
/// struct Wrapper {
///     #[command(flatten)]
///     schemas: SchemasArgs,
/// }
/// let parsed = Wrapper::try_parse_from(["x", "check", "--event-type", "org.example.a.b.c.v1"])?;
/// let SchemasCommand::Check(args) = parsed.schemas.command else { panic!("check") };
/// assert_eq!(args.event_type.as_deref(), Some("org.example.a.b.c.v1"));
/// assert_eq!(args.dir, std::path::PathBuf::from("schemas"));
/// # Ok::<(), clap::Error>(())
/// ```
#[derive(Debug, Clone, clap::Args)]
pub struct SchemasArgs {
    /// What to do with the schema history.
    #[command(subcommand)]
    pub command: SchemasCommand,
}

/// `generate` or `check`.
///
/// ```
/// use event_bus_kafka::cli::schemas::{HistoryArgs, SchemasCommand};
///
/// let command = SchemasCommand::Check(HistoryArgs { dir: "schemas".into(), event_type: None });
/// assert_eq!(command.name(), "check");
/// ```
#[derive(Debug, Clone, clap::Subcommand)]
pub enum SchemasCommand {
    /// Write a new version file for every event type whose schema changed.
    ///
    /// Writes `<dir>/<event type>/v<N>.avsc` for every event type whose current schema
    /// differs from its latest stored version (`v1.avsc` when it has none) and prints
    /// one line per event type: `unchanged` or `written` with the file. A change that
    /// is not FULL_TRANSITIVE compatible with the stored versions is refused: make the
    /// change compatible (add or remove only fields with a default), or declare a new
    /// event type (next major version, `.v2`). Commit the files it writes.
    #[command(after_help = exit_code::HELP)]
    Generate(HistoryArgs),
    /// Fail unless every event type's schema is recorded and compatible with its history.
    ///
    /// Every event type the program registers must have a history under `<dir>`, its
    /// current schema must be FULL_TRANSITIVE compatible with every stored version
    /// (the level the SDK sets on every registry subject), and it must be the latest
    /// stored version (run `event-bus schemas generate` and commit the new file if
    /// not). Run it in CI.
    #[command(after_help = exit_code::HELP)]
    Check(HistoryArgs),
}

impl SchemasCommand {
    /// The subcommand's name, as typed on the command line.
    ///
    /// ```
    /// use event_bus_kafka::cli::schemas::{HistoryArgs, SchemasCommand};
    /// let args = HistoryArgs { dir: "schemas".into(), event_type: None };
    /// assert_eq!(SchemasCommand::Generate(args).name(), "generate");
    /// ```
    pub fn name(&self) -> &'static str {
        match self {
            SchemasCommand::Generate(_) => "generate",
            SchemasCommand::Check(_) => "check",
        }
    }

    /// The flags both subcommands take.
    ///
    /// ```
    /// use event_bus_kafka::cli::schemas::{HistoryArgs, SchemasCommand};
    /// let args = HistoryArgs { dir: "history".into(), event_type: None };
    /// assert_eq!(SchemasCommand::Check(args).args().dir, std::path::PathBuf::from("history"));
    /// ```
    pub fn args(&self) -> &HistoryArgs {
        match self {
            SchemasCommand::Generate(args) | SchemasCommand::Check(args) => args,
        }
    }
}

/// Where the history is and which event types to handle.
///
/// ```
/// use event_bus_kafka::cli::schemas::HistoryArgs;
/// let args = HistoryArgs { dir: "schemas".into(), event_type: Some("org.example.a.b.c.v1".into()) };
/// assert!(args.event_type.is_some());
/// ```
#[derive(Debug, Clone, clap::Args)]
pub struct HistoryArgs {
    /// The history root: one folder per event type, one `v<N>.avsc` file per version.
    #[arg(
        long,
        value_name = "DIR",
        default_value = DEFAULT_SCHEMAS_DIR,
        env = "EVENT_BUS_SCHEMAS_DIR"
    )]
    pub dir: PathBuf,

    /// Only this event type (default: every event type the program registers).
    #[arg(long, value_name = "EVENT_TYPE")]
    pub event_type: Option<String>,
}

/// Why one event type failed `generate` or `check`.
///
/// ```
/// use event_bus_kafka::cli::schemas::SchemaFailure;
///
/// let failure = SchemaFailure::NotRecorded {
///     event_type: "org.example.thing.created.v1".into(),
///     latest: "schemas/org.example.thing.created.v1/v1.avsc".into(),
/// };
/// assert!(failure.is_check_failure());
/// assert_eq!(failure.event_type(), "org.example.thing.created.v1");
/// assert!(failure.to_string().contains("run `event-bus schemas generate`"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SchemaFailure {
    /// The current schema is compatible but differs from the latest stored version.
    #[error(
        "the schema of `{event_type}` is not recorded: it is compatible with its history \
         but differs from the latest stored version, {}; run `event-bus schemas generate` \
         and commit the new file",
        latest.display()
    )]
    NotRecorded {
        /// The event type.
        event_type: String,
        /// The latest stored version's file.
        latest: PathBuf,
    },
    /// The history is missing, unreadable, or incompatible with the current schema.
    /// The message names the event type or the file, and for an incompatible schema
    /// every stored version, direction and field involved.
    #[error("{error}")]
    History {
        /// The event type.
        event_type: String,
        /// What the history check found.
        error: HistoryError,
    },
}

impl SchemaFailure {
    /// The event type that failed.
    ///
    /// ```
    /// use event_bus_kafka::cli::schemas::SchemaFailure;
    /// use event_bus_core::schema::history::HistoryError;
    ///
    /// let failure = SchemaFailure::History {
    ///     event_type: "org.example.thing.created.v1".into(),
    ///     error: HistoryError::NoHistory {
    ///         event_type: "org.example.thing.created.v1".into(),
    ///         dir: "schemas/org.example.thing.created.v1".into(),
    ///     },
    /// };
    /// assert_eq!(failure.event_type(), "org.example.thing.created.v1");
    /// ```
    pub fn event_type(&self) -> &str {
        match self {
            SchemaFailure::NotRecorded { event_type, .. }
            | SchemaFailure::History { event_type, .. } => event_type,
        }
    }

    /// Whether the user must change code or commit files (exit code 1): an
    /// incompatible or unrecorded schema, or no history. Otherwise the history could
    /// not be read (exit code 3).
    ///
    /// ```
    /// use event_bus_kafka::cli::schemas::SchemaFailure;
    /// use event_bus_core::schema::history::HistoryError;
    ///
    /// let unreadable = SchemaFailure::History {
    ///     event_type: "org.example.thing.created.v1".into(),
    ///     error: HistoryError::UnexpectedFile { path: "schemas/org.example.thing.created.v1/v01.avsc".into() },
    /// };
    /// assert!(!unreadable.is_check_failure());
    /// ```
    pub fn is_check_failure(&self) -> bool {
        match self {
            SchemaFailure::NotRecorded { .. } => true,
            SchemaFailure::History { error, .. } => matches!(
                error,
                HistoryError::NoHistory { .. } | HistoryError::Incompatible { .. }
            ),
        }
    }

    /// A short name of the failure for `--output json`: `not_recorded`, `no_history`,
    /// `incompatible` or `invalid_history`.
    ///
    /// ```
    /// use event_bus_kafka::cli::schemas::SchemaFailure;
    /// let failure = SchemaFailure::NotRecorded { event_type: "t".into(), latest: "v1.avsc".into() };
    /// assert_eq!(failure.kind(), "not_recorded");
    /// ```
    pub fn kind(&self) -> &'static str {
        match self {
            SchemaFailure::NotRecorded { .. } => "not_recorded",
            SchemaFailure::History { error, .. } => match error {
                HistoryError::NoHistory { .. } => "no_history",
                HistoryError::Incompatible { .. } => "incompatible",
                _ => "invalid_history",
            },
        }
    }

    /// The compatibility issues, when the schema is incompatible.
    ///
    /// ```
    /// use event_bus_kafka::cli::schemas::SchemaFailure;
    /// let failure = SchemaFailure::NotRecorded { event_type: "t".into(), latest: "v1.avsc".into() };
    /// assert!(failure.issues().is_empty());
    /// ```
    pub fn issues(&self) -> &[CompatibilityIssue] {
        match self {
            SchemaFailure::History {
                error: HistoryError::Incompatible { issues, .. },
                ..
            } => issues,
            _ => &[],
        }
    }
}

/// What can make `event-bus schemas …` fail.
///
/// ```
/// use event_bus_kafka::cli::{exit_code, schemas::SchemasError};
///
/// let err = SchemasError::UnknownEventType {
///     event_type: "org.example.typo.v1".into(),
///     known: vec!["org.example.thing.created.v1".into()],
/// };
/// assert_eq!(err.exit_code(), exit_code::USAGE);
/// assert!(err.to_string().contains("org.example.thing.created.v1"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SchemasError {
    /// `--event-type` names a type this program does not register.
    #[error(
        "unknown event type `{event_type}` (--event-type): this program registers {}",
        list_or_none(known)
    )]
    UnknownEventType {
        /// The type asked for.
        event_type: String,
        /// The types the program registers.
        known: Vec<String>,
    },
    /// The program registers no event types at all.
    #[error(
        "this program registers no event types, so there is nothing to {command}: the \
         binary that calls the event-bus CLI must link the crate that declares the \
         #[derive(Event)] types (e.g. `use my_events as _;` in src/bin/event-bus.rs)"
    )]
    NoEventTypes {
        /// The subcommand (`generate` or `check`).
        command: &'static str,
    },
    /// Two Rust types declare the same event type name.
    #[error(
        "event type `{event_type}` is declared by more than one #[derive(Event)] type in \
         this program: each event type name must be declared once"
    )]
    DuplicateEventType {
        /// The event type.
        event_type: String,
    },
    /// Writing the results to stdout failed.
    #[error("cannot write the output: {0}")]
    Output(#[from] io::Error),
    /// Some event types failed; the others were handled.
    #[error("{}", failed_message(command, *handled, failures))]
    Failed {
        /// The subcommand (`generate` or `check`).
        command: &'static str,
        /// How many event types were handled, failed or not.
        handled: usize,
        /// Every failure, by event type.
        failures: Vec<SchemaFailure>,
    },
}

impl SchemasError {
    /// The process exit code for this error (see [`exit_code`]).
    ///
    /// ```
    /// use event_bus_kafka::cli::{exit_code, schemas::SchemasError};
    /// assert_eq!(SchemasError::NoEventTypes { command: "check" }.exit_code(), exit_code::ERROR);
    /// ```
    pub fn exit_code(&self) -> u8 {
        match self {
            SchemasError::UnknownEventType { .. } => exit_code::USAGE,
            SchemasError::NoEventTypes { .. }
            | SchemasError::DuplicateEventType { .. }
            | SchemasError::Output(_) => exit_code::ERROR,
            SchemasError::Failed { failures, .. } => {
                if failures.iter().all(SchemaFailure::is_check_failure) {
                    exit_code::CHECK_FAILED
                } else {
                    exit_code::ERROR
                }
            }
        }
    }
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_string()
    } else {
        items.join(", ")
    }
}

fn failed_message(command: &str, handled: usize, failures: &[SchemaFailure]) -> String {
    let written = if command == "generate" {
        ", and wrote nothing for them"
    } else {
        ""
    };
    let mut message = format!(
        "`event-bus schemas {command}` failed for {} of {handled} event type(s){written}:",
        failures.len()
    );
    for failure in failures {
        message.push_str("\n\n");
        message.push_str(&failure.to_string());
    }
    message
}

/// What happened to one event type.
enum Done {
    /// `generate`: the latest stored version is the current schema.
    Unchanged { version: usize, path: PathBuf },
    /// `generate`: a new version was written.
    Written { version: usize, path: PathBuf },
    /// `check`: recorded and compatible with `versions` stored versions.
    Compatible { versions: usize, path: PathBuf },
}

struct Entry {
    event_type: &'static str,
    result: Result<Done, SchemaFailure>,
}

/// Runs `event-bus schemas generate|check` for the event types this program
/// registers, writing one line per event type (or one JSON document) to `out`.
///
/// ```
/// use event_bus_kafka::cli::schemas::{run, HistoryArgs, SchemasArgs, SchemasCommand, SchemasError};
/// use event_bus_kafka::cli::OutputFormat;
///
/// let args = SchemasArgs {
///     command: SchemasCommand::Check(HistoryArgs {
///         dir: "schemas".into(),
///         event_type: Some("org.example.no.such.thing.v1".into()),
///     }),
/// };
/// let mut out = Vec::new();
/// let err = run(&args, OutputFormat::Text, &mut out).unwrap_err();
/// // This doc test declares no event types.
/// assert!(matches!(err, SchemasError::NoEventTypes { .. }));
/// ```
pub fn run(
    args: &SchemasArgs,
    format: OutputFormat,
    out: &mut dyn Write,
) -> Result<(), SchemasError> {
    let command = args.command.name();
    let HistoryArgs { dir, event_type } = args.command.args();
    let registrations = select(command, event_type.as_deref())?;
    let entries: Vec<Entry> = registrations
        .iter()
        .map(|registration| Entry {
            event_type: registration.event_type,
            result: match args.command {
                SchemasCommand::Generate(_) => generate_one(dir, registration),
                SchemasCommand::Check(_) => check_one(dir, registration),
            },
        })
        .collect();
    let unregistered = if event_type.is_none() {
        unregistered_folders(dir, &registrations)
    } else {
        Vec::new()
    };
    match format {
        OutputFormat::Text => write_text(out, &entries, &unregistered)?,
        OutputFormat::Json => write_json(out, command, dir, &entries, &unregistered)?,
    }
    let handled = entries.len();
    let failures: Vec<SchemaFailure> = entries
        .into_iter()
        .filter_map(|entry| entry.result.err())
        .collect();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(SchemasError::Failed {
            command,
            handled,
            failures,
        })
    }
}

/// The registrations to handle: all of them, or the one `--event-type` names.
fn select(
    command: &'static str,
    event_type: Option<&str>,
) -> Result<Vec<&'static EventRegistration>, SchemasError> {
    let all = EventRegistration::all();
    if all.is_empty() {
        return Err(SchemasError::NoEventTypes { command });
    }
    // `all()` is sorted by name, so duplicates are neighbours.
    if let Some(pair) = all
        .windows(2)
        .find(|pair| pair[0].event_type == pair[1].event_type)
    {
        return Err(SchemasError::DuplicateEventType {
            event_type: pair[0].event_type.to_string(),
        });
    }
    let Some(wanted) = event_type else {
        return Ok(all);
    };
    match all.iter().find(|r| r.event_type == wanted) {
        Some(registration) => Ok(vec![*registration]),
        None => Err(SchemasError::UnknownEventType {
            event_type: wanted.to_string(),
            known: all.iter().map(|r| r.event_type.to_string()).collect(),
        }),
    }
}

fn parse_current(event_type: &str, json: &Value) -> Result<Schema, HistoryError> {
    Schema::parse(json).map_err(|source| HistoryError::InvalidCurrentSchema {
        event_type: event_type.to_string(),
        source,
    })
}

fn history_failure(event_type: &str) -> impl Fn(HistoryError) -> SchemaFailure + '_ {
    move |error| SchemaFailure::History {
        event_type: event_type.to_string(),
        error,
    }
}

/// Appends a version when the schema changed compatibly.
fn generate_one(dir: &Path, registration: &EventRegistration) -> Result<Done, SchemaFailure> {
    let event_type = registration.event_type;
    let fail = history_failure(event_type);
    let json = (registration.schema_json)();
    let schema = parse_current(event_type, &json).map_err(&fail)?;
    let history = match SchemaHistory::load(dir, event_type) {
        Ok(history) => Some(history),
        Err(HistoryError::NoHistory { .. }) => None,
        Err(error) => return Err(fail(error)),
    };
    let stored = history.as_ref().map_or(0, SchemaHistory::len);
    if let Some(history) = history.as_ref().filter(|history| !history.is_empty()) {
        if let Some(latest) = history.latest().filter(|_| history.is_recorded(&schema)) {
            return Ok(Done::Unchanged {
                version: stored,
                path: latest.path.clone(),
            });
        }
        // An incompatible version could never pass `check`: refuse to record it.
        history.check(&schema).map_err(&fail)?;
    }
    match history::generate(dir, event_type, &json).map_err(&fail)? {
        history::GenerateOutcome::Written(path) => Ok(Done::Written {
            version: stored + 1,
            path,
        }),
        history::GenerateOutcome::Unchanged => {
            // Another process recorded it meanwhile: report what is stored.
            let history = SchemaHistory::load(dir, event_type).map_err(&fail)?;
            let path = history
                .latest()
                .map(|latest| latest.path.clone())
                .unwrap_or_default();
            Ok(Done::Unchanged {
                version: history.len(),
                path,
            })
        }
    }
}

/// Recorded and FULL_TRANSITIVE compatible with every stored version.
fn check_one(dir: &Path, registration: &EventRegistration) -> Result<Done, SchemaFailure> {
    let event_type = registration.event_type;
    let fail = history_failure(event_type);
    let json = (registration.schema_json)();
    let schema = parse_current(event_type, &json).map_err(&fail)?;
    let history = SchemaHistory::load(dir, event_type).map_err(&fail)?;
    history.check(&schema).map_err(&fail)?;
    let latest = history.latest().map(|latest| latest.path.clone());
    match (history.is_recorded(&schema), latest) {
        (true, Some(path)) => Ok(Done::Compatible {
            versions: history.len(),
            path,
        }),
        (_, latest) => Err(SchemaFailure::NotRecorded {
            event_type: event_type.to_string(),
            latest: latest.unwrap_or_else(|| history.dir().to_path_buf()),
        }),
    }
}

/// Folders under `dir` that no registered event type names (an event type removed
/// from the code, or a typo). Reported, not an error: consumers may still read it.
fn unregistered_folders(dir: &Path, registrations: &[&EventRegistration]) -> Vec<String> {
    let registered: BTreeSet<&str> = registrations.iter().map(|r| r.event_type).collect();
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut unregistered: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|entry| entry.path().is_dir())
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|name| !name.starts_with('.') && !registered.contains(name.as_str()))
        .collect();
    unregistered.sort();
    unregistered
}

fn write_text(
    out: &mut dyn Write,
    entries: &[Entry],
    unregistered: &[String],
) -> Result<(), io::Error> {
    for entry in entries {
        let event_type = entry.event_type;
        match &entry.result {
            Ok(Done::Unchanged { path, .. }) => {
                writeln!(out, "unchanged  {event_type}  {}", path.display())?
            }
            Ok(Done::Written { path, .. }) => {
                writeln!(out, "written    {event_type}  {}", path.display())?
            }
            Ok(Done::Compatible { versions, path }) => writeln!(
                out,
                "ok         {event_type}  {} (compatible with {versions} stored version(s))",
                path.display()
            )?,
            Err(failure) => writeln!(out, "FAILED     {event_type}  ({})", failure.kind())?,
        }
    }
    for folder in unregistered {
        writeln!(
            out,
            "note: {folder} has a schema history but no event type of this program has that name"
        )?;
    }
    Ok(())
}

fn write_json(
    out: &mut dyn Write,
    command: &str,
    dir: &Path,
    entries: &[Entry],
    unregistered: &[String],
) -> Result<(), io::Error> {
    let event_types: Vec<Value> = entries.iter().map(entry_json).collect();
    let document = json!({
        "command": format!("schemas {command}"),
        "dir": dir.display().to_string(),
        "ok": entries.iter().all(|entry| entry.result.is_ok()),
        "event_types": event_types,
        "unregistered": unregistered,
    });
    serde_json::to_writer_pretty(&mut *out, &document)?;
    writeln!(out)
}

fn entry_json(entry: &Entry) -> Value {
    let event_type = entry.event_type;
    match &entry.result {
        Ok(Done::Unchanged { version, path }) => json!({
            "event_type": event_type, "status": "unchanged",
            "version": version, "path": path.display().to_string(),
        }),
        Ok(Done::Written { version, path }) => json!({
            "event_type": event_type, "status": "written",
            "version": version, "path": path.display().to_string(),
        }),
        Ok(Done::Compatible { versions, path }) => json!({
            "event_type": event_type, "status": "ok",
            "version": versions, "path": path.display().to_string(),
        }),
        Err(failure) => {
            let issues: Vec<Value> = failure
                .issues()
                .iter()
                .map(|issue| {
                    json!({
                        "version": issue.version,
                        "direction": issue.direction.as_str(),
                        "kind": issue.kind.as_str(),
                        "field": issue.path,
                        "message": issue.message,
                    })
                })
                .collect();
            json!({
                "event_type": event_type, "status": "failed",
                "error": failure.kind(), "message": failure.to_string(),
                "issues": issues,
            })
        }
    }
}
