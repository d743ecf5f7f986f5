//! The relay: publishes waiting outbox rows, key order kept, and deletes them once the
//! broker acknowledged them.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::config::RelayConfig;
use super::error::OutboxError;
use super::health::BrokerHealth;
use super::lease::RelayLease;
use super::monitor::RelayMonitor;
use super::publish::{evaluate, publish, ParkPolicy, RetryPolicy, RowResult};
use super::row::OutboxRow;
use super::store::{ClaimLimits, ClaimedBatch, OutboxStore, OutboxWakeup};
use crate::observability::metrics;
use crate::producer::Producer;

/// Whether a relay that finds a SQLite file's lease held waits for it (see `lease`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wait {
    /// Wait until the holder stops or its lease expires (`run_until`).
    Yes,
    /// Fail with [`OutboxError::RelayBusy`] (`drain`).
    No,
}

/// Shortest time between two claims that found nothing, so a relay never spins (a
/// retry that looked due but another relay holds it; a burst of NOTIFYs while every
/// key backs off).
const MIN_IDLE: Duration = Duration::from_millis(25);
/// Backoff after a database error, doubled per consecutive error up to the poll interval
/// (at most [`MAX_ERROR_BACKOFF`]).
const ERROR_BACKOFF: Duration = Duration::from_millis(100);
/// The longest backoff after database errors.
const MAX_ERROR_BACKOFF: Duration = Duration::from_secs(30);

/// What one batch did.
///
/// ```
/// let report = event_bus_kafka::outbox::BatchReport::default();
/// assert_eq!(report.claimed, 0);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchReport {
    /// Rows claimed.
    pub claimed: u64,
    /// Rows acknowledged by the broker and deleted.
    pub published: u64,
    /// Rows that failed (attempt counted, backing off or parked), unreadable rows
    /// included.
    pub failed: u64,
    /// Of the failed rows, those parked now (`event-bus outbox parked`).
    pub parked: u64,
    /// Rows not sent because an earlier row of their key failed.
    pub held_back: u64,
    /// Rows acknowledged although an earlier row of their key failed in the same batch
    /// (librdkafka timed the earlier one out first). Logged as a warning; normally 0.
    pub published_ahead_of_failure: u64,
    /// Time spent claiming (the database query).
    pub claim_time: Duration,
    /// Time spent publishing (queueing and waiting for acknowledgements).
    pub publish_time: Duration,
    /// Time spent deleting and committing.
    pub complete_time: Duration,
}

/// Totals of a relay's work, also where its time went.
///
/// ```
/// let stats = event_bus_kafka::outbox::RelayStats::default();
/// assert_eq!(stats.published, 0);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RelayStats {
    /// Batches that claimed at least one row.
    pub batches: u64,
    /// Rows published and deleted.
    pub published: u64,
    /// Failed attempts.
    pub failed: u64,
    /// Rows parked.
    pub parked: u64,
    /// Rows held back behind a failure of their key.
    pub held_back: u64,
    /// See [`BatchReport::published_ahead_of_failure`].
    pub published_ahead_of_failure: u64,
    /// Database errors survived.
    pub database_errors: u64,
    /// Total claim time.
    pub claim_time: Duration,
    /// Total publish time.
    pub publish_time: Duration,
    /// Total delete-and-commit time.
    pub complete_time: Duration,
}

impl RelayStats {
    fn add(&mut self, report: &BatchReport) {
        if report.claimed > 0 {
            self.batches += 1;
        }
        self.published += report.published;
        self.failed += report.failed;
        self.parked += report.parked;
        self.held_back += report.held_back;
        self.published_ahead_of_failure += report.published_ahead_of_failure;
        self.claim_time += report.claim_time;
        self.publish_time += report.publish_time;
        self.complete_time += report.complete_time;
    }
}

