//! `event-bus inbox status|prune`: the inbox's rows (the events transactional receivers
//! have handled) from the command line. The database is the outbox's
//! (`EVENT_BUS_OUTBOX_DATABASE_URL` or `--database-url`): `postgres://…` or `sqlite:…`.
//! Neither command creates a table, a schema or a SQLite file; without an inbox table
//! both say to run `event-bus outbox migrate` and exit with 1.

use std::io::Write;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use serde_json::json;

use super::exit_code;
use super::output::write_table;
use super::{CliContext, OutputFormat};
use crate::config::{ConfigError, Secret};
use crate::inbox::{self as store, AnyInbox, InboxRetention, InboxStatus};
use crate::outbox::OutboxConfig;

/// Arguments of `event-bus inbox`.
///
/// `Debug` hides `--database-url` (it may hold a password).
///
/// ```
/// use clap::Parser;
/// use event_bus_kafka::cli::{inbox::InboxCommand, Cli, Command};
/// let cli = Cli::try_parse_from([
///     "event-bus", "inbox", "prune", "--older-than", "36h", "--batch-size", "500",
///     "--database-url", "postgres://app:hunter2@db/app",
/// ]).unwrap();
/// let Command::Inbox(args) = &cli.command else { panic!("inbox") };
/// let InboxCommand::Prune { older_than, batch_size } = &args.command else { panic!("prune") };
/// assert_eq!(*older_than, Some(std::time::Duration::from_secs(36 * 3600)));
/// assert_eq!(*batch_size, Some(500));
/// assert!(!format!("{cli:?}").contains("hunter2"));
/// assert!(Cli::try_parse_from(["event-bus", "inbox", "prune", "--older-than", "0s"]).is_err());
/// ```
#[derive(Debug, Clone, Args)]
pub struct InboxArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: InboxCommand,
    /// The inbox lives in the outbox's database: `postgres://…` or `sqlite:…`, by default
    /// EVENT_BUS_OUTBOX_DATABASE_URL (better for a URL with a password, which a command
    /// line would show to anyone listing processes).
    #[arg(long, global = true, value_name = "URL", value_parser = secret_url)]
    pub database_url: Option<Secret>,
}

/// `--database-url`, kept out of `Debug`.
fn secret_url(url: &str) -> Result<Secret, std::convert::Infallible> {
    Ok(Secret::new(url))
}

/// The `inbox` subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum InboxCommand {
    /// Rows (handled events remembered for deduplication), the oldest one's age, and
    /// rows per consumer group and receiver. Read-only.
    Status,
    /// Deletes the rows handled longer ago than --older-than, oldest first, in batches
    /// (each its own transaction), and says how many. An event delivered again after its
    /// row is gone runs again: keep rows longer than your topics keep records.
    /// `event-bus outbox relay` does the same every EVENT_BUS_INBOX_PRUNE_INTERVAL.
    Prune {
        /// Delete rows handled longer ago than this (`7d`, `36h`, `90m`…); default:
        /// EVENT_BUS_INBOX_RETENTION, else 7d.
        #[arg(long, value_name = "AGE", value_parser = parse_age)]
        older_than: Option<Duration>,
        /// Rows per delete statement; default: EVENT_BUS_INBOX_PRUNE_BATCH, else 1000.
        #[arg(long, value_name = "ROWS", value_parser = clap::value_parser!(u64).range(1..))]
        batch_size: Option<u64>,
    },
}

/// `--older-than`: a duration with a unit, above zero.
fn parse_age(value: &str) -> Result<Duration, String> {
    match humantime::parse_duration(value) {
        Ok(age) if !age.is_zero() => Ok(age),
        Ok(_) => Err("must be above zero, e.g. 7d, 36h or 90m".to_owned()),
        Err(error) => Err(format!(
            "{error}; write a duration with a unit, e.g. 7d, 36h or 90m"
        )),
    }
}

