//! `event-bus outbox status|migrate|relay|parked|retry|drop`: the emergency/transactional
//! outbox from the command line. The store is chosen by `EVENT_BUS_OUTBOX_DATABASE_URL`
//! (or `--database-url`): `postgres://…` or `sqlite:…`.
//!
//! Parked rows (the relay gave up on them; their keys' later events wait) are listed by
//! `parked`, unparked by `retry` and deleted by `drop`. `retry` and `drop` only print
//! what they would do unless `--execute` is given.

use std::io::Write;
use std::sync::Arc;

use clap::{Args, Subcommand};
use serde_json::json;

use super::exit_code;
use super::observability::{start_server, stop_server, ObservabilityArgs};
use super::{CliContext, OutputFormat};
use crate::config::secret::redact_url;
use crate::config::{ConfigError, EnvSource, ProducerConfig};
use crate::consumer::Shutdown;
use crate::inbox::{AnyInbox, InboxPruner, InboxRetention};
use crate::observability::ObservabilityError;
use crate::outbox::{
    self as store, AnyOutbox, OutboxConfig, OutboxId, OutboxStatus, OutboxStore, ParkedFilter,
    ParkedRow, Relay, RelayConfig, RelayMonitor, RelayStats,
};
use crate::producer::{Producer, ProducerError};

/// Arguments of `event-bus outbox`.
///
/// `Debug` hides the password of `--database-url`.
///
/// ```
/// use clap::Parser;
/// let cli = event_bus_kafka::cli::Cli::try_parse_from([
///     "event-bus", "outbox", "status", "--failing-keys", "5",
///     "--database-url", "postgres://app:hunter2@db/app",
/// ]).unwrap();
/// assert!(matches!(cli.command, event_bus_kafka::cli::Command::Outbox(_)));
/// let shown = format!("{cli:?}");
/// assert!(shown.contains("postgres://app:***@db/app") && !shown.contains("hunter2"));
/// ```
#[derive(Clone, Args)]
pub struct OutboxArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: OutboxCommand,
    /// The outbox database (`postgres://…` or `sqlite:…`); default:
    /// EVENT_BUS_OUTBOX_DATABASE_URL. Prefer the variable when the URL holds a
    /// password: command lines show in process lists.
    #[arg(long, global = true)]
    pub database_url: Option<String>,
}

impl std::fmt::Debug for OutboxArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxArgs")
            .field("command", &self.command)
            .field(
                "database_url",
                &self.database_url.as_deref().map(redact_url),
            )
            .finish()
    }
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
    /// settings from EVENT_BUS_*), serving /metrics and /healthz.
    ///
    /// /healthz answers 200 while the relay's loop runs and has finished a pass (a claim
    /// and its publishing) within EVENT_BUS_HEALTH_MAX_POLL_GAP_MS (default 60 s, at
    /// least twice the poll interval), or while it stands by for a SQLite file's lease
    /// held by another relay; 503 before it starts, after it stops, or when its loop is
    /// stuck. Database errors and an unreachable broker show in the JSON body
    /// (`database_errors_in_a_row`, `broker_failing_ms`) without failing the probe: a
    /// restart fixes neither; the relay exits by itself (code 3) on an error only a person
    /// can fix, and after EVENT_BUS_OUTBOX_MAX_CONSECUTIVE_ERRORS failed passes if set.
    ///
    /// Beside it (not with --drain), inbox rows handled longer ago than
    /// EVENT_BUS_INBOX_RETENTION (default 7d) are deleted at start and every
    /// EVENT_BUS_INBOX_PRUNE_INTERVAL (default 1h; `off` to leave them).
    Relay {
        /// Stop once the outbox is empty instead of waiting for more (then /metrics and
        /// /healthz are served only when an address is given).
        #[arg(long)]
        drain: bool,
        /// Where /metrics and /healthz are served.
        #[command(flatten)]
        observability: ObservabilityArgs,
    },
    /// Rows the relay gave up on (too large, refused for good, unreadable, or failing
    /// past the attempt limit), oldest first, with the reason. Each holds back the later
    /// events of its key.
    Parked {
        /// Only rows of this topic (the full name, as listed).
        #[arg(long)]
        topic: Option<String>,
        /// Only rows with this key.
        #[arg(long)]
        key: Option<String>,
        /// How many rows to list.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Unparks rows so the relay tries them again (attempts reset), then their keys'
    /// waiting events. Prints what it would do unless --execute is given; with it, acts
    /// on the rows it lists (at most 10 000: run again for more) and says how many.
    Retry {
        /// Which parked rows.
        #[command(flatten)]
        selection: ParkedSelection,
        /// Unpark them (without it, only the rows are listed).
        #[arg(long)]
        execute: bool,
    },
    /// Deletes parked rows (their events are never published); their keys' waiting events
    /// go next. Prints what it would do unless --execute is given; with it, acts on the
    /// rows it lists (at most 10 000: run again for more) and says how many.
    Drop {
        /// Which parked rows.
        #[command(flatten)]
        selection: ParkedSelection,
        /// Delete them (without it, only the rows are listed).
        #[arg(long)]
        execute: bool,
    },
}