/// Publishes the outbox: claims due rows in batches, sends each batch through
/// librdkafka's queue at once (per-key order kept by the partition and the idempotent
/// producer), and deletes the acknowledged rows in one statement. A failing row backs
/// off exponentially (attempts and last error kept) and holds back its key only.
/// Sleeps on LISTEN/NOTIFY (PostgreSQL) or an in-process signal (SQLite), polling as a
/// fallback. Any number of relays may run against one PostgreSQL outbox; see
/// [`PostgresOutbox`](super::PostgresOutbox) for how they keep each key's order.
///
/// Delivery is at-least-once: a relay that dies after the broker acknowledged but before
/// its commit leaves the rows, which are published again (`ce_id` is the dedup key).
///
/// ```no_run
/// use std::sync::Arc;
/// use event_bus_kafka::outbox::{PostgresOutbox, Relay, RelayConfig};
/// # use event_bus_kafka::prelude::*;
/// # async fn demo(producer: Producer) -> Result<(), Box<dyn std::error::Error>> {
/// let store = Arc::new(PostgresOutbox::connect("postgres://app@localhost/app").await?);
/// let relay = Relay::new(store, producer, RelayConfig::default());
/// let handle = relay.spawn(); // in-process task
/// // ... on shutdown:
/// let stats = handle.shutdown().await?;
/// println!("published {}", stats.published);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Relay<S: OutboxStore> {
    store: Arc<S>,
    producer: Producer,
    config: RelayConfig,
    health: BrokerHealth,
    retry: RetryPolicy,
    park: ParkPolicy,
    monitor: RelayMonitor,
}

impl<S: OutboxStore> Relay<S> {
    /// A relay publishing `store`'s rows with `producer` (its delivery timeout bounds a
    /// batch's wait for acknowledgements).
    ///
    /// See the type's example.
    pub fn new(store: Arc<S>, producer: Producer, config: RelayConfig) -> Self {
        let retry = RetryPolicy::new(config.retry_min_delay, config.retry_max_delay);
        let park = ParkPolicy::of(&config);
        Self {
            store,
            producer,
            config,
            health: BrokerHealth::default(),
            retry,
            park,
            monitor: RelayMonitor::default(),
        }
    }

    /// Shows the loop's state in `monitor` (for a health probe): whether it runs, its
    /// last pass, its database errors in a row, the broker and its totals. Every relay has
    /// one ([`monitor`](Self::monitor)); this lets the caller create it first.
    ///
    /// ```no_run
    /// # use std::sync::Arc;
    /// # use event_bus_kafka::outbox::*;
    /// # fn demo(store: Arc<PostgresOutbox>, producer: event_bus_kafka::producer::Producer) {
    /// let monitor = RelayMonitor::default();
    /// let relay = Relay::new(store, producer, RelayConfig::default()).with_monitor(monitor.clone());
    /// assert_eq!(monitor.phase(), RelayPhase::NotStarted);
    /// # }
    /// ```
    pub fn with_monitor(mut self, monitor: RelayMonitor) -> Self {
        self.monitor = monitor;
        self
    }

    /// The live state of this relay's loop (see [`RelayMonitor`]).
    ///
    /// ```no_run
    /// # use std::sync::Arc;
    /// # use event_bus_kafka::outbox::*;
    /// # fn demo(store: Arc<PostgresOutbox>, producer: event_bus_kafka::producer::Producer) {
    /// let relay = Relay::new(store, producer, RelayConfig::default());
    /// let watcher = relay.monitor().clone(); // read it from another task
    /// # }
    /// ```
    pub fn monitor(&self) -> &RelayMonitor {
        &self.monitor
    }

    /// Reports the broker's health to `health` (shared with an
    /// [`OutboxProducer`](super::OutboxProducer), which then sends directly again as soon
    /// as the relay gets through).
    ///
    /// ```no_run
    /// # use std::sync::Arc;
    /// # use event_bus_kafka::outbox::*;
    /// # fn demo(store: Arc<PostgresOutbox>, producer: event_bus_kafka::producer::Producer) {
    /// let health = BrokerHealth::default();
    /// let relay = Relay::new(store, producer, RelayConfig::default()).with_health(health.clone());
    /// # }
    /// ```
    pub fn with_health(mut self, health: BrokerHealth) -> Self {
        self.health = health;
        self
    }

    /// The store.
    ///
    /// See the type's example.
    pub fn store(&self) -> &Arc<S> {
        &self.store
    }

