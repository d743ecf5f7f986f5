//! `event-bus produce-event` (also the `produce_event` binary): sends one event given
//! as JSON and prints where it landed.
//!
//! The JSON is checked against the registered event type before anything is
//! contacted; the event is then registered and framed exactly as
//! [`Producer::send`] does it (FULL_TRANSITIVE subjects, Confluent framing of key and
//! value, CloudEvents headers), so consumers cannot tell it from one a service sent.
//!
//! ```text
//! export EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS=localhost:9092
//! export EVENT_BUS_SCHEMA_REGISTRY_URL=http://localhost:8081
//! event-bus produce-event \
//!     --event-type org.openedx.learning.auth.session.login.completed.v1 \
//!     --data '{"user": {"id": 3, "is_active": true, "pii": {"username": "ada", "email": "ada@example.com", "name": "Ada"}}}'
//! # user-login[0]@17 ce_id 5f0c… (org.openedx.learning.auth.session.login.completed.v1, key ada)
//! ```
//!
//! ```
//! use clap::Parser;
//! use event_bus_kafka::cli::{Cli, Command};
//!
//! let cli = Cli::try_parse_from([
//!     "event-bus", "produce-event",
//!     "--event-type", "org.example.shop.order.placed.v1",
//!     "--key-field", "order.id",
//!     "--data", "@order.json",
//! ])?;
//! let Command::Produce(args) = cli.command else { panic!("produce-event") };
//! assert_eq!(args.key_field.as_deref(), Some("order.id"));
//! assert_eq!(args.data, "@order.json");
//! # Ok::<(), clap::Error>(())
//! ```

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::process::ExitCode;

use clap::Args;
use event_bus_core::EventRegistration;
use serde_json::{json, Value};

use super::exit_code;
use super::{App, CliContext, OutputFormat};
use crate::config::{ConfigError, EnvSource, ProducerConfig};
use crate::producer::{Delivery, JsonEvent, JsonInputError, Producer, ProducerError};

/// Where the broker and the registry are, overriding the `EVENT_BUS_*` environment
/// (shared by `produce-event` and `consume-events`).
///
/// ```
/// use event_bus_kafka::cli::produce::ConnectionArgs;
///
/// let args = ConnectionArgs {
///     bootstrap_servers: Some("b:9092".into()),
///     schema_registry_url: None,
/// };
/// let env = args.env_source();
/// assert_eq!(env.get("EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS"), Some("b:9092"));
///
/// let with_password = ConnectionArgs {
///     bootstrap_servers: None,
///     schema_registry_url: Some("https://svc:hunter2@registry:8081".into()),
/// };
/// assert!(format!("{with_password:?}").contains("https://svc:***@registry:8081"));
/// assert!(!format!("{with_password:?}").contains("hunter2"));
/// ```
///
/// `Debug` shows the registry URL with its password hidden.
#[derive(Clone, Default, Args)]
pub struct ConnectionArgs {
    /// Kafka brokers, `host:port,…` [default: $EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS].
    ///
    /// Other librdkafka options come from `EVENT_BUS_KAFKA_<OPTION>` variables, e.g.
    /// EVENT_BUS_KAFKA_SECURITY_PROTOCOL=SASL_SSL.
    #[arg(long, value_name = "HOSTS")]
    pub bootstrap_servers: Option<String>,

    /// Schema registry base URL [default: $EVENT_BUS_SCHEMA_REGISTRY_URL].
    ///
    /// Basic auth comes from EVENT_BUS_SCHEMA_REGISTRY_USERNAME and _PASSWORD.
    #[arg(long, value_name = "URL")]
    pub schema_registry_url: Option<String>,
}

impl std::fmt::Debug for ConnectionArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionArgs")
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field(
                "schema_registry_url",
                &self
                    .schema_registry_url
                    .as_deref()
                    .map(crate::config::secret::redact_url),
            )
            .finish()
    }
}

impl ConnectionArgs {
    /// The process's `EVENT_BUS_*` variables with these flags written over them.
    ///
    /// See the type's example.
    pub fn env_source(&self) -> EnvSource {
        self.env_source_with(std::iter::empty::<(&str, String)>())
    }

    /// Like [`env_source`](Self::env_source), with more `(variable, value)` pairs
    /// written over the environment first.
    ///
    /// ```
    /// use event_bus_kafka::cli::produce::ConnectionArgs;
    /// let env = ConnectionArgs::default().env_source_with([("EVENT_BUS_CONSUMER_GROUP", "g".to_string())]);
    /// assert_eq!(env.get("EVENT_BUS_CONSUMER_GROUP"), Some("g"));
    /// ```
    pub fn env_source_with<K: Into<String>>(
        &self,
        overrides: impl IntoIterator<Item = (K, String)>,
    ) -> EnvSource {
        let flags = [
            (
                "EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS",
                self.bootstrap_servers.clone(),
            ),
            (
                "EVENT_BUS_SCHEMA_REGISTRY_URL",
                self.schema_registry_url.clone(),
            ),
        ];
        let mut env = EnvSource::from_process();
        for (name, value) in overrides {
            env = env.with_var(name, value);
        }
        for (name, value) in flags {
            if let Some(value) = value {
                env = env.with_var(name, value);
            }
        }
        env
    }
}