/// Why `event-bus inbox` failed.
///
/// ```
/// use event_bus_kafka::cli::{exit_code, inbox::InboxError};
/// let missing = InboxError::Inbox(event_bus_kafka::inbox::InboxError::NoInboxTable { table: "event_bus.inbox" });
/// assert_eq!(missing.exit_code(), exit_code::CHECK_FAILED);
/// assert!(missing.to_string().contains("event-bus outbox migrate"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InboxError {
    /// A setting is missing or invalid (the database URL, EVENT_BUS_INBOX_*).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The inbox store failed, or has no table.
    #[error(transparent)]
    Inbox(#[from] store::InboxError),
    /// The output could not be written.
    #[error("cannot write the output: {0}")]
    Output(#[from] std::io::Error),
}

impl InboxError {
    /// The process exit code: 1 without an inbox table, 2 for a missing or invalid
    /// setting, 3 when the database cannot be used.
    ///
    /// See the type's example.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Config(_) => exit_code::USAGE,
            Self::Inbox(store::InboxError::NoInboxTable { .. }) => exit_code::CHECK_FAILED,
            _ => exit_code::ERROR,
        }
    }
}

/// Runs `event-bus inbox`.
///
/// ```no_run
/// # async fn demo() {
/// use clap::Parser;
/// let cli = event_bus_kafka::cli::Cli::try_parse_from(["event-bus", "inbox", "status"]).unwrap();
/// let mut out = Vec::new();
/// let _ = event_bus_kafka::cli::run(cli, &mut out).await;
/// # }
/// ```
pub async fn run(
    args: &InboxArgs,
    context: &CliContext,
    out: &mut (dyn Write + Send),
) -> Result<(), InboxError> {
    let url = match &args.database_url {
        Some(url) => url.expose().to_owned(),
        None => OutboxConfig::from_env()?.database_url.expose().to_owned(),
    };
    let inbox = AnyInbox::open_existing(&url).await?;
    match &args.command {
        InboxCommand::Status => {
            let status = inbox.status().await?;
            write_status(&status, Utc::now(), context.output, out)?;
        }
        InboxCommand::Prune {
            older_than,
            batch_size,
        } => {
            // EVENT_BUS_INBOX_* give what the flags do not.
            let retention = match (older_than, batch_size) {
                (Some(_), Some(_)) => InboxRetention::default(),
                _ => InboxRetention::from_env()?,
            };
            let older_than = older_than.unwrap_or(retention.max_age);
            let batch_size = batch_size
                .and_then(|batch| usize::try_from(batch).ok())
                .unwrap_or(retention.batch_size);
            let deleted = inbox.prune(older_than, batch_size).await?;
            let left = inbox.status().await?.rows;
            write_pruned(deleted, left, older_than, batch_size, context.output, out)?;
        }
    }
    Ok(())
}

/// An age as people read it, to the second (`2h 5m 3s`).
fn readable(age: Duration) -> String {
    humantime::format_duration(Duration::from_secs(age.as_secs())).to_string()
}

/// How long before `now` `then` was (zero if later: clocks differ).
fn age_at(now: DateTime<Utc>, then: DateTime<Utc>) -> Duration {
    (now - then).to_std().unwrap_or_default()
}

fn age_ms(age: Duration) -> u64 {
    u64::try_from(age.as_millis()).unwrap_or(u64::MAX)
}

