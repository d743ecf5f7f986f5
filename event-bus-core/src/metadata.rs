//! `EventMetadata`: the CloudEvents attributes that travel with every event.

use std::borrow::Cow;

use chrono::{DateTime, SubsecRound, Utc};
use uuid::Uuid;

/// The library name and version sent as `sourcelib`.
pub const SOURCE_LIB: &str = env!("CARGO_PKG_VERSION");

/// The source used when none is configured.
pub const DEFAULT_SOURCE: &str = "signal-bridge/unknown/service";

/// Metadata of one event, sent as CloudEvents Kafka headers.
///
/// The texts every event of a process repeats (type, source, host, library) are
/// `Cow<'static, str>`: borrowed from constants or from
/// [`shared_text`](crate::shared_text), so fresh metadata allocates nothing.
///
/// ```
/// use event_bus_core::EventMetadata;
/// let meta = EventMetadata::new("org.example.learning.course.enrollment.created.v1")
///     .with_source("example/lms/web");
/// assert_eq!(meta.source, "example/lms/web");
/// assert_eq!(meta.minorversion, 0);
/// assert_eq!(meta.id.get_version_num(), 4);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventMetadata {
    /// Unique id of the event (`ce_id`), the consumer's deduplication key.
    pub id: Uuid,
    /// The event type name (`ce_type`).
    pub event_type: Cow<'static, str>,
    /// Minor version of the event type (`ce_minorversion`).
    pub minorversion: u32,
    /// Who produced it (`ce_source`), e.g. `openedx/lms/web`.
    pub source: Cow<'static, str>,
    /// Host that produced it (`sourcehost`).
    pub sourcehost: Cow<'static, str>,
    /// When it happened (`ce_time`), UTC.
    pub time: DateTime<Utc>,
    /// Version of the library that produced it (`sourcelib`).
    pub sourcelib: Cow<'static, str>,
    /// W3C trace context (`traceparent`), when a trace is active.
    pub traceparent: Option<String>,
    /// W3C vendor trace state (`tracestate`).
    pub tracestate: Option<String>,
}

impl EventMetadata {
    /// Fresh metadata for an event of `event_type`: a new v4 id, the current time,
    /// this host and library, the default source.
    ///
    /// ```
    /// let a = event_bus_core::EventMetadata::new("org.example.a.b.created.v1");
    /// let b = event_bus_core::EventMetadata::new("org.example.a.b.created.v1");
    /// assert_ne!(a.id, b.id);
    /// ```
    pub fn new(event_type: impl Into<Cow<'static, str>>) -> Self {
        Self {
            id: Uuid::new_v4(),
            event_type: event_type.into(),
            minorversion: 0,
            source: Cow::Borrowed(DEFAULT_SOURCE),
            sourcehost: Cow::Borrowed(host_name()),
            // `ce_time` carries microseconds; keep the same precision in memory.
            time: Utc::now().trunc_subsecs(6),
            sourcelib: Cow::Borrowed(SOURCE_LIB),
            traceparent: None,
            tracestate: None,
        }
    }

    /// Fresh metadata for an event of type `E`, with its minor version.
    ///
    /// ```
    /// # use event_bus_core::prelude::*;
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Serialize, Deserialize, Event)]
    /// # #[event(type = "org.example.a.b.created.v1", topic = "t", minor_version = 3)]
    /// # struct Created { n: i64 }
    /// let meta = EventMetadata::for_event::<Created>();
    /// assert_eq!(meta.minorversion, 3);
    /// ```
    pub fn for_event<E: crate::Event>() -> Self {
        let mut meta = Self::new(E::EVENT_TYPE);
        meta.minorversion = E::MINOR_VERSION;
        meta
    }

    /// Sets `ce_source` (pass a `&'static str` or an already shared text to keep
    /// it from allocating).
    ///
    /// ```
    /// let meta = event_bus_core::EventMetadata::new("org.example.a.b.created.v1").with_source("svc");
    /// assert_eq!(meta.source, "svc");
    /// ```
    pub fn with_source(mut self, source: impl Into<Cow<'static, str>>) -> Self {
        self.source = source.into();
        self
    }

    /// Sets the event time.
    ///
    /// ```
    /// let t = chrono::DateTime::from_timestamp(0, 0).unwrap();
    /// let meta = event_bus_core::EventMetadata::new("org.example.a.b.created.v1").with_time(t);
    /// assert_eq!(meta.time, t);
    /// ```
    pub fn with_time(mut self, time: DateTime<Utc>) -> Self {
        self.time = time;
        self
    }
}

/// This machine's host name, or `unknown` when it cannot be read; read once.
pub(crate) fn host_name() -> &'static str {
    static HOST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HOST.get_or_init(|| {
        std::env::var("HOSTNAME")
            .ok()
            .filter(|h| !h.is_empty())
            .or_else(|| {
                std::fs::read_to_string("/proc/sys/kernel/hostname")
                    .ok()
                    .map(|h| h.trim().to_owned())
                    .filter(|h| !h.is_empty())
            })
            .unwrap_or_else(|| "unknown".to_owned())
    })
}
