//! Observability: metrics, trace propagation and a health probe.
//!
//! - **Metrics** ([`metrics`]) go through the `metrics` facade: produced, delivered,
//!   failed and deferred events, outbox backlog, consumed records, receiver successes,
//!   failures and retries, dead letters, commit latency, consumer lag, poll errors. They
//!   cost a no-op call until a recorder is installed; [`PrometheusMetrics::install`]
//!   installs one that renders the Prometheus text format.
//! - **Tracing** ([`trace`]): one `event_bus.produce` span per produced event and one
//!   `event_bus.consume` span per consumed record, with topic, partition, offset,
//!   `ce_id`, `ce_type` and key (never the payload), and the W3C `traceparent` carried
//!   in the headers so a trace crosses services.
//! - **Health** ([`ConsumerHealth`], [`RelayHealth`]): a consumer is healthy while its
//!   loop runs and polls; an outbox relay while its loop runs and passes (or stands by
//!   for a SQLite file's lease).
//!
//! [`ObservabilityServer`] serves `/metrics` and `/healthz` on one address:
//!
//! ```no_run
//! use std::sync::Arc;
//! use event_bus_kafka::prelude::*;
//! use event_bus_kafka::consumer::{ConsumerConfig, EventConsumer, Shutdown};
//! use event_bus_kafka::observability::{ObservabilityConfig, ObservabilityServer, PrometheusMetrics};
//! # async fn demo(config: ConsumerConfig, bus: EventBus) -> Result<(), Box<dyn std::error::Error>> {
//! let consumer = EventConsumer::new(config, Arc::new(bus))?;
//! let server = ObservabilityServer::builder(ObservabilityConfig::from_env()?) // 0.0.0.0:9464
//!     .metrics(PrometheusMetrics::install()?)
//!     .consumer("enrollments", consumer.stats())
//!     .start()
//!     .await?;
//! consumer.run(Shutdown::on_signals()).await?;
//! server.stop().await;
//! # Ok(()) }
//! ```

#[cfg(feature = "observability")]
mod exporter;
#[cfg(feature = "observability")]
mod health;
pub(crate) mod lag;
pub mod metrics;
#[cfg(all(
    feature = "observability",
    any(feature = "postgres", feature = "sqlite")
))]
mod relay_health;
pub mod trace;

#[cfg(feature = "observability")]
pub use exporter::{
    ObservabilityConfig, ObservabilityError, ObservabilityServer, ObservabilityServerBuilder,
    PrometheusMetrics,
};
#[cfg(feature = "observability")]
pub use health::{
    ConsumerHealth, ConsumerHealthReport, HealthReport, HealthStatus, RecordInProgress,
    DEFAULT_MAX_POLL_GAP,
};
#[cfg(feature = "observability")]
pub use metrics_exporter_prometheus::{PrometheusHandle, PrometheusRecorder};
#[cfg(all(
    feature = "observability",
    any(feature = "postgres", feature = "sqlite")
))]
pub use relay_health::{RelayHealth, RelayHealthReport};
pub use trace::{child_traceparent, TraceContext, TraceContextLayer};
