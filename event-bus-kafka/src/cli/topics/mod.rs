//! `event-bus topics ensure`: creates the topics the application's event types need
//! and shows where existing ones differ from what they declare; with `--execute`,
//! makes the changes Kafka allows and says why it refuses the others.
//!
//! ```text
//! event-bus topics ensure                      # the plan (dry run); exit code 1 if anything differs
//! event-bus topics ensure --execute            # create, add partitions, set configs
//! event-bus topics ensure --topic orders --no-dlq
//! ```
//!
//! The topics are those of every registered event type (prefix applied), each with
//! the settings its types declare in `#[event(topic_settings(...))]` over the defaults
//! `EVENT_BUS_TOPIC_PARTITIONS`, `EVENT_BUS_TOPIC_REPLICATION_FACTOR` and
//! `EVENT_BUS_TOPIC_CONFIG_<NAME>`; and each one's dead-letter topic, named as
//! `consume-events` names it (`{topic}.dlq`, or `$EVENT_BUS_CONSUMER_DLQ_TOPIC` /
//! `--dlq-topic` for one shared topic). See [`crate::provision`].
//!
//! ```
//! use clap::Parser;
//! use event_bus_kafka::cli::topics::TopicsCommand;
//! use event_bus_kafka::cli::{Cli, Command};
//! let cli = Cli::try_parse_from(["event-bus", "topics", "ensure", "--topic", "orders", "--execute"])?;
//! let Command::Topics(args) = cli.command else { panic!("topics") };
//! let TopicsCommand::Ensure(ensure) = args.command;
//! assert!(ensure.execute);
//! assert_eq!(ensure.topics, vec!["orders".to_string()]);
//! assert!(Cli::try_parse_from(["event-bus", "topics", "ensure", "--no-dlq", "--dlq-topic", "all.dlq"]).is_err());
//! # Ok::<(), clap::Error>(())
//! ```

mod report;

use std::io::{self, Write};

use clap::{Args, Subcommand};

use super::exit_code;
use super::produce::ConnectionArgs;
use super::CliContext;
use crate::config::ConfigError;
use crate::consumer::DlqTopic;
use crate::provision::{ensure_topics, DesiredError, DesiredOptions, ProvisionError, TopicAction};

/// Arguments of `event-bus topics`.
///
/// See the [module example](self).
#[derive(Debug, Clone, Args)]
pub struct TopicsArgs {
    /// What to do with the topics.
    #[command(subcommand)]
    pub command: TopicsCommand,
}

/// The `topics` subcommands.
///
/// See the [module example](self).
#[derive(Debug, Clone, Subcommand)]
pub enum TopicsCommand {
    /// Create missing topics and show how existing ones differ from the event types'
    /// topic settings; without --execute nothing changes.
    ///
    /// Compares partitions, replication factor, and the topic configs declared (in
    /// #[event(topic_settings(...))] or $EVENT_BUS_TOPIC_CONFIG_<NAME>) with the
    /// values in effect. --execute creates missing topics, adds partitions and sets
    /// configs; it never removes partitions, never changes the replication factor (a
    /// reassignment) and says why for each change it refuses. Dead-letter topics are
    /// included: {topic}.dlq, or the one topic of --dlq-topic /
    /// $EVENT_BUS_CONSUMER_DLQ_TOPIC, as consume-events names them.
    ///
    /// Exit codes: 0 every topic matches (dry run) or every change was made
    /// (--execute); 1 a topic differs (dry run) or a change was refused; 2 bad
    /// arguments; 3 the cluster could not be read or a change failed.
    #[command(after_help = exit_code::HELP)]
    Ensure(EnsureArgs),
}

/// Arguments of `event-bus topics ensure`.
///
/// See the [module example](self).
#[derive(Debug, Clone, Args)]
pub struct EnsureArgs {
    /// Make the changes (without it, only the plan is printed).
    #[arg(long)]
    pub execute: bool,

    /// Only this topic, as the event types name it (before the prefix
    /// $EVENT_BUS_TOPIC_PREFIX); repeat for several [default: every event type's topic].
    #[arg(long = "topic", value_name = "TOPIC")]
    pub topics: Vec<String>,

    /// Leave the dead-letter topics out.
    #[arg(long)]
    pub no_dlq: bool,

