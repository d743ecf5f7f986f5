//! `EventConsumer`: the loop itself.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::commits;
use super::flow::FlowControl;
use super::offsets::Assignment;
use super::outage::{NextStep, Outage};
use event_bus_core::dispatch::DeliveryContext;
use event_bus_core::{EventBus, ReceiverError};
use futures::stream::{FuturesUnordered, StreamExt};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::BorrowedMessage;
use rdkafka::producer::FutureProducer;
use rdkafka::Message;
use tokio::sync::mpsc;
use tracing::Instrument;

use super::config::{ConsumerConfig, UnknownTypePolicy};
use super::context::{is_outage, LoopContext};
use super::dead_letter::{DeadLetterWriter, Written};
use super::decode::{DecodeFailure, RecordDecoder};
use super::dlq::{DeadLetter, DeadLetterSender};
use super::error::ConsumerError;
use super::lanes::Lanes;
use super::offsets::OffsetTracker;
use super::record::RecordView;
use super::redrive_mark::RedriveMarks;
use super::registry_wait::{RegistryWait, Undecoded};
use super::retry::{RetryOutcome, RetryRun};
use super::shutdown::{RecordStop, Shutdown, ShutdownTrigger, StopCause};
use super::slots::Slots;
use super::stats::{ConsumerStats, StatsSnapshot};
use crate::observability::lag::LagSampler;
use crate::observability::{metrics, trace};
use crate::registry::RegistryClient;

/// A shared view of a consumer's progress.
#[derive(Debug, Clone)]
pub struct Progress {
    tracker: Arc<Mutex<OffsetTracker>>,
}

impl Progress {
    /// Per partition, the timestamp to resume from elsewhere without missing anything
    /// (see [`OffsetTracker::resume_timestamps`]).
    ///
    /// See [`EventConsumer::progress`].
    pub fn resume_timestamps(&self) -> Vec<(String, i32, i64)> {
        self.tracker
            .lock()
            .map(|t| t.resume_timestamps())
            .unwrap_or_default()
    }
}

/// The ordering lane of a record: its partition alone when one record runs at a time,
/// else its partition and key, so one key's records stay in order. The topic is its
/// index among the subscribed topics, so a lane of a keyless record costs no
/// allocation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Lane {
    topic: usize,
    partition: i32,
    key: Option<Vec<u8>>,
}

impl Lane {
    fn of(message: &BorrowedMessage<'_>, topics: &[String], max_in_flight: usize) -> Self {
        Self {
            topic: topics
                .iter()
                .position(|t| t == message.topic())
                .unwrap_or(usize::MAX),
            partition: message.partition(),
            key: if max_in_flight > 1 {
                message.key().map(<[u8]>::to_vec)
            } else {
                None
            },
        }
    }
}

/// Whether a record is done (commit past it) or must be read again.
enum Handled {
    Finished,
    /// Shutdown came in the middle of it: it stays uncommitted.
    Abandoned,
    /// Its partition was revoked and it did not finish within the grace period.
    Revoked,
    /// The dead-letter topic refused it for good: it stays uncommitted and the loop
    /// stops (the refusal is logged where it happened).
    Refused,
}

impl From<StopCause> for Handled {
    fn from(cause: StopCause) -> Self {
        match cause {
            StopCause::Shutdown => Self::Abandoned,
            StopCause::Revoked => Self::Revoked,
        }
    }
}

/// A record taken from the stream, with the assignment it was read under.
type Taken<'m> = (BorrowedMessage<'m>, Assignment);

/// The next record of `lane` to start after one finished, skipping records whose
/// partition was revoked while they waited (they are not started: the new owner reads
/// them). `None` when the lane is empty or the loop is stopping.
fn next_in_lane<'m>(
    lanes: &mut Lanes<Lane, Taken<'m>>,
    lane: &Lane,
    stopping: bool,
) -> Option<Taken<'m>> {
    while let Some((message, assignment)) = lanes.finish(lane) {
        if !stopping && assignment.is_current() {
            return Some((message, assignment));
        }
    }
    None
}