/// Which parked rows `outbox retry` and `outbox drop` act on: ids, or a topic and/or
/// key, or `--all`.
///
/// ```
/// use clap::Parser;
/// use event_bus_kafka::cli::{Cli, Command};
/// use event_bus_kafka::cli::outbox::OutboxCommand;
/// let cli = Cli::try_parse_from(["event-bus", "outbox", "retry", "--id", "3", "--id", "4"]).unwrap();
/// let Command::Outbox(args) = cli.command else { panic!() };
/// let OutboxCommand::Retry { selection, execute } = args.command else { panic!() };
/// assert_eq!(selection.ids, vec![3, 4]);
/// assert!(!execute);
/// assert!(Cli::try_parse_from(["event-bus", "outbox", "drop"]).is_err(), "say which rows");
/// assert!(Cli::try_parse_from(["event-bus", "outbox", "drop", "--all", "--id", "3"]).is_err());
/// ```
#[derive(Debug, Clone, Args)]
#[group(required = true, multiple = true)]
pub struct ParkedSelection {
    /// A row id, as `outbox parked` lists it (repeat for several).
    #[arg(long = "id", value_name = "ID")]
    pub ids: Vec<i64>,
    /// Every parked row.
    #[arg(long, conflicts_with_all = ["ids", "topic", "key"])]
    pub all: bool,
    /// The parked rows of this topic (the full name, as listed).
    #[arg(long)]
    pub topic: Option<String>,
    /// The parked rows with this key.
    #[arg(long)]
    pub key: Option<String>,
}

impl ParkedSelection {
    /// The store's filter; `None` when nothing was selected (not even `--all`).
    ///
    /// ```
    /// use event_bus_kafka::cli::outbox::ParkedSelection;
    /// let none = ParkedSelection { ids: vec![], all: false, topic: None, key: None };
    /// assert!(none.filter().is_none());
    /// let all = ParkedSelection { all: true, ..none.clone() };
    /// assert!(all.filter().is_some_and(|f| f.is_everything()));
    /// ```
    pub fn filter(&self) -> Option<ParkedFilter> {
        let filter = ParkedFilter {
            ids: self.ids.iter().copied().map(OutboxId).collect(),
            topic: self.topic.clone(),
            key: self.key.clone(),
        };
        (self.all || !filter.is_everything()).then_some(filter)
    }
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
    /// `/metrics` and `/healthz` cannot be served by the relay (the address is in use…).
    #[error(transparent)]
    Observability(#[from] ObservabilityError),
    /// `retry` or `drop` without saying which parked rows.
    #[error("say which parked rows: --id (repeatable), --topic and/or --key, or --all (`event-bus outbox parked` lists them)")]
    NoSelection,
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
            Self::Config(_) | Self::NoSelection => exit_code::USAGE,
            Self::Outbox(store::OutboxError::NoOutboxTable { .. }) => exit_code::CHECK_FAILED,
            _ => exit_code::ERROR,
        }
    }
}

