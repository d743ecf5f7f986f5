//! `event-bus dlq show|redrive`: the records of a dead-letter topic, and sending them
//! back to the topic they came from.
//!
//! The consumer writes a record it cannot handle to `{topic}.dlq` with its original
//! key, value and headers, plus `dlq_*` headers saying where it came from and why
//! (see [`crate::consumer::dlq::headers`]).
//!
//! - `show` lists them with those headers.
//! - `redrive` republishes key, value and original headers (without `dlq_*`) to the
//!   topic named by `dlq_original_topic`. With `--receivers-only` it adds
//!   `redrive_receivers` = the receivers that failed, and the consumer then runs only
//!   those for that record (the others already handled it). It is a dry run unless
//!   `--execute` is given. It reads the dead-letter topic from its start each time,
//!   so run it once per incident (or with `--max`).
//!
//! ```text
//! event-bus dlq show --topic user-login.dlq
//! event-bus dlq redrive --topic user-login.dlq --receivers-only            # the plan
//! event-bus dlq redrive --topic user-login.dlq --receivers-only --execute  # do it
//! ```
//!
//! ```
//! use clap::Parser;
//! use event_bus_kafka::cli::dlq::DlqCommand;
//! use event_bus_kafka::cli::{Cli, Command};
//! let cli = Cli::try_parse_from(["event-bus", "dlq", "redrive", "--topic", "orders.dlq", "--receivers-only"])?;
//! let Command::Dlq(args) = cli.command else { panic!("dlq") };
//! let DlqCommand::Redrive(redrive) = args.command else { panic!("redrive") };
//! assert!(redrive.receivers_only && !redrive.execute);
//! # Ok::<(), clap::Error>(())
//! ```

mod reader;
mod redrive;
mod show;

use std::io::{self, Write};

use clap::{Args, Subcommand};

use super::exit_code;
use super::produce::ConnectionArgs;
use super::CliContext;
use crate::config::ConfigError;
use crate::replay::ReplayError;

/// Arguments of `event-bus dlq`.
///
/// See the [module example](self).
#[derive(Debug, Clone, Args)]
pub struct DlqArgs {
    /// What to do with the dead letters.
    #[command(subcommand)]
    pub command: DlqCommand,
}

/// `show` or `redrive`.
///
/// See the [module example](self).
#[derive(Debug, Clone, Subcommand)]
pub enum DlqCommand {
    /// List the records of a dead-letter topic with their DLQ headers.
    #[command(after_help = exit_code::HELP)]
    Show(ShowArgs),
    /// Republish dead letters to their original topic; a dry run without --execute.
    ///
    /// Key, value and the original headers are sent again (the `dlq_*` headers are
    /// dropped) to the topic in `dlq_original_topic`. With --receivers-only the record
    /// carries `redrive_receivers` = the receivers that failed, and consumers run only
    /// those. Fix the cause of the failure first.
    #[command(after_help = exit_code::HELP)]
    Redrive(RedriveArgs),
}

/// Arguments of `event-bus dlq show`.
///
/// ```
/// use clap::Parser;
/// use event_bus_kafka::cli::{Cli, Command, dlq::DlqCommand};
/// let cli = Cli::try_parse_from(["event-bus", "dlq", "show", "--topic", "t.dlq", "--max", "10"])?;
/// let Command::Dlq(args) = cli.command else { panic!() };
/// let DlqCommand::Show(show) = args.command else { panic!() };
/// assert_eq!(show.max, Some(10));
/// # Ok::<(), clap::Error>(())
/// ```
#[derive(Debug, Clone, Args)]
pub struct ShowArgs {
    /// The dead-letter topic (e.g. `orders.dlq`), before the prefix
    /// ($EVENT_BUS_TOPIC_PREFIX) is applied.
    #[arg(long, value_name = "TOPIC")]
    pub topic: String,

    /// Show at most this many records.
    #[arg(long, value_name = "N")]
    pub max: Option<usize>,

    /// Broker overrides.
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

/// Arguments of `event-bus dlq redrive`.
///
/// See the [module example](self).
#[derive(Debug, Clone, Args)]
pub struct RedriveArgs {
    /// The dead-letter topic (e.g. `orders.dlq`), before the prefix
    /// ($EVENT_BUS_TOPIC_PREFIX) is applied.
    #[arg(long, value_name = "TOPIC")]
    pub topic: String,