fn write_status(
    status: &InboxStatus,
    now: DateTime<Utc>,
    format: OutputFormat,
    out: &mut (dyn Write + Send),
) -> std::io::Result<()> {
    let oldest = status.oldest_handled_at.map(|at| (at, age_at(now, at)));
    if format == OutputFormat::Json {
        let receivers: Vec<_> = status
            .receivers
            .iter()
            .map(|r| {
                json!({
                    "consumer_group": r.consumer_group,
                    "receiver": r.receiver,
                    "rows": r.rows,
                    "oldest_handled_at": r.oldest_handled_at.map(|at| at.to_rfc3339()),
                    "oldest_age_ms": r.oldest_handled_at.map(|at| age_ms(age_at(now, at))),
                })
            })
            .collect();
        let doc = json!({
            "rows": status.rows,
            "oldest_handled_at": oldest.map(|(at, _)| at.to_rfc3339()),
            "oldest_age_ms": oldest.map(|(_, age)| age_ms(age)),
            "receivers": receivers,
        });
        return writeln!(out, "{doc}");
    }
    writeln!(out, "inbox rows:  {}", status.rows)?;
    match oldest {
        Some((at, age)) => writeln!(
            out,
            "oldest row:  handled {} ({} ago)",
            at.to_rfc3339(),
            readable(age)
        )?,
        None => writeln!(out, "oldest row:  -")?,
    }
    if status.receivers.is_empty() {
        return Ok(());
    }
    writeln!(out)?;
    let header = ["GROUP", "RECEIVER", "ROWS", "OLDEST HANDLED", "AGE"];
    let mut table = vec![header.map(str::to_owned).to_vec()];
    for r in &status.receivers {
        let group = match r.consumer_group.as_str() {
            "" => "(local)".to_owned(),
            group => group.to_owned(),
        };
        let (at, age) = match r.oldest_handled_at {
            Some(at) => (at.to_rfc3339(), readable(age_at(now, at))),
            None => ("-".to_owned(), "-".to_owned()),
        };
        table.push(vec![group, r.receiver.clone(), r.rows.to_string(), at, age]);
    }
    write_table(out, &table)
}

fn write_pruned(
    deleted: u64,
    left: u64,
    older_than: Duration,
    batch_size: usize,
    format: OutputFormat,
    out: &mut (dyn Write + Send),
) -> std::io::Result<()> {
    if format == OutputFormat::Json {
        let doc = json!({
            "deleted": deleted,
            "rows_left": left,
            "older_than_s": older_than.as_secs(),
            "batch_size": batch_size,
        });
        return writeln!(out, "{doc}");
    }
    writeln!(
        out,
        "deleted {deleted} inbox row(s) handled more than {} ago (at most {batch_size} per \
         statement); {left} row(s) left",
        readable(older_than)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbox::ReceiverRows;

    fn text(status: &InboxStatus, now: DateTime<Utc>) -> String {
        let mut out = Vec::new();
        write_status(status, now, OutputFormat::Text, &mut out).expect("written");
        String::from_utf8(out).expect("UTF-8")
    }

    #[test]
    fn status_lists_each_receiver_with_its_age() {
        let now = DateTime::from_timestamp(10_000, 0).expect("time");
        let at = |secs| DateTime::from_timestamp(secs, 0);
        let status = InboxStatus {
            rows: 5,
            oldest_handled_at: at(10_000 - 7_200),
            oldest_age: None,
            receivers: vec![
                ReceiverRows {
                    consumer_group: String::new(),
                    receiver: "audit".into(),
                    rows: 2,
                    oldest_handled_at: at(10_000 - 7_200),
                },
                ReceiverRows {
                    consumer_group: "billing".into(),
                    receiver: "invoice".into(),
                    rows: 3,
                    oldest_handled_at: at(10_000 - 65),
                },
            ],
        };
        let shown = text(&status, now);
        assert!(shown.contains("inbox rows:  5"), "{shown}");
        assert!(shown.contains("(2h ago)"), "{shown}");
        let lines: Vec<&str> = shown.lines().collect();
        assert!(lines[3].starts_with("GROUP"), "{shown}");
        assert!(
            lines[4].starts_with("(local)  audit") && lines[4].ends_with("2h"),
            "{shown}"
        );
        assert!(lines[5].starts_with("billing  invoice") && lines[5].ends_with("1m 5s"));

        let empty = text(&InboxStatus::default(), now);
        assert_eq!(empty, "inbox rows:  0\noldest row:  -\n");
    }

    #[test]
    fn ages_need_a_unit_and_must_be_above_zero() {
        assert_eq!(parse_age("90m"), Ok(Duration::from_secs(5400)));
        assert!(parse_age("0h").is_err());
        assert!(parse_age("3600").is_err_and(|e| e.contains("e.g. 7d")));
    }
}
