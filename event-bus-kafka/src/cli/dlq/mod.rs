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
//!   `redrive_receivers` = the receivers that failed and `dlq_redrive_group` = the
//!   group they failed in: a consumer of that group then runs only those receivers
//!   for the record (the others already handled it), consumers of other groups run
//!   all of theirs. The dry run (without `--execute`) says which groups will see each
//!   record again.
//!
//! Which topic: `--topic` (before the prefix), `--dlq-topic` (a full name, as the
//! consumer's flag), `--for-topic` (the consumed topic: its dead-letter topic as the
//! consumer names it), else `$EVENT_BUS_CONSUMER_DLQ_TOPIC` — the same setting the
//! consumer reads (see [`DlqTopic::from_env_source`]).
//!
//! Which records: per partition (`--partition`, repeatable), an offset range
//! (`--from-offset`, `--to-offset`, inclusive) and a time range (`--since`,
//! `--until`, RFC 3339); reading seeks to the start of the range. `--limit` reads a
//! page of that many records and prints where the next page starts, per partition, as
//! `--start PARTITION:OFFSET` arguments to add to the same command. A progress bar
//! shows on stderr for text output on a terminal.
//!
//! ```text
//! event-bus dlq show --for-topic user-login
//! event-bus dlq show --topic user-login.dlq --partition 0 --from-offset 100 --limit 50
//! event-bus dlq redrive --topic user-login.dlq --since 2024-05-01T12:00:00Z --receivers-only            # the plan
//! event-bus dlq redrive --topic user-login.dlq --since 2024-05-01T12:00:00Z --receivers-only --execute  # do it
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

mod groups;
mod paging;
mod progress;
mod reader;
mod redrive;
mod show;

use std::io::{self, Write};

use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};

use super::exit_code;
use super::produce::ConnectionArgs;
use super::CliContext;
use crate::config::{ConfigError, EnvSource};
use crate::consumer::DlqTopic;
use crate::replay::ReplayError;

pub use paging::StartAt;

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
    /// carries `redrive_receivers` = the receivers that failed and `dlq_redrive_group`
    /// = their group: that group runs only those, every other group consuming the
    /// topic runs all its receivers (the dry run lists them). Fix the cause of the
    /// failure first.
    #[command(after_help = exit_code::HELP)]
    Redrive(RedriveArgs),
}

/// Which dead-letter topic, and which of its records: shared by `show` and
/// `redrive`.
///
/// ```
/// use clap::Parser;
/// use event_bus_kafka::cli::{Cli, Command, dlq::DlqCommand};
/// let cli = Cli::try_parse_from([
///     "event-bus", "dlq", "show", "--for-topic", "orders", "--partition", "0",
///     "--from-offset", "10", "--since", "2024-05-01T12:00:00Z", "--limit", "50",
/// ])?;
/// let Command::Dlq(args) = cli.command else { panic!() };
/// let DlqCommand::Show(show) = args.command else { panic!() };
/// assert_eq!(show.select.partitions, [0]);
/// assert_eq!(show.select.limit, Some(50));
/// # Ok::<(), clap::Error>(())
/// ```
#[derive(Debug, Clone, Args)]
pub struct Selection {
    /// The dead-letter topic (e.g. `orders.dlq`), before the prefix
    /// ($EVENT_BUS_TOPIC_PREFIX) is applied.
    #[arg(long, value_name = "TOPIC", conflicts_with_all = ["dlq_topic", "for_topic"])]
    pub topic: Option<String>,

    /// The dead-letter topic's full name, no prefix applied, as the consumer's
    /// `--dlq-topic` [default: $EVENT_BUS_CONSUMER_DLQ_TOPIC].
    #[arg(long, value_name = "TOPIC", conflicts_with = "for_topic")]
    pub dlq_topic: Option<String>,

    /// The consumed topic (before the prefix) whose dead letters to read: its
    /// dead-letter topic as the consumer names it ($EVENT_BUS_CONSUMER_DLQ_TOPIC when
    /// set, else `{prefix}-{topic}.dlq`).
    #[arg(long, value_name = "TOPIC")]
    pub for_topic: Option<String>,

    /// Only this partition of the dead-letter topic; repeat for several [default: all].
    #[arg(long = "partition", value_name = "N")]
    pub partitions: Vec<i32>,

    /// Only records at this offset or later (in each selected partition).
    #[arg(long, value_name = "OFFSET", value_parser = clap::value_parser!(i64).range(0..))]
    pub from_offset: Option<i64>,

    /// Only records at this offset or earlier (in each selected partition).
    #[arg(long, value_name = "OFFSET", value_parser = clap::value_parser!(i64).range(0..))]
    pub to_offset: Option<i64>,

    /// Only records dead-lettered at or after this time (RFC 3339, e.g.
    /// 2024-05-01T12:00:00Z); reading starts at the first such offset.
    #[arg(long, value_name = "TIME", value_parser = super::consume::parse_time)]
    pub since: Option<DateTime<Utc>>,

    /// Only records dead-lettered before this time (RFC 3339).
    #[arg(long, value_name = "TIME", value_parser = super::consume::parse_time)]
    pub until: Option<DateTime<Utc>>,