    /// Run only the receivers that failed (from `dlq_failed_receivers`) when the
    /// record is consumed again; records that failed before reaching any receiver
    /// (undecodable…) go to all receivers.
    #[arg(long)]
    pub receivers_only: bool,

    /// Republish (without it, only the plan is printed).
    #[arg(long)]
    pub execute: bool,

    /// Redrive at most this many records (the oldest first, per partition).
    #[arg(long, value_name = "N")]
    pub max: Option<usize>,

    /// Broker overrides.
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

/// Why `event-bus dlq` failed.
///
/// ```
/// use event_bus_kafka::cli::{dlq::DlqError, exit_code};
/// let err = DlqError::NotRedriven { skipped: 2, redriven: 5 };
/// assert_eq!(err.exit_code(), exit_code::CHECK_FAILED);
/// assert!(err.to_string().contains("dlq_original_topic"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DlqError {
    /// The broker settings are missing or invalid.
    #[error("{0}; or pass --bootstrap-servers")]
    Config(#[from] ConfigError),
    /// The topic or its offsets could not be read.
    #[error(transparent)]
    Offsets(#[from] ReplayError),
    /// A Kafka client call failed.
    #[error("{operation} failed: {source}; check the brokers and EVENT_BUS_KAFKA_* options")]
    Kafka {
        /// What was being done.
        operation: &'static str,
        /// librdkafka's error.
        #[source]
        source: Box<rdkafka::error::KafkaError>,
    },
    /// Republishing a record failed; the ones before it were sent.
    #[error(
        "republishing dead letter {dlq_topic}[{partition}]@{offset} to `{target}` failed: \
         {source}; {sent} record(s) before it were sent. Fix the cause and run the redrive \
         again with --max to skip nothing (records already sent would be sent twice: \
         consumers deduplicate on ce_id)"
    )]
    Send {
        /// The dead-letter topic.
        dlq_topic: String,
        /// The record's partition there.
        partition: i32,
        /// Its offset there.
        offset: i64,
        /// The topic it was sent to.
        target: String,
        /// How many were sent before it.
        sent: usize,
        /// librdkafka's error.
        #[source]
        source: Box<rdkafka::error::KafkaError>,
    },
    /// Some records have no `dlq_original_topic` header, so they were not redriven.
    #[error(
        "{skipped} record(s) have no dlq_original_topic header and were not redriven \
         ({redriven} were); they were not written by this SDK's consumer: republish them by hand"
    )]
    NotRedriven {
        /// Records without a target.
        skipped: usize,
        /// Records redriven (or, in a dry run, that would be).
        redriven: usize,
    },
    /// A background task died.
    #[error("reading the dead-letter topic was interrupted ({0}); run the command again")]
    Interrupted(String),
    /// The output could not be written.
    #[error("cannot write the output: {0}")]
    Output(#[from] io::Error),
}

impl DlqError {
    /// The process exit code: [`exit_code::CHECK_FAILED`] when some records could not
    /// be redriven, [`exit_code::USAGE`] for missing settings or an unknown topic,
    /// [`exit_code::ERROR`] otherwise.
    ///
    /// See the type's example.
    pub fn exit_code(&self) -> u8 {
        match self {
            DlqError::NotRedriven { .. } => exit_code::CHECK_FAILED,
            DlqError::Config(_) => exit_code::USAGE,
            DlqError::Offsets(err) if err.is_usage() => exit_code::USAGE,
            _ => exit_code::ERROR,
        }
    }
}

/// Runs `event-bus dlq show|redrive`.
///
/// ```no_run
/// use clap::Parser;
/// use event_bus_kafka::cli::{run_with, Cli, CliContext};
/// # async fn demo() -> Result<(), event_bus_kafka::cli::CliError> {
/// let cli = Cli::try_parse_from(["event-bus", "dlq", "show", "--topic", "orders.dlq"]).expect("flags");
/// run_with(cli, &CliContext::default(), &mut std::io::stdout()).await?;
/// # Ok(()) }
/// ```
pub async fn run(
    args: &DlqArgs,
    context: &CliContext,
    out: &mut (dyn Write + Send),
) -> Result<(), DlqError> {
    match &args.command {
        DlqCommand::Show(show) => show::run(show, context.output, out).await,
        DlqCommand::Redrive(redrive) => redrive::run(redrive, context.output, out).await,
    }
}
