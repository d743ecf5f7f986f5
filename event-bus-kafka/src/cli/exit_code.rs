//! The exit codes of the `event-bus` command, as `--help` lists them.
//!
//! ```
//! use event_bus_kafka::cli::exit_code;
//! assert_eq!(
//!     [exit_code::SUCCESS, exit_code::CHECK_FAILED, exit_code::USAGE, exit_code::ERROR],
//!     [0, 1, 2, 3]
//! );
//! ```

/// The command did what was asked.
///
/// ```
/// assert_eq!(event_bus_kafka::cli::exit_code::SUCCESS, 0);
/// ```
pub const SUCCESS: u8 = 0;

/// A check found something the user must fix (an incompatible or unrecorded schema, a
/// missing history), or a change was refused.
///
/// ```
/// assert_eq!(event_bus_kafka::cli::exit_code::CHECK_FAILED, 1);
/// ```
pub const CHECK_FAILED: u8 = 1;

/// The command line is wrong: an unknown flag or subcommand, a bad value, an unknown
/// event type (clap exits with 2 for the errors it finds, too).
///
/// ```
/// assert_eq!(event_bus_kafka::cli::exit_code::USAGE, 2);
/// ```
pub const USAGE: u8 = 2;

/// The command could not run: a file could not be read or written, a stored file is
/// invalid, the program registers no event types, the runtime did not start.
///
/// ```
/// assert_eq!(event_bus_kafka::cli::exit_code::ERROR, 3);
/// ```
pub const ERROR: u8 = 3;

/// `consume-events` stopped because its dead-letter topic refused a record for good
/// (authorization, a missing or invalid topic, a record too large even without its
/// value): the record and those after it stay uncommitted. Fix the topic, then restart.
///
/// ```
/// assert_eq!(event_bus_kafka::cli::exit_code::DEAD_LETTER_REFUSED, 4);
/// ```
pub const DEAD_LETTER_REFUSED: u8 = 4;

/// Parses `args` like `Cli::try_parse_from`, with [`HELP`] at the end of every
/// command's `--help`, nested subcommands (`outbox relay`, `dlq show`…) included.
pub(crate) fn parse_with_help<I, T>(args: I) -> Result<super::Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    use clap::{CommandFactory, FromArgMatches};
    let mut command = on_every_command(super::Cli::command());
    let mut matches = command.try_get_matches_from_mut(args)?;
    super::Cli::from_arg_matches_mut(&mut matches).map_err(|err| err.format(&mut command))
}

/// `command` and all its subcommands, at every depth, with [`HELP`] after their help (and
/// after their own long-help epilogue, when they have one).
fn on_every_command(command: clap::Command) -> clap::Command {
    let long = command
        .get_after_long_help()
        .map(|epilogue| format!("{epilogue}\n\n{HELP}"));
    let command = command.after_help(HELP);
    let command = match long {
        Some(long) => command.after_long_help(long),
        None => command,
    };
    command.mut_subcommands(on_every_command)
}

/// The `EXIT CODES` section of `--help`.
pub(crate) const HELP: &str = "\
Exit codes:
  0  success
  1  a check failed or a change was refused: an incompatible or unrecorded schema, a
     missing schema history, topics that differ from their declaration (topics ensure),
     no outbox or inbox table (outbox status, inbox status|prune: run outbox migrate)
  2  usage error: unknown flag or subcommand, bad value, unknown event type
  3  the command could not run: I/O error, invalid stored file, no registered event
     types
  4  consume-events: the dead-letter topic refused a record for good (fix the topic's
     access, existence or size limit, then restart; nothing was committed past it)";