    /// Read at most this many records (the oldest first, partition by partition); the
    /// output says where the next page starts, as `--start` arguments.
    #[arg(long, visible_alias = "max", value_name = "N")]
    pub limit: Option<usize>,

    /// Start partition PARTITION at OFFSET (or at the range's start, if later);
    /// repeatable. Partitions not named start at the range's start. The next-page hint
    /// of a page cut by --limit gives these: add them to the same command.
    #[arg(long = "start", value_name = "PARTITION:OFFSET", value_parser = paging::parse_start)]
    pub starts: Vec<StartAt>,
}

impl Selection {
    /// The full name of the dead-letter topic: `--dlq-topic`, `--topic` with the
    /// prefix, `--for-topic`'s dead-letter topic, or `$EVENT_BUS_CONSUMER_DLQ_TOPIC`;
    /// the consumer computes it the same way ([`DlqTopic`]).
    ///
    /// ```
    /// use clap::Parser;
    /// use event_bus_kafka::cli::{Cli, Command, dlq::DlqCommand};
    /// use event_bus_kafka::config::EnvSource;
    /// let env = EnvSource::from_pairs([("EVENT_BUS_TOPIC_PREFIX", "prod")]);
    /// let cli = Cli::try_parse_from(["event-bus", "dlq", "show", "--for-topic", "orders"])?;
    /// let Command::Dlq(args) = cli.command else { panic!() };
    /// let DlqCommand::Show(show) = args.command else { panic!() };
    /// assert_eq!(show.select.dlq_topic_name(&env).unwrap(), "prod-orders.dlq");
    /// # Ok::<(), clap::Error>(())
    /// ```
    pub fn dlq_topic_name(&self, env: &EnvSource) -> Result<String, DlqError> {
        if let Some(name) = &self.dlq_topic {
            return Ok(name.clone());
        }
        if let Some(name) = &self.topic {
            return Ok(super::offsets::full_topic(env, name));
        }
        if let Some(source) = &self.for_topic {
            return Ok(DlqTopic::of_source_topic(env, source));
        }
        match DlqTopic::from_env_source(env) {
            DlqTopic::Fixed(name) => Ok(name),
            DlqTopic::Suffix(_) => Err(DlqError::NoTopic),
        }
    }
}

/// Arguments of `event-bus dlq show`.
///
/// ```
/// use clap::Parser;
/// use event_bus_kafka::cli::{Cli, Command, dlq::DlqCommand};
/// let cli = Cli::try_parse_from(["event-bus", "dlq", "show", "--topic", "t.dlq", "--max", "10"])?;
/// let Command::Dlq(args) = cli.command else { panic!() };
/// let DlqCommand::Show(show) = args.command else { panic!() };
/// assert_eq!(show.select.limit, Some(10));
/// # Ok::<(), clap::Error>(())
/// ```
#[derive(Debug, Clone, Args)]
pub struct ShowArgs {
    /// The topic and the records.
    #[command(flatten)]
    pub select: Selection,

    /// Broker overrides.
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

/// Arguments of `event-bus dlq redrive`.
///
/// See the [module example](self).
#[derive(Debug, Clone, Args)]
pub struct RedriveArgs {
    /// The topic and the records.
    #[command(flatten)]
    pub select: Selection,

    /// Run only the receivers that failed (from `dlq_failed_receivers`), and only in
    /// the group they failed in (`dlq_consumer_group`), when the record is consumed
    /// again; other groups run all their receivers. Records that failed before
    /// reaching any receiver (undecodable…) go to all receivers.
    #[arg(long)]
    pub receivers_only: bool,

    /// Republish (without it, only the plan is printed).
    #[arg(long)]
    pub execute: bool,

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
         again from it (--partition {partition} --from-offset {offset}), so the records \
         already sent are not sent twice"
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
    /// No dead-letter topic was named.
    #[error(
        "which dead-letter topic? Pass --topic (before the prefix), --dlq-topic (a full \
         name), --for-topic (the consumed topic), or set EVENT_BUS_CONSUMER_DLQ_TOPIC as \
         the consumer has it"
    )]
    NoTopic,
    /// A `--partition` the dead-letter topic does not have.
    #[error("the dead-letter topic `{topic}` has no partition {partition} (it has {count}); check --partition")]
    NoPartition {
        /// The dead-letter topic.
        topic: String,
        /// The partition asked for.
        partition: i32,
        /// How many it has.
        count: usize,
    },
    /// Some records were not redriven: they have no `dlq_original_topic` header, or
    /// they are stubs whose value was dropped (`dlq_value_dropped`).
    #[error(
        "{skipped} record(s) were not redriven ({redriven} were), see their SKIPPED lines: \
         those without a dlq_original_topic header were not written by this SDK's consumer \
         (republish them by hand); those whose value was dropped as too large for the \
         dead-letter topic must be copied from the original topic at the offset shown"
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
            DlqError::Config(_) | DlqError::NoTopic | DlqError::NoPartition { .. } => {
                exit_code::USAGE
            }
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