    /// Claims, publishes and completes one batch.
    ///
    /// It takes no relay lease: on a SQLite file, make sure no other process relays the
    /// same file meanwhile ([`drain`](Self::drain) and [`run_until`](Self::run_until)
    /// take the file's lease and stop when they lose it).
    ///
    /// ```no_run
    /// # use event_bus_kafka::outbox::*;
    /// # async fn demo(relay: Relay<PostgresOutbox>) -> Result<(), OutboxError> {
    /// let report = relay.run_once().await?;
    /// println!("{} published, {} failed", report.published, report.failed);
    /// # Ok(()) }
    /// ```
    pub async fn run_once(&self) -> Result<BatchReport, OutboxError> {
        self.run_batch(None).await
    }

    /// [`run_once`](Self::run_once) under `lease`: checked again once the batch is
    /// claimed, so a relay paused during the claim queues nothing after losing it.
    async fn run_batch(&self, lease: Option<&RelayLease>) -> Result<BatchReport, OutboxError> {
        let started = Instant::now();
        let batch = self
            .store
            .claim(ClaimLimits {
                max_rows: self.config.batch_size,
                max_lanes: self.config.max_lanes_per_batch,
            })
            .await?;
        if let Some(lease) = lease {
            lease.check()?; // the claimed rows stay as they were
        }
        let claim_time = started.elapsed();
        let rows = batch.rows();
        let unreadable = batch.unreadable();
        if rows.is_empty() && unreadable.is_empty() {
            batch.complete(Default::default()).await?;
            return Ok(BatchReport {
                claim_time,
                ..BatchReport::default()
            });
        }
        let started = Instant::now();
        let queue_timeout = self.producer.config().delivery_timeout;
        let results = publish(self.producer.kafka(), rows, unreadable, queue_timeout).await;
        record_metrics(rows, &results);
        let broker_unavailable = results
            .iter()
            .any(|r| matches!(r, RowResult::Failed(e) if e.broker_unavailable()));
        let evaluation = evaluate(rows, &results, unreadable, &self.retry, &self.park);
        let publish_time = started.elapsed();
        let report = BatchReport {
            claimed: (rows.len() + unreadable.len()) as u64,
            published: evaluation.outcome.delivered.len() as u64,
            failed: evaluation.outcome.failed.len() as u64,
            parked: evaluation.parked,
            held_back: evaluation.held_back,
            published_ahead_of_failure: evaluation.ahead_of_failure,
            claim_time,
            publish_time,
            complete_time: Duration::ZERO,
        };
        let started = Instant::now();
        batch.complete(evaluation.outcome).await?;
        let report = BatchReport {
            complete_time: started.elapsed(),
            ..report
        };
        if report.published > 0 {
            self.health.mark_healthy();
        } else if broker_unavailable {
            self.health.mark_failing();
        }
        tracing::debug!(
            claimed = report.claimed,
            published = report.published,
            failed = report.failed,
            parked = report.parked,
            held_back = report.held_back,
            claim_ms = report.claim_time.as_millis() as u64,
            publish_ms = report.publish_time.as_millis() as u64,
            complete_ms = report.complete_time.as_millis() as u64,
            "outbox batch done"
        );
        Ok(report)
    }

    /// Publishes batches until nothing is due (failing rows that back off stay), then
    /// returns the totals. For `event-bus outbox relay --once` and tests.
    /// On a SQLite file it fails with [`OutboxError::RelayBusy`] while another relay holds
    /// the file's lease.
    ///
    /// ```no_run
    /// # use event_bus_kafka::outbox::*;
    /// # async fn demo(relay: Relay<PostgresOutbox>) -> Result<(), OutboxError> {
    /// let stats = relay.drain().await?;
    /// # Ok(()) }
    /// ```
    pub async fn drain(&self) -> Result<RelayStats, OutboxError> {
        // SQLite: one relay per database file (see `lease`); a busy file is an error.
        let lease = RelayLease::acquire(&*self.store, Wait::No).await?;
        let mut stats = RelayStats::default();
        let _stopped_on_exit = self.monitor.stopped_on_drop();
        self.monitor
            .started(self.config.poll_interval, &self.health);
        let outcome = loop {
            if let Some(Err(error)) = lease.as_ref().map(RelayLease::check) {
                break Err(error);
            }
            match self.run_batch(lease.as_ref()).await {
                Ok(report) => {
                    stats.add(&report);
                    self.monitor.passed(&stats);
                    if report.claimed == 0 {
                        break Ok(stats);
                    }
                }
                Err(error) => break Err(error),
            }
        };
        // Released on an error too, so the next relay need not wait for it to expire.
        if let Some(lease) = lease {
            lease.release().await;
        }
        outcome
    }