fn outbox_config(args: &OutboxArgs) -> Result<OutboxConfig, ConfigError> {
    let mut env = EnvSource::from_process();
    if let Some(url) = &args.database_url {
        env = env.with_var("EVENT_BUS_OUTBOX_DATABASE_URL", url.clone());
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
        OutboxCommand::Relay {
            drain,
            observability,
        } => {
            let serve = observability.config(!*drain)?;
            // A relay runs for long: its logs (lease waits, failing keys) go to stderr.
            crate::cli::consume::install_tracing();
            let monitor = RelayMonitor::default();
            let server =
                start_server(serve, |server| server.relay("outbox", monitor.clone())).await?;
            let stats = relay(outbox, config.relay, monitor, *drain).await;
            stop_server(server).await;
            write_relay_stats(&stats?, context.output, out)?;
        }
        OutboxCommand::Parked { topic, key, limit } => {
            let filter = ParkedFilter {
                ids: Vec::new(),
                topic: topic.clone(),
                key: key.clone(),
            };
            let rows = outbox.parked(&filter, *limit).await?;
            write_parked(&rows, context.output, out)?;
        }
        OutboxCommand::Retry { selection, execute } => {
            let action = ParkedAction::Retry;
            act_on_parked(&outbox, action, selection, *execute, context.output, out).await?;
        }
        OutboxCommand::Drop { selection, execute } => {
            let action = ParkedAction::Drop;
            act_on_parked(&outbox, action, selection, *execute, context.output, out).await?;
        }
    }
    Ok(())
}

/// `outbox relay`: migrates, then relays with a producer from `EVENT_BUS_*` until
/// SIGINT/SIGTERM (or, with `drain`, until nothing is due), showing its state in
/// `monitor`.
async fn relay(
    outbox: AnyOutbox,
    config: RelayConfig,
    monitor: RelayMonitor,
    drain: bool,
) -> Result<RelayStats, OutboxError> {
    let retention = InboxRetention::from_env()?;
    outbox.migrate().await?;
    let producer = Producer::new(ProducerConfig::from_env()?)?;
    // The migrations created the inbox table too; a failed prune is logged and retried.
    let pruner = (!drain).then(|| InboxPruner::spawn(AnyInbox::from_outbox(&outbox), retention));
    let stats = match outbox {
        #[cfg(feature = "postgres")]
        AnyOutbox::Postgres(store) => {
            let relay = Relay::new(Arc::new(store), producer, config).with_monitor(monitor);
            run_relay(relay, drain).await
        }
        #[cfg(feature = "sqlite")]
        AnyOutbox::Sqlite(store) => {
            let relay = Relay::new(Arc::new(store), producer, config).with_monitor(monitor);
            run_relay(relay, drain).await
        }
    };
    if let Some(pruner) = pruner {
        pruner.stop().await;
    }
    Ok(stats?)
}

async fn run_relay<S: OutboxStore>(
    relay: Relay<S>,
    drain: bool,
) -> Result<RelayStats, store::OutboxError> {
    if drain {
        return relay.drain().await;
    }
    let shutdown = Shutdown::on_signals();
    relay
        .run_until(async move { shutdown.triggered().await })
        .await
}

/// `outbox retry|drop`: lists the selected parked rows and, with `execute`, acts on them.
async fn act_on_parked(
    outbox: &AnyOutbox,
    action: ParkedAction,
    selection: &ParkedSelection,
    execute: bool,
    format: OutputFormat,
    out: &mut (dyn Write + Send),
) -> Result<(), OutboxError> {
    let filter = selection.filter().ok_or(OutboxError::NoSelection)?;
    let rows = outbox.parked(&filter, PLAN_LIMIT).await?;
    // Only the rows just listed, never what the filter matches by the time the action
    // runs (a row parked since, or beyond the listing's limit).
    let listed = ParkedFilter {
        ids: rows.iter().map(|row| row.id).collect(),
        ..filter
    };
    let done = match (execute, action) {
        (false, _) => None,
        (true, _) if rows.is_empty() => Some(0),
        (true, ParkedAction::Retry) => Some(outbox.retry_parked(&listed).await?),
        (true, ParkedAction::Drop) => Some(outbox.drop_parked(&listed).await?),
    };
    write_parked_action(action, &rows, done, format, out)?;
    Ok(())
}

/// How many rows `retry` and `drop` list and act on at most (run again for more).
const PLAN_LIMIT: usize = 10_000;

#[derive(Debug, Clone, Copy)]
enum ParkedAction {
    Retry,
    Drop,
}

fn parked_json(row: &ParkedRow) -> serde_json::Value {
    json!({
        "id": row.id.0, "topic": row.topic, "key": row.key_text,
        "ce_id": row.event_id, "ce_type": row.event_type, "attempts": row.attempts,
        "created_at": row.created_at.to_rfc3339(), "parked_at": row.parked_at.to_rfc3339(),
        "reason": row.reason, "waiting_behind": row.waiting_behind,
    })
}

