//! `event-bus dev`: a zero-setup development stack — librdkafka's mock Kafka cluster
//! and the embedded schema registry, in one process, until Ctrl-C.
//!
//! **A development tool.** Both parts keep everything in memory and lose it when the
//! process stops; the mock cluster is librdkafka's test broker, not Kafka. Production
//! points the SDK at a real Kafka cluster and a real schema registry (Confluent Schema
//! Registry, Karapace, Redpanda or Apicurio).
//!
//! An application's `event-bus` binary turns the command on with one call:
//!
//! ```no_run
//! // src/bin/event-bus.rs
//! fn main() -> std::process::ExitCode {
//!     event_bus_kafka::cli::App::new()
//!         .with_dev(event_bus_testkit::dev::run)
//!         .main()
//! }
//! ```
//!
//! Then `event-bus dev` prints the addresses, also as lines to paste into the shell
//! that runs the examples or the CLI:
//!
//! ```text
//! export EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:38211
//! export EVENT_BUS_SCHEMA_REGISTRY_URL=http://127.0.0.1:41673
//! ```
//!
//! # Ports
//!
//! librdkafka's mock brokers always listen on ports the kernel picks (librdkafka binds
//! each to `127.0.0.1:0` and has no setting for a fixed port), so each run prints new
//! ones. `--kafka-port P` gives a stable bootstrap address instead: the stack listens
//! on `127.0.0.1:P` itself and forwards each connection to a mock broker. Clients only
//! bootstrap there: the cluster metadata they receive names the brokers' own ports,
//! which they then connect to directly (all on loopback). `--registry-port P` binds
//! the registry to `127.0.0.1:P` directly.
//!
//! # Topics
//!
//! The mock cluster creates a topic (4 partitions) the first time a producer asks for
//! it. `--topic NAME[:PARTITIONS]` creates topics up front, for consumers that start
//! before any producer.
//!
//! To run the stack inside a program or a test rather than from the command line, use
//! [`DevStack`] (or [`serve`], which also prints the addresses and waits for a signal).

use std::ffi::OsString;
use std::future::Future;
use std::io::{self, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use clap::Parser;
use event_bus_kafka::cli::{exit_code, BoxFuture, OutputFormat};
use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

use crate::mock_cluster::{MockClusterError, MockKafkaCluster};
use crate::registry::{EmbeddedRegistry, ServerError};

/// How long the bootstrap forwarder tries to reach a mock broker for one connection.
const BROKER_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The options of `event-bus dev`, as the command line gives them.
///
/// # Example
///
/// ```
/// use clap::Parser;
/// use event_bus_testkit::dev::DevOptions;
///
/// let options = DevOptions::try_parse_from(["event-bus dev", "--brokers", "3", "--topic", "orders:2"])?;
/// assert_eq!(options.brokers, 3);
/// assert_eq!(options.kafka_port, None);
/// assert_eq!(options.registry_port, 0);
/// assert_eq!(options.topics[0].name, "orders");
/// assert_eq!(options.topics[0].partitions, 2);
/// # Ok::<(), clap::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Parser)]
#[command(
    name = "event-bus dev",
    about = "Runs a development stack: librdkafka's mock Kafka cluster and the embedded \
             schema registry, in this process, until Ctrl-C or SIGTERM.",
    long_about = "Runs a development stack in this process until Ctrl-C or SIGTERM: \
librdkafka's mock Kafka cluster and the embedded, in-memory, Confluent-compatible schema \
registry. It prints the Kafka bootstrap servers and the registry URL, also as \
`export EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS=...` and `export EVENT_BUS_SCHEMA_REGISTRY_URL=...` \
lines to paste into the shell that runs the examples or the CLI.

This is a development tool: all data lives in memory and is gone when it stops, and the mock \
cluster is librdkafka's test broker, not Kafka. Production uses a real Kafka cluster and a \
real schema registry (Confluent Schema Registry, Karapace, Redpanda or Apicurio).

Topics are created (4 partitions) the first time a producer asks for them; --topic creates \
them up front.",
    after_help = "Ports: librdkafka's mock brokers always listen on ports the kernel picks \
(librdkafka has no setting for a fixed mock broker port). --kafka-port opens a stable \
bootstrap address that forwards to them; clients then connect to the brokers' own ports, \
which the cluster metadata names.

Exit codes:
  0  stopped by Ctrl-C or SIGTERM (or --help)
  2  usage error: unknown flag or bad value
  3  could not start: a port is taken, the mock cluster or registry failed"
)]
pub struct DevOptions {
    /// Number of mock Kafka brokers (ids 1..=N).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..=100))]
    pub brokers: i32,