/// Sleeps until `at`, or forever when there is nothing to wait for.
async fn sleep_until_some(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The output of a running blocking task (`None` if it panicked); never resolves
/// when none runs.
async fn join_task<T>(task: &mut Option<tokio::task::JoinHandle<T>>) -> Option<T> {
    match task.as_mut() {
        Some(task) => task.await.ok(),
        None => std::future::pending().await,
    }
}

/// Reads events from Kafka and hands each one to every receiver of its type.
///
/// See the [module example](super).
pub struct EventConsumer {
    consumer: Arc<StreamConsumer<LoopContext>>,
    bus: Arc<EventBus>,
    decoder: RecordDecoder,
    dlq: DeadLetterWriter,
    /// Set when the dead-letter topic refused a record for good: the loop stops.
    dlq_refusal: Mutex<Option<ConsumerError>>,
    /// Stops the loop from the inside (a refused dead letter), as a shutdown would:
    /// the records in flight get `revoke_grace` and what waits stays uncommitted.
    stop_loop: ShutdownTrigger,
    /// The loop's own shutdown: the caller's, or `stop_loop`.
    loop_shutdown: Shutdown,
    redrive_marks: RedriveMarks,
    /// The group id, shared by every record's `DeliveryContext`.
    group: Arc<str>,
    /// `config.record_deadline()`, worked out once: it looks up a Kafka option.
    record_deadline: Duration,
    config: ConsumerConfig,
    tracker: Arc<Mutex<OffsetTracker>>,
    stats: Arc<ConsumerStats>,
    client_errors: mpsc::UnboundedReceiver<KafkaError>,
}

impl std::fmt::Debug for EventConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventConsumer")
            .field("config", &self.config)
            .field("bus", &self.bus)
            .finish()
    }
}

impl EventConsumer {
    /// A consumer for `config` that dispatches to `bus`. librdkafka defaults:
    /// `enable.auto.commit=false`, `enable.auto.offset.store=false`,
    /// `auto.offset.reset=earliest`, `partition.assignment.strategy=cooperative-sticky`;
    /// options in the config override them.
    ///
    /// See the [module example](super).
    pub fn new(config: ConsumerConfig, bus: Arc<EventBus>) -> Result<Self, ConsumerError> {
        config.validate()?;
        let registry = Arc::new(RegistryClient::new(config.registry.clone())?);
        let tracker = Arc::new(Mutex::new(OffsetTracker::default()));
        let (errors_tx, errors_rx) = mpsc::unbounded_channel();
        let stats = Arc::new(ConsumerStats::default());
        let context = LoopContext {
            tracker: Arc::clone(&tracker),
            stats: Arc::clone(&stats),
            client_errors: errors_tx,
        };
        let mut defaults = vec![
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("auto.offset.reset", "earliest"),
        ];
        // KIP-848's consumer protocol assigns on the broker and refuses a client-side
        // assignment strategy; the classic protocol gets cooperative rebalances.
        if !uses_consumer_protocol(&config) {
            defaults.push(("partition.assignment.strategy", "cooperative-sticky"));
        }
        let consumer: StreamConsumer<LoopContext> = config
            .kafka
            .client_config(&defaults)
            .set("group.id", &config.group_id)
            .create_with_context(context)
            .map_err(|e| ConsumerError::Client(crate::config::secret::redact_kafka_error(e)))?;
        let dlq = Self::dead_letter_writer(&config, Arc::clone(&stats))?;
        let (stop_loop, loop_shutdown) = Shutdown::new();
        Ok(Self {
            consumer: Arc::new(consumer),
            bus,
            decoder: RecordDecoder::new(registry),
            dlq,
            dlq_refusal: Mutex::new(None),
            stop_loop,
            loop_shutdown,
            redrive_marks: RedriveMarks::default(),
            group: Arc::from(config.group_id.as_str()),
            record_deadline: config.record_deadline(),
            config,
            tracker,
            stats,
            client_errors: errors_rx,
        })
    }

    /// The loop's live counters (share them with a health probe before `run`).
    ///
    /// ```no_run
    /// # fn demo(consumer: &event_bus_kafka::consumer::EventConsumer) {
    /// let stats = consumer.stats();
    /// println!("{:?}", stats.snapshot());
    /// # }
    /// ```
    pub fn stats(&self) -> Arc<ConsumerStats> {
        Arc::clone(&self.stats)
    }

