//! `event-bus catalog`: the event catalog of the application, as an AsyncAPI 3.0
//! document (default) or as one self-contained HTML page (`--format html`).
//!
//! It reads only the program and the committed schema history, never Kafka or the
//! registry:
//! - every event type the binary registers (`#[derive(Event)]`), with its topic (the
//!   `--topic-prefix` applied), key, CloudEvents headers and current Avro schema;
//! - the operations of this binary: **send** for the types it declares with
//!   [`App::with_produced`](super::App::with_produced) (which types a binary sends
//!   cannot be seen from its code otherwise: `produce-event` can send any registered
//!   type), **receive** for the types its bus has receivers for, with their names;
//! - for the HTML page, the history under `schemas/` and what changed per version.
//!
//! ```no_run
//! use clap::Parser;
//! use event_bus_kafka::cli::{run, Cli};
//!
//! # async fn demo() -> Result<(), event_bus_kafka::cli::CliError> {
//! let cli = Cli::try_parse_from(["event-bus", "catalog", "--format", "html", "--out", "catalog.html"])
//!     .expect("valid flags");
//! run(cli, &mut std::io::stdout()).await?;
//! # Ok(()) }
//! ```

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use event_bus_core::schema::history::{HistoryError, DEFAULT_SCHEMAS_DIR};
use event_bus_core::EventRegistration;

use super::exit_code;
use super::CliContext;

mod asyncapi;
mod fields;
mod history;
mod html;
mod model;
mod wire;

/// The formats `catalog` writes.
///
/// ```
/// use clap::ValueEnum;
/// use event_bus_kafka::cli::catalog::CatalogFormat;
/// assert_eq!(CatalogFormat::default(), CatalogFormat::Asyncapi);
/// assert_eq!(CatalogFormat::from_str("html", false), Ok(CatalogFormat::Html));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum CatalogFormat {
    /// An AsyncAPI 3.0 document, JSON.
    #[default]
    Asyncapi,
    /// One self-contained HTML page.
    Html,
}

/// `event-bus catalog`.
///
/// ```
/// use clap::Parser;
/// use event_bus_kafka::cli::catalog::{CatalogArgs, CatalogFormat};
///
/// #[derive(Parser)]
/// struct Wrapper {
///     #[command(flatten)]
///     catalog: CatalogArgs,
/// }
/// let parsed = Wrapper::try_parse_from(["x", "--format", "html", "--topic-prefix", "prod"])?;
/// assert_eq!(parsed.catalog.format, CatalogFormat::Html);
/// assert_eq!(parsed.catalog.topic_prefix.as_deref(), Some("prod"));
/// # Ok::<(), clap::Error>(())
/// ```
#[derive(Debug, Clone, clap::Args)]
pub struct CatalogArgs {
    /// What to write: an AsyncAPI 3.0 document (JSON) or one HTML page.
    #[arg(long, value_enum, default_value_t = CatalogFormat::Asyncapi)]
    pub format: CatalogFormat,

    /// The schema history root: one folder per event type, one `v<N>.avsc` per version.
    #[arg(
        long,
        value_name = "DIR",
        default_value = DEFAULT_SCHEMAS_DIR,
        env = "EVENT_BUS_SCHEMAS_DIR"
    )]
    pub dir: PathBuf,

    /// The topic prefix of the environment described (topics become `{prefix}-{topic}`).
    #[arg(long, value_name = "PREFIX", env = "EVENT_BUS_TOPIC_PREFIX")]
    pub topic_prefix: Option<String>,

    /// The document's title.
    #[arg(long, value_name = "TEXT", default_value = "Event catalog")]
    pub title: String,

    /// The version of the application described, e.g. `$(git describe)`.
    #[arg(long, value_name = "VERSION", default_value = "unversioned")]
    pub app_version: String,

    /// Write to this file instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// What can make `event-bus catalog` fail.
///
/// ```
/// use event_bus_kafka::cli::{catalog::CatalogError, exit_code};
/// let err = CatalogError::NoEventTypes;
/// assert_eq!(err.exit_code(), exit_code::ERROR);
/// assert!(err.to_string().contains("link the crate"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogError {
    /// The program registers no event types.
    #[error(
        "this program registers no event types, so the catalog would be empty: the binary \
         that calls the event-bus CLI must link the crate that declares the \
         #[derive(Event)] types (e.g. `use my_events as _;`)"
    )]
    NoEventTypes,
    /// The code's schema of an event type does not parse.
    #[error("the Avro schema of `{event_type}` in the code is invalid: {source}")]
    InvalidSchema {
        /// The event type.
        event_type: String,
        /// What apache-avro reported.
        #[source]
        source: event_bus_core::apache_avro::Error,
    },
    /// The committed history of an event type cannot be read.
    #[error(
        "cannot read the schema history of `{event_type}`: {error} (fix or remove the \
         file; `event-bus schemas check` reports the same)"
    )]
    History {
        /// The event type.
        event_type: String,
        /// What reading it found.
        #[source]
        error: HistoryError,
    },
    /// The document could not be written.
    #[error("cannot write the catalog to {target}: {source}")]
    Write {
        /// `stdout` or the file.
        target: String,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

impl CatalogError {
    /// The process exit code for this error (see [`exit_code`]): always
    /// [`exit_code::ERROR`], the command could not run.
    ///
    /// See the type's example.
    pub fn exit_code(&self) -> u8 {
        exit_code::ERROR
    }
}

/// Runs `event-bus catalog`, writing the document to `--out` or `stdout`.
///
/// ```
/// use clap::Parser;
/// use event_bus_kafka::cli::catalog::{run, CatalogArgs, CatalogError};
/// use event_bus_kafka::cli::CliContext;
///
/// #[derive(Parser)]
/// struct Wrapper {
///     #[command(flatten)]
///     catalog: CatalogArgs,
/// }
/// let args = Wrapper::try_parse_from(["x"]).unwrap().catalog;
/// let mut out = Vec::new();
/// // This doc test declares no event types.
/// let err = run(&args, &CliContext::default(), &mut out).unwrap_err();
/// assert!(matches!(err, CatalogError::NoEventTypes));
/// ```
pub fn run(
    args: &CatalogArgs,
    context: &CliContext,
    stdout: &mut dyn Write,
) -> Result<(), CatalogError> {
    let registrations = EventRegistration::all();
    if registrations.is_empty() {
        return Err(CatalogError::NoEventTypes);
    }
    let sources = model::Sources {
        schemas_dir: &args.dir,
        topic_prefix: args.topic_prefix.as_deref(),
        bus: context.bus.as_deref(),
        produced: &context.produced,
    };
    let catalog = model::gather(
        &registrations,
        &sources,
        args.title.clone(),
        args.app_version.clone(),
    )?;
    let text = match args.format {
        CatalogFormat::Asyncapi => pretty_json(&asyncapi::document(&catalog)) + "\n",
        CatalogFormat::Html => html::page(&catalog),
    };
    match &args.out {
        Some(path) => write_file(path, &text),
        None => stdout
            .write_all(text.as_bytes())
            .map_err(|source| CatalogError::Write {
                target: "stdout".into(),
                source,
            }),
    }
}

/// Indented JSON (a `Value` always serializes; the compact form is the fallback).
fn pretty_json(json: &serde_json::Value) -> String {
    serde_json::to_string_pretty(json).unwrap_or_else(|_| json.to_string())
}

fn write_file(path: &Path, text: &str) -> Result<(), CatalogError> {
    std::fs::write(path, text).map_err(|source| CatalogError::Write {
        target: path.display().to_string(),
        source,
    })
}
