//! `event-bus dev`: hands over to the application's dev-stack hook.

use std::io::Write;

use clap::Args;

use super::exit_code;
use super::CliContext;

/// Arguments of `event-bus dev`.
#[derive(Debug, Clone, Args)]
pub struct DevArgs {}

/// Why `event-bus dev` failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DevError {
    /// The command is not built yet.
    #[error("`event-bus dev` is not available in this version yet")]
    NotYet,
}

impl DevError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        exit_code::ERROR
    }
}

/// Runs `event-bus dev`.
pub async fn run(args: &DevArgs, context: &CliContext, out: &mut (dyn Write + Send)) -> Result<(), DevError> {
    let _ = (args, context, out);
    Err(DevError::NotYet)
}