    /// A handle on the loop's progress (resume timestamps), usable while it runs.
    ///
    /// ```no_run
    /// # fn demo(consumer: &event_bus_kafka::consumer::EventConsumer) {
    /// let progress = consumer.progress();
    /// for (topic, partition, millis) in progress.resume_timestamps() {
    ///     println!("{topic}[{partition}] resume from {millis}");
    /// }
    /// # }
    /// ```
    pub fn progress(&self) -> Progress {
        Progress {
            tracker: Arc::clone(&self.tracker),
        }
    }

    /// The underlying rdkafka consumer (e.g. to seek before `run`).
    pub fn kafka(&self) -> &StreamConsumer<impl rdkafka::consumer::ConsumerContext> {
        &self.consumer
    }

    /// Subscribes and runs until `shutdown` is triggered or polling fails too often.
    /// On the way out it commits what is finished and leaves the group.
    ///
    /// See the [module example](super).
    pub async fn run(mut self, shutdown: Shutdown) -> Result<StatsSnapshot, ConsumerError> {
        let topics = self.config.full_topics();
        let topic_refs: Vec<&str> = topics.iter().map(String::as_str).collect();
        self.consumer
            .subscribe(&topic_refs)
            .map_err(|source| ConsumerError::Subscribe {
                topics: topics.clone(),
                source,
            })?;
        tracing::info!(group = %self.config.group_id, topics = ?topics, "consumer started");
        self.stats.set_running(true);
        let lag_sampler =
            LagSampler::spawn(Arc::clone(&self.consumer), self.config.group_id.clone());
        // The caller's shutdown stops the loop; so does a refused dead letter.
        let forward = {
            let stop_loop = self.stop_loop.clone();
            tokio::spawn(async move {
                shutdown.triggered().await;
                stop_loop.trigger();
            })
        };
        let loop_shutdown = self.loop_shutdown.clone();
        let result = self.poll_loop(&loop_shutdown).await.and_then(|()| {
            match self.dlq_refusal.lock().map(|mut r| r.take()) {
                Ok(Some(refusal)) => Err(refusal),
                _ => Ok(()),
            }
        });
        forward.abort();
        drop(lag_sampler);
        self.commit_and_wait().await;
        self.consumer.unsubscribe();
        self.stats.set_running(false);
        tracing::info!(group = %self.config.group_id, "consumer stopped");
        result.map(|()| self.stats.snapshot())
    }

