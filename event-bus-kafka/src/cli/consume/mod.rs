//! `event-bus consume-events` (also the `consume_events` binary): runs the consumer
//! loop with the application's receivers until SIGINT/SIGTERM, or until polling fails
//! too often (exit code 3, for the supervisor to restart it), or until the dead-letter
//! topic refuses a record for good (exit code 4: fix the topic before restarting).
//! Meanwhile it serves Prometheus `/metrics` and a `/healthz` probe of the loop on
//! `--observability-address` (default `$EVENT_BUS_OBSERVABILITY_ADDRESS`, else
//! `0.0.0.0:9464`; `off` for none); an address it cannot listen on stops it at start
//! (exit code 3). See [`ObservabilityArgs`].
//!
//! It runs from the application's own binary, which gives the CLI its
//! [`EventBus`](event_bus_core::EventBus) with [`App::with_bus`]:
//!
//! ```no_run
//! use event_bus_kafka::cli::App;
//! use event_bus_kafka::prelude::*;
//! # use serde::{Deserialize, Serialize};
//! # #[derive(Serialize, Deserialize, Event)]
//! # #[event(type = "org.example.shop.order.placed.v1", topic = "orders")]
//! # struct OrderPlaced { id: String }
//! fn main() -> std::process::ExitCode {
//!     let mut bus = EventBus::new();
//!     if let Err(err) = bus.connect_fn("mailer", |order: &OrderPlaced, _| Ok(())) {
//!         eprintln!("error: {err}");
//!         return std::process::ExitCode::from(3);
//!     }
//!     // `my-app consume-events --topic orders --group mailer`
//!     App::new().with_bus(bus).main()
//!     // or, for a `consume_events` binary taking the flags directly:
//!     // event_bus_kafka::cli::consume::main_standalone(App::new().with_bus(bus))
//! }
//! ```
//!
//! Configuration comes from the `EVENT_BUS_*` variables (see
//! [`ConsumerConfig::from_env_source`]); flags override them.
//!
//! ```
//! use clap::Parser;
//! use event_bus_kafka::cli::{Cli, Command};
//!
//! let cli = Cli::try_parse_from([
//!     "event-bus", "consume-events", "--topic", "user-login", "--topic", "learning-course-enrollment",
//!     "--group", "lms-audit", "--offset-time", "2024-05-01T12:00:00Z",
//!     "--extra", r#"{"session.timeout.ms": "6000"}"#,
//! ])?;
//! let Command::Consume(args) = cli.command else { panic!("consume-events") };
//! assert_eq!(args.topics, ["user-login", "learning-course-enrollment"]);
//! assert_eq!(args.offset_time.map(|t| t.timestamp()), Some(1_714_564_800));
//! # Ok::<(), clap::Error>(())
//! ```

mod extra;
mod logging;

use std::io::{self, Write};
use std::process::ExitCode;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use clap::Args;
use serde_json::json;

use super::exit_code;
use super::observability::{start_server, stop_server, ObservabilityArgs};
use super::produce::{run_subcommand_main, ConnectionArgs};
use super::{App, CliContext, OutputFormat};
use crate::config::ConfigError;
use crate::consumer::{
    ConsumerConfig, ConsumerError, DlqTopic, EventConsumer, Shutdown, StatsSnapshot,
};
use crate::observability::ObservabilityError;
use crate::replay::{self, ReplayError, ResetPlan};

pub use extra::{parse_extra, ExtraOptionsError};
pub use logging::install_tracing;

/// Arguments of `event-bus consume-events`.
///
/// See the [module example](self).
#[derive(Debug, Clone, Args)]
pub struct ConsumeArgs {
    /// A topic to consume, before the prefix ($EVENT_BUS_TOPIC_PREFIX) is applied;
    /// repeat the flag for several [default: $EVENT_BUS_CONSUMER_TOPICS,
    /// comma-separated].
    #[arg(long = "topic", value_name = "TOPIC")]
    pub topics: Vec<String>,