    /// Stable bootstrap port on 127.0.0.1, forwarded to the mock brokers (which
    /// listen on ports the kernel picks; a fixed broker port is not possible).
    /// Default: no forwarder; the brokers' own addresses are printed.
    #[arg(long, value_name = "P", value_parser = clap::value_parser!(u16).range(1..))]
    pub kafka_port: Option<u16>,

    /// Port of the schema registry on 127.0.0.1 (0: any free port).
    #[arg(long, value_name = "P", default_value_t = 0)]
    pub registry_port: u16,

    /// Topic to create at start, as NAME or NAME:PARTITIONS (default 4 partitions);
    /// repeat for more.
    #[arg(long = "topic", value_name = "NAME[:PARTITIONS]")]
    pub topics: Vec<TopicSpec>,

    /// `text` for people, or `json`: one JSON line per state change (`running` with
    /// the addresses, then `stopped`) for scripts. `event-bus --output json dev`
    /// passes this on.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text, hide_possible_values = true)]
    pub output: OutputFormat,
}

impl Default for DevOptions {
    fn default() -> Self {
        DevOptions {
            brokers: 1,
            kafka_port: None,
            registry_port: 0,
            topics: Vec::new(),
            output: OutputFormat::Text,
        }
    }
}

/// A topic for `--topic NAME[:PARTITIONS]`.
///
/// # Example
///
/// ```
/// use event_bus_testkit::dev::TopicSpec;
///
/// let spec: TopicSpec = "orders:3".parse()?;
/// assert_eq!((spec.name.as_str(), spec.partitions), ("orders", 3));
/// assert_eq!("audit".parse::<TopicSpec>()?.partitions, 4);
/// assert!("orders:0".parse::<TopicSpec>().is_err());
/// # Ok::<(), String>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    /// The topic name.
    pub name: String,
    /// Its partition count (4 when not given, as the mock cluster's auto-created topics).
    pub partitions: i32,
}

impl std::str::FromStr for TopicSpec {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (name, partitions) = match text.rsplit_once(':') {
            Some((name, count)) => {
                let partitions =
                    count
                        .parse::<i32>()
                        .ok()
                        .filter(|&n| n >= 1)
                        .ok_or_else(|| {
                            format!("`{count}` is not a partition count (a whole number from 1)")
                        })?;
                (name, partitions)
            }
            None => (text, 4),
        };
        if name.is_empty() {
            return Err(format!(
                "`{text}` has no topic name (expected NAME[:PARTITIONS])"
            ));
        }
        Ok(TopicSpec {
            name: name.to_owned(),
            partitions,
        })
    }
}