/// Arguments of `event-bus produce-event`.
///
/// See the [module example](self).
#[derive(Debug, Clone, Args)]
pub struct ProduceArgs {
    /// The event type, e.g. org.openedx.learning.auth.session.login.completed.v1.
    ///
    /// It must be one of the types this program registers (`#[derive(Event)]`); an
    /// unknown type lists the known ones.
    #[arg(long, value_name = "EVENT_TYPE")]
    pub event_type: String,

    /// The topic, before the prefix ($EVENT_BUS_TOPIC_PREFIX) is applied
    /// [default: the event type's own topic].
    #[arg(long, value_name = "TOPIC")]
    pub topic: Option<String>,

    /// Dotted path of the key field in the event, e.g. `user.pii.username`
    /// [default: the event type's own key field].
    ///
    /// The field must be a string, long, int or boolean in the event's schema; the key
    /// is Avro-encoded and registered under `{topic}-{avro type}` as Open edX does.
    #[arg(long, value_name = "PATH")]
    pub key_field: Option<String>,

    /// The event as JSON: the JSON text itself, `@file.json` to read a file, or `-` to
    /// read standard input.
    ///
    /// It is checked against the event type (every field, as the typed event would
    /// read it) before anything is sent.
    #[arg(long, value_name = "JSON")]
    pub data: String,

    /// Broker and registry overrides.
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

/// Why `event-bus produce-event` failed. Nothing was sent unless the error is
/// [`ProduceError::Producer`] with a delivery failure.
///
/// ```
/// use event_bus_kafka::cli::{exit_code, produce::ProduceError};
/// let err = ProduceError::UnknownEventType { event_type: "org.example.x.y.z.v1".into(), known: vec![] };
/// assert_eq!(err.exit_code(), exit_code::USAGE);
/// assert!(err.to_string().contains("org.example.x.y.z.v1"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProduceError {
    /// The program registers no event type of that name.
    #[error(
        "unknown event type `{event_type}`: this program registers {}; pass one of them \
         to --event-type",
        list_or_none(known)
    )]
    UnknownEventType {
        /// The name given.
        event_type: String,
        /// The event types the program registers.
        known: Vec<String>,
    },
    /// `--data @file` or `--data -` could not be read.
    #[error("cannot read the event JSON from {from}: {source}")]
    ReadData {
        /// The file, or `standard input`.
        from: String,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// `--data` is not JSON.
    #[error(
        "the --data for `{event_type}` is not valid JSON ({source}); pass a JSON object, \
         `@file.json` or `-` for standard input"
    )]
    NotJson {
        /// The event type.
        event_type: String,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// The JSON is not a valid event of the type, or the key field is wrong.
    #[error("{0}; nothing was sent")]
    InvalidEvent(#[from] JsonInputError),
    /// The broker or registry address is missing or invalid.
    #[error("{0} (or pass --bootstrap-servers / --schema-registry-url)")]
    Config(#[from] ConfigError),
    /// Registering the schema, or the delivery, failed.
    #[error(transparent)]
    Producer(#[from] ProducerError),
    /// The result could not be written.
    #[error("cannot write the result: {0}")]
    Output(#[source] io::Error),
}

impl ProduceError {
    /// The process exit code for this error: [`exit_code::USAGE`] for bad input (an
    /// unknown type, invalid JSON or key field, missing configuration),
    /// [`exit_code::ERROR`] when the event could not be registered or delivered.
    ///
    /// See the type's example.
    pub fn exit_code(&self) -> u8 {
        match self {
            ProduceError::UnknownEventType { .. }
            | ProduceError::NotJson { .. }
            | ProduceError::InvalidEvent(_)
            | ProduceError::Config(_) => exit_code::USAGE,
            ProduceError::Producer(ProducerError::Config(_)) => exit_code::USAGE,
            ProduceError::ReadData { .. } | ProduceError::Producer(_) | ProduceError::Output(_) => {
                exit_code::ERROR
            }
        }
    }
}

fn list_or_none(known: &[String]) -> String {
    if known.is_empty() {
        "no event types (link the crate that declares them)".to_owned()
    } else {
        known.join(", ")
    }
}

/// Runs `event-bus produce-event`: checks the JSON, sends the event, and writes where
/// it landed to `out` (one line, or a JSON object with `--output json`).
///
/// ```no_run
/// use clap::Parser;
/// use event_bus_kafka::cli::{run_with, Cli, CliContext};
/// # async fn demo() -> Result<(), event_bus_kafka::cli::CliError> {
/// let cli = Cli::try_parse_from([
///     "event-bus", "--output", "json", "produce-event",
///     "--event-type", "org.example.shop.order.placed.v1",
///     "--data", r#"{"id": "o-1"}"#,
/// ]).expect("valid flags");
/// run_with(cli, &CliContext::default(), &mut std::io::stdout()).await?;
/// # Ok(()) }
/// ```
pub async fn run(
    args: &ProduceArgs,
    context: &CliContext,
    out: &mut (dyn Write + Send),
) -> Result<(), ProduceError> {
    let registration = EventRegistration::find(&args.event_type).ok_or_else(|| {
        ProduceError::UnknownEventType {
            event_type: args.event_type.clone(),
            known: EventRegistration::all()
                .iter()
                .map(|r| r.event_type.to_owned())
                .collect(),
        }
    })?;
    let text = read_data(&args.data)?;
    let data: Value = serde_json::from_str(&text).map_err(|source| ProduceError::NotJson {
        event_type: args.event_type.clone(),
        source,
    })?;
    let event = JsonEvent::parse(registration, &data, args.key_field.as_deref())?;

    let config = ProducerConfig::from_env_source(&args.connection.env_source())?;
    let producer = Producer::new(config)?;
    let metadata = event.metadata(producer.config().event_source());
    let record = producer
        .encoder()
        .encode_json(&event, metadata, args.topic.as_deref())
        .await?;
    let delivery = producer.send_encoded(&record).await?;
    let key = record.key_text.as_deref();
    write_delivery(out, context.output, &event, &delivery, key).map_err(ProduceError::Output)
}

/// The JSON text of `--data`: literal, `@file`, or `-` for standard input.
fn read_data(data: &str) -> Result<String, ProduceError> {
    if data == "-" {
        let mut text = String::new();
        io::stdin()
            .read_to_string(&mut text)
            .map_err(|source| ProduceError::ReadData {
                from: "standard input".into(),
                source,
            })?;
        return Ok(text);
    }
    match data.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path).map_err(|source| ProduceError::ReadData {
            from: format!("file `{path}`"),
            source,
        }),
        None => Ok(data.to_owned()),
    }
}

fn write_delivery(
    out: &mut (dyn Write + Send),
    format: OutputFormat,
    event: &JsonEvent,
    delivery: &Delivery,
    key: Option<&str>,
) -> io::Result<()> {
    match format {
        OutputFormat::Text => writeln!(
            out,
            "{}[{}]@{} ce_id {} ({}, key {})",
            delivery.topic,
            delivery.partition,
            delivery.offset,
            delivery.event_id,
            event.event_type(),
            key.unwrap_or("none"),
        ),
        OutputFormat::Json => {
            let report = json!({
                "topic": delivery.topic,
                "partition": delivery.partition,
                "offset": delivery.offset,
                "ce_id": delivery.event_id.to_string(),
                "event_type": event.event_type(),
                "key_field": event.key_field(),
                "key": key,
            });
            writeln!(out, "{report}")
        }
    }
}

/// The whole `main` of a binary that is one subcommand of the `event-bus` command,
/// e.g. a `produce_event` binary: `produce_event --event-type … --data …` runs
/// `event-bus produce-event --event-type … --data …` for `app`'s registered types.
/// (`produce_event produce-event …` works too.)
///
/// ```no_run
/// // src/bin/produce_event.rs of an application that links its event types
/// fn main() -> std::process::ExitCode {
///     event_bus_kafka::cli::produce::main_standalone(event_bus_kafka::cli::App::new())
/// }
/// ```
pub fn main_standalone(app: App) -> ExitCode {
    run_subcommand_main(app, "produce-event")
}

/// Starts a tokio runtime and runs `app` with `subcommand` inserted after the program
/// name (unless it is already there).
pub(crate) fn run_subcommand_main(app: App, subcommand: &str) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the tokio runtime: {err}");
            return ExitCode::from(exit_code::ERROR);
        }
    };
    let args = subcommand_args(std::env::args_os(), subcommand);
    runtime.block_on(app.run_from_args(args))
}

