//! The librdkafka producer under [`Producer`](super::Producer), whose delivery reports
//! are handled in librdkafka's own delivery callback.
//!
//! rdkafka's `FutureProducer` gives every record a channel and a future; an enqueued
//! event then needs a task to await that future only to log it. Here each record
//! carries a [`DeliveryTicket`] instead: either the sender half of a channel someone
//! awaits (`send`, the outbox relay), or what the delivery log needs (`enqueue`),
//! written by the callback itself with no channel and no task.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, FromClientConfigAndContext};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseRecord, Producer as _, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::util::Timeout;
use tokio::sync::oneshot;

use super::record::EncodedRecord;
use super::reporter::ReportedEvent;

/// Where a record sits once the broker took it: partition and offset.
pub type Placement = (i32, i64);

/// What librdkafka hands back with a record's delivery report.
pub(crate) enum DeliveryTicket {
    /// Someone awaits the broker's answer.
    Awaited(oneshot::Sender<Result<Placement, KafkaError>>),
    /// The answer is only logged (and counted).
    Reported(ReportedEvent),
}

/// The ticket as librdkafka stores it: one pointer per record.
pub(crate) type Ticket = Box<DeliveryTicket>;

/// A record ready for librdkafka, carrying its ticket.
pub(crate) type TicketedRecord<'a> = BaseRecord<'a, [u8], [u8], Ticket>;

/// The client context: routes each delivery report to its ticket.
pub(crate) struct DeliveryReports;

impl ClientContext for DeliveryReports {}

impl ProducerContext for DeliveryReports {
    type DeliveryOpaque = Ticket;

    fn delivery(&self, result: &DeliveryResult<'_>, ticket: Ticket) {
        // This runs on librdkafka's polling thread: a panic (say, in a tracing layer or
        // a metrics recorder) must not end that thread, or every later report is lost.
        let reported = std::panic::catch_unwind(AssertUnwindSafe(|| deliver(result, *ticket)));
        if reported.is_err() {
            eprintln!("signal-bridge: a delivery report panicked; the producer goes on");
        }
    }
}

/// Hands one delivery report to its ticket.
fn deliver(result: &DeliveryResult<'_>, ticket: DeliveryTicket) {
    match ticket {
        DeliveryTicket::Awaited(reply) => {
            let answer = match result {
                Ok(message) => Ok((message.partition(), message.offset())),
                Err((error, _)) => Err(error.clone()),
            };
            // The waiter may have given up (its future dropped): nothing to tell.
            let _ = reply.send(answer);
        }
        DeliveryTicket::Reported(event) => event.report(result),
    }
}

/// How long to wait for room in librdkafka's queue before trying again.
const QUEUE_FULL_WAIT: Duration = Duration::from_millis(5);

/// The Kafka producer client of a [`Producer`](super::Producer) (cheap to clone).
///
/// `queue` sends an [`EncodedRecord`] and hands back a future of the broker's answer;
/// `flush` and `in_flight_count` look at everything the producer has queued, whichever
/// way it was sent.
///
/// ```no_run
/// # use event_bus_kafka::prelude::*;
/// # async fn demo(producer: Producer, record: event_bus_kafka::producer::EncodedRecord) -> Result<(), rdkafka::error::KafkaError> {
/// let answer = producer.kafka().queue(&record)?;
/// let (partition, offset) = answer.await?;
/// assert_eq!(producer.kafka().in_flight_count(), 0);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct KafkaProducer {
    inner: Arc<ThreadedProducer<DeliveryReports>>,
}

impl std::fmt::Debug for KafkaProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaProducer")
            .field("in_flight", &self.in_flight_count())
            .finish()
    }
}

impl KafkaProducer {
    /// A producer (and its polling thread) for `config`.
    pub(crate) fn create(config: &ClientConfig) -> KafkaResult<Self> {
        let inner = ThreadedProducer::from_config_and_context(config, DeliveryReports)
            .map_err(crate::config::secret::redact_kafka_error)?;
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// Queues `record` and returns, without waiting for the broker, a future of its
    /// answer. Fails at once when librdkafka refuses the record (a full queue
    /// included).
    ///
    /// See the type's example.
    pub fn queue(
        &self,
        record: &EncodedRecord,
    ) -> Result<impl Future<Output = Result<Placement, KafkaError>> + Send + 'static, KafkaError>
    {
        let (reply, answer) = oneshot::channel();
        let ticket = Box::new(DeliveryTicket::Awaited(reply));
        self.inner
            .send(record.ticketed(ticket))
            .map_err(|(error, _)| error)?;
        Ok(async move { answer.await.unwrap_or(Err(KafkaError::Canceled)) })
    }

    /// Queues the record `build` makes with a ticket to report its delivery.
    pub(crate) fn queue_reported<'a>(
        &self,
        build: impl FnOnce(Ticket) -> TicketedRecord<'a>,
        event: ReportedEvent,
    ) -> Result<(), KafkaError> {
        let ticket = Box::new(DeliveryTicket::Reported(event));
        self.inner.send(build(ticket)).map_err(|(error, _)| error)
    }

    /// Sends the record `build` makes and waits for the broker's answer; while
    /// librdkafka's queue is full it tries again for up to `queue_timeout`.
    pub(crate) async fn send<'a>(
        &self,
        build: impl Fn(Ticket) -> TicketedRecord<'a>,
        queue_timeout: Duration,
    ) -> Result<Placement, KafkaError> {
        let started = Instant::now();
        let (reply, answer) = oneshot::channel();
        let mut ticket = Box::new(DeliveryTicket::Awaited(reply));
        loop {
            match self.inner.send(build(ticket)) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), refused))
                    if started.elapsed() < queue_timeout =>
                {
                    ticket = take_ticket(refused);
                    tokio::time::sleep(QUEUE_FULL_WAIT).await;
                }
                Err((error, _)) => return Err(error),
            }
        }
        answer.await.unwrap_or(Err(KafkaError::Canceled))
    }

    /// Waits (blocking the thread) up to `timeout` for everything queued to be
    /// acknowledged or failed.
    ///
    /// ```no_run
    /// # fn demo(producer: event_bus_kafka::prelude::Producer) -> Result<(), rdkafka::error::KafkaError> {
    /// producer.kafka().flush(std::time::Duration::from_secs(5))?;
    /// # Ok(()) }
    /// ```
    pub fn flush(&self, timeout: Duration) -> KafkaResult<()> {
        self.inner.flush(Timeout::After(timeout))
    }

    /// How many records are queued or in flight.
    ///
    /// See the type's example.
    pub fn in_flight_count(&self) -> i32 {
        self.inner.in_flight_count()
    }
}

/// The ticket of a refused record; the record itself (which borrows the event's bytes)
/// is dropped here, before any wait.
fn take_ticket(refused: TicketedRecord<'_>) -> Ticket {
    refused.delivery_opaque
}