/// Why the dev stack could not start, or failed.
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use event_bus_testkit::dev::{DevOptions, DevStack, DevStackError};
///
/// let taken = std::net::TcpListener::bind("127.0.0.1:0")?;
/// let port = taken.local_addr()?.port();
/// let options = DevOptions { registry_port: port, ..DevOptions::default() };
/// match DevStack::start(&options).await {
///     Err(DevStackError::Registry(err)) => eprintln!("port {port} is taken: {err}"),
///     other => panic!("expected a registry error, got {other:?}"),
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DevStackError {
    /// The mock Kafka cluster could not start, or refused a topic.
    #[error("the mock Kafka cluster failed")]
    Cluster(#[from] MockClusterError),
    /// The embedded schema registry could not start or stop cleanly.
    #[error("the embedded schema registry failed")]
    Registry(#[from] ServerError),
    /// The `--kafka-port` bootstrap address could not be bound.
    #[error("cannot listen on the Kafka bootstrap port 127.0.0.1:{port} (--kafka-port)")]
    KafkaPort {
        /// The port asked for.
        port: u16,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The Ctrl-C / SIGTERM handlers could not be installed.
    #[error("cannot listen for Ctrl-C and SIGTERM")]
    Signal(#[source] io::Error),
    /// The addresses could not be printed.
    #[error("cannot write to the output")]
    Output(#[source] io::Error),
}

impl DevStackError {
    /// The process exit code for this error: always
    /// [`exit_code::ERROR`].
    ///
    /// # Example
    ///
    /// ```
    /// use event_bus_testkit::dev::DevStackError;
    ///
    /// let err = DevStackError::Output(std::io::ErrorKind::BrokenPipe.into());
    /// assert_eq!(err.exit_code(), event_bus_kafka::cli::exit_code::ERROR);
    /// ```
    pub fn exit_code(&self) -> u8 {
        exit_code::ERROR
    }
}

/// A running dev stack: a mock Kafka cluster (optionally behind a fixed bootstrap
/// port) and an embedded schema registry. Stops on [`shutdown`](Self::shutdown) or
/// drop. A development tool; see the [module docs](self).
///
/// Needs a Tokio runtime (the registry and the forwarder run as tasks on it).
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), event_bus_testkit::dev::DevStackError> {
/// use event_bus_testkit::dev::{DevOptions, DevStack};
///
/// let stack = DevStack::start(&DevOptions::default()).await?;
/// assert!(stack.bootstrap_servers().starts_with("127.0.0.1:"));
/// assert!(stack.registry_url().starts_with("http://127.0.0.1:"));
/// stack.shutdown().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct DevStack {
    cluster: MockKafkaCluster,
    registry: EmbeddedRegistry,
    forwarder: Option<BootstrapForwarder>,
    bootstrap_servers: String,
}

impl DevStack {
    /// Starts the mock cluster, creates `options.topics`, opens the `--kafka-port`
    /// forwarder if asked, and starts the registry. Prints nothing.
    ///
    /// # Errors
    ///
    /// [`DevStackError::Cluster`], [`DevStackError::KafkaPort`] or
    /// [`DevStackError::Registry`] (for example when a port is taken); whatever had
    /// started is stopped again.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), event_bus_testkit::dev::DevStackError> {
    /// use event_bus_testkit::dev::{DevOptions, DevStack};
    ///
    /// let options = DevOptions { brokers: 3, ..DevOptions::default() };
    /// let stack = DevStack::start(&options).await?;
    /// assert_eq!(stack.cluster().broker_count(), 3);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn start(options: &DevOptions) -> Result<Self, DevStackError> {
        // On an early return, what has started stops again as it is dropped.
        let cluster = MockKafkaCluster::start(options.brokers)?;
        for topic in &options.topics {
            cluster.create_topic(&topic.name, topic.partitions)?;
        }
        let forwarder = match options.kafka_port {
            Some(port) => {
                let brokers = cluster
                    .bootstrap_servers()
                    .split(',')
                    .map(str::to_owned)
                    .collect();
                let forwarder = BootstrapForwarder::start(port, brokers)
                    .await
                    .map_err(|source| DevStackError::KafkaPort { port, source })?;
                Some(forwarder)
            }
            None => None,
        };
        let registry_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, options.registry_port));
        let registry = EmbeddedRegistry::start_on(registry_addr).await?;
        let bootstrap_servers = match &forwarder {
            Some(forwarder) => forwarder.addr.to_string(),
            None => cluster.bootstrap_servers().to_owned(),
        };
        let stack = DevStack {
            cluster,
            registry,
            forwarder,
            bootstrap_servers,
        };
        tracing::info!(
            bootstrap_servers = %stack.bootstrap_servers,
            broker_servers = %stack.broker_servers(),
            brokers = options.brokers,
            schema_registry_url = %stack.registry_url(),
            "dev stack started"
        );
        Ok(stack)
    }

    /// What clients put in `bootstrap.servers` (`EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS`):
    /// the `--kafka-port` address when one was asked for, otherwise the brokers' own.
    ///
    /// See the type's example.
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap_servers
    }

    /// The mock brokers' own addresses (ports the kernel picked), comma-separated.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), event_bus_testkit::dev::DevStackError> {
    /// use event_bus_testkit::dev::{DevOptions, DevStack};
    ///
    /// let stack = DevStack::start(&DevOptions::default()).await?;
    /// assert_eq!(stack.broker_servers(), stack.bootstrap_servers());
    /// # Ok(())
    /// # }
    /// ```
    pub fn broker_servers(&self) -> &str {
        self.cluster.bootstrap_servers()
    }

    /// The registry's base URL (`EVENT_BUS_SCHEMA_REGISTRY_URL`).
    ///
    /// See the type's example.
    pub fn registry_url(&self) -> String {
        self.registry.url()
    }

    /// The mock cluster, for fault injection (brokers down and up, errors, latency).
    ///
    /// See [`start`](Self::start)'s example.
    pub fn cluster(&self) -> &MockKafkaCluster {
        &self.cluster
    }

    /// The embedded registry, to look at or seed its schemas in process.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use event_bus_testkit::dev::{DevOptions, DevStack};
    ///
    /// let stack = DevStack::start(&DevOptions::default()).await?;
    /// let id = stack.registry().store().register("pings-value", r#""string""#)?;
    /// assert_eq!(id, 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn registry(&self) -> &EmbeddedRegistry {
        &self.registry
    }

    /// Stops the forwarder, the registry (open requests get a grace period) and the
    /// mock cluster, in that order.
    ///
    /// # Errors
    ///
    /// [`DevStackError::Registry`] when the registry's server failed; the cluster is
    /// stopped anyway.
    ///
    /// See the type's example.
    pub async fn shutdown(self) -> Result<(), DevStackError> {
        let DevStack {
            cluster,
            registry,
            forwarder,
            ..
        } = self;
        if let Some(forwarder) = forwarder {
            forwarder.stop().await;
        }
        let registry = registry.shutdown().await;
        // Dropping the cluster joins its thread and destroys librdkafka's handle.
        if let Err(error) = tokio::task::spawn_blocking(move || drop(cluster)).await {
            tracing::warn!(%error, "the mock cluster did not stop cleanly");
        }
        tracing::info!("dev stack stopped");
        registry.map_err(DevStackError::from)
    }
}