    async fn poll_loop(&mut self, shutdown: &Shutdown) -> Result<(), ConsumerError> {
        let mut commit_timer = tokio::time::interval(self.config.commit_interval);
        commit_timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let consumer = Arc::clone(&self.consumer);
        let mut client_errors =
            std::mem::replace(&mut self.client_errors, mpsc::unbounded_channel().1);
        let this = &*self;
        let max_in_flight = this.config.max_in_flight.max(1);
        let topics = this.config.full_topics();
        // The records running, each in a slot reused after it ends (see slots.rs).
        let mut running = FuturesUnordered::new();
        let mut slots = Slots::default();
        let mut lanes: Lanes<Lane, Taken<'_>> = Lanes::default();
        // One stream for the whole loop: `recv()` would register and drop a waker
        // slot (two lock round trips) per record. A poll that finds nothing waiting
        // stamps the health heartbeat; with a backlog, the next commit tick does.
        let mut stream = consumer.stream();
        let heartbeat = Arc::clone(&this.stats);
        let polled_since_tick = AtomicBool::new(false);
        let mut messages = futures::stream::poll_fn(|cx| {
            let polled = stream.poll_next_unpin(cx);
            if polled.is_pending() {
                heartbeat.polled();
            } else {
                polled_since_tick.store(true, Ordering::Relaxed);
            }
            polled
        });
        // Made once: a fresh wait per iteration would register and drop a watcher on
        // the shutdown channel for every record.
        let shutdown_signal = shutdown.triggered();
        tokio::pin!(shutdown_signal);
        let mut stopping = false;
        this.stats.polled();
        let mut flow = FlowControl::new(FlowControl::pause_delay(this.config.max_poll_interval()));
        let mut outage: Option<Outage> = None;
        let mut probe: Option<tokio::task::JoinHandle<Result<(), String>>> = None;
        let mut commit: Option<tokio::task::JoinHandle<commits::CommitAnswer>> = None;
        loop {
            let in_flight = running.len() + lanes.waiting();
            let full = in_flight >= max_in_flight;
            flow.update(in_flight, max_in_flight, &*consumer);
            let read = !stopping && flow.may_read(full);
            let pause_at = flow.pause_at().filter(|_| !stopping);
            let probe_at = outage
                .as_ref()
                .filter(|_| probe.is_none())
                .map(Outage::probe_at);
            tokio::select! {
                biased;
                _ = &mut shutdown_signal, if !stopping => {
                    // Finish what is running; what waits stays uncommitted.
                    stopping = true;
                }
                Some(((lane, handled), slot)) = running.next(), if !running.is_empty() => {
                    slots.give_back(slot);
                    if let Handled::Abandoned | Handled::Refused = handled {
                        stopping = true;
                    }
                    if let Some((message, assignment)) = next_in_lane(&mut lanes, &lane, stopping) {
                        running.push(slots.run(this.handle_in_lane(lane, message, assignment, shutdown)));
                    }
                }
                Some(error) = client_errors.recv(), if !stopping && outage.is_none() => {
                    outage = Some(this.begin_outage(error)?);
                }
                _ = sleep_until_some(probe_at), if probe_at.is_some() => {
                    let timeout = this.config.poll.probe_timeout;
                    probe = Some(this.spawn_probe(timeout));
                }
                answer = join_task(&mut probe), if probe.is_some() => {
                    probe = None;
                    let answer = answer.unwrap_or_else(|| Err("the probe task failed".to_owned()));
                    match (answer, outage.as_mut()) {
                        (Ok(()), Some(ended)) => {
                            // Errors queued while the brokers were away are stale now.
                            while client_errors.try_recv().is_ok() {}
                            tracing::info!(consecutive = ended.consecutive(), "brokers answer again; resuming");
                            outage = None;
                        }
                        (Err(error), Some(going_on)) => {
                            let step = going_on.failed(error);
                            this.back_off(going_on, step)?;
                        }
                        (_, None) => {}
                    }
                }
                answer = join_task(&mut commit), if commit.is_some() => {
                    commit = None;
                    if let Some(answer) = answer {
                        this.on_commit_answer(&answer, "interval");
                    }
                }
                // Before the message stream: with a backlog it is always ready, and a timer
                // checked after it would never fire.
                _ = commit_timer.tick() => {
                    // Records taken since the last tick were real polls too: a loop
                    // working through a backlog with slow receivers stays healthy.
                    if polled_since_tick.swap(false, Ordering::Relaxed) {
                        this.stats.polled();
                    }
                    if commit.is_none() {
                        commit = commits::pending(&this.tracker)
                            .map(|positions| commits::spawn(&this.consumer, positions));
                    }
                    this.report_oldest_in_progress();
                }
                _ = sleep_until_some(pause_at), if pause_at.is_some() => {
                    flow.pause_assignment(&*consumer);
                }
                Some(message) = messages.next(), if read => match message {
                    Ok(message) => {
                        if flow.is_paused() {
                            flow.pause_partition(&*consumer, message.topic(), message.partition());
                        }
                        let started = this.with_tracker(|t| {
                            t.started_at(message.topic(), message.partition(), message.offset(), message.timestamp().to_millis())
                        });
                        let Some(Some(assignment)) = started else {
                            tracing::debug!(topic = message.topic(), partition = message.partition(), offset = message.offset(), "record of a partition this member does not own; left to its owner");
                            continue;
                        };
                        let lane = Lane::of(&message, &topics, max_in_flight);
                        if let Some((message, assignment)) = lanes.admit(lane.clone(), (message, assignment)) {
                            running.push(slots.run(this.handle_in_lane(lane, message, assignment, shutdown)));
                        }
                    }
                    Err(KafkaError::MessageConsumptionFatal(code)) => {
                        return Err(ConsumerError::Fatal(KafkaError::MessageConsumptionFatal(code)));
                    }
                    // Client-wide errors reach the loop here or through the context.
                    Err(error) if is_outage(&error) => {
                        if outage.is_none() && !stopping {
                            outage = Some(this.begin_outage(error)?);
                        }
                    }
                    Err(error) => {
                        // librdkafka reports it and recovers (a fetch error of one
                        // partition, a topic not there yet); the loop goes on.
                        metrics::record_poll_error(&this.config.group_id);
                        tracing::warn!(error = %error, "consumer error reported by librdkafka");
                    }
                },
            }
            if stopping && running.is_empty() {
                // The last tick's commit first, so the final one cannot be overtaken.
                if let Some(task) = commit.take() {
                    if let Ok(answer) = task.await {
                        this.on_commit_answer(&answer, "interval");
                    }
                }
                return Ok(());
            }
        }
    }