    /// Runs until `shutdown` completes (the batch in hand is finished first). On a SQLite
    /// file it first waits for the file's relay lease (one relay per database file). Database
    /// errors the [failure classifier](crate::failure::of_outbox) calls retryable are
    /// logged and retried with backoff; after
    /// [`max_consecutive_errors`](RelayConfig::max_consecutive_errors) in a row the last
    /// one is returned, for a supervisor to restart the relay. A permanent one (the
    /// outbox table gone, rights revoked) is returned at once.
    ///
    /// ```no_run
    /// # use event_bus_kafka::outbox::*;
    /// # async fn demo(relay: Relay<PostgresOutbox>) -> Result<(), OutboxError> {
    /// let stats = relay.run_until(async { let _ = tokio::signal::ctrl_c().await; }).await?;
    /// # Ok(()) }
    /// ```
    pub async fn run_until(
        &self,
        shutdown: impl Future<Output = ()>,
    ) -> Result<RelayStats, OutboxError> {
        tokio::pin!(shutdown);
        let mut stats = RelayStats::default();
        let mut wakeup: Option<S::Wakeup> = None;
        let mut consecutive_errors: u32 = 0;
        let mut last_status: Option<Instant> = None;
        let mut last_empty_claim: Option<Instant> = None;
        // SQLite: one relay per database file (see `lease`); waits for the lease.
        let _stopped_on_exit = self.monitor.stopped_on_drop();
        self.monitor.waiting_for_lease();
        let lease = tokio::select! {
            lease = RelayLease::acquire(&*self.store, Wait::Yes) => lease?,
            () = &mut shutdown => return Ok(stats),
        };
        self.monitor
            .started(self.config.poll_interval, &self.health);
        tracing::info!(
            batch_size = self.config.batch_size,
            max_lanes = self.config.max_lanes_per_batch,
            poll_ms = self.config.poll_interval.as_millis() as u64,
            "outbox relay started"
        );
        let outcome = loop {
            if wakeup.is_none() {
                match self.store.wakeup().await {
                    Ok(listener) => wakeup = Some(listener),
                    Err(error) => {
                        tracing::warn!(%error, "outbox relay cannot listen for new events; polling")
                    }
                }
            }
            if let Some(pause) = last_empty_claim.and_then(|at| MIN_IDLE.checked_sub(at.elapsed()))
            {
                tokio::select! {
                    () = &mut shutdown => break Ok(()),
                    () = tokio::time::sleep(pause) => {}
                }
            }
            if let Some(Err(error)) = lease.as_ref().map(RelayLease::check) {
                break Err(error);
            }
            let idle = match self.run_batch(lease.as_ref()).await {
                Ok(report) => {
                    consecutive_errors = 0;
                    stats.add(&report);
                    self.monitor.passed(&stats);
                    if report.claimed > 0 {
                        last_empty_claim = None;
                        None
                    } else {
                        last_empty_claim = Some(Instant::now());
                        Some(self.idle_time().await)
                    }
                }
                // Lost during the claim: nothing was queued; stop at once.
                Err(error @ OutboxError::LeaseLost { .. }) => break Err(error),
                Err(error) => {
                    consecutive_errors = consecutive_errors.saturating_add(1);
                    stats.database_errors += 1;
                    self.monitor.failed(&error, &stats);
                    let failure = crate::failure::of_outbox(&error);
                    tracing::error!(%error, consecutive_errors, %failure, "outbox relay batch failed");
                    // A refusal only a person can lift (a missing table, no rights)
                    // ends the relay with the error rather than a retry loop.
                    if !failure.is_retryable()
                        || self
                            .config
                            .max_consecutive_errors
                            .is_some_and(|max| consecutive_errors >= max)
                    {
                        break Err(error);
                    }
                    let backoff = ERROR_BACKOFF
                        .saturating_mul(2u32.saturating_pow(consecutive_errors.min(16)))
                        .min(self.config.poll_interval.max(ERROR_BACKOFF))
                        .min(MAX_ERROR_BACKOFF);
                    Some(backoff)
                }
            };
            if let Some(interval) = self.config.status_interval {
                if last_status.is_none_or(|at| at.elapsed() >= interval) {
                    last_status = Some(Instant::now());
                    match self.store.status(10).await {
                        Ok(status) => {
                            status.record_metrics();
                            if !status.is_empty() {
                                status.log();
                            }
                        }
                        Err(error) => {
                            tracing::warn!(%error, "outbox relay cannot read the outbox status")
                        }
                    }
                }
            }
            let Some(idle) = idle else {
                // More may be due right away; still honour a pending shutdown.
                if futures::FutureExt::now_or_never(&mut shutdown).is_some() {
                    break Ok(());
                }
                continue;
            };
            let sleep = async {
                match wakeup.as_mut() {
                    Some(listener) => listener.wait(idle).await,
                    None => tokio::time::sleep(idle).await,
                }
            };
            tokio::select! {
                () = &mut shutdown => break Ok(()),
                () = sleep => {}
            }
        };
        // Released on an error too, so the next relay need not wait for it to expire.
        if let Some(lease) = lease {
            lease.release().await;
        }
        outcome?;
        tracing::info!(
            published = stats.published,
            failed = stats.failed,
            parked = stats.parked,
            batches = stats.batches,
            "outbox relay stopped"
        );
        Ok(stats)
    }

