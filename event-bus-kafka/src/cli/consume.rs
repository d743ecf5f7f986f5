//! `event-bus consume-events` (also the `consume_events` binary).

use std::io::Write;

use clap::Args;

use super::exit_code;
use super::CliContext;

/// Arguments of `event-bus consume-events`.
#[derive(Debug, Clone, Args)]
pub struct ConsumeArgs {}

/// Why `event-bus consume-events` failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConsumeError {
    /// The command is not built yet.
    #[error("`event-bus consume-events` is not available in this version yet")]
    NotYet,
}

impl ConsumeError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        exit_code::ERROR
    }
}

/// Runs `event-bus consume-events`.
pub async fn run(args: &ConsumeArgs, context: &CliContext, out: &mut (dyn Write + Send)) -> Result<(), ConsumeError> {
    let _ = (args, context, out);
    Err(ConsumeError::NotYet)
}
