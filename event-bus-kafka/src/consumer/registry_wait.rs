//! Records waiting for the schema registry: while it is not usable (down, refusing the
//! credentials, rate limiting, or hidden behind a proxy that answers with a web page),
//! a record that needs a writer schema from it backs off and asks again. It stays in
//! progress, so no offset is committed past it and it is not dead-lettered: the
//! registry not answering says nothing about the record.
//!
//! The condition is shared by every record of the loop ([`RegistryStatus`], kept in
//! [`ConsumerStats`](super::ConsumerStats)): the first record that meets it turns it on
//! and logs one warning, the first waiting record that gets an answer turns it off and
//! logs one line at info, whatever the number of records waiting meanwhile. While it
//! is on, `/healthz` shows it ([`RegistryOutage`]) and the gauge
//! `event_bus_consumer_registry_unavailable` is 1.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use event_bus_core::EventBus;
use serde::Serialize;

use super::backoff::jittered;
use super::config::PollPolicy;
use super::decode::{DecodeFailure, Decoded, RecordDecoder};
use super::record::RecordView;
use super::shutdown::{RecordStop, StopCause};
use crate::observability::metrics;

/// The schema registry is not usable now, as the consumer's records see it: what
/// [`ConsumerStats::registry_unavailable`](super::ConsumerStats::registry_unavailable)
/// and `/healthz` show while records wait for it.
///
/// ```
/// let outage = event_bus_kafka::consumer::RegistryOutage {
///     unavailable_ms: 4_000,
///     waiting_records: 3,
///     error: "schema registry answered HTTP 503 (503): Service Unavailable".into(),
/// };
/// assert_eq!(serde_json::to_value(&outage).unwrap()["waiting_records"], 3);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegistryOutage {
    /// How long ago the first record met it, in milliseconds.
    pub unavailable_ms: u64,
    /// Records waiting for the registry now.
    pub waiting_records: u64,
    /// The last error a waiting record got.
    pub error: String,
}

/// Whether the registry is usable, shared by the records of one loop.
#[derive(Debug, Default)]
pub(crate) struct RegistryStatus {
    /// When it became unusable (milliseconds since the epoch); 0 while usable.
    since_millis: AtomicU64,
    /// Records in the waiting loop now.
    waiting: AtomicU64,
    /// Backoff waits so far.
    waits: AtomicU64,
    /// Answers waiting records got: a failure that began before the latest answer is
    /// stale and does not turn the condition on again.
    answers: AtomicU64,
    last_error: Mutex<String>,
}

/// Now in milliseconds since the epoch, never 0 (0 means "usable" in `since_millis`).
fn now_millis() -> u64 {
    super::stats::now_millis().max(1)
}

impl RegistryStatus {
    /// The condition now, or `None` while the registry is usable.
    pub fn outage(&self) -> Option<RegistryOutage> {
        let since = self.since_millis.load(Ordering::SeqCst);
        (since != 0).then(|| RegistryOutage {
            unavailable_ms: now_millis().saturating_sub(since),
            waiting_records: self.waiting.load(Ordering::SeqCst),
            error: self.last_error().clone(),
        })
    }

    /// Backoff waits of records on the registry so far.
    pub fn waits(&self) -> u64 {
        self.waits.load(Ordering::Relaxed)
    }

    fn last_error(&self) -> std::sync::MutexGuard<'_, String> {
        self.last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn answers(&self) -> u64 {
        self.answers.load(Ordering::SeqCst)
    }

    /// A record's request begun after `answers_before` answers failed with `error`.
    /// Turns the condition on (and says so once) unless it is on already or a waiting
    /// record got an answer meanwhile.
    fn failed(&self, answers_before: u64, error: &DecodeFailure, group: &str) {
        if self.answers() != answers_before {
            return;
        }
        *self.last_error() = error.to_string();
        if self
            .since_millis
            .compare_exchange(0, now_millis(), Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            metrics::record_registry_unavailable(group, true);
            tracing::warn!(
                group,
                error = %error,
                "the schema registry is not usable; records that need a schema from it wait and retry \
                 with backoff (their positions are kept, nothing is dead-lettered)"
            );
        }
    }