/// Listens on a fixed loopback port and pipes every connection to the first mock
/// broker that accepts it, so clients can bootstrap from a stable address.
#[derive(Debug)]
struct BootstrapForwarder {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl BootstrapForwarder {
    async fn start(port: u16, brokers: Vec<String>) -> io::Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(forward_connections(listener, brokers));
        Ok(BootstrapForwarder { addr, task })
    }

    async fn stop(mut self) {
        // Aborting the accept loop drops its JoinSet, which aborts every open pipe.
        self.task.abort();
        let _ = (&mut self.task).await;
    }
}

impl Drop for BootstrapForwarder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn forward_connections(listener: TcpListener, brokers: Vec<String>) {
    let mut pipes = JoinSet::new();
    loop {
        while pipes.try_join_next().is_some() {}
        let (client, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "bootstrap forwarder cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        pipes.spawn(forward_one(client, peer, brokers.clone()));
    }
}

async fn forward_one(mut client: TcpStream, peer: SocketAddr, brokers: Vec<String>) {
    for broker in &brokers {
        match tokio::time::timeout(BROKER_CONNECT_TIMEOUT, TcpStream::connect(broker.as_str()))
            .await
        {
            Ok(Ok(mut upstream)) => {
                if let Err(error) = copy_bidirectional(&mut client, &mut upstream).await {
                    tracing::debug!(%peer, %broker, %error, "bootstrap connection closed");
                }
                return;
            }
            Ok(Err(error)) => {
                tracing::debug!(%peer, %broker, %error, "mock broker refused a bootstrap connection")
            }
            Err(_elapsed) => {
                tracing::debug!(%peer, %broker, "mock broker did not answer a bootstrap connection")
            }
        }
    }
    tracing::warn!(%peer, "no mock broker accepted a bootstrap connection");
}

/// Starts the stack, prints its addresses to `out` (text or JSON, per
/// `options.output`), waits for `shutdown` to complete, then stops the stack and
/// prints that it stopped.
///
/// # Errors
///
/// See [`DevStack::start`] and [`DevStack::shutdown`]; [`DevStackError::Output`]
/// when `out` cannot be written (the stack is stopped first).
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), event_bus_testkit::dev::DevStackError> {
/// use event_bus_testkit::dev::{serve, DevOptions};
///
/// let mut out = Vec::new();
/// // Stops at once; a program would pass a Ctrl-C future.
/// serve(&DevOptions::default(), async {}, &mut out).await?;
/// let text = String::from_utf8_lossy(&out);
/// assert!(text.contains("export EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:"));
/// assert!(text.contains("export EVENT_BUS_SCHEMA_REGISTRY_URL=http://127.0.0.1:"));
/// # Ok(())
/// # }
/// ```
pub async fn serve<F>(
    options: &DevOptions,
    shutdown: F,
    out: &mut (dyn Write + Send),
) -> Result<(), DevStackError>
where
    F: Future<Output = ()>,
{
    let stack = DevStack::start(options).await?;
    let printed = print_running(&stack, options, out);
    if printed.is_ok() {
        shutdown.await;
    }
    let stopped = stack.shutdown().await;
    printed?;
    stopped?;
    print_stopped(options.output, out).map_err(DevStackError::Output)
}

fn print_running(
    stack: &DevStack,
    options: &DevOptions,
    out: &mut (dyn Write + Send),
) -> Result<(), DevStackError> {
    let bootstrap = stack.bootstrap_servers();
    let registry = stack.registry_url();
    let written = match options.output {
        OutputFormat::Json => {
            let line = serde_json::json!({
                "status": "running",
                "bootstrap_servers": bootstrap,
                "schema_registry_url": registry,
                "broker_servers": stack.broker_servers(),
                "brokers": options.brokers,
            });
            writeln!(out, "{line}")
        }
        OutputFormat::Text => {
            let brokers = match options.brokers {
                1 => "1 broker".to_owned(),
                n => format!("{n} brokers"),
            };
            let forwarded = if options.kafka_port.is_some() {
                format!(" (forwarded to the brokers at {})", stack.broker_servers())
            } else {
                String::new()
            };
            writeln!(
                out,
                "event-bus dev: development stack running in this process (not for production).\n\
                 \n  Kafka bootstrap servers: {bootstrap}{forwarded}\n    \
                 librdkafka mock cluster, {brokers}, in memory\n  \
                 Schema registry URL:     {registry}\n    \
                 embedded Confluent-compatible registry, in memory\n\
                 \nPaste into the shell that runs the examples or the CLI:\n\n\
                 export EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS={bootstrap}\n\
                 export EVENT_BUS_SCHEMA_REGISTRY_URL={registry}\n\
                 \nAll data is lost when it stops. Press Ctrl-C to stop."
            )
        }
    };
    written
        .and_then(|()| out.flush())
        .map_err(DevStackError::Output)
}

fn print_stopped(output: OutputFormat, out: &mut (dyn Write + Send)) -> io::Result<()> {
    match output {
        OutputFormat::Json => writeln!(out, "{}", serde_json::json!({"status": "stopped"}))?,
        OutputFormat::Text => writeln!(out, "event-bus dev: stopped.")?,
    }
    out.flush()
}

/// Resolves on the first Ctrl-C (SIGINT) or SIGTERM. The handlers are installed
/// before this returns, so a signal that arrives before the future is awaited still
/// counts.
///
/// # Errors
///
/// [`DevStackError::Signal`] when a handler cannot be installed.
///
/// # Example
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), event_bus_testkit::dev::DevStackError> {
/// let stopped = event_bus_testkit::dev::shutdown_signal()?;
/// stopped.await; // until Ctrl-C or SIGTERM
/// # Ok(())
/// # }
/// ```
pub fn shutdown_signal() -> Result<BoxFuture<'static, ()>, DevStackError> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut interrupt = signal(SignalKind::interrupt()).map_err(DevStackError::Signal)?;
        let mut terminate = signal(SignalKind::terminate()).map_err(DevStackError::Signal)?;
        Ok(Box::pin(async move {
            let name = tokio::select! {
                _ = interrupt.recv() => "SIGINT",
                _ = terminate.recv() => "SIGTERM",
            };
            tracing::info!(signal = name, "dev stack stopping");
        }))
    }
    #[cfg(not(unix))]
    {
        Ok(Box::pin(async {
            if let Err(error) = tokio::signal::ctrl_c().await {
                tracing::warn!(%error, "cannot wait for Ctrl-C; stopping");
            }
        }))
    }
}

