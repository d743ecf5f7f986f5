//! The `event-bus` command line, as a library.
//!
//! Type-aware commands (`schemas generate|check`) must know the application's event
//! types, so they run from the application's own binary, which calls this entry point
//! in one line. Every `#[derive(Event)]` type registers itself, so no list is needed;
//! the binary only has to link the crate that declares the events:
//!
//! ```no_run
//! // src/bin/event-bus.rs of an application
//! // use my_events as _; // the crate with the #[derive(Event)] types
//! fn main() -> std::process::ExitCode {
//!     event_bus_kafka::cli::main()
//! }
//! ```
//!
//! Then `event-bus schemas generate` records the current schemas under `schemas/` and
//! `event-bus schemas check` (in CI) fails unless every event type's schema is
//! recorded and FULL_TRANSITIVE compatible with every stored version.
//!
//! # Adding a subcommand
//!
//! One module per subcommand (`cli/<name>.rs`) holding its clap arguments, its error
//! enum (with an `exit_code()` from [`exit_code`]) and a `run` function; then one
//! variant in [`Command`], one in [`CliError`] and one arm in [`run`].

use std::ffi::OsString;
use std::io::{self, Write};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod exit_code;
mod output;
pub mod schemas;

pub use output::OutputFormat;

/// The `event-bus` command line.
///
/// ```
/// use clap::Parser;
/// use event_bus_kafka::cli::{Cli, Command, OutputFormat};
///
/// let cli = Cli::try_parse_from(["event-bus", "--output", "json", "schemas", "check"])?;
/// assert_eq!(cli.output, OutputFormat::Json);
/// assert!(matches!(cli.command, Command::Schemas(_)));
/// # Ok::<(), clap::Error>(())
/// ```
#[derive(Debug, Clone, Parser)]
#[command(
    name = "event-bus",
    version,
    about = "Event bus tools for this application: Avro schema history and more.",
    long_about = None,
    after_help = exit_code::HELP,
    propagate_version = true
)]
pub struct Cli {
    /// Output format: `text` for people, `json` for scripts (errors always go to stderr).
    #[arg(
        long,
        value_enum,
        global = true,
        default_value_t = OutputFormat::Text,
        env = "EVENT_BUS_OUTPUT"
    )]
    pub output: OutputFormat,

    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands; each lives in its own module.
///
/// ```
/// use clap::Parser;
/// use event_bus_kafka::cli::schemas::SchemasCommand;
/// use event_bus_kafka::cli::{Cli, Command};
///
/// let cli = Cli::try_parse_from(["event-bus", "schemas", "generate", "--dir", "history"])?;
/// let Command::Schemas(args) = cli.command else { panic!("schemas") };
/// let SchemasCommand::Generate(history) = args.command else { panic!("generate") };
/// assert_eq!(history.dir, std::path::PathBuf::from("history"));
/// # Ok::<(), clap::Error>(())
/// ```
#[derive(Debug, Clone, Subcommand)]
#[non_exhaustive]
pub enum Command {
    /// Record and check the committed Avro schema history of the event types.
    #[command(after_help = exit_code::HELP)]
    Schemas(schemas::SchemasArgs),
}

/// Why a command failed; [`CliError::exit_code`] says how the process exits.
///
/// ```
/// use event_bus_kafka::cli::{exit_code, schemas::SchemasError, CliError};
///
/// let err = CliError::from(SchemasError::NoEventTypes { command: "check" });
/// assert_eq!(err.exit_code(), exit_code::ERROR);
/// assert!(err.to_string().contains("registers no event types"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// `event-bus schemas …` failed.
    #[error(transparent)]
    Schemas(#[from] schemas::SchemasError),
}

impl CliError {
    /// The process exit code for this error (see [`exit_code`]).
    ///
    /// ```
    /// use event_bus_kafka::cli::{exit_code, schemas::SchemasError, CliError};
    ///
    /// let err = CliError::from(SchemasError::UnknownEventType {
    ///     event_type: "org.example.no.such.thing.v1".into(),
    ///     known: vec![],
    /// });
    /// assert_eq!(err.exit_code(), exit_code::USAGE);
    /// ```
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Schemas(err) => err.exit_code(),
        }
    }
}

/// Runs a parsed command line, writing its results to `stdout`.
///
/// ```
/// use clap::Parser;
/// use event_bus_kafka::cli::{run, Cli, CliError};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let cli = Cli::try_parse_from(["event-bus", "schemas", "check", "--dir", "/nonexistent"]).unwrap();
/// let mut out = Vec::new();
/// // This doc test registers no event types, so there is nothing to check.
/// let err = run(cli, &mut out).await.unwrap_err();
/// assert!(matches!(err, CliError::Schemas(_)));
/// # }
/// ```
pub async fn run(cli: Cli, stdout: &mut (dyn Write + Send)) -> Result<(), CliError> {
    match cli.command {
        Command::Schemas(args) => schemas::run(&args, cli.output, stdout)?,
    }
    Ok(())
}

/// Parses `args` (the program name first, as [`std::env::args_os`] gives them), runs
/// the command, prints errors to stderr and returns the exit code (see [`exit_code`]).
///
/// ```no_run
/// # #[tokio::main]
/// # async fn main() -> std::process::ExitCode {
/// event_bus_kafka::cli::run_from_args(std::env::args_os()).await
/// # }
/// ```
pub async fn run_from_args<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(err) => {
            // `--help` and `--version` arrive here too and go to stdout with code 0.
            let code = u8::try_from(err.exit_code()).unwrap_or(exit_code::USAGE);
            if let Err(print_error) = err.print() {
                eprintln!("error: cannot print the usage message: {print_error}");
            }
            return ExitCode::from(code);
        }
    };
    let mut stdout = io::stdout();
    let result = run(cli, &mut stdout).await;
    let flushed = stdout.flush();
    match (result, flushed) {
        (Ok(()), Ok(())) => ExitCode::SUCCESS,
        (Ok(()), Err(err)) => {
            eprintln!("error: cannot write the output: {err}");
            ExitCode::from(exit_code::ERROR)
        }
        (Err(err), _) => {
            eprintln!("error: {err}");
            ExitCode::from(err.exit_code())
        }
    }
}

/// The whole `main` of an application's `event-bus` binary: starts a tokio runtime,
/// runs the command line of this process and returns its exit code.
///
/// ```no_run
/// fn main() -> std::process::ExitCode {
///     event_bus_kafka::cli::main()
/// }
/// ```
pub fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the tokio runtime: {err}");
            return ExitCode::from(exit_code::ERROR);
        }
    };
    runtime.block_on(run_from_args(std::env::args_os()))
}