    /// A waiting record got an answer (or stopped waiting while no other record waits):
    /// turns the condition off and says so once.
    fn cleared(&self, group: &str, why: &'static str) {
        let since = self.since_millis.swap(0, Ordering::SeqCst);
        if since == 0 {
            return;
        }
        metrics::record_registry_unavailable(group, false);
        tracing::info!(
            group,
            unavailable_ms = now_millis().saturating_sub(since),
            last_error = %self.last_error(),
            "{why}"
        );
    }
}

/// One record in the waiting loop; leaving it (done, stopped or dropped) counts it out.
struct Waiting<'a> {
    status: &'a RegistryStatus,
    group: &'a str,
}

impl<'a> Waiting<'a> {
    fn enter(status: &'a RegistryStatus, group: &'a str) -> Self {
        status.waiting.fetch_add(1, Ordering::SeqCst);
        Self { status, group }
    }

    fn answered(&self) {
        self.status.answers.fetch_add(1, Ordering::SeqCst);
        self.status.cleared(
            self.group,
            "the schema registry answers again; waiting records go on",
        );
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        // The last waiting record left without an answer (shutdown, revocation): no
        // record is held up any more, so the flag goes.
        if self.status.waiting.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.status.cleared(
                self.group,
                "no record waits for the schema registry any more (the last one was left unfinished)",
            );
        }
    }
}

/// Why a record did not decode.
pub(crate) enum Undecoded {
    /// A verdict on the record: it is dead-lettered (or skipped).
    Failed(DecodeFailure),
    /// Shutdown or revocation came while it waited for the registry.
    Stopped(StopCause),
}

/// Decodes records, waiting for the registry while it is not usable.
pub(crate) struct RegistryWait<'a> {
    /// The decoder.
    pub decoder: &'a RecordDecoder,
    /// The bus the types come from.
    pub bus: &'a EventBus,
    /// The loop's shared registry condition.
    pub status: &'a RegistryStatus,
    /// Backoff delays (the poll policy's).
    pub poll: &'a PollPolicy,
    /// The consumer group (logs and metrics).
    pub group: &'a str,
}

impl RegistryWait<'_> {
    /// Decodes `record`; while the registry is not usable, waits with backoff and tries
    /// again until it answers or `stop` says to leave the record.
    pub async fn decode(
        &self,
        record: &RecordView<'_>,
        stop: &RecordStop<'_>,
    ) -> Result<Decoded, Undecoded> {
        let answers = self.status.answers();
        match self.decoder.decode(self.bus, record).await {
            Err(failure) if failure.is_transient() => {
                // Boxed: most records never wait, and their futures stay small.
                Box::pin(self.wait(record, stop, failure, answers)).await
            }
            other => other.map_err(Undecoded::Failed),
        }
    }

    async fn wait(
        &self,
        record: &RecordView<'_>,
        stop: &RecordStop<'_>,
        mut failure: DecodeFailure,
        mut answers: u64,
    ) -> Result<Decoded, Undecoded> {
        let waiting = Waiting::enter(self.status, self.group);
        let mut backoff = jittered(self.poll.initial_backoff, self.poll.max_backoff);
        loop {
            self.status.failed(answers, &failure, self.group);
            let delay: Duration = backoff.next().unwrap_or(self.poll.max_backoff);
            self.status.waits.fetch_add(1, Ordering::Relaxed);
            metrics::record_registry_wait(self.group);
            tracing::debug!(
                topic = record.topic, partition = record.partition, offset = record.offset,
                delay_ms = delay.as_millis() as u64, error = %failure,
                "record waits for the schema registry"
            );
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                cause = stop.stopped() => return Err(Undecoded::Stopped(cause)),
            }
            answers = self.status.answers();
            match self.decoder.decode(self.bus, record).await {
                Err(again) if again.is_transient() => failure = again,
                other => {
                    waiting.answered();
                    return other.map_err(Undecoded::Failed);
                }
            }
        }
    }
}
