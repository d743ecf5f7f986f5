//! The Prometheus recorder and the HTTP server for `/metrics` and `/healthz`.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::health::{ConsumerHealth, HealthReport, DEFAULT_MAX_POLL_GAP};
use super::metrics::{self, names};
#[cfg(any(feature = "postgres", feature = "sqlite"))]
use super::relay_health::RelayHealth;
use crate::config::{ConfigError, EnvSource};
use crate::consumer::ConsumerStats;
#[cfg(any(feature = "postgres", feature = "sqlite"))]
use crate::outbox::RelayMonitor;

/// Why observability could not be set up.
///
/// ```
/// use event_bus_kafka::observability::ObservabilityError;
/// let err = ObservabilityError::RecorderInstalled;
/// assert!(err.to_string().contains("another `metrics` recorder"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ObservabilityError {
    /// The process already has a global `metrics` recorder that is not this one.
    #[error(
        "another `metrics` recorder is installed in this process; record into it instead \
         (the SDK's metrics go through the `metrics` facade) or build ours with \
         `PrometheusMetrics::build` and combine them"
    )]
    RecorderInstalled,
    /// The Prometheus recorder refused its settings.
    #[error("the Prometheus recorder refused its settings: {0}")]
    Recorder(String),
    /// The HTTP address cannot be listened on (in use, not this host's, or a privileged
    /// port); the message says what to do.
    #[error(
        "cannot listen on {address} for /metrics and /healthz: {source}; {}",
        bind_hint(source)
    )]
    Bind {
        /// The address.
        address: SocketAddr,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
}

/// What to do when the server's address cannot be listened on.
fn bind_hint(error: &std::io::Error) -> &'static str {
    match error.kind() {
        std::io::ErrorKind::AddrInUse => {
            "another process listens there (another instance on this host?): set a free \
             HOST:PORT in EVENT_BUS_OBSERVABILITY_ADDRESS (--observability-address in the \
             event-bus commands), or `off` to serve nothing"
        }
        std::io::ErrorKind::PermissionDenied => {
            "ports below 1024 need privileges: choose a higher port in \
             EVENT_BUS_OBSERVABILITY_ADDRESS (--observability-address), e.g. 0.0.0.0:9464"
        }
        std::io::ErrorKind::AddrNotAvailable => {
            "this host has no such address: use 0.0.0.0 (every interface) or one of its own \
             addresses in EVENT_BUS_OBSERVABILITY_ADDRESS (--observability-address)"
        }
        _ => {
            "choose another address in EVENT_BUS_OBSERVABILITY_ADDRESS \
             (--observability-address), or `off` to serve nothing"
        }
    }
}

/// The SDK's metrics in Prometheus form: a recorder installed as the process's
/// `metrics` recorder, and a handle that renders what it holds.
///
/// ```
/// use event_bus_kafka::observability::{metrics, PrometheusMetrics};
/// let prometheus = PrometheusMetrics::install()?;
/// metrics::record_poll_error("doc-group");
/// assert!(prometheus.render().contains(r#"event_bus_poll_errors_total{group="doc-group"} 1"#));
/// // Installing again in the same process returns the same recorder.
/// let again = PrometheusMetrics::install()?;
/// assert!(again.render().contains("doc-group"));
/// # Ok::<(), event_bus_kafka::observability::ObservabilityError>(())
/// ```
#[derive(Debug, Clone)]
pub struct PrometheusMetrics {
    handle: PrometheusHandle,
}

/// The recorder [`PrometheusMetrics::install`] put in place, if any.
static INSTALLED: Mutex<Option<PrometheusHandle>> = Mutex::new(None);

