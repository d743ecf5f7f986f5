//! Example receivers for the [Open edX events](crate::openedx), as a service would
//! write them, and the bus the `consume_events` example binary runs with.
//!
//! - [`AuditReceiver`] logs where each event came from (topic, partition, offset,
//!   `ce_id`, type); the key, a username for logins, is PII and only logged at debug.
//! - [`CountingReceiver`] counts events per type and logs a running total.
//! - Both append `receiver<TAB>ce_id` lines to the file named by
//!   `EXAMPLE_RECEIVED_LOG` when it is set ([`ReceivedLog`]), so tests can count
//!   deliveries across process restarts and crashes.
//!
//! ```
//! let bus = event_bus_examples::receivers::example_bus(event_bus_examples::receivers::ReceivedLog::disabled())?;
//! assert_eq!(bus.receiver_count(), 4);
//! # Ok::<(), event_bus_core::dispatch::BusError>(())
//! ```

use std::collections::{BTreeMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use event_bus_core::dispatch::{BusError, DeliveryContext, Origin};
use event_bus_core::prelude::*;
use uuid::Uuid;

use crate::openedx::{CourseEnrollmentCreated, SessionLoginCompleted};

/// The environment variable naming the [`ReceivedLog`] file.
pub const RECEIVED_LOG_ENV: &str = "EXAMPLE_RECEIVED_LOG";

/// An append-only file with one `receiver<TAB>ce_id` line per event a receiver
/// handled, or nothing when disabled.
///
/// Each line is written with one `write` call on a file opened for appending, and no
/// user-space buffer: a line written before the process is killed (even with
/// SIGKILL) is in the file.
///
/// ```
/// use event_bus_examples::receivers::ReceivedLog;
/// let path = std::env::temp_dir().join(format!("received-{}.log", uuid::Uuid::new_v4()));
/// let log = ReceivedLog::open(&path)?;
/// let id = uuid::Uuid::new_v4();
/// log.record("audit", id)?;
/// assert_eq!(std::fs::read_to_string(&path)?, format!("audit\t{id}\n"));
/// # std::fs::remove_file(&path)?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Default)]
pub struct ReceivedLog {
    file: Option<(PathBuf, Mutex<File>)>,
}

impl ReceivedLog {
    /// A log that records nothing.
    ///
    /// ```
    /// let log = event_bus_examples::receivers::ReceivedLog::disabled();
    /// assert!(log.path().is_none());
    /// ```
    pub fn disabled() -> Self {
        Self::default()
    }

    /// A log appending to `path` (created if missing).
    ///
    /// See the type's example.
    pub fn open(path: impl AsRef<Path>) -> io::Result<Self> {
        let path = path.as_ref();
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Self {
            file: Some((path.to_owned(), Mutex::new(file))),
        })
    }

    /// The log named by `EXAMPLE_RECEIVED_LOG`, or a disabled one when it is unset.
    ///
    /// ```
    /// let log = event_bus_examples::receivers::ReceivedLog::from_env()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn from_env() -> io::Result<Self> {
        match std::env::var_os(RECEIVED_LOG_ENV) {
            Some(path) if !path.is_empty() => Self::open(path),
            _ => Ok(Self::disabled()),
        }
    }

    /// The file, when enabled.
    ///
    /// See [`disabled`](Self::disabled).
    pub fn path(&self) -> Option<&Path> {
        self.file.as_ref().map(|(path, _)| path.as_path())
    }

    /// Appends `receiver<TAB>ce_id`.
    ///
    /// See the type's example.
    pub fn record(&self, receiver: &str, ce_id: Uuid) -> io::Result<()> {
        let Some((_, file)) = &self.file else {
            return Ok(());
        };
        let line = format!("{receiver}\t{ce_id}\n");
        let mut file = file
            .lock()
            .map_err(|_| io::Error::other("the received-log lock is poisoned"))?;
        file.write_all(line.as_bytes())
    }

    /// The `ce_id`s `receiver` handled, from the log file at `path` (empty while there is
    /// no file yet; unreadable lines are left out): for tests that watch a consumer
    /// process from outside.
    ///
    /// ```
    /// use event_bus_examples::receivers::ReceivedLog;
    /// let path = std::env::temp_dir().join(format!("received-{}.log", uuid::Uuid::new_v4()));
    /// assert!(ReceivedLog::read_ids(&path, "audit").is_empty());
    /// let id = uuid::Uuid::new_v4();
    /// ReceivedLog::open(&path)?.record("audit", id)?;
    /// assert_eq!(ReceivedLog::read_ids(&path, "audit").into_iter().collect::<Vec<_>>(), [id]);
    /// assert!(ReceivedLog::read_ids(&path, "counter").is_empty());
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn read_ids(path: impl AsRef<Path>, receiver: &str) -> HashSet<Uuid> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| line.split_once('\t'))
            .filter(|(name, _)| *name == receiver)
            .filter_map(|(_, id)| Uuid::parse_str(id).ok())
            .collect()
    }

    fn record_for_receiver(
        &self,
        receiver: &str,
        ctx: &DeliveryContext,
    ) -> Result<(), ReceiverError> {
        self.record(receiver, ctx.metadata.id).map_err(|error| {
            ReceiverError::new(format!(
                "cannot append to the received log {}: {error}",
                self.path()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            ))
        })
    }
}

