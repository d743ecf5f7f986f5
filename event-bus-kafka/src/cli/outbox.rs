//! `event-bus outbox status|relay`.

use std::io::Write;

use clap::Args;

use super::exit_code;
use super::CliContext;

/// Arguments of `event-bus outbox`.
#[derive(Debug, Clone, Args)]
pub struct OutboxArgs {}

/// Why `event-bus outbox` failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OutboxError {
    /// The command is not built yet.
    #[error("`event-bus outbox` is not available in this version yet")]
    NotYet,
}

impl OutboxError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        exit_code::ERROR
    }
}

/// Runs `event-bus outbox`.
pub async fn run(args: &OutboxArgs, context: &CliContext, out: &mut (dyn Write + Send)) -> Result<(), OutboxError> {
    let _ = (args, context, out);
    Err(OutboxError::NotYet)
}
