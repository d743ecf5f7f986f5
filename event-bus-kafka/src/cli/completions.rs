//! `event-bus completions bash|zsh|fish|elvish|powershell`: the shell's completion
//! script for this command line (subcommands, flags and their values), printed to stdout.
//!
//! ```
//! use clap::Parser;
//! use event_bus_kafka::cli::{completions, Cli, Command};
//! let cli = Cli::try_parse_from(["event-bus", "completions", "zsh"])?;
//! let Command::Completions(args) = cli.command else { panic!("completions") };
//! assert_eq!(args.shell, completions::Shell::Zsh);
//! # Ok::<(), clap::Error>(())
//! ```

use std::io::{self, Write};

use clap::{Args, CommandFactory};

pub use clap_complete::Shell;

use super::exit_code;
use super::Cli;

/// Arguments of `event-bus completions`.
///
/// See the [module example](self).
#[derive(Debug, Clone, Args)]
#[command(after_long_help = INSTALL)]
pub struct CompletionsArgs {
    /// The shell to write the completion script for.
    #[arg(value_enum)]
    pub shell: Shell,

    /// The program name the script completes [default: this program's file name].
    ///
    /// The application's own binary may not be called `event-bus`: completions are
    /// registered for the name the shell sees.
    #[arg(long, value_name = "NAME")]
    pub bin_name: Option<String>,
}

/// Where each shell looks for completion scripts (`--help` shows it).
const INSTALL: &str = "\
Install the script where the shell looks for it, for example:
  bash: event-bus completions bash > ~/.local/share/bash-completion/completions/event-bus
  zsh:  event-bus completions zsh > \"${fpath[1]}/_event-bus\"   (then restart zsh)
  fish: event-bus completions fish > ~/.config/fish/completions/event-bus.fish
  PowerShell: event-bus completions powershell >> $PROFILE
Use the application's binary name instead of event-bus where it differs.";

/// Why `event-bus completions` failed.
///
/// ```
/// use event_bus_kafka::cli::{completions::CompletionsError, exit_code};
/// let err = CompletionsError::Output(std::io::Error::other("closed"));
/// assert_eq!(err.exit_code(), exit_code::ERROR);
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CompletionsError {
    /// The script could not be written.
    #[error("cannot write the completion script: {0}")]
    Output(#[from] io::Error),
}

impl CompletionsError {
    /// The process exit code: [`exit_code::ERROR`].
    ///
    /// See the type's example.
    pub fn exit_code(&self) -> u8 {
        exit_code::ERROR
    }
}

/// Writes the completion script of `args.shell` for the `event-bus` command line to
/// `out`.
///
/// # Errors
///
/// [`CompletionsError::Output`] when `out` refuses it.
///
/// ```
/// use clap::Parser;
/// use event_bus_kafka::cli::{completions, Cli, Command};
/// let cli = Cli::try_parse_from(["event-bus", "completions", "bash", "--bin-name", "my-app"])?;
/// let Command::Completions(args) = cli.command else { panic!("completions") };
/// let mut script = Vec::new();
/// completions::run(&args, &mut script)?;
/// let script = String::from_utf8(script)?;
/// assert!(script.contains("consume-events") && script.contains("my-app"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn run(args: &CompletionsArgs, out: &mut (dyn Write + Send)) -> Result<(), CompletionsError> {
    let bin_name = args.bin_name.clone().unwrap_or_else(program_name);
    // Generated into memory first: clap_complete panics when its writer fails.
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), &bin_name, &mut script);
    if args.shell == Shell::Bash {
        script = bash_with_hyphen_fix(&script, &bin_name);
    }
    out.write_all(&script)?;
    out.flush()?;
    Ok(())
}

/// Works around clap_complete's bash script for a program name with a hyphen (clap
/// issue 6421, still in 4.6.12): the loop that walks the typed words names the state of
/// `event-bus outbox` `event__bus__subcmd__outbox`, but the case arms holding each
/// subcommand's flags are labelled `event__subcmd__bus__subcmd__outbox`, so nothing past
/// the first word completes. The arms are relabelled the loop's way; with no hyphen in
/// the name, or once clap fixes it, there is nothing to replace.
fn bash_with_hyphen_fix(script: &[u8], bin_name: &str) -> Vec<u8> {
    let text = String::from_utf8_lossy(script);
    let wrong = format!("{}__subcmd__", bin_name.replace('-', "__subcmd__"));
    let right = format!("{}__subcmd__", bin_name.replace('-', "__"));
    text.replace(&wrong, &right).into_bytes()
}

/// This program's file name, as the shell would complete it.
fn program_name() -> String {
    std::env::args_os()
        .next()
        .as_deref()
        .map(std::path::Path::new)
        .and_then(std::path::Path::file_name)
        .and_then(|name| name.to_str())
        .map_or_else(|| "event-bus".to_owned(), str::to_owned)
}