    /// The one dead-letter topic of every topic, a full name, as consume-events
    /// --dlq-topic [default: $EVENT_BUS_CONSUMER_DLQ_TOPIC, else {topic}.dlq per topic].
    #[arg(long, value_name = "TOPIC", conflicts_with = "no_dlq")]
    pub dlq_topic: Option<String>,

    /// Broker overrides.
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

/// Why `event-bus topics` failed, or found something to report.
///
/// ```
/// use event_bus_kafka::cli::{exit_code, topics::TopicsError};
/// assert_eq!(TopicsError::Differences { topics: 2 }.exit_code(), exit_code::CHECK_FAILED);
/// assert_eq!(TopicsError::Incomplete { failed: 1, unconfirmed: 0 }.exit_code(), exit_code::ERROR);
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TopicsError {
    /// The broker settings or topic defaults are missing or invalid.
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// The topics cannot be worked out from the event types, or the cluster cannot
    /// be read or changed.
    #[error(transparent)]
    Provision(#[from] ProvisionError),
    /// A dry run found topics that differ from their declaration.
    #[error("{topics} topic(s) differ from what the event types declare (see above); run again with --execute to make the changes Kafka allows")]
    Differences {
        /// Topics that are missing or differ.
        topics: usize,
    },
    /// Some changes were refused (the others were made).
    #[error("{refused} change(s) refused (the reasons are above); the other changes were made")]
    Refused {
        /// Refused changes.
        refused: usize,
    },
    /// Some changes failed, or the cluster does not show them yet.
    #[error("{failed} change(s) failed and {unconfirmed} topic(s) do not show their change yet (see above); run ensure again")]
    Incomplete {
        /// Failed changes.
        failed: usize,
        /// Changed topics the cluster did not show changed in time.
        unconfirmed: usize,
    },
    /// The output could not be written.
    #[error("cannot write the output: {0}")]
    Output(#[from] io::Error),
}

impl TopicsError {
    /// The process exit code (see the `ensure` help).
    ///
    /// See the type's example.
    pub fn exit_code(&self) -> u8 {
        match self {
            TopicsError::Config(_)
            | TopicsError::Provision(ProvisionError::Desired(DesiredError::UnknownTopic {
                ..
            })) => exit_code::USAGE,
            TopicsError::Differences { .. } | TopicsError::Refused { .. } => {
                exit_code::CHECK_FAILED
            }
            TopicsError::Provision(_) | TopicsError::Incomplete { .. } | TopicsError::Output(_) => {
                exit_code::ERROR
            }
        }
    }
}

/// Runs `event-bus topics ensure`.
///
/// ```no_run
/// use clap::Parser;
/// use event_bus_kafka::cli::{run_with, Cli, CliContext};
/// # async fn demo() -> Result<(), event_bus_kafka::cli::CliError> {
/// let cli = Cli::try_parse_from(["event-bus", "topics", "ensure", "--bootstrap-servers", "localhost:9092"])
///     .expect("flags");
/// run_with(cli, &CliContext::default(), &mut std::io::stdout()).await?;
/// # Ok(()) }
/// ```
pub async fn run(
    args: &TopicsArgs,
    context: &CliContext,
    out: &mut (dyn Write + Send),
) -> Result<(), TopicsError> {
    let TopicsCommand::Ensure(ensure) = &args.command;
    let (kafka, env) = super::offsets::connection(&ensure.connection)?;
    let mut options = DesiredOptions::from_env_source(&env)?;
    options.only.clone_from(&ensure.topics);
    if ensure.no_dlq {
        options.dead_letters = None;
    } else if let Some(name) = &ensure.dlq_topic {
        options.dead_letters = Some(DlqTopic::Fixed(name.clone()));
    }
    let ensured = ensure_topics(&kafka, &options, ensure.execute).await?;
    report::write(out, context.output, &kafka.bootstrap_servers, &ensured)?;
    if let Some(applied) = &ensured.applied {
        if !applied.is_complete() {
            return Err(TopicsError::Incomplete {
                failed: applied.failures.len(),
                unconfirmed: applied.unconfirmed.len(),
            });
        }
        let refused: usize = ensured.plans.iter().map(|p| p.refusals().count()).sum();
        if refused > 0 {
            return Err(TopicsError::Refused { refused });
        }
        return Ok(());
    }
    let differing = ensured
        .plans
        .iter()
        .filter(|p| p.action() != TopicAction::InSync)
        .count();
    if differing > 0 {
        return Err(TopicsError::Differences { topics: differing });
    }
    Ok(())
}