    /// Starts an outage for a client-wide error, or ends the loop on a fatal one.
    fn begin_outage(&self, error: KafkaError) -> Result<Outage, ConsumerError> {
        if matches!(error.rdkafka_error_code(), Some(RDKafkaErrorCode::Fatal)) {
            return Err(ConsumerError::Fatal(error));
        }
        let (begun, step) = Outage::begin(&self.config.poll, error.to_string());
        self.back_off(&begun, step)?;
        Ok(begun)
    }

    /// Records a failure of an outage and its backoff, or ends the loop after too many.
    fn back_off(&self, outage: &Outage, step: NextStep) -> Result<(), ConsumerError> {
        match step {
            NextStep::BackOff(delay) => {
                self.stats.poll_error(delay);
                metrics::record_poll_error(&self.config.group_id);
                tracing::warn!(
                    consecutive = outage.consecutive(),
                    delay_ms = delay.as_millis() as u64,
                    error = %outage.last(),
                    "brokers unreachable; probing again after a backoff (receivers and commits go on)"
                );
                Ok(())
            }
            NextStep::GiveUp(error) => {
                tracing::error!(error = %error, "too many poll failures in a row; stopping");
                Err(error)
            }
        }
    }

    /// Shows the oldest record in progress to health probes.
    fn report_oldest_in_progress(&self) {
        let oldest = self.with_tracker(|t| t.oldest_in_progress()).flatten();
        self.stats.set_oldest_in_progress(oldest);
    }