impl PrometheusMetrics {
    /// Installs the Prometheus recorder as the process's `metrics` recorder, registers
    /// the metric descriptions and turns consumer lag sampling on
    /// ([`metrics::DEFAULT_LAG_SAMPLING`] unless set). Calling it again returns the
    /// recorder already installed.
    ///
    /// # Errors
    ///
    /// [`ObservabilityError::RecorderInstalled`] when another recorder was installed.
    ///
    /// See the type's example.
    pub fn install() -> Result<Self, ObservabilityError> {
        let mut installed = INSTALLED.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(handle) = installed.as_ref() {
            return Ok(Self {
                handle: handle.clone(),
            });
        }
        let (recorder, this) = Self::build()?;
        ::metrics::set_global_recorder(recorder)
            .map_err(|_| ObservabilityError::RecorderInstalled)?;
        *installed = Some(this.handle.clone());
        metrics::describe_all();
        metrics::default_lag_sampling_on();
        Ok(this)
    }

    /// Builds the recorder (histogram buckets set for the SDK's histograms) without
    /// installing it, for an application that combines recorders (a fan-out, a layer)
    /// or installs it itself. Call [`metrics::describe_all`] once it is installed.
    ///
    /// # Errors
    ///
    /// [`ObservabilityError::Recorder`] if the recorder refuses its settings.
    ///
    /// ```
    /// use event_bus_kafka::observability::PrometheusMetrics;
    /// let (recorder, prometheus) = PrometheusMetrics::build()?;
    /// metrics::with_local_recorder(&recorder, || {
    ///     event_bus_kafka::observability::metrics::record_poll_error("local");
    /// });
    /// assert!(prometheus.render().contains("local"));
    /// # Ok::<(), event_bus_kafka::observability::ObservabilityError>(())
    /// ```
    pub fn build() -> Result<(PrometheusRecorder, Self), ObservabilityError> {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full(names::COMMIT_DURATION.to_owned()),
                &metrics::COMMIT_DURATION_BUCKETS,
            )
            .map_err(|e| ObservabilityError::Recorder(e.to_string()))?
            .build_recorder();
        let handle = recorder.handle();
        Ok((recorder, Self { handle }))
    }

    /// The metrics in the Prometheus text format (what `/metrics` serves).
    ///
    /// See the type's example.
    pub fn render(&self) -> String {
        self.handle.run_upkeep();
        self.handle.render()
    }

    /// The underlying handle of `metrics-exporter-prometheus`.
    ///
    /// ```
    /// # let prometheus = event_bus_kafka::observability::PrometheusMetrics::install()?;
    /// let text = prometheus.handle().render();
    /// # let _ = text;
    /// # Ok::<(), event_bus_kafka::observability::ObservabilityError>(())
    /// ```
    pub fn handle(&self) -> &PrometheusHandle {
        &self.handle
    }
}

/// Where `/metrics` and `/healthz` are served, and how long a running consumer may go
/// without polling before `/healthz` calls it stuck.
///
/// ```
/// use event_bus_kafka::{config::EnvSource, observability::ObservabilityConfig};
/// let env = EnvSource::from_pairs([
///     ("EVENT_BUS_OBSERVABILITY_ADDRESS", "127.0.0.1:9100"),
///     ("EVENT_BUS_HEALTH_MAX_POLL_GAP_MS", "30000"),
/// ]);
/// let config = ObservabilityConfig::from_env_source(&env)?;
/// assert_eq!(config.address.port(), 9100);
/// assert_eq!(config.max_poll_gap.as_secs(), 30);
/// assert_eq!(ObservabilityConfig::default().address.port(), 9464);
/// # Ok::<(), event_bus_kafka::config::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservabilityConfig {
    /// The HTTP listen address (default `0.0.0.0:9464`; port 0 picks a free one).
    pub address: SocketAddr,
    /// A running consumer that has not polled for longer is unhealthy (default 60 s).
    pub max_poll_gap: Duration,
}

impl Default for ObservabilityConfig {
    fn default() -> Self {
        Self {
            address: SocketAddr::from((Ipv4Addr::UNSPECIFIED, 9464)),
            max_poll_gap: DEFAULT_MAX_POLL_GAP,
        }
    }
}

