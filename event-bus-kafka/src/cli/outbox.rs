//! `event-bus outbox status|migrate|relay`: the emergency/transactional outbox from the
//! command line. The store is chosen by `EVENT_BUS_OUTBOX_DATABASE_URL` (or
//! `--database-url`): `postgres://…` or `sqlite:…`.

use std::io::Write;

use clap::{Args, Subcommand};
use serde_json::json;

use super::exit_code;
use super::{CliContext, OutputFormat};
use crate::config::{ConfigError, EnvSource, ProducerConfig};
use crate::consumer::Shutdown;
use crate::outbox::{self as store, AnyOutbox, OutboxConfig, OutboxStatus, RelayStats};
use crate::producer::{Producer, ProducerError};

/// Arguments of `event-bus outbox`.
///
/// ```
/// use clap::Parser;
/// let cli = event_bus_kafka::cli::Cli::try_parse_from(["event-bus", "outbox", "status", "--failing-keys", "5"]).unwrap();
/// assert!(matches!(cli.command, event_bus_kafka::cli::Command::Outbox(_)));
/// ```
#[derive(Debug, Clone, Args)]
pub struct OutboxArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: OutboxCommand,
    /// The outbox database (`postgres://…` or `sqlite:…`); default:
    /// EVENT_BUS_OUTBOX_DATABASE_URL.
    #[arg(long, global = true)]
    pub database_url: Option<String>,
}

/// The `outbox` subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum OutboxCommand {
    /// Waiting events, the oldest one's age, and the keys whose head event keeps failing.
    /// Read-only: without an outbox table it says so and exits with 1.
    Status {
        /// How many failing keys to list.
        #[arg(long, default_value_t = 20)]
        failing_keys: usize,
    },
    /// Creates or upgrades the outbox tables (also done by `relay`).
    Migrate,
    /// Publishes waiting events in key order until Ctrl-C/SIGTERM (Kafka and registry
    /// settings from EVENT_BUS_*).
    Relay {
        /// Stop once the outbox is empty instead of waiting for more.
        #[arg(long)]
        drain: bool,
    },
}

/// Why `event-bus outbox` failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OutboxError {
    /// A setting is missing or invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The outbox store failed.
    #[error(transparent)]
    Outbox(#[from] store::OutboxError),
    /// The producer for the relay could not be built.
    #[error(transparent)]
    Producer(#[from] ProducerError),
    /// The output could not be written.
    #[error("cannot write the output: {0}")]
    Output(#[from] std::io::Error),
}

impl OutboxError {
    /// The process exit code for this error.
    ///
    /// ```
    /// use event_bus_kafka::cli::outbox::OutboxError;
    /// let err = OutboxError::Output(std::io::Error::other("closed"));
    /// assert_eq!(err.exit_code(), event_bus_kafka::cli::exit_code::ERROR);
    /// ```
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Config(_) => exit_code::USAGE,
            Self::Outbox(store::OutboxError::NoOutboxTable { .. }) => exit_code::CHECK_FAILED,
            _ => exit_code::ERROR,
        }
    }
}

fn outbox_config(args: &OutboxArgs) -> Result<OutboxConfig, ConfigError> {
    let mut env = EnvSource::from_process();
    if let Some(url) = &args.database_url {
        env = EnvSource::from_pairs(
            std::env::vars()
                .filter(|(k, _)| k.starts_with("EVENT_BUS_"))
                .chain([("EVENT_BUS_OUTBOX_DATABASE_URL".to_owned(), url.clone())]),
        );
    }
    OutboxConfig::from_env_source(&env)
}

/// Runs `event-bus outbox`.
///
/// ```no_run
/// # async fn demo() {
/// use clap::Parser;
/// let cli = event_bus_kafka::cli::Cli::try_parse_from(["event-bus", "outbox", "status"]).unwrap();
/// let mut out = Vec::new();
/// let _ = event_bus_kafka::cli::run(cli, &mut out).await;
/// # }
/// ```
pub async fn run(
    args: &OutboxArgs,
    context: &CliContext,
    out: &mut (dyn Write + Send),
) -> Result<(), OutboxError> {
    let config = outbox_config(args)?;
    // `status` only reads: it runs no migration and creates no SQLite file.
    let outbox = match args.command {
        OutboxCommand::Status { .. } => AnyOutbox::open_existing(&config).await?,
        _ => AnyOutbox::connect(&config).await?,
    };
    match &args.command {
        OutboxCommand::Status { failing_keys } => {
            let status = outbox.status(*failing_keys).await?;
            write_status(&status, context.output, out)?;
        }
        OutboxCommand::Migrate => {
            outbox.migrate().await?;
            writeln!(out, "outbox tables are up to date")?;
        }
        OutboxCommand::Relay { drain } => {
            outbox.migrate().await?;
            let producer = Producer::new(ProducerConfig::from_env()?)?;
            let stats = if *drain {
                outbox.drain(producer, config.relay).await?
            } else {
                let shutdown = Shutdown::on_signals();
                outbox
                    .relay_until(
                        producer,
                        config.relay,
                        async move { shutdown.triggered().await },
                    )
                    .await?
            };
            write_relay_stats(&stats, context.output, out)?;
        }
    }
    Ok(())
}

fn write_status(
    status: &OutboxStatus,
    format: OutputFormat,
    out: &mut (dyn Write + Send),
) -> std::io::Result<()> {
    let oldest_age_ms = status.oldest_age.map(|a| a.as_millis() as u64);
    if format == OutputFormat::Json {
        let failing: Vec<_> = status
            .failing_keys
            .iter()
            .map(|k| {
                json!({
                    "topic": k.topic, "key": k.key_text, "head_id": k.head_id.0,
                    "attempts": k.attempts, "last_error": k.last_error,
                    "next_attempt_at": k.next_attempt_at.to_rfc3339(),
                })
            })
            .collect();
        let doc = json!({
            "pending": status.pending,
            "oldest_age_ms": oldest_age_ms,
            "failing_keys_total": status.failing_keys_total,
            "failing_keys": failing,
        });
        return writeln!(out, "{doc}");
    }
    writeln!(out, "pending events:   {}", status.pending)?;
    match oldest_age_ms {
        Some(ms) => writeln!(out, "oldest waits for: {:.1} s", ms as f64 / 1000.0)?,
        None => writeln!(out, "oldest waits for: -")?,
    }
    writeln!(out, "failing keys:     {}", status.failing_keys_total)?;
    for key in &status.failing_keys {
        writeln!(
            out,
            "  {} key={} row={} attempts={} next={} error={}",
            key.topic,
            key.key_text.as_deref().unwrap_or("(none)"),
            key.head_id,
            key.attempts,
            key.next_attempt_at.to_rfc3339(),
            key.last_error.as_deref().unwrap_or("")
        )?;
    }
    Ok(())
}

fn write_relay_stats(
    stats: &RelayStats,
    format: OutputFormat,
    out: &mut (dyn Write + Send),
) -> std::io::Result<()> {
    if format == OutputFormat::Json {
        let doc = json!({
            "batches": stats.batches, "published": stats.published, "failed": stats.failed,
            "held_back": stats.held_back, "database_errors": stats.database_errors,
        });
        return writeln!(out, "{doc}");
    }
    writeln!(
        out,
        "relay stopped: {} published in {} batches, {} failed attempts, {} held back",
        stats.published, stats.batches, stats.failed, stats.held_back
    )
}