    /// The consumer group [default: $EVENT_BUS_CONSUMER_GROUP].
    ///
    /// Every process of one service uses the same group; Kafka shares the partitions
    /// among them, and the group's committed offsets say where it resumes.
    #[arg(long, value_name = "GROUP")]
    pub group: Option<String>,

    /// Before consuming, move the group's offsets on these topics to this time
    /// (RFC 3339, e.g. 2024-05-01T12:00:00Z), then consume from there.
    ///
    /// Replays events from that time on (or skips the ones before it). Every partition
    /// starts at its first record at or after the time (its end if there is none). The
    /// new offsets are committed for the group before this consumer joins, so there is
    /// no race with a rebalance; while another consumer of the group is running the
    /// reset is refused (exit code 1): stop them first. Brokers answer at the
    /// granularity they index timestamps at, so a few records from just before the
    /// time may be read again.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub offset_time: Option<DateTime<Utc>>,

    /// Resumes from a resume token (printed by this command when it stops, or by
    /// another consumer of the group on another cluster): every partition the token
    /// covers starts at its first record at or after the token's time for it. Like
    /// --offset-time, refused while another consumer of the group runs.
    #[arg(long, value_name = "TOKEN", conflicts_with = "offset_time", value_parser = parse_token)]
    pub resume_token: Option<replay::ResumeToken>,

    /// The dead-letter topic for every consumed topic: its full name, no prefix
    /// applied [default: $EVENT_BUS_CONSUMER_DLQ_TOPIC, else `{topic}.dlq` for each
    /// topic].
    ///
    /// A record goes there, with its original key, value and headers plus headers
    /// saying why, when it cannot be decoded or when a receiver still fails after
    /// --max-attempts; only then is its offset committed. `event-bus dlq show|redrive`
    /// read the same setting ($EVENT_BUS_CONSUMER_DLQ_TOPIC, or their --dlq-topic).
    /// A record too large for it goes there without its value; if the topic refuses
    /// records for good (no access, missing) the command stops with exit code 4.
    #[arg(long, value_name = "TOPIC")]
    pub dlq_topic: Option<String>,

    /// How many records may be handled at once [default:
    /// $EVENT_BUS_CONSUMER_MAX_IN_FLIGHT, else 1].
    ///
    /// 1 keeps strict partition order. More handles records of different keys of a
    /// partition side by side, while each key's records stay in order; offsets are
    /// still committed only up to the first record not yet handled.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_in_flight: Option<u64>,

    /// Tries per receiver, the first one included, before the record goes to the
    /// dead-letter topic; only the receivers that failed are tried again, with
    /// exponential backoff [default: $EVENT_BUS_CONSUMER_MAX_ATTEMPTS, else 3].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_attempts: Option<u32>,

    /// Poll failures in a row (brokers unreachable…) after which the command exits
    /// with code 3, for its supervisor to restart it; 0 means never
    /// [default: $EVENT_BUS_CONSUMER_MAX_POLL_ERRORS, else 10].
    #[arg(long, value_name = "N")]
    pub max_poll_errors: Option<u32>,

    /// librdkafka options as a JSON object of strings, e.g.
    /// '{"session.timeout.ms": "6000", "fetch.max.bytes": "1048576"}'.
    ///
    /// They are passed to librdkafka untouched and win over the SDK's defaults and the
    /// EVENT_BUS_KAFKA_* variables.
    #[arg(long, value_name = "JSON")]
    pub extra: Option<String>,

    /// Broker and registry overrides.
    #[command(flatten)]
    pub connection: ConnectionArgs,

    /// Where `/metrics` and `/healthz` are served.
    #[command(flatten)]
    pub observability: ObservabilityArgs,
}

pub(crate) fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{e}; expected an RFC 3339 time such as 2024-05-01T12:00:00Z"))
}