impl ObservabilityConfig {
    /// Defaults overridden by `EVENT_BUS_OBSERVABILITY_ADDRESS` (`host:port`) and
    /// `EVENT_BUS_HEALTH_MAX_POLL_GAP_MS` from the process environment.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] when a variable does not parse.
    ///
    /// ```no_run
    /// let config = event_bus_kafka::observability::ObservabilityConfig::from_env()?;
    /// # Ok::<(), event_bus_kafka::config::ConfigError>(())
    /// ```
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_env_source(&EnvSource::from_process())
    }

    /// Like [`ObservabilityConfig::from_env`], from `env`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] when a variable does not parse (`off` included: read
    /// optional servers with [`optional_from_env_source`](Self::optional_from_env_source)).
    ///
    /// See the type's example.
    pub fn from_env_source(env: &EnvSource) -> Result<Self, ConfigError> {
        let mut config = Self::default();
        if let Some(address) = env.parsed(
            ADDRESS_VARIABLE,
            "host:port, e.g. 0.0.0.0:9464 (`off` only where the server is optional)",
        )? {
            config.address = address;
        }
        if let Some(gap) = env.millis("EVENT_BUS_HEALTH_MAX_POLL_GAP_MS")? {
            config.max_poll_gap = gap;
        }
        Ok(config)
    }

    /// Like [`ObservabilityConfig::from_env_source`], but `None` when
    /// `EVENT_BUS_OBSERVABILITY_ADDRESS` is `off`: for programs that serve `/metrics` and
    /// `/healthz` by default and let the operator turn them off (the `event-bus`
    /// commands do).
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] when a variable does not parse.
    ///
    /// ```
    /// use event_bus_kafka::{config::EnvSource, observability::ObservabilityConfig};
    /// let off = EnvSource::from_pairs([("EVENT_BUS_OBSERVABILITY_ADDRESS", "off")]);
    /// assert_eq!(ObservabilityConfig::optional_from_env_source(&off)?, None);
    /// assert!(ObservabilityConfig::from_env_source(&off).is_err());
    /// let unset = EnvSource::from_pairs([("EVENT_BUS_HEALTH_MAX_POLL_GAP_MS", "5000")]);
    /// let config = ObservabilityConfig::optional_from_env_source(&unset)?.expect("on by default");
    /// assert_eq!(config.address.port(), 9464);
    /// # Ok::<(), event_bus_kafka::config::ConfigError>(())
    /// ```
    pub fn optional_from_env_source(env: &EnvSource) -> Result<Option<Self>, ConfigError> {
        if env
            .get(ADDRESS_VARIABLE)
            .is_some_and(|value| value.trim().eq_ignore_ascii_case(OFF))
        {
            return Ok(None);
        }
        Self::from_env_source(env).map(Some)
    }
}

/// The variable naming the server's address.
const ADDRESS_VARIABLE: &str = "EVENT_BUS_OBSERVABILITY_ADDRESS";
/// The value of [`ADDRESS_VARIABLE`] that turns the server off.
const OFF: &str = "off";

/// A small HTTP server: `GET /metrics` (Prometheus text, when metrics are on) and
/// `GET /healthz` (200 when every watched consumer and relay is healthy, else 503,
/// with a JSON body saying which is not and why). It runs on the current Tokio runtime until [`stop`](Self::stop)ped or dropped.
///
/// ```no_run
/// use std::sync::Arc;
/// use event_bus_kafka::consumer::{ConsumerConfig, EventConsumer, Shutdown};
/// use event_bus_kafka::observability::{ObservabilityConfig, ObservabilityServer, PrometheusMetrics};
/// # async fn demo(config: ConsumerConfig, bus: Arc<event_bus_kafka::prelude::EventBus>) -> Result<(), Box<dyn std::error::Error>> {
/// let consumer = EventConsumer::new(config, bus)?;
/// let server = ObservabilityServer::builder(ObservabilityConfig::from_env()?)
///     .metrics(PrometheusMetrics::install()?)
///     .consumer("orders", consumer.stats())
///     .start()
///     .await?;
/// println!("metrics on http://{}/metrics", server.local_addr());
/// consumer.run(Shutdown::on_signals()).await?;
/// server.stop().await;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ObservabilityServer {
    address: SocketAddr,
    checks: Arc<RwLock<HealthChecks>>,
    max_poll_gap: Duration,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

