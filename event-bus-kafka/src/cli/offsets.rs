//! `event-bus offsets show|reset`: a consumer group's committed offsets and lag, and
//! moving them to replay (or skip) events.
//!
//! ```text
//! event-bus offsets show --group mailer --topic orders
//! # TOPIC   PARTITION  COMMITTED  END  LAG
//! # orders  0          1200       1250  50
//! event-bus offsets reset --group mailer --topic orders --to-datetime 2024-05-01T12:00:00Z
//! # prints the plan, changes nothing
//! event-bus offsets reset --group mailer --topic orders --to-datetime 2024-05-01T12:00:00Z --execute
//! ```
//!
//! A reset commits the new offsets as an inactive member of the group, so it is
//! refused while any consumer of the group runs: stop them, reset, start them again.
//!
//! ```
//! use clap::Parser;
//! use event_bus_kafka::cli::offsets::OffsetsCommand;
//! use event_bus_kafka::cli::{Cli, Command};
//!
//! let cli = Cli::try_parse_from([
//!     "event-bus", "offsets", "reset", "--group", "mailer", "--topic", "orders",
//!     "--to-offset", "0:10", "1:20",
//! ])?;
//! let Command::Offsets(args) = cli.command else { panic!("offsets") };
//! let OffsetsCommand::Reset(reset) = args.command else { panic!("reset") };
//! assert_eq!(reset.target.to_offset, vec![(0, 10), (1, 20)]);
//! assert!(!reset.execute);
//! // Exactly one target.
//! assert!(Cli::try_parse_from([
//!     "event-bus", "offsets", "reset", "--group", "g", "--topic", "t", "--to-earliest", "--to-latest",
//! ]).is_err());
//! # Ok::<(), clap::Error>(())
//! ```

use std::collections::BTreeMap;
use std::io::{self, Write};

use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::exit_code;
use super::output::write_table;
use super::produce::ConnectionArgs;
use super::{CliContext, OutputFormat};
use crate::config::{ConfigError, EnvSource, KafkaConfig};
use crate::replay::{
    total_lag, GroupState, OffsetAdmin, PartitionOffsets, ReplayError, ResetPlan, ResetTarget,
    ResumeToken,
};
use crate::topic;

/// Arguments of `event-bus offsets`.
///
/// See the [module example](self).
#[derive(Debug, Clone, Args)]
pub struct OffsetsArgs {
    /// What to do with the group's offsets.
    #[command(subcommand)]
    pub command: OffsetsCommand,
}

/// `show` or `reset`.
///
/// ```
/// use clap::Parser;
/// use event_bus_kafka::cli::offsets::OffsetsCommand;
/// use event_bus_kafka::cli::{Cli, Command};
/// let cli = Cli::try_parse_from(["event-bus", "offsets", "show", "--group", "g"])?;
/// let Command::Offsets(args) = cli.command else { panic!("offsets") };
/// assert!(matches!(args.command, OffsetsCommand::Show(_)));
/// # Ok::<(), clap::Error>(())
/// ```
#[derive(Debug, Clone, Subcommand)]
pub enum OffsetsCommand {
    /// Per partition: the group's committed offset, the end offset and the lag.
    ///
    /// Without --topic, every topic the group has committed offsets in.
    #[command(after_help = exit_code::HELP)]
    Show(ShowArgs),
    /// Move the group's committed offsets; prints the plan and changes nothing
    /// without --execute.
    ///
    /// Exactly one target: --to-datetime, --to-offset, --to-earliest, --to-latest,
    /// --shift-by or --to-token. The new offsets are committed as an inactive member
    /// of the group, so the reset is refused while the group has active members:
    /// stop its consumers first (they commit and leave on the way out).
    #[command(after_help = exit_code::HELP)]
    Reset(ResetArgs),
}

/// Arguments of `event-bus offsets show`.
///
/// See [`OffsetsCommand`].
#[derive(Debug, Clone, Args)]
pub struct ShowArgs {
    /// The consumer group.
    #[arg(long, value_name = "GROUP")]
    pub group: String,

    /// Only this topic, before the prefix ($EVENT_BUS_TOPIC_PREFIX) is applied;
    /// repeat for several [default: every topic the group committed offsets in].
    #[arg(long = "topic", value_name = "TOPIC")]
    pub topics: Vec<String>,

    /// Broker overrides.
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

/// Arguments of `event-bus offsets reset`.
///
/// See the [module example](self).
#[derive(Debug, Clone, Args)]
pub struct ResetArgs {
    /// The consumer group whose offsets move.
    #[arg(long, value_name = "GROUP")]
    pub group: String,

    /// The topic, before the prefix ($EVENT_BUS_TOPIC_PREFIX) is applied; repeat for
    /// several (--to-offset then applies to each).
    #[arg(long = "topic", value_name = "TOPIC", required = true)]
    pub topics: Vec<String>,