/// The dev-stack hook for `event-bus dev`
/// ([`App::with_dev`](event_bus_kafka::cli::App::with_dev)): parses `args` (the
/// arguments after `dev`; see [`DevOptions`]), runs the stack until Ctrl-C or SIGTERM
/// with its output on stdout, and returns the exit code: 0 after a clean stop or
/// `--help`, 2 for bad arguments, 3 when the stack could not start (the reason is
/// printed to stderr).
///
/// # Example
///
/// ```no_run
/// fn main() -> std::process::ExitCode {
///     event_bus_kafka::cli::App::new()
///         .with_dev(event_bus_testkit::dev::run)
///         .main()
/// }
/// ```
///
/// Called directly, it answers `--help` without starting anything:
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let code = event_bus_testkit::dev::run(vec!["--help".into()]).await;
/// assert_eq!(code, 0);
/// let code = event_bus_testkit::dev::run(vec!["--brokers".into(), "zero".into()]).await;
/// assert_eq!(code, 2);
/// # }
/// ```
pub fn run(args: Vec<OsString>) -> BoxFuture<'static, u8> {
    Box::pin(async move {
        let argv = std::iter::once(OsString::from("event-bus dev")).chain(args);
        let options = match DevOptions::try_parse_from(argv) {
            Ok(options) => options,
            Err(err) => {
                // `--help` arrives here too: printed to stdout, exit code 0.
                let code = u8::try_from(err.exit_code()).unwrap_or(exit_code::USAGE);
                if let Err(print_error) = err.print() {
                    eprintln!("error: cannot print the usage message: {print_error}");
                }
                return code;
            }
        };
        let result = match shutdown_signal() {
            Ok(stopped) => serve(&options, stopped, &mut io::stdout()).await,
            Err(error) => Err(error),
        };
        match result {
            Ok(()) => exit_code::SUCCESS,
            Err(error) => {
                eprintln!("error: {}", error_chain(&error));
                error.exit_code()
            }
        }
    })
}