/// Configures an [`ObservabilityServer`].
///
/// See [`ObservabilityServer`].
#[derive(Debug)]
pub struct ObservabilityServerBuilder {
    config: ObservabilityConfig,
    metrics: Option<PrometheusMetrics>,
    checks: HealthChecks,
}

/// What `/healthz` checks.
#[derive(Debug, Default)]
struct HealthChecks {
    consumers: Vec<ConsumerHealth>,
    #[cfg(any(feature = "postgres", feature = "sqlite"))]
    relays: Vec<RelayHealth>,
}

impl ObservabilityServerBuilder {
    /// Serves these metrics on `/metrics` (without, `/metrics` answers 404).
    ///
    /// See [`ObservabilityServer`].
    pub fn metrics(mut self, metrics: PrometheusMetrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Watches a consumer loop on `/healthz` (its `EventConsumer::stats()`), with the
    /// config's `max_poll_gap`.
    ///
    /// See [`ObservabilityServer`].
    pub fn consumer(mut self, name: impl Into<String>, stats: Arc<ConsumerStats>) -> Self {
        self.checks
            .consumers
            .push(ConsumerHealth::new(name, stats).with_max_poll_gap(self.config.max_poll_gap));
        self
    }

    /// Watches an outbox relay on `/healthz` (its [`Relay::monitor`](crate::outbox::Relay::monitor)),
    /// with the config's `max_poll_gap` as the longest time between two of its passes (see
    /// [`RelayHealth`] for what counts as healthy).
    ///
    /// ```
    /// use event_bus_kafka::observability::{ObservabilityConfig, ObservabilityServer};
    /// use event_bus_kafka::outbox::RelayMonitor;
    /// let builder = ObservabilityServer::builder(ObservabilityConfig::default())
    ///     .relay("outbox", RelayMonitor::default());
    /// # let _ = builder;
    /// ```
    #[cfg(any(feature = "postgres", feature = "sqlite"))]
    pub fn relay(mut self, name: impl Into<String>, monitor: RelayMonitor) -> Self {
        self.checks
            .relays
            .push(RelayHealth::new(name, monitor).with_max_pass_gap(self.config.max_poll_gap));
        self
    }

    /// Watches a consumer with a check configured by hand.
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # use event_bus_kafka::{consumer::ConsumerStats, observability::*};
    /// let check = ConsumerHealth::new("slow", Arc::new(ConsumerStats::default()))
    ///     .with_max_poll_gap(Duration::from_secs(300));
    /// let builder = ObservabilityServer::builder(ObservabilityConfig::default()).health_check(check);
    /// # let _ = builder;
    /// ```
    pub fn health_check(mut self, check: ConsumerHealth) -> Self {
        self.checks.consumers.push(check);
        self
    }

    /// Binds the address and starts serving on the current Tokio runtime.
    ///
    /// # Errors
    ///
    /// [`ObservabilityError::Bind`] when the address cannot be listened on.
    ///
    /// ```
    /// use event_bus_kafka::observability::{ObservabilityConfig, ObservabilityServer};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let config = ObservabilityConfig { address: "127.0.0.1:0".parse()?, ..Default::default() };
    /// let server = ObservabilityServer::builder(config).start().await?;
    /// assert!(server.local_addr().port() > 0);
    /// server.stop().await;
    /// # Ok(()) }
    /// ```
    pub async fn start(self) -> Result<ObservabilityServer, ObservabilityError> {
        let requested = self.config.address;
        let listener =
            TcpListener::bind(requested)
                .await
                .map_err(|source| ObservabilityError::Bind {
                    address: requested,
                    source,
                })?;
        let address = listener
            .local_addr()
            .map_err(|source| ObservabilityError::Bind {
                address: requested,
                source,
            })?;
        let checks = Arc::new(RwLock::new(self.checks));
        let state = ServerState {
            metrics: self.metrics,
            checks: Arc::clone(&checks),
        };
        let app = Router::new()
            .route("/metrics", get(serve_metrics))
            .route("/healthz", get(serve_health))
            .with_state(state);
        let (shutdown, stopped) = oneshot::channel::<()>();
        let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
            // A send or a dropped sender both mean "stop".
            let _ = stopped.await;
        });
        let task = tokio::spawn(async move { serve.await });
        tracing::info!(address = %address, "serving /metrics and /healthz");
        Ok(ObservabilityServer {
            address,
            checks,
            max_poll_gap: self.config.max_poll_gap,
            shutdown: Some(shutdown),
            task: Some(task),
        })
    }
}