    /// Where to move the offsets.
    #[command(flatten)]
    pub target: TargetArgs,

    /// Commit the new offsets (without it, only the plan is printed).
    #[arg(long)]
    pub execute: bool,

    /// Broker overrides.
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

/// The reset target: exactly one of the flags.
///
/// ```
/// use event_bus_kafka::cli::offsets::TargetArgs;
/// use event_bus_kafka::replay::ResetTarget;
/// let args = TargetArgs { shift_by: Some(-5), ..TargetArgs::default() };
/// assert_eq!(args.target(), Some(ResetTarget::ShiftBy(-5)));
/// ```
#[derive(Debug, Clone, Default, Args)]
#[group(required = true, multiple = false)]
pub struct TargetArgs {
    /// To the first record at or after this time (RFC 3339, e.g.
    /// 2024-05-01T12:00:00Z); a partition without a record since then moves to its end.
    #[arg(long, value_name = "TIME", value_parser = parse_datetime)]
    pub to_datetime: Option<DateTime<Utc>>,

    /// To these offsets, `<partition>:<offset>` each (e.g. `0:1200 1:980`);
    /// partitions not named stay. Offsets outside the stored range are clamped.
    #[arg(long, value_name = "PARTITION:OFFSET", num_args = 1.., value_parser = parse_partition_offset)]
    pub to_offset: Vec<(i32, i64)>,

    /// To the first record still stored: replays everything.
    #[arg(long)]
    pub to_earliest: bool,

    /// To the end: skips everything not consumed yet.
    #[arg(long)]
    pub to_latest: bool,

    /// By N records from the committed offset (negative: back, replays N records).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub shift_by: Option<i64>,

    /// To the times of a resume token a consumer exported (e.g. on another cluster
    /// before a failover); partitions the token does not cover stay.
    #[arg(long, value_name = "TOKEN", value_parser = parse_token)]
    pub to_token: Option<ResumeToken>,
}

impl TargetArgs {
    /// The target the flags name (`None` when none is set; clap requires one).
    ///
    /// See the type's example.
    pub fn target(&self) -> Option<ResetTarget> {
        if let Some(time) = self.to_datetime {
            Some(ResetTarget::Datetime(time))
        } else if !self.to_offset.is_empty() {
            Some(ResetTarget::Offsets(
                self.to_offset.iter().copied().collect(),
            ))
        } else if self.to_earliest {
            Some(ResetTarget::Earliest)
        } else if self.to_latest {
            Some(ResetTarget::Latest)
        } else if let Some(n) = self.shift_by {
            Some(ResetTarget::ShiftBy(n))
        } else {
            self.to_token.clone().map(ResetTarget::Token)
        }
    }
}

/// Parses an RFC 3339 time (`2024-05-01T12:00:00Z`, `2024-05-01T14:00:00+02:00`).
///
/// ```
/// let t = event_bus_kafka::cli::offsets::parse_datetime("2024-05-01T14:00:00+02:00")?;
/// assert_eq!(t.to_rfc3339(), "2024-05-01T12:00:00+00:00");
/// assert!(event_bus_kafka::cli::offsets::parse_datetime("yesterday").is_err());
/// # Ok::<(), String>(())
/// ```
pub fn parse_datetime(text: &str) -> Result<DateTime<Utc>, String> {
    let time = DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            format!("`{text}` is not an RFC 3339 time ({e}); write e.g. 2024-05-01T12:00:00Z")
        })?;
    if time.timestamp_millis() < 0 {
        return Err(format!(
            "`{text}` is before 1970; Kafka timestamps start at 1970-01-01T00:00:00Z"
        ));
    }
    Ok(time)
}

/// Parses `<partition>:<offset>`.
///
/// ```
/// use event_bus_kafka::cli::offsets::parse_partition_offset;
/// assert_eq!(parse_partition_offset("3:1200"), Ok((3, 1200)));
/// assert!(parse_partition_offset("3").is_err());
/// assert!(parse_partition_offset("-1:5").is_err());
/// ```
pub fn parse_partition_offset(text: &str) -> Result<(i32, i64), String> {
    let usage = || format!("`{text}` is not <partition>:<offset> (e.g. 0:1200)");
    let (partition, offset) = text.trim().split_once(':').ok_or_else(usage)?;
    let partition: i32 = partition.trim().parse().map_err(|_| usage())?;
    let offset: i64 = offset.trim().parse().map_err(|_| usage())?;
    if partition < 0 || offset < 0 {
        return Err(format!(
            "`{text}`: partitions and offsets are never negative (use --shift-by to move back)"
        ));
    }
    Ok((partition, offset))
}

fn parse_token(text: &str) -> Result<ResumeToken, String> {
    ResumeToken::parse(text).map_err(|e| e.to_string())
}