/// Why `event-bus consume-events` failed or stopped.
///
/// ```
/// use event_bus_kafka::cli::{exit_code, consume::ConsumeError};
/// use event_bus_kafka::consumer::ConsumerError;
/// let err = ConsumeError::Stopped(ConsumerError::TooManyPollFailures { count: 10, last: "broker down".into() });
/// assert_eq!(err.exit_code(), exit_code::ERROR);
/// assert_eq!(ConsumeError::NoBus.exit_code(), exit_code::ERROR);
/// let refused = ConsumeError::Stopped(ConsumerError::DeadLetterRefused {
///     dlq_topic: "orders.dlq".into(), topic: "orders".into(), partition: 0, offset: 3,
///     failure: event_bus_kafka::failure::Failure::Permanent,
///     source: Box::new(rdkafka::error::KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::TopicAuthorizationFailed)),
/// });
/// assert_eq!(refused.exit_code(), exit_code::DEAD_LETTER_REFUSED);
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConsumeError {
    /// The program gave the command line no receivers.
    #[error(
        "`consume-events` needs the application's receivers, and this program gave none: \
         run it from the application's own binary, built with \
         `event_bus_kafka::cli::App::new().with_bus(bus)`"
    )]
    NoBus,
    /// The application's bus has no receivers connected.
    #[error(
        "the application's event bus has no receivers connected, so every event would be \
         skipped and committed; connect receivers (`bus.connect…`) before \
         `App::with_bus`"
    )]
    NoReceivers,
    /// The configuration is incomplete or invalid.
    #[error("{0} (flags: --group, --topic, --bootstrap-servers, --schema-registry-url)")]
    Config(#[from] ConfigError),
    /// `--extra` is not a JSON object of strings.
    #[error(transparent)]
    Extra(#[from] ExtraOptionsError),
    /// `--offset-time` could not move the group's offsets (e.g. the group has running
    /// consumers); nothing was consumed.
    #[error("--offset-time: {0}")]
    OffsetReset(#[source] Box<ReplayError>),
    /// The consumer could not start.
    #[error("cannot start consuming: {0}")]
    Start(#[source] ConsumerError),
    /// The loop ended with an error (e.g. too many poll failures in a row).
    #[error("the consumer stopped: {0}")]
    Stopped(#[source] ConsumerError),
    /// The result could not be written.
    #[error("cannot write the result: {0}")]
    Output(#[source] io::Error),
    /// `/metrics` and `/healthz` cannot be served (the address is in use…); nothing was
    /// consumed.
    #[error(transparent)]
    Observability(#[from] ObservabilityError),
}

impl ConsumeError {
    /// The process exit code: [`exit_code::USAGE`] for bad flags or configuration,
    /// [`exit_code::CHECK_FAILED`] when `--offset-time` was refused because the group
    /// has running consumers, [`exit_code::DEAD_LETTER_REFUSED`] when the dead-letter
    /// topic refused a record for good, [`exit_code::ERROR`] when the consumer could not
    /// run or stopped with another error, or when `/metrics` and `/healthz` cannot be
    /// served.
    ///
    /// See the type's example.
    pub fn exit_code(&self) -> u8 {
        match self {
            ConsumeError::Config(_)
            | ConsumeError::Extra(_)
            | ConsumeError::Start(ConsumerError::Config(_)) => exit_code::USAGE,
            ConsumeError::OffsetReset(err) if err.is_usage() => exit_code::USAGE,
            ConsumeError::OffsetReset(err) if err.is_refusal() => exit_code::CHECK_FAILED,
            ConsumeError::Stopped(ConsumerError::DeadLetterRefused { .. }) => {
                exit_code::DEAD_LETTER_REFUSED
            }
            ConsumeError::NoBus
            | ConsumeError::NoReceivers
            | ConsumeError::OffsetReset(_)
            | ConsumeError::Start(_)
            | ConsumeError::Stopped(_)
            | ConsumeError::Output(_)
            | ConsumeError::Observability(_) => exit_code::ERROR,
        }
    }
}

impl ConsumeArgs {
    /// The consumer configuration: `EVENT_BUS_*` variables, then these flags.
    ///
    /// ```
    /// use clap::Parser;
    /// use event_bus_kafka::cli::{Cli, Command};
    /// let cli = Cli::try_parse_from([
    ///     "event-bus", "consume-events", "--topic", "t", "--group", "g",
    ///     "--bootstrap-servers", "b:9092", "--schema-registry-url", "http://r:8081",
    ///     "--max-attempts", "5", "--max-in-flight", "8", "--dlq-topic", "all.dlq",
    ///     "--extra", r#"{"fetch.min.bytes": "1"}"#,
    /// ]).unwrap();
    /// let Command::Consume(args) = cli.command else { panic!() };
    /// let config = args.consumer_config()?;
    /// assert_eq!(config.group_id, "g");
    /// assert_eq!(config.retry.max_attempts, 5);
    /// assert_eq!(config.max_in_flight, 8);
    /// assert_eq!(config.kafka.options["fetch.min.bytes"], "1");
    /// # Ok::<(), event_bus_kafka::cli::consume::ConsumeError>(())
    /// ```
    pub fn consumer_config(&self) -> Result<ConsumerConfig, ConsumeError> {
        let overrides = self
            .group
            .iter()
            .map(|group| ("EVENT_BUS_CONSUMER_GROUP", group.clone()));
        let env = self.connection.env_source_with(overrides);
        let mut config = ConsumerConfig::from_env_source(&env)?;
        if !self.topics.is_empty() {
            config.topics = self.topics.clone();
        }
        if let Some(attempts) = self.max_attempts {
            config.retry.max_attempts = attempts;
        }
        if let Some(n) = self.max_in_flight {
            config.max_in_flight = usize::try_from(n).unwrap_or(usize::MAX);
        }
        if let Some(errors) = self.max_poll_errors {
            config.poll.max_consecutive_errors = errors;
        }
        if let Some(topic) = &self.dlq_topic {
            config.dlq_topic = DlqTopic::Fixed(topic.clone());
        }
        if let Some(extra) = &self.extra {
            config.kafka.options.extend(parse_extra(extra)?);
        }
        config.validate()?;
        Ok(config)
    }
}

/// Runs `event-bus consume-events` until SIGINT/SIGTERM (then prints what it did) or
/// until the loop fails.
///
/// Installs a `tracing` subscriber (stderr, `RUST_LOG`, default `info`) unless the
/// program has one; see [`install_tracing`].
///
/// ```no_run
/// use clap::Parser;
/// use event_bus_kafka::cli::{run_with, Cli, CliContext};
/// # async fn demo(bus: std::sync::Arc<event_bus_core::EventBus>) -> Result<(), event_bus_kafka::cli::CliError> {
/// let cli = Cli::try_parse_from(["event-bus", "consume-events", "--topic", "user-login", "--group", "audit"])
///     .expect("valid flags");
/// let context = CliContext { bus: Some(bus), ..CliContext::default() };
/// run_with(cli, &context, &mut std::io::stdout()).await?;
/// # Ok(()) }
/// ```
pub async fn run(
    args: &ConsumeArgs,
    context: &CliContext,
    out: &mut (dyn Write + Send),
) -> Result<(), ConsumeError> {
    let bus = context.bus.clone().ok_or(ConsumeError::NoBus)?;
    if bus.receiver_count() == 0 {
        return Err(ConsumeError::NoReceivers);
    }
    let config = args.consumer_config()?;
    let observability = args.observability.config(true)?;
    install_tracing();
    // Created before anything else runs so `/healthz` watches it from the start; it joins
    // the group only when it runs, after the offsets are moved.
    let consumer =
        EventConsumer::new(config.clone(), Arc::clone(&bus)).map_err(ConsumeError::Start)?;
    let server = start_server(observability, |server| {
        server.consumer(config.group_id.clone(), consumer.stats())
    })
    .await?;
    let outcome = consume(args, context, out, &config, &bus, consumer).await;
    stop_server(server).await;
    outcome
}

/// Moves the group's offsets if asked to, then runs `consumer` until it stops.
async fn consume(
    args: &ConsumeArgs,
    context: &CliContext,
    out: &mut (dyn Write + Send),
    config: &ConsumerConfig,
    bus: &event_bus_core::EventBus,
    consumer: EventConsumer,
) -> Result<(), ConsumeError> {
    if let Some(time) = args.offset_time {
        let plan = replay::reset_consumer_to_datetime(config, time)
            .await
            .map_err(|err| ConsumeError::OffsetReset(Box::new(err)))?;
        write_reset(out, context.output, &time.to_rfc3339(), &plan)
            .map_err(ConsumeError::Output)?;
    }
    if let Some(token) = &args.resume_token {
        let plan = replay::reset_consumer_to_token(config, token)
            .await
            .map_err(|err| ConsumeError::OffsetReset(Box::new(err)))?;
        write_reset(out, context.output, "the resume token", &plan)
            .map_err(ConsumeError::Output)?;
    }
    tracing::info!(
        group = %config.group_id,
        topics = ?config.full_topics(),
        event_types = ?bus.event_types(),
        receivers = bus.receiver_count(),
        "consuming events"
    );
    let progress = consumer.progress();
    let stats = consumer
        .run(Shutdown::on_signals())
        .await
        .map_err(ConsumeError::Stopped)?;
    let token = replay::ResumeToken::from_progress(&progress);
    write_summary(out, context.output, &stats, &token).map_err(ConsumeError::Output)
}

fn parse_token(text: &str) -> Result<replay::ResumeToken, String> {
    replay::ResumeToken::parse(text).map_err(|e| e.to_string())
}

fn write_reset(
    out: &mut (dyn Write + Send),
    format: OutputFormat,
    time: &str,
    plan: &ResetPlan,
) -> io::Result<()> {
    match format {
        OutputFormat::Text => {
            writeln!(out, "group {} moved to {time}", plan.group)?;
            for p in &plan.partitions {
                let current = p
                    .current
                    .map_or_else(|| "none".to_owned(), |o| o.to_string());
                let new = p
                    .new
                    .map_or_else(|| "unchanged".to_owned(), |o| o.to_string());
                write!(
                    out,
                    "  {}[{}] offset {current} → {new}",
                    p.topic, p.partition
                )?;
                match &p.note {
                    Some(note) => writeln!(out, " ({note})")?,
                    None => writeln!(out)?,
                }
            }
            Ok(())
        }
        OutputFormat::Json => {
            let report = json!({
                "offset_reset": {
                    "group": plan.group,
                    "time": time,
                    "partitions": plan.partitions,
                }
            });
            writeln!(out, "{report}")
        }
    }?;
    out.flush()
}

fn write_summary(
    out: &mut (dyn Write + Send),
    format: OutputFormat,
    stats: &StatsSnapshot,
    token: &replay::ResumeToken,
) -> io::Result<()> {
    match format {
        OutputFormat::Text => writeln!(
            out,
            "stopped: {} records handled ({} dead-lettered, {} skipped), {} receiver failures, {} poll errors, {} commits\nresume token: {token}",
            stats.records_handled,
            stats.records_dead_lettered,
            stats.records_skipped,
            stats.receiver_failures,
            stats.poll_errors,
            stats.commits,
        ),
        OutputFormat::Json => {
            let report = json!({
                "stopped": {
                    "records_handled": stats.records_handled,
                    "records_dead_lettered": stats.records_dead_lettered,
                    "records_skipped": stats.records_skipped,
                    "receiver_failures": stats.receiver_failures,
                    "poll_errors": stats.poll_errors,
                    "commits": stats.commits,
                    "resume_token": token.to_string(),
                }
            });
            writeln!(out, "{report}")
        }
    }
}

/// The whole `main` of a `consume_events` binary: `consume_events --topic … --group …`
/// runs `event-bus consume-events --topic … --group …` with `app`'s receivers
/// (`consume_events consume-events …` works too).
///
/// ```no_run
/// use event_bus_kafka::cli::App;
/// fn main() -> std::process::ExitCode {
///     let bus = event_bus_core::EventBus::new(); // connect the receivers
///     event_bus_kafka::cli::consume::main_standalone(App::new().with_bus(bus))
/// }
/// ```
pub fn main_standalone(app: App) -> ExitCode {
    run_subcommand_main(app, "consume-events")
}
