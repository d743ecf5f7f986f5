//! `event-bus tail`.

use std::io::Write;

use clap::Args;

use super::exit_code;
use super::CliContext;

/// Arguments of `event-bus tail`.
#[derive(Debug, Clone, Args)]
pub struct TailArgs {}

/// Why `event-bus tail` failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TailError {
    /// The command is not built yet.
    #[error("`event-bus tail` is not available in this version yet")]
    NotYet,
}

impl TailError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        exit_code::ERROR
    }
}

/// Runs `event-bus tail`.
pub async fn run(args: &TailArgs, context: &CliContext, out: &mut (dyn Write + Send)) -> Result<(), TailError> {
    let _ = (args, context, out);
    Err(TailError::NotYet)
}