/// Why `event-bus offsets` failed.
///
/// ```
/// use event_bus_kafka::cli::{exit_code, offsets::OffsetsError};
/// use event_bus_kafka::replay::ReplayError;
///
/// let err = OffsetsError::from(ReplayError::GroupActive {
///     group: "g".into(), state: "Stable".into(), members: vec!["c (/h)".into()],
/// });
/// assert_eq!(err.exit_code(), exit_code::CHECK_FAILED);
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OffsetsError {
    /// The broker settings are missing or invalid.
    #[error("{0}; or pass --bootstrap-servers")]
    Config(#[from] ConfigError),
    /// No reset target was given.
    #[error(
        "no reset target: pass one of --to-datetime, --to-offset, --to-earliest, \
         --to-latest, --shift-by, --to-token"
    )]
    NoTarget,
    /// Reading or resetting the offsets failed, or was refused.
    #[error(transparent)]
    Replay(#[from] ReplayError),
    /// The output could not be written.
    #[error("cannot write the output: {0}")]
    Output(#[from] io::Error),
}

impl OffsetsError {
    /// The process exit code: [`exit_code::CHECK_FAILED`] when the reset was refused
    /// (active group), [`exit_code::USAGE`] for bad input (unknown topic or
    /// partition, a token without the topic), [`exit_code::ERROR`] otherwise.
    ///
    /// See the type's example.
    pub fn exit_code(&self) -> u8 {
        match self {
            OffsetsError::Config(_) | OffsetsError::NoTarget => exit_code::USAGE,
            OffsetsError::Replay(err) if err.is_refusal() => exit_code::CHECK_FAILED,
            OffsetsError::Replay(err) if err.is_usage() => exit_code::USAGE,
            OffsetsError::Replay(_) | OffsetsError::Output(_) => exit_code::ERROR,
        }
    }
}

/// The Kafka settings (EVENT_BUS_* with the flags over them) and the topic prefix.
pub(crate) fn connection(
    connection: &ConnectionArgs,
) -> Result<(KafkaConfig, EnvSource), ConfigError> {
    let env = connection.env_source();
    Ok((KafkaConfig::from_env_source(&env)?, env))
}

/// `topic` with the `EVENT_BUS_TOPIC_PREFIX` of `env` applied.
pub(crate) fn full_topic(env: &EnvSource, name: &str) -> String {
    topic::full_topic(env.get("EVENT_BUS_TOPIC_PREFIX"), name)
}

/// Runs `event-bus offsets show|reset`.
///
/// ```no_run
/// use clap::Parser;
/// use event_bus_kafka::cli::{run_with, Cli, CliContext};
/// # async fn demo() -> Result<(), event_bus_kafka::cli::CliError> {
/// let cli = Cli::try_parse_from([
///     "event-bus", "offsets", "show", "--group", "mailer", "--bootstrap-servers", "localhost:9092",
/// ]).expect("flags");
/// run_with(cli, &CliContext::default(), &mut std::io::stdout()).await?;
/// # Ok(()) }
/// ```
pub async fn run(
    args: &OffsetsArgs,
    context: &CliContext,
    out: &mut (dyn Write + Send),
) -> Result<(), OffsetsError> {
    match &args.command {
        OffsetsCommand::Show(show) => run_show(show, context.output, out).await,
        OffsetsCommand::Reset(reset) => run_reset(reset, context.output, out).await,
    }
}

async fn run_show(
    args: &ShowArgs,
    format: OutputFormat,
    out: &mut (dyn Write + Send),
) -> Result<(), OffsetsError> {
    let (kafka, env) = connection(&args.connection)?;
    let admin = OffsetAdmin::new(&kafka, &args.group)?;
    let partitions = if args.topics.is_empty() {
        admin.lag_of_committed_topics().await?
    } else {
        let topics: Vec<String> = args.topics.iter().map(|t| full_topic(&env, t)).collect();
        admin.lag(&topics).await?
    };
    // The mock cluster cannot describe groups; the offsets are still worth showing.
    let state = admin.group_state().await.ok();
    match format {
        OutputFormat::Text => write_show_text(out, &args.group, &partitions, state.as_ref())?,
        OutputFormat::Json => {
            let document = json!({
                "group": args.group,
                "state": state.as_ref().map(|s| s.state.clone()),
                "members": state.as_ref().map(|s| s.members.iter().map(ToString::to_string).collect::<Vec<_>>()),
                "partitions": partitions.iter().map(|p| json!({
                    "topic": p.topic,
                    "partition": p.partition,
                    "committed": p.committed,
                    "earliest": p.earliest,
                    "end": p.latest,
                    "lag": p.lag(),
                })).collect::<Vec<Value>>(),
                "total_lag": total_lag(&partitions),
            });
            serde_json::to_writer_pretty(&mut *out, &document).map_err(io::Error::from)?;
            writeln!(out)?;
        }
    }
    Ok(())
}

fn or_dash(value: Option<i64>) -> String {
    value.map_or_else(|| "-".to_string(), |v| v.to_string())
}

fn write_show_text(
    out: &mut (dyn Write + Send),
    group: &str,
    partitions: &[PartitionOffsets],
    state: Option<&GroupState>,
) -> io::Result<()> {
    if let Some(state) = state {
        writeln!(
            out,
            "group {group}: {} member(s), state {}",
            state.members.len(),
            state.state
        )?;
    }
    if partitions.is_empty() {
        return writeln!(out, "group {group} has no committed offsets");
    }
    let mut rows = vec![vec![
        "TOPIC".to_string(),
        "PARTITION".into(),
        "COMMITTED".into(),
        "END".into(),
        "LAG".into(),
    ]];
    for p in partitions {
        rows.push(vec![
            p.topic.clone(),
            p.partition.to_string(),
            or_dash(p.committed),
            p.latest.to_string(),
            or_dash(p.lag()),
        ]);
    }
    write_table(out, &rows)?;
    writeln!(out, "total lag {}", total_lag(partitions))
}

async fn run_reset(
    args: &ResetArgs,
    format: OutputFormat,
    out: &mut (dyn Write + Send),
) -> Result<(), OffsetsError> {
    let (kafka, env) = connection(&args.connection)?;
    let Some(target) = args.target.target() else {
        // clap requires exactly one target; a caller building ResetArgs by hand may not.
        return Err(OffsetsError::NoTarget);
    };
    let topics: Vec<String> = args.topics.iter().map(|t| full_topic(&env, t)).collect();
    let admin = OffsetAdmin::new(&kafka, &args.group)?;
    let plan = admin.plan(&topics, &target).await?;
    let state = admin.group_state().await.ok();
    if format == OutputFormat::Text {
        write_plan_text(out, &plan, state.as_ref())?;
    }
    if args.execute {
        admin.apply(&plan).await?;
    }
    match format {
        OutputFormat::Text if args.execute => writeln!(
            out,
            "Committed the new offsets of group `{}` for {} partition(s).",
            plan.group,
            plan.changes().count()
        )?,
        OutputFormat::Text => writeln!(
            out,
            "Dry run: nothing changed. Run again with --execute to commit these offsets \
             (the group must have no running consumers)."
        )?,
        OutputFormat::Json => {
            let document = plan_json(&plan, args.execute, state.as_ref());
            serde_json::to_writer_pretty(&mut *out, &document).map_err(io::Error::from)?;
            writeln!(out)?;
        }
    }
    Ok(())
}

/// The plan as JSON: what `offsets reset --output json` prints.
fn plan_json(plan: &ResetPlan, executed: bool, state: Option<&GroupState>) -> Value {
    let partitions: Vec<Value> = plan
        .partitions
        .iter()
        .map(|p| {
            json!({
                "topic": p.topic,
                "partition": p.partition,
                "current": p.current,
                "new": p.new,
                "change": p.change(),
                "earliest": p.earliest,
                "end": p.latest,
                "note": p.note.as_ref().map(ToString::to_string),
            })
        })
        .collect();
    json!({
        "group": plan.group,
        "target": plan.target.to_string(),
        "executed": executed,
        "active_members": state.map(|s| s.members.len()),
        "partitions": partitions,
    })
}

fn write_plan_text(
    out: &mut (dyn Write + Send),
    plan: &ResetPlan,
    state: Option<&GroupState>,
) -> io::Result<()> {
    writeln!(
        out,
        "Offset reset plan for group `{}` ({}):",
        plan.group, plan.target
    )?;
    let mut rows = vec![vec![
        "TOPIC".to_string(),
        "PARTITION".into(),
        "CURRENT".into(),
        "NEW".into(),
        "CHANGE".into(),
        "NOTE".into(),
    ]];
    for p in &plan.partitions {
        rows.push(vec![
            p.topic.clone(),
            p.partition.to_string(),
            or_dash(p.current),
            or_dash(p.new),
            p.change()
                .map_or_else(|| "-".to_string(), |c| format!("{c:+}")),
            p.note.as_ref().map(ToString::to_string).unwrap_or_default(),
        ]);
    }
    write_table(out, &rows)?;
    if let Some(state) = state.filter(|s| s.is_active()) {
        let members: BTreeMap<String, ()> =
            state.members.iter().map(|m| (m.to_string(), ())).collect();
        writeln!(
            out,
            "warning: the group has {} active member(s) ({}); --execute is refused until they stop",
            state.members.len(),
            members.into_keys().collect::<Vec<_>>().join(", ")
        )?;
    }
    Ok(())
}
