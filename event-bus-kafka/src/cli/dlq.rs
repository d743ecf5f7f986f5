//! `event-bus dlq show|redrive`.

use std::io::Write;

use clap::Args;

use super::exit_code;
use super::CliContext;

/// Arguments of `event-bus dlq`.
#[derive(Debug, Clone, Args)]
pub struct DlqArgs {}

/// Why `event-bus dlq` failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DlqError {
    /// The command is not built yet.
    #[error("`event-bus dlq` is not available in this version yet")]
    NotYet,
}

impl DlqError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        exit_code::ERROR
    }
}

/// Runs `event-bus dlq`.
pub async fn run(args: &DlqArgs, context: &CliContext, out: &mut (dyn Write + Send)) -> Result<(), DlqError> {
    let _ = (args, context, out);
    Err(DlqError::NotYet)
}