    /// How long to sleep when nothing was claimable: until the next retry is due, at
    /// most the poll interval.
    async fn idle_time(&self) -> Duration {
        let poll = self.config.poll_interval;
        match self.store.next_retry_in().await {
            Ok(Some(retry_in)) => retry_in.clamp(MIN_IDLE, poll.max(MIN_IDLE)),
            Ok(None) => poll,
            Err(error) => {
                tracing::warn!(%error, "outbox relay cannot read the next retry time");
                poll
            }
        }
    }

    /// Runs the relay as a tokio task until [`RelayHandle::shutdown`].
    ///
    /// See the type's example.
    pub fn spawn(self) -> RelayHandle {
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            };
            self.run_until(shutdown).await
        });
        RelayHandle { stop, task }
    }
}

/// Counts what the relay sent as the producer's metrics do: produced, then delivered
/// (and relayed) or failed.
fn record_metrics(rows: &[OutboxRow], results: &[RowResult]) {
    for (row, result) in rows.iter().zip(results) {
        let (event_type, topic) = (&row.record.event_type, &row.record.topic);
        match result {
            RowResult::Delivered => {
                metrics::record_produced(event_type, topic);
                metrics::record_delivered(event_type, topic);
                metrics::record_outbox_relayed(event_type, topic);
            }
            RowResult::Failed(_) => {
                metrics::record_produced(event_type, topic);
                metrics::record_failed(event_type, topic);
            }
            RowResult::HeldBack => {}
        }
    }
}

/// A relay running as a tokio task.
///
/// ```no_run
/// # async fn demo(handle: event_bus_kafka::outbox::RelayHandle) -> Result<(), event_bus_kafka::outbox::OutboxError> {
/// let stats = handle.shutdown().await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct RelayHandle {
    stop: watch::Sender<bool>,
    task: JoinHandle<Result<RelayStats, OutboxError>>,
}

impl RelayHandle {
    /// Asks the relay to stop after the batch in hand, and waits for it.
    ///
    /// See the type's example.
    pub async fn shutdown(self) -> Result<RelayStats, OutboxError> {
        let _ = self.stop.send(true);
        self.task
            .await
            .map_err(|e| OutboxError::RelayTask(e.to_string()))?
    }

    /// Whether the task has ended (it stops by itself only after
    /// [`max_consecutive_errors`](RelayConfig::max_consecutive_errors)).
    ///
    /// See the type's example.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Stops the task at once, even mid-batch (a claimed batch is rolled back; rows
    /// already acknowledged by the broker are published again later).
    ///
    /// See the type's example.
    pub fn abort(self) {
        self.task.abort();
    }
}