/// `error: cause: cause…`, so the operating system's reason (e.g. "Address already in
/// use") reaches the user.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_command_line() {
        let parsed = DevOptions::try_parse_from(["event-bus dev"]).expect("parses");
        assert_eq!(parsed, DevOptions::default());
    }

    #[test]
    fn topic_specs_parse() {
        assert_eq!(
            "a:b:2".parse::<TopicSpec>(),
            Ok(TopicSpec {
                name: "a:b".into(),
                partitions: 2
            })
        );
        assert!(":3".parse::<TopicSpec>().is_err());
        assert!("orders:x".parse::<TopicSpec>().is_err());
        assert!("orders:-1".parse::<TopicSpec>().is_err());
    }

    #[test]
    fn options_reject_bad_values() {
        for bad in [
            &["--brokers", "0"][..],
            &["--kafka-port", "0"],
            &["--registry-port", "70000"],
            &["--topic", "t:0"],
            &["--nope"],
        ] {
            let argv = std::iter::once("event-bus dev").chain(bad.iter().copied());
            assert!(DevOptions::try_parse_from(argv).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn help_says_it_is_for_development_and_explains_ports() {
        use clap::CommandFactory;
        let help = DevOptions::command().render_long_help().to_string();
        for expected in [
            "--brokers",
            "--kafka-port",
            "--registry-port",
            "--topic",
            "development tool",
            "Production uses a real Kafka cluster",
            "EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS",
            "no setting for a fixed mock broker port",
        ] {
            assert!(help.contains(expected), "help lacks {expected:?}:\n{help}");
        }
    }

    #[tokio::test]
    async fn forwarder_gives_a_stable_bootstrap_port() -> Result<(), Box<dyn std::error::Error>> {
        let port = crate::ports::free_loopback_port()?;
        let options = DevOptions {
            kafka_port: Some(port),
            brokers: 2,
            topics: vec!["dev-forwarded:2".parse()?],
            ..DevOptions::default()
        };
        let stack = DevStack::start(&options).await?;
        assert_eq!(stack.bootstrap_servers(), format!("127.0.0.1:{port}"));
        assert_ne!(stack.broker_servers(), stack.bootstrap_servers());

        // A client bootstraps through the forwarder and sees the whole cluster.
        let bootstrap = stack.bootstrap_servers().to_owned();
        let metadata = tokio::task::spawn_blocking(move || {
            let consumer: rdkafka::consumer::BaseConsumer =
                crate::kafka::consumer_config(&bootstrap, "dev-forwarder-test").create()?;
            use rdkafka::consumer::Consumer;
            consumer.fetch_metadata(Some("dev-forwarded"), Duration::from_secs(10))
        })
        .await??;
        assert_eq!(metadata.brokers().len(), 2);
        assert_eq!(metadata.topics()[0].partitions().len(), 2);

        stack.shutdown().await?;
        // The port is free again.
        std::net::TcpListener::bind(("127.0.0.1", port))?;
        Ok(())
    }

    #[tokio::test]
    async fn a_taken_kafka_port_is_a_clear_error() -> Result<(), Box<dyn std::error::Error>> {
        let taken = std::net::TcpListener::bind("127.0.0.1:0")?;
        let port = taken.local_addr()?.port();
        let options = DevOptions {
            kafka_port: Some(port),
            ..DevOptions::default()
        };
        let err = DevStack::start(&options).await.expect_err("port is taken");
        assert!(matches!(err, DevStackError::KafkaPort { port: p, .. } if p == port));
        assert!(error_chain(&err).contains(&format!("127.0.0.1:{port}")));
        Ok(())
    }

    #[tokio::test]
    async fn json_output_is_one_line_per_state() -> Result<(), Box<dyn std::error::Error>> {
        let options = DevOptions {
            output: OutputFormat::Json,
            ..DevOptions::default()
        };
        let mut out = Vec::new();
        serve(&options, async {}, &mut out).await?;
        let text = String::from_utf8(out)?;
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(serde_json::from_str)
            .collect::<Result<_, _>>()?;
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["status"], "running");
        assert!(lines[0]["schema_registry_url"]
            .as_str()
            .is_some_and(|url| url.starts_with("http://127.0.0.1:")));
        assert_eq!(lines[1]["status"], "stopped");
        Ok(())
    }
}
