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

mod app;
pub mod catalog;
pub mod completions;
pub mod consume;
pub mod dev;
pub mod dlq;
pub mod exit_code;
#[cfg(any(feature = "postgres", feature = "sqlite"))]
pub mod inbox;
pub mod observability;
pub mod offsets;
#[cfg(any(feature = "postgres", feature = "sqlite"))]
pub mod outbox;
mod output;
pub mod produce;
pub mod schemas;
pub mod tail;
pub mod topics;

pub use app::{App, BoxFuture, CliContext, DevHook};
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
    /// Sends one event given as JSON and prints where it landed.
    #[command(name = "produce-event", after_help = exit_code::HELP)]
    Produce(produce::ProduceArgs),
    /// Consumes events and dispatches them to the application's receivers.
    #[command(name = "consume-events", after_help = exit_code::HELP)]
    Consume(consume::ConsumeArgs),
    /// Runs the embedded development stack (mock Kafka cluster and schema registry).
    #[command(name = "dev", after_help = exit_code::HELP)]
    Dev(dev::DevArgs),
    /// Shows or resets a consumer group's offsets.
    #[command(name = "offsets", after_help = exit_code::HELP)]
    Offsets(offsets::OffsetsArgs),
    /// Prints decoded records of a topic as JSON lines.
    #[command(name = "tail", after_help = exit_code::HELP)]
    Tail(tail::TailArgs),
    /// Shows or redrives dead-lettered records.
    #[command(name = "dlq", after_help = exit_code::HELP)]
    Dlq(dlq::DlqArgs),
    /// Shows the outbox backlog or runs its relay.
    #[cfg(any(feature = "postgres", feature = "sqlite"))]
    #[command(name = "outbox", after_help = exit_code::HELP)]
    Outbox(outbox::OutboxArgs),
    /// Shows the inbox's rows or prunes the old ones.
    #[cfg(any(feature = "postgres", feature = "sqlite"))]
    #[command(name = "inbox", after_help = exit_code::HELP)]
    Inbox(inbox::InboxArgs),
    /// Prints the shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(name = "completions", after_help = exit_code::HELP)]
    Completions(completions::CompletionsArgs),
    /// Creates the event types' topics and shows or fixes how existing ones differ.
    #[command(name = "topics", after_help = exit_code::HELP)]
    Topics(topics::TopicsArgs),
    /// Writes the event catalog: an AsyncAPI 3.0 document or one HTML page.
    #[command(name = "catalog", after_help = exit_code::HELP)]
    Catalog(catalog::CatalogArgs),
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
    /// `produce-event` failed.
    #[error(transparent)]
    Produce(#[from] produce::ProduceError),
    /// `consume-events` failed.
    #[error(transparent)]
    Consume(#[from] consume::ConsumeError),
    /// `dev` failed.
    #[error(transparent)]
    Dev(#[from] dev::DevError),
    /// `offsets` failed.
    #[error(transparent)]
    Offsets(#[from] offsets::OffsetsError),
    /// `tail` failed.
    #[error(transparent)]
    Tail(#[from] tail::TailError),
    /// `dlq` failed.
    #[error(transparent)]
    Dlq(#[from] dlq::DlqError),
    /// `outbox` failed.
    #[cfg(any(feature = "postgres", feature = "sqlite"))]
    #[error(transparent)]
    Outbox(#[from] outbox::OutboxError),
    /// `inbox` failed.
    #[cfg(any(feature = "postgres", feature = "sqlite"))]
    #[error(transparent)]
    Inbox(#[from] inbox::InboxError),
    /// `completions` failed.
    #[error(transparent)]
    Completions(#[from] completions::CompletionsError),
    /// `topics` failed or found differences.
    #[error(transparent)]
    Topics(#[from] topics::TopicsError),
    /// `catalog` failed.
    #[error(transparent)]
    Catalog(#[from] catalog::CatalogError),
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
            CliError::Produce(err) => err.exit_code(),
            CliError::Consume(err) => err.exit_code(),
            CliError::Dev(err) => err.exit_code(),
            CliError::Offsets(err) => err.exit_code(),
            CliError::Tail(err) => err.exit_code(),
            CliError::Dlq(err) => err.exit_code(),
            #[cfg(any(feature = "postgres", feature = "sqlite"))]
            CliError::Outbox(err) => err.exit_code(),
            #[cfg(any(feature = "postgres", feature = "sqlite"))]
            CliError::Inbox(err) => err.exit_code(),
            CliError::Completions(err) => err.exit_code(),
            CliError::Topics(err) => err.exit_code(),
            CliError::Catalog(err) => err.exit_code(),
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
    let context = CliContext {
        output: cli.output,
        ..CliContext::default()
    };
    run_with(cli, &context, stdout).await
}

/// Runs a parsed command line with what the application provides (its receivers, the
/// dev stack).
///
/// ```
/// use clap::Parser;
/// use event_bus_kafka::cli::{run_with, Cli, CliContext};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let cli = Cli::try_parse_from(["event-bus", "dev"]).unwrap();
/// let mut out = Vec::new();
/// // No dev stack was given, so `dev` explains how to get one.
/// assert!(run_with(cli, &CliContext::default(), &mut out).await.is_err());
/// # }
/// ```
pub async fn run_with(
    cli: Cli,
    context: &CliContext,
    stdout: &mut (dyn Write + Send),
) -> Result<(), CliError> {
    let context = CliContext {
        output: cli.output,
        ..context.clone()
    };
    match cli.command {
        Command::Schemas(args) => schemas::run(&args, cli.output, stdout)?,
        Command::Produce(args) => produce::run(&args, &context, stdout).await?,
        Command::Consume(args) => consume::run(&args, &context, stdout).await?,
        Command::Dev(args) => dev::run(&args, &context, stdout).await?,
        Command::Offsets(args) => offsets::run(&args, &context, stdout).await?,
        Command::Tail(args) => tail::run(&args, &context, stdout).await?,
        Command::Dlq(args) => dlq::run(&args, &context, stdout).await?,
        #[cfg(any(feature = "postgres", feature = "sqlite"))]
        Command::Outbox(args) => outbox::run(&args, &context, stdout).await?,
        #[cfg(any(feature = "postgres", feature = "sqlite"))]
        Command::Inbox(args) => inbox::run(&args, &context, stdout).await?,
        Command::Completions(args) => completions::run(&args, stdout)?,
        Command::Topics(args) => topics::run(&args, &context, stdout).await?,
        Command::Catalog(args) => catalog::run(&args, &context, stdout)?,
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
    run_parsed(args, CliContext::default()).await
}

/// Runs `args` with what the application gave (`context`; its output format is
/// replaced by `--output`).
pub(crate) async fn run_parsed<I, T>(args: I, context: CliContext) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match exit_code::parse_with_help(args) {
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
    let context = CliContext {
        output: cli.output,
        ..context
    };
    let mut stdout = io::stdout();
    let result = run_with(cli, &context, &mut stdout).await;
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
    App::new().main()
}
