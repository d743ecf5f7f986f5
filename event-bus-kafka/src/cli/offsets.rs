//! `event-bus offsets show|reset`.

use std::io::Write;

use clap::Args;

use super::exit_code;
use super::CliContext;

/// Arguments of `event-bus offsets`.
#[derive(Debug, Clone, Args)]
pub struct OffsetsArgs {}

/// Why `event-bus offsets` failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OffsetsError {
    /// The command is not built yet.
    #[error("`event-bus offsets` is not available in this version yet")]
    NotYet,
}

impl OffsetsError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        exit_code::ERROR
    }
}

/// Runs `event-bus offsets`.
pub async fn run(args: &OffsetsArgs, context: &CliContext, out: &mut (dyn Write + Send)) -> Result<(), OffsetsError> {
    let _ = (args, context, out);
    Err(OffsetsError::NotYet)
}