impl ObservabilityServer {
    /// A builder serving on `config.address`.
    ///
    /// See the type's example.
    pub fn builder(config: ObservabilityConfig) -> ObservabilityServerBuilder {
        ObservabilityServerBuilder {
            config,
            metrics: None,
            checks: HealthChecks::default(),
        }
    }

    /// The address it listens on (with the port picked when the config said 0).
    ///
    /// See [`ObservabilityServerBuilder::start`].
    pub fn local_addr(&self) -> SocketAddr {
        self.address
    }

    /// Watches one more consumer loop from now on, with the config's `max_poll_gap`.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use event_bus_kafka::{consumer::ConsumerStats, observability::*};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let config = ObservabilityConfig { address: "127.0.0.1:0".parse()?, ..Default::default() };
    /// let server = ObservabilityServer::builder(config).start().await?;
    /// server.watch_consumer("late", Arc::new(ConsumerStats::default()));
    /// assert!(!server.health().is_healthy()); // not running yet
    /// # Ok(()) }
    /// ```
    pub fn watch_consumer(&self, name: impl Into<String>, stats: Arc<ConsumerStats>) {
        let check = ConsumerHealth::new(name, stats).with_max_poll_gap(self.max_poll_gap);
        if let Ok(mut checks) = self.checks.write() {
            checks.consumers.push(check);
        }
    }

    /// Watches one more outbox relay from now on (see
    /// [`ObservabilityServerBuilder::relay`]).
    ///
    /// ```
    /// # use event_bus_kafka::{observability::*, outbox::RelayMonitor};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let config = ObservabilityConfig { address: "127.0.0.1:0".parse()?, ..Default::default() };
    /// let server = ObservabilityServer::builder(config).start().await?;
    /// server.watch_relay("outbox", RelayMonitor::default());
    /// assert!(!server.health().is_healthy()); // not running yet
    /// # Ok(()) }
    /// ```
    #[cfg(any(feature = "postgres", feature = "sqlite"))]
    pub fn watch_relay(&self, name: impl Into<String>, monitor: RelayMonitor) {
        let check = RelayHealth::new(name, monitor).with_max_pass_gap(self.max_poll_gap);
        if let Ok(mut checks) = self.checks.write() {
            checks.relays.push(check);
        }
    }

    /// What `/healthz` would answer now.
    ///
    /// See [`ObservabilityServer::watch_consumer`].
    pub fn health(&self) -> HealthReport {
        health_report(&self.checks)
    }

    /// Stops serving and waits for open requests to finish.
    ///
    /// See [`ObservabilityServerBuilder::start`].
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => {
                    tracing::warn!(error = %error, "the /metrics server ended with an error")
                }
                Err(error) => tracing::warn!(error = %error, "the /metrics server task failed"),
            }
        }
    }
}

impl Drop for ObservabilityServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

#[derive(Clone)]
struct ServerState {
    metrics: Option<PrometheusMetrics>,
    checks: Arc<RwLock<HealthChecks>>,
}

fn health_report(checks: &RwLock<HealthChecks>) -> HealthReport {
    let checks = checks
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    #[cfg(any(feature = "postgres", feature = "sqlite"))]
    return HealthReport::of_all(&checks.consumers, &checks.relays);
    #[cfg(not(any(feature = "postgres", feature = "sqlite")))]
    HealthReport::of(&checks.consumers)
}

async fn serve_metrics(State(state): State<ServerState>) -> Response {
    match &state.metrics {
        Some(metrics) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            metrics.render(),
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            "metrics are not enabled in this service (PrometheusMetrics::install)\n",
        )
            .into_response(),
    }
}

async fn serve_health(State(state): State<ServerState>) -> Response {
    let report = health_report(&state.checks);
    let status = if report.is_healthy() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        report.to_json(),
    )
        .into_response()
}