    /// Handles one record. Once its partition is revoked, or shutdown is asked for,
    /// it has `revoke_grace` to finish before it is abandoned, uncommitted (the next
    /// owner, or this service after a restart, reads it again).
    async fn handle_in_lane<'m>(
        &self,
        lane: Lane,
        message: BorrowedMessage<'m>,
        assignment: Assignment,
        shutdown: &Shutdown,
    ) -> (Lane, Handled) {
        let grace = self.config.revoke_grace;
        let cut_short = async {
            let why = tokio::select! {
                _ = assignment.ended() => Handled::Revoked,
                _ = shutdown.triggered() => Handled::Abandoned,
            };
            tokio::time::sleep(grace).await;
            why
        };
        let handled = tokio::select! {
            biased;
            handled = self.handle(&message, &assignment, shutdown) => handled,
            why = cut_short => {
                let cause = match why {
                    Handled::Revoked => "its partition was revoked",
                    _ => "shutdown was asked for",
                };
                tracing::warn!(
                    topic = message.topic(), partition = message.partition(), offset = message.offset(),
                    grace_ms = grace.as_millis() as u64, cause,
                    "record did not finish within the grace period; abandoned uncommitted (it is read again)"
                );
                why
            }
        };
        (lane, handled)
    }

    /// Probes the brokers in a blocking task, so the loop goes on meanwhile.
    fn spawn_probe(&self, timeout: Duration) -> tokio::task::JoinHandle<Result<(), String>> {
        let consumer = Arc::clone(&self.consumer);
        let topic = self.config.full_topics().into_iter().next();
        tokio::task::spawn_blocking(move || {
            consumer
                .fetch_metadata(topic.as_deref(), timeout)
                .map(drop)
                .map_err(|e| e.to_string())
        })
    }

    /// Commits, and waits for, the finished positions not yet confirmed (on the way
    /// out of the loop).
    async fn commit_and_wait(&self) {
        if let Some(positions) = commits::pending(&self.tracker) {
            if let Ok(answer) = commits::spawn(&self.consumer, positions).await {
                self.on_commit_answer(&answer, "final");
            }
        }
    }

    /// Counts a commit's answer: positions confirmed, or left to send again.
    fn on_commit_answer(&self, answer: &commits::CommitAnswer, mode: &'static str) {
        let accepted = commits::confirm(&self.tracker, answer);
        metrics::record_commit(&self.config.group_id, mode, answer.took, accepted);
        if accepted {
            self.stats.committed();
        }
    }

    async fn handle(
        &self,
        message: &BorrowedMessage<'_>,
        assignment: &Assignment,
        shutdown: &Shutdown,
    ) -> Handled {
        let record = RecordView::of(message);
        let (span, trace_context) = trace::consume_span(
            record.topic,
            record.partition,
            record.offset,
            &record.headers,
            || record.key_text(),
            &self.config.group_id,
        );
        metrics::record_consumed(
            &self.config.group_id,
            record.topic,
            self.metric_event_type(&record),
        );
        let stop = RecordStop {
            shutdown,
            assignment,
        };
        // Receivers run inside the span, with its trace context as the current one, so
        // what they publish continues the trace.
        let handled = match trace_context {
            Some(context) => {
                context
                    .scope(self.process(&record, &stop))
                    .instrument(span)
                    .await
            }
            None => self.process(&record, &stop).instrument(span).await,
        };
        match handled {
            Handled::Finished => {
                self.with_tracker(|t| {
                    t.finished(record.topic, record.partition, record.offset, assignment)
                });
                self.stats.handled();
            }
            Handled::Revoked => {}
            Handled::Refused => {
                self.with_tracker(|t| {
                    t.abandoned(record.topic, record.partition, record.offset, assignment)
                });
            }
            Handled::Abandoned => {
                self.with_tracker(|t| {
                    t.abandoned(record.topic, record.partition, record.offset, assignment)
                });
                tracing::info!(
                    topic = record.topic,
                    partition = record.partition,
                    offset = record.offset,
                    "shutting down in the middle of a record; it stays uncommitted and will be read again"
                );
            }
        }
        handled
    }

    /// The record's `ce_type` for metric labels when it is a type registered here, so
    /// label values stay few whatever the topic carries.
    fn metric_event_type<'r>(&self, record: &RecordView<'r>) -> &'r str {
        match trace::header_text(&record.headers, "ce_type") {
            Some(event_type) if self.bus.reader_schema(event_type).is_some() => event_type,
            _ => metrics::UNKNOWN_EVENT_TYPE,
        }
    }

    /// Runs `f` on the tracker; `None` only if a thread panicked holding it.
    fn with_tracker<T>(&self, f: impl FnOnce(&mut OffsetTracker) -> T) -> Option<T> {
        self.tracker.lock().ok().map(|mut tracker| f(&mut tracker))
    }

    async fn process(&self, record: &RecordView<'_>, stop: &RecordStop<'_>) -> Handled {
        let registry = RegistryWait {
            decoder: &self.decoder,
            bus: &self.bus,
            status: self.stats.registry(),
            poll: &self.config.poll,
            group: &self.config.group_id,
        };
        let decoded = match registry.decode(record, stop).await {
            Ok(decoded) => decoded,
            Err(Undecoded::Stopped(cause)) => return Handled::from(cause),
            Err(Undecoded::Failed(DecodeFailure::UnknownEventType { event_type }))
                if self.config.unknown_types == UnknownTypePolicy::Skip =>
            {
                tracing::debug!(
                    topic = record.topic, partition = record.partition, offset = record.offset,
                    ce_type = %event_type, "no receiver for this event type here; skipped"
                );
                self.stats.skipped();
                metrics::record_skipped(&self.config.group_id, record.topic);
                return Handled::Finished;
            }
            Err(Undecoded::Failed(failure)) => {
                tracing::error!(
                    topic = record.topic, partition = record.partition, offset = record.offset,
                    error_kind = failure.kind(), error = %failure,
                    "record cannot be decoded; sending it to the dead-letter topic"
                );
                let letter = DeadLetter {
                    record,
                    error_kind: failure.kind(),
                    error_message: failure.to_string(),
                    failed_receivers: Vec::new(),
                    attempts: 0,
                };
                return Box::pin(self.dead_letter(&letter, stop)).await;
            }
        };
        if !decoded.defaulted.is_empty() {
            tracing::debug!(offset = record.offset, missing = ?decoded.defaulted, "headers missing; defaults used");
        }
        let only = self.redrive_receivers(record, decoded.event_type);
        let ctx = DeliveryContext::from_record(
            decoded.metadata,
            record.topic,
            record.partition,
            record.offset,
        )
        .with_consumer_group(Arc::clone(&self.group));
        let ce_id = ctx.metadata.id;
        let started = tokio::time::Instant::now();
        let run = RetryRun {
            bus: &self.bus,
            policy: &self.config.retry,
            stop,
            record,
            event_type: decoded.event_type,
            deadline: started + self.record_deadline,
            started,
        };
        match run.run(decoded.event, ctx, only).await {
            RetryOutcome::Succeeded => {
                tracing::debug!(topic = record.topic, partition = record.partition, offset = record.offset, ce_id = %ce_id, key = %record.key_text(), "event handled");
                Handled::Finished
            }
            RetryOutcome::Stopped(cause) => Handled::from(cause),
            RetryOutcome::Exhausted { failures, attempts } => {
                self.stats.receiver_failed(failures.len() as u64);
                let letter = DeadLetter {
                    record,
                    error_kind: "receiver_failed",
                    error_message: describe(&failures),
                    failed_receivers: failures.keys().cloned().collect(),
                    attempts,
                };
                Box::pin(self.dead_letter(&letter, stop)).await
            }
        }
    }

    /// Writes a dead letter (see `dead_letter.rs`); only once the broker acknowledged
    /// it is the record finished. A refusal for good abandons the record uncommitted
    /// and stops the loop with the refusal.
    async fn dead_letter(&self, letter: &DeadLetter<'_>, stop: &RecordStop<'_>) -> Handled {
        let topic = self.config.dlq_topic.for_topic(letter.record.topic);
        match self.dlq.write(&topic, letter, stop).await {
            Written::Done {
                partition,
                offset,
                stub,
            } => {
                self.stats.dead_lettered();
                metrics::record_dead_letter(
                    &self.config.group_id,
                    letter.record.topic,
                    letter.error_kind,
                );
                tracing::error!(
                    topic = letter.record.topic,
                    partition = letter.record.partition,
                    offset = letter.record.offset,
                    dlq_topic = %topic,
                    dlq_partition = partition,
                    dlq_offset = offset,
                    value_dropped = stub,
                    key = %letter.record.key_text(),
                    error_kind = letter.error_kind,
                    failed_receivers = %letter.failed_receivers.join(","),
                    attempts = letter.attempts,
                    "record dead-lettered"
                );
                Handled::Finished
            }
            Written::Stopped(cause) => Handled::from(cause),
            Written::Refused(refusal) => {
                if let Ok(mut slot) = self.dlq_refusal.lock() {
                    slot.get_or_insert(refusal);
                }
                self.stop_loop.trigger();
                Handled::Refused
            }
        }
    }

    /// The receivers a redrive's marks ask for (`None`: all): see `redrive_mark.rs`.
    fn redrive_receivers(&self, record: &RecordView<'_>, event_type: &str) -> Option<Vec<String>> {
        self.redrive_marks
            .receivers(&record.headers, &self.config.group_id, || {
                self.bus.receiver_names(event_type)
            })
    }

    /// The dead-letter writer: an idempotent producer whose writes time out after the
    /// policy's `write_timeout` (which wins over a `message.timeout.ms` among the Kafka
    /// options: see [`super::dlq::dead_letter_client_config`]).
    fn dead_letter_writer(
        config: &ConsumerConfig,
        stats: Arc<ConsumerStats>,
    ) -> Result<DeadLetterWriter, ConsumerError> {
        let producer: FutureProducer =
            super::dlq::dead_letter_client_config(&config.kafka, &config.dlq)
                .create()
                .map_err(|e| ConsumerError::Client(crate::config::secret::redact_kafka_error(e)))?;
        let sender =
            DeadLetterSender::new(producer, config.group_id.clone(), config.dlq.write_timeout);
        Ok(DeadLetterWriter::new(
            sender,
            config.dlq.clone(),
            (config.poll.initial_backoff, config.poll.max_backoff),
            stats,
            config.group_id.clone(),
        ))
    }
}

/// Whether the group uses Kafka 4's consumer rebalance protocol (KIP-848).
fn uses_consumer_protocol(config: &ConsumerConfig) -> bool {
    config
        .kafka
        .options
        .get("group.protocol")
        .is_some_and(|p| p.trim().eq_ignore_ascii_case("consumer"))
}

fn describe(failures: &BTreeMap<String, ReceiverError>) -> String {
    failures
        .iter()
        .map(|(name, error)| format!("{name}: {error}"))
        .collect::<Vec<_>>()
        .join("; ")
}