/// `[program, subcommand, rest…]` from `[program, rest…]`.
fn subcommand_args(args: impl IntoIterator<Item = OsString>, subcommand: &str) -> Vec<OsString> {
    let mut args = args.into_iter();
    let program = args.next().unwrap_or_else(|| OsString::from(subcommand));
    let rest: Vec<OsString> = args.collect();
    let mut all = vec![program];
    if rest.first().is_none_or(|first| first != subcommand) {
        all.push(OsString::from(subcommand));
    }
    all.extend(rest);
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subcommand_is_inserted_once() {
        let args = |list: &[&str]| list.iter().map(OsString::from).collect::<Vec<_>>();
        assert_eq!(
            subcommand_args(args(&["p", "--data", "x"]), "produce-event"),
            args(&["p", "produce-event", "--data", "x"])
        );
        assert_eq!(
            subcommand_args(
                args(&["p", "produce-event", "--data", "x"]),
                "produce-event"
            ),
            args(&["p", "produce-event", "--data", "x"])
        );
        assert_eq!(
            subcommand_args(args(&[]), "produce-event"),
            args(&["produce-event", "produce-event"])
        );
    }

    #[test]
    fn data_is_literal_unless_marked() {
        assert_eq!(read_data("{\"a\": 1}").ok().as_deref(), Some("{\"a\": 1}"));
        let err = read_data("@/nonexistent/event.json").err();
        assert!(matches!(err, Some(ProduceError::ReadData { .. })));
    }
}