/// Logs where each event came from: topic, partition, offset, `ce_id`, type, source
/// (info); the key only at debug level, since keys can be PII (a username).
///
/// ```
/// use std::sync::Arc;
/// use event_bus_examples::openedx::SessionLoginCompleted;
/// use event_bus_examples::receivers::{AuditReceiver, ReceivedLog};
/// let mut bus = event_bus_core::EventBus::new();
/// bus.connect::<SessionLoginCompleted, _>("audit", AuditReceiver::new(Arc::new(ReceivedLog::disabled())))?;
/// # Ok::<(), event_bus_core::dispatch::BusError>(())
/// ```
#[derive(Debug, Clone)]
pub struct AuditReceiver {
    log: Arc<ReceivedLog>,
}

impl AuditReceiver {
    /// The receiver's name in [`example_bus`].
    pub const NAME: &'static str = "audit";

    /// An audit receiver that also records each event in `log`.
    ///
    /// See the type's example.
    pub fn new(log: Arc<ReceivedLog>) -> Self {
        Self { log }
    }
}

#[async_trait::async_trait]
impl<E: Event> Receiver<E> for AuditReceiver {
    async fn receive(&self, event: &E, ctx: &DeliveryContext) -> Result<(), ReceiverError> {
        let (topic, partition, offset) = match &ctx.origin {
            Origin::Bus {
                topic,
                partition,
                offset,
            } => (topic.as_ref(), *partition, *offset),
            Origin::Local => ("", -1, -1),
        };
        tracing::info!(
            topic,
            partition,
            offset,
            ce_id = %ctx.metadata.id,
            ce_type = E::EVENT_TYPE,
            ce_source = %ctx.metadata.source,
            attempt = ctx.attempt,
            "event received"
        );
        tracing::debug!(
            ce_id = %ctx.metadata.id,
            key = %event.key().map(|k| k.to_string()).unwrap_or_default(),
            "event key"
        );
        self.log.record_for_receiver(Self::NAME, ctx)
    }
}

/// Counts events per type; logs the running total every `every` events.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use std::sync::Arc;
/// use event_bus_core::{dispatch::DeliveryContext, Event, EventMetadata, Receiver};
/// use event_bus_examples::openedx::{SessionLoginCompleted, UserData};
/// use event_bus_examples::receivers::{CountingReceiver, ReceivedLog};
/// let counter = CountingReceiver::new(Arc::new(ReceivedLog::disabled()), 100);
/// let event = SessionLoginCompleted { user: UserData::example() };
/// let ctx = DeliveryContext::local(EventMetadata::for_event::<SessionLoginCompleted>());
/// counter.receive(&event, &ctx).await.unwrap();
/// assert_eq!(counter.count(SessionLoginCompleted::EVENT_TYPE), 1);
/// assert_eq!(counter.total(), 1);
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct CountingReceiver {
    log: Arc<ReceivedLog>,
    every: u64,
    total: Arc<AtomicU64>,
    per_type: Arc<Mutex<BTreeMap<&'static str, u64>>>,
}

impl CountingReceiver {
    /// The receiver's name in [`example_bus`].
    pub const NAME: &'static str = "counter";

    /// A counter that logs every `every` events (0: never) and records each event in
    /// `log`.
    ///
    /// See the type's example.
    pub fn new(log: Arc<ReceivedLog>, every: u64) -> Self {
        Self {
            log,
            every,
            total: Arc::new(AtomicU64::new(0)),
            per_type: Arc::new(Mutex::new(BTreeMap::new())),
        }
    }

    /// Events of `event_type` counted so far.
    ///
    /// See the type's example.
    pub fn count(&self, event_type: &str) -> u64 {
        self.per_type
            .lock()
            .ok()
            .and_then(|counts| counts.get(event_type).copied())
            .unwrap_or(0)
    }

    /// Events counted so far, every type.
    ///
    /// See the type's example.
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }
}

#[async_trait::async_trait]
impl<E: Event> Receiver<E> for CountingReceiver {
    async fn receive(&self, _event: &E, ctx: &DeliveryContext) -> Result<(), ReceiverError> {
        self.log.record_for_receiver(Self::NAME, ctx)?;
        if let Ok(mut counts) = self.per_type.lock() {
            *counts.entry(E::EVENT_TYPE).or_default() += 1;
        }
        let total = self.total.fetch_add(1, Ordering::Relaxed) + 1;
        if self.every > 0 && total.is_multiple_of(self.every) {
            tracing::info!(total, ce_type = E::EVENT_TYPE, "events counted");
        }
        Ok(())
    }
}

/// The example application's bus: [`AuditReceiver`] (`audit`) and
/// [`CountingReceiver`] (`counter`, logging every 1 000 events) on both Open edX
/// events, recording to `log`.
///
/// See the [module example](self).
pub fn example_bus(log: ReceivedLog) -> Result<EventBus, BusError> {
    let log = Arc::new(log);
    let audit = AuditReceiver::new(Arc::clone(&log));
    let counter = CountingReceiver::new(log, 1_000);
    let mut bus = EventBus::new();
    bus.connect::<SessionLoginCompleted, _>(AuditReceiver::NAME, audit.clone())?
        .connect::<CourseEnrollmentCreated, _>(AuditReceiver::NAME, audit)?
        .connect::<SessionLoginCompleted, _>(CountingReceiver::NAME, counter.clone())?
        .connect::<CourseEnrollmentCreated, _>(CountingReceiver::NAME, counter)?;
    Ok(bus)
}
