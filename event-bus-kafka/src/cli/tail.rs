//! `event-bus tail`: prints the records of a topic as JSON lines, decoded through the
//! schema registry — any event type, no Rust types needed.
//!
//! Each line holds the record's place (topic, partition, offset, timestamp), its key,
//! its CloudEvents metadata (from the headers), the schema id and the payload as
//! JSON, plus every header. A record that does not decode is printed too, with an
//! `error` field saying why and its value as base64.
//!
//! ```text
//! event-bus tail --topic user-login --from-datetime 2024-05-01T12:00:00Z --max 10
//! {"topic":"user-login","partition":0,"offset":17,"timestamp":"2024-05-01T12:00:03.120Z",
//!  "key":"ada","event_type":"org.openedx.learning.auth.session.login.completed.v1",
//!  "metadata":{…},"schema_id":3,"payload":{"user":{…}},"headers":{…}}
//! ```
//!
//! ```
//! use clap::Parser;
//! use event_bus_kafka::cli::{Cli, Command};
//! let cli = Cli::try_parse_from(["event-bus", "tail", "--topic", "user-login", "--from-beginning", "--max", "5"])?;
//! let Command::Tail(args) = cli.command else { panic!("tail") };
//! assert_eq!(args.max, Some(5));
//! assert!(args.start.from_beginning);
//! # Ok::<(), clap::Error>(())
//! ```

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, SecondsFormat, Utc};
use clap::Args;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Message};

use crate::record_headers::NativeHeaders;
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{json, Map, Value};

use super::exit_code;
use super::offsets::{connection, full_topic, parse_datetime};
use super::produce::ConnectionArgs;
use super::CliContext;
use crate::config::{ConfigError, KafkaConfig, RegistryConfig};
use crate::registry::{RegistryClient, RegistryError};
use crate::replay::{OffsetAdmin, ReplayError};

/// Arguments of `event-bus tail`.
///
/// See the [module example](self).
#[derive(Debug, Clone, Args)]
pub struct TailArgs {
    /// The topic, before the prefix ($EVENT_BUS_TOPIC_PREFIX) is applied.
    #[arg(long, value_name = "TOPIC")]
    pub topic: String,

    /// Where to start (default: the end, printing only new records).
    #[command(flatten)]
    pub start: StartArgs,

    /// Stop after this many records.
    #[arg(long, value_name = "N")]
    pub max: Option<u64>,

    /// Stop at the end of the topic as it was when the command started, instead of
    /// waiting for new records.
    #[arg(long)]
    pub until_end: bool,

    /// Broker and registry overrides.
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

/// Where `tail` starts: at most one of the flags (default: the end).
///
/// ```
/// let start = event_bus_kafka::cli::tail::StartArgs::default();
/// assert!(!start.from_beginning && start.from_datetime.is_none());
/// ```
#[derive(Debug, Clone, Default, Args)]
#[group(multiple = false)]
pub struct StartArgs {
    /// From the first record still stored.
    #[arg(long)]
    pub from_beginning: bool,

