//! `event-bus produce-event` (also the `produce_event` binary).

use std::io::Write;

use clap::Args;

use super::exit_code;
use super::CliContext;

/// Arguments of `event-bus produce-event`.
#[derive(Debug, Clone, Args)]
pub struct ProduceArgs {}

/// Why `event-bus produce-event` failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProduceError {
    /// The command is not built yet.
    #[error("`event-bus produce-event` is not available in this version yet")]
    NotYet,
}

impl ProduceError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        exit_code::ERROR
    }
}

/// Runs `event-bus produce-event`.
pub async fn run(args: &ProduceArgs, context: &CliContext, out: &mut (dyn Write + Send)) -> Result<(), ProduceError> {
    let _ = (args, context, out);
    Err(ProduceError::NotYet)
}