fn write_parked_rows(rows: &[ParkedRow], out: &mut (dyn Write + Send)) -> std::io::Result<()> {
    for row in rows {
        writeln!(
            out,
            "  row={} {} key={} ce_type={} ce_id={} attempts={} parked_at={} waiting_behind={} reason={}",
            row.id,
            row.topic,
            row.key_text.as_deref().unwrap_or("(none)"),
            row.event_type,
            row.event_id,
            row.attempts,
            row.parked_at.to_rfc3339(),
            row.waiting_behind,
            row.reason
        )?;
    }
    Ok(())
}

fn write_parked(
    rows: &[ParkedRow],
    format: OutputFormat,
    out: &mut (dyn Write + Send),
) -> std::io::Result<()> {
    if format == OutputFormat::Json {
        let doc = json!({
            "count": rows.len(),
            "parked": rows.iter().map(parked_json).collect::<Vec<_>>(),
        });
        return writeln!(out, "{doc}");
    }
    writeln!(out, "parked events: {}", rows.len())?;
    write_parked_rows(rows, out)
}

fn write_parked_action(
    action: ParkedAction,
    rows: &[ParkedRow],
    done: Option<u64>,
    format: OutputFormat,
    out: &mut (dyn Write + Send),
) -> std::io::Result<()> {
    let name = match action {
        ParkedAction::Retry => "retry",
        ParkedAction::Drop => "drop",
    };
    // The listing stops at PLAN_LIMIT rows: more may match.
    let more = rows.len() >= PLAN_LIMIT;
    if format == OutputFormat::Json {
        let doc = json!({
            "action": name,
            "executed": done.is_some(),
            "matched": rows.len(),
            "affected": done,
            "limit": PLAN_LIMIT,
            "more_may_match": more,
            "rows": rows.iter().map(parked_json).collect::<Vec<_>>(),
        });
        return writeln!(out, "{doc}");
    }
    let listed = rows.len();
    match (action, done) {
        (ParkedAction::Retry, Some(n)) => writeln!(
            out,
            "unparked {n} of the {listed} event(s) listed below (a row listed but no longer \
             parked is left alone); the relay publishes them, then their keys' waiting events:"
        )?,
        (ParkedAction::Drop, Some(n)) => writeln!(
            out,
            "deleted {n} of the {listed} parked event(s) listed below (a row listed but no \
             longer parked is left alone); their keys' waiting events are published next:"
        )?,
        (ParkedAction::Retry, None) => writeln!(
            out,
            "would unpark {} event(s) (dry run, nothing changed; add --execute to unpark):",
            rows.len()
        )?,
        (ParkedAction::Drop, None) => writeln!(
            out,
            "would delete {} parked event(s) (dry run, nothing changed; add --execute to delete; \
             their events are then never published):",
            rows.len()
        )?,
    }
    write_parked_rows(rows, out)?;
    if more {
        writeln!(
            out,
            "only the first {PLAN_LIMIT} matching events are listed{}: run the command again \
             for the others",
            if done.is_some() { " and acted on" } else { "" }
        )?;
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
            "parked": status.parked,
            "oldest_parked_at": status.oldest_parked_at.map(|at| at.to_rfc3339()),
        });
        return writeln!(out, "{doc}");
    }
    writeln!(out, "pending events:   {}", status.pending)?;
    match oldest_age_ms {
        Some(ms) => writeln!(out, "oldest waits for: {:.1} s", ms as f64 / 1000.0)?,
        None => writeln!(out, "oldest waits for: -")?,
    }
    writeln!(out, "failing keys:     {}", status.failing_keys_total)?;
    match status.oldest_parked_at {
        Some(at) => writeln!(
            out,
            "parked events:    {} (oldest parked {}; see `event-bus outbox parked`)",
            status.parked,
            at.to_rfc3339()
        )?,
        None => writeln!(out, "parked events:    {}", status.parked)?,
    }
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
            "parked": stats.parked,
        });
        return writeln!(out, "{doc}");
    }
    writeln!(
        out,
        "relay stopped: {} published in {} batches, {} failed attempts, {} held back",
        stats.published, stats.batches, stats.failed, stats.held_back
    )
}