    /// From the first record at or after this time (RFC 3339, e.g.
    /// 2024-05-01T12:00:00Z).
    #[arg(long, value_name = "TIME", value_parser = parse_datetime)]
    pub from_datetime: Option<DateTime<Utc>>,
}

/// Why `event-bus tail` failed.
///
/// ```
/// use event_bus_kafka::cli::{exit_code, tail::TailError};
/// let err = TailError::Config(event_bus_kafka::config::ConfigError::Missing {
///     setting: "schema registry url",
///     variable: "EVENT_BUS_SCHEMA_REGISTRY_URL",
///     hint: "e.g. http://localhost:8081",
/// });
/// assert_eq!(err.exit_code(), exit_code::USAGE);
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TailError {
    /// The broker or registry settings are missing or invalid.
    #[error("{0}; or pass --bootstrap-servers / --schema-registry-url")]
    Config(#[from] ConfigError),
    /// The registry client could not be built.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The topic or its offsets could not be read.
    #[error(transparent)]
    Offsets(#[from] ReplayError),
    /// The Kafka consumer could not be created or assigned, or reading failed.
    #[error("{operation} failed: {source}; check the brokers and EVENT_BUS_KAFKA_* options")]
    Kafka {
        /// What was being done.
        operation: &'static str,
        /// librdkafka's error.
        #[source]
        source: Box<rdkafka::error::KafkaError>,
    },
    /// The output could not be written (e.g. the pipe was closed).
    #[error("cannot write the output: {0}")]
    Output(#[from] io::Error),
}

impl TailError {
    /// The process exit code: [`exit_code::USAGE`] for missing settings or an unknown
    /// topic, [`exit_code::ERROR`] otherwise.
    ///
    /// See the type's example.
    pub fn exit_code(&self) -> u8 {
        match self {
            TailError::Config(_) => exit_code::USAGE,
            TailError::Offsets(err) if err.is_usage() => exit_code::USAGE,
            _ => exit_code::ERROR,
        }
    }
}

/// Decodes records into JSON through the registry, any event type.
///
/// ```no_run
/// use event_bus_kafka::cli::tail::RecordDecoder;
/// use event_bus_kafka::registry::RegistryClient;
/// use event_bus_kafka::config::RegistryConfig;
/// # async fn demo(message: &rdkafka::message::OwnedMessage) -> Result<(), Box<dyn std::error::Error>> {
/// let decoder = RecordDecoder::new(std::sync::Arc::new(RegistryClient::new(RegistryConfig::new("http://localhost:8081"))?));
/// let line = decoder.to_json(message).await;
/// println!("{line}");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct RecordDecoder {
    registry: Arc<RegistryClient>,
}

impl RecordDecoder {
    /// A decoder using `registry` (whose schema cache makes each id one request).
    ///
    /// See the type's example.
    pub fn new(registry: Arc<RegistryClient>) -> Self {
        Self { registry }
    }

    /// The JSON line of one record: place, key, metadata, schema id, payload,
    /// headers, and `error` when something did not decode.
    ///
    /// See the type's example.
    pub async fn to_json<M>(&self, message: &M) -> Value
    where
        M: Message,
        M::Headers: NativeHeaders,
    {
        let mut line = Map::new();
        line.insert("topic".into(), json!(message.topic()));
        line.insert("partition".into(), json!(message.partition()));
        line.insert("offset".into(), json!(message.offset()));
        let millis = message.timestamp().to_millis();
        line.insert("timestamp".into(), json!(millis.and_then(format_millis)));
        line.insert("timestamp_ms".into(), json!(millis));
        let headers = header_pairs(message);
        let mut errors = Vec::new();
        let key = match message.key() {
            None => Value::Null,
            Some(bytes) => self.decode_key(bytes).await,
        };
        line.insert("key".into(), key);
        let borrowed = headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_deref()));
        match event_bus_core::headers::parse_headers(borrowed) {
            Ok(parsed) => {
                let meta = parsed.metadata;
                line.insert("event_type".into(), json!(meta.event_type));
                line.insert(
                    "metadata".into(),
                    json!({
                        "id": meta.id.to_string(),
                        "type": meta.event_type,
                        "source": meta.source,
                        "time": event_bus_core::headers::format_time(&meta.time),
                        "minorversion": meta.minorversion,
                        "sourcehost": meta.sourcehost,
                        "sourcelib": meta.sourcelib,
                        "traceparent": meta.traceparent,
                    }),
                );
            }
            Err(err) => errors.push(format!("headers: {err}")),
        }
        match message.payload() {
            None => {
                line.insert("payload".into(), Value::Null);
                errors.push("the record has no value (a tombstone)".into());
            }
            Some(value) => match self.decode_value(value).await {
                Ok((schema_id, payload)) => {
                    line.insert("schema_id".into(), json!(schema_id));
                    line.insert("payload".into(), payload);
                }
                Err(err) => {
                    line.insert("payload".into(), Value::Null);
                    line.insert("value_base64".into(), json!(STANDARD.encode(value)));
                    errors.push(format!("value: {err}"));
                }
            },
        }
        let header_map: BTreeMap<&str, Value> = headers
            .iter()
            .map(|(name, value)| (name.as_str(), header_json(value.as_deref())))
            .collect();
        line.insert("headers".into(), json!(header_map));
        if !errors.is_empty() {
            line.insert("error".into(), json!(errors.join("; ")));
        }
        Value::Object(line)
    }

    /// A framed Avro key decodes to its JSON value; other keys print as text, or as
    /// base64 when they are not UTF-8.
    async fn decode_key(&self, bytes: &[u8]) -> Value {
        if let Ok((_, payload)) = self.decode_value(bytes).await {
            return payload;
        }
        match std::str::from_utf8(bytes) {
            Ok(text) => json!(text),
            Err(_) => json!({ "base64": STANDARD.encode(bytes) }),
        }
    }

    /// `(schema id, JSON)` of a Confluent-framed Avro value.
    async fn decode_value(&self, bytes: &[u8]) -> Result<(u32, Value), String> {
        let (id, datum) = event_bus_core::codec::unframe(bytes).map_err(|e| e.to_string())?;
        let schema = self
            .registry
            .schema_by_id(id)
            .await
            .map_err(|e| format!("schema id {id}: {e}"))?;
        let value =
            event_bus_core::codec::decode_value(datum, &schema, None).map_err(|e| e.to_string())?;
        let json = Value::try_from(value)
            .map_err(|e| format!("cannot show the decoded value as JSON: {e}"))?;
        Ok((id, json))
    }
}

/// RFC 3339 with milliseconds, UTC.
fn format_millis(millis: i64) -> Option<String> {
    DateTime::<Utc>::from_timestamp_millis(millis)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

/// The record's headers as owned pairs, in order (a name that is not UTF-8 is read
/// lossily instead of stopping the command).
pub(crate) use crate::record_headers::owned_header_pairs as header_pairs;

/// A header value as JSON: text when UTF-8, else `{"base64": …}`; `null` when absent.
pub(crate) fn header_json(value: Option<&[u8]>) -> Value {
    match value {
        None => Value::Null,
        Some(bytes) => match std::str::from_utf8(bytes) {
            Ok(text) => json!(text),
            Err(_) => json!({ "base64": STANDARD.encode(bytes) }),
        },
    }
}

fn tail_consumer(kafka: &KafkaConfig) -> Result<StreamConsumer, TailError> {
    let group = format!("event-bus-tail-{}", uuid::Uuid::new_v4().simple());
    kafka
        .client_config(&[
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("enable.partition.eof", "false"),
        ])
        .set("group.id", &group)
        .create()
        .map_err(|source| TailError::Kafka {
            operation: "creating the Kafka consumer",
            source: Box::new(crate::config::secret::redact_kafka_error(source)),
        })
}

/// Runs `event-bus tail` until `--max`, `--until-end`, or Ctrl-C.
///
/// ```no_run
/// use clap::Parser;
/// use event_bus_kafka::cli::{run_with, Cli, CliContext};
/// # async fn demo() -> Result<(), event_bus_kafka::cli::CliError> {
/// let cli = Cli::try_parse_from(["event-bus", "tail", "--topic", "user-login", "--from-beginning", "--max", "3"])
///     .expect("flags");
/// run_with(cli, &CliContext::default(), &mut std::io::stdout()).await?;
/// # Ok(()) }
/// ```
pub async fn run(
    args: &TailArgs,
    context: &CliContext,
    out: &mut (dyn Write + Send),
) -> Result<(), TailError> {
    let _ = context;
    let (kafka, env) = connection(&args.connection)?;
    let registry = RegistryClient::new(RegistryConfig::from_env_source(&env)?)?;
    let decoder = RecordDecoder::new(Arc::new(registry));
    let topic = full_topic(&env, &args.topic);
    let admin = OffsetAdmin::new(&kafka, "event-bus-tail")?;
    let partitions = admin.partitions(&topic).await?;
    let starts: Vec<(i32, Offset)> = if args.start.from_beginning {
        partitions.iter().map(|p| (*p, Offset::Beginning)).collect()
    } else if let Some(time) = args.start.from_datetime {
        admin
            .offsets_for_time(&topic, time)
            .await?
            .into_iter()
            .map(|(p, o)| (p, Offset::Offset(o)))
            .collect()
    } else {
        partitions.iter().map(|p| (*p, Offset::End)).collect()
    };
    // Per partition, the offset to stop at with --until-end.
    let mut remaining: BTreeMap<i32, i64> = BTreeMap::new();
    if args.until_end {
        let offsets = admin.lag(std::slice::from_ref(&topic)).await?;
        for p in offsets {
            let start = starts
                .iter()
                .find(|(partition, _)| *partition == p.partition)
                .map(|(_, start)| match start {
                    Offset::Offset(o) => *o,
                    Offset::End => p.latest,
                    _ => p.earliest,
                })
                .unwrap_or(p.earliest);
            if start < p.latest {
                remaining.insert(p.partition, p.latest);
            }
        }
        if remaining.is_empty() {
            return Ok(());
        }
    }
    let consumer = tail_consumer(&kafka)?;
    let mut assignment = TopicPartitionList::new();
    for (partition, start) in &starts {
        assignment
            .add_partition_offset(&topic, *partition, *start)
            .map_err(|source| TailError::Kafka {
                operation: "building the assignment",
                source: Box::new(source),
            })?;
    }
    consumer
        .assign(&assignment)
        .map_err(|source| TailError::Kafka {
            operation: "assigning the topic's partitions",
            source: Box::new(source),
        })?;
    tracing::debug!(topic = %topic, partitions = partitions.len(), until_end = args.until_end, "tail started");
    let mut printed: u64 = 0;
    let stop = tokio::signal::ctrl_c();
    tokio::pin!(stop);
    loop {
        if args.max.is_some_and(|max| printed >= max) {
            break;
        }
        let message: BorrowedMessage<'_> = tokio::select! {
            _ = &mut stop => break,
            message = consumer.recv() => message.map_err(|source| TailError::Kafka {
                operation: "reading the topic",
                source: Box::new(source),
            })?,
        };
        let (partition, offset) = (message.partition(), message.offset());
        if args.until_end && remaining.get(&partition).is_none_or(|end| offset >= *end) {
            continue;
        }
        let line = decoder.to_json(&message).await;
        serde_json::to_writer(&mut *out, &line).map_err(io::Error::from)?;
        writeln!(out)?;
        out.flush()?;
        printed += 1;
        if args.until_end {
            if let Some(end) = remaining.get(&partition) {
                if offset + 1 >= *end {
                    remaining.remove(&partition);
                }
            }
            if remaining.is_empty() {
                break;
            }
        }
    }
    Ok(())
}
