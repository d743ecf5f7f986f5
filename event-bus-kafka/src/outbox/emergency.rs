//! Emergency mode: send to the broker directly, and when it cannot take the event in
//! time, keep the event in the outbox instead of failing.

use std::sync::Arc;

use event_bus_core::{Event, EventMetadata};
use rdkafka::error::KafkaError;
use uuid::Uuid;

use super::config::{EmergencyConfig, RelayConfig};
use super::error::OutboxError;
use super::health::BrokerHealth;
use super::lane::Lane;
use super::relay::Relay;
use super::row::OutboxId;
use super::store::OutboxStore;
use crate::observability::metrics;
use crate::producer::{Delivery, EncodedRecord, Producer, ProducerError};

/// Where a sent event went.
///
/// ```
/// use event_bus_kafka::outbox::{DeferReason, OutboxId, SendOutcome};
/// let outcome = SendOutcome::Deferred { outbox_id: OutboxId(7), event_id: uuid::Uuid::nil(), reason: DeferReason::KeyWaiting };
/// assert!(outcome.is_deferred());
/// assert_eq!(outcome.event_id(), uuid::Uuid::nil());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// The broker acknowledged it.
    Delivered(Delivery),
    /// It is stored in the outbox; the relay publishes it later, in key order.
    Deferred {
        /// The outbox row.
        outbox_id: OutboxId,
        /// The event's `ce_id`.
        event_id: Uuid,
        /// Why it was not sent directly.
        reason: DeferReason,
    },
}

impl SendOutcome {
    /// Whether the event went to the outbox.
    ///
    /// See the type's example.
    pub fn is_deferred(&self) -> bool {
        matches!(self, Self::Deferred { .. })
    }

    /// The event's `ce_id`.
    ///
    /// See the type's example.
    pub fn event_id(&self) -> Uuid {
        match self {
            Self::Delivered(delivery) => delivery.event_id,
            Self::Deferred { event_id, .. } => *event_id,
        }
    }
}

/// Why an event went to the outbox.
///
/// ```
/// assert_eq!(event_bus_kafka::outbox::DeferReason::KeyWaiting.as_str(), "key_waiting");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeferReason {
    /// Older events of its key wait in the outbox; it queues behind them.
    KeyWaiting,
    /// The broker is failing (circuit open): not tried.
    BrokerFailing,
    /// The direct send failed or timed out.
    DeliveryFailed,
    /// The outbox could not say whether older events of its key wait (the check
    /// failed): it queues behind them rather than risk overtaking one.
    KeyUnchecked,
}

impl DeferReason {
    /// A short name for logs and metrics.
    ///
    /// See the type's example.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::KeyWaiting => "key_waiting",
            Self::BrokerFailing => "broker_failing",
            Self::DeliveryFailed => "delivery_failed",
            Self::KeyUnchecked => "key_unchecked",
        }
    }
}

/// The producer in emergency mode: [`send`](Self::send) tries the broker directly,
/// bounded by the producer's delivery timeout (librdkafka's `message.timeout.ms`, so
/// once librdkafka reports a failure it no longer retries that message); when delivery
/// fails or times out, the same bytes and headers go to the outbox and `send` returns
/// [`SendOutcome::Deferred`] instead of an error.
///
/// - **Key order**: while any event of a key waits in the outbox (checked in the
///   database, so it holds across instances and restarts), newer events of that key go
///   to the outbox behind it.
/// - **Circuit breaker**: after a failed direct send, events go straight to the outbox
///   (no timeout paid per send) until the relay, or a probe send, gets through.
/// - **Never overtakes**: an event with a key is sent directly only after the database
///   answered "no event of this key waits". If that check fails, the event goes to the
///   outbox ([`DeferReason::KeyUnchecked`]); if storing it fails too, `send` returns
///   [`OutboxError::OrderUnknown`] and nothing was sent.
/// - **Nothing dropped**: if the outbox refuses too (full, database down), `send`
///   returns the error and the caller still holds the event. Permanent broker errors
///   (event too large, invalid topic) are returned, not stored.
/// - **Duplicates**: a send that timed out may still have reached the broker (the
///   acknowledgement was lost); the relay then publishes it again. Consumers dedup on
///   `ce_id`.
///
/// ```no_run
/// use std::sync::Arc;
/// use event_bus_kafka::outbox::{EmergencyConfig, OutboxProducer, PostgresOutbox, RelayConfig, SendOutcome};
/// # use event_bus_kafka::prelude::*;
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Serialize, Deserialize, Event)]
/// # #[event(type = "org.example.shop.order.placed.v1", topic = "orders", key = "id")]
/// # struct OrderPlaced { id: String }
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let config = ProducerConfig::from_env()?.with_delivery_timeout(std::time::Duration::from_secs(5));
/// let store = Arc::new(PostgresOutbox::connect("postgres://app@localhost/app").await?);
/// store.migrate().await?;
/// let producer = OutboxProducer::new(Producer::new(config)?, store, EmergencyConfig::default());
/// let relay = producer.relay(RelayConfig::default()).spawn();
/// match producer.send(&OrderPlaced { id: "o-1".into() }).await? {
///     SendOutcome::Delivered(delivery) => println!("sent to {delivery}"),
///     SendOutcome::Deferred { outbox_id, .. } => println!("kept as outbox row {outbox_id}"),
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct OutboxProducer<S: OutboxStore> {
    producer: Producer,
    store: Arc<S>,
    health: BrokerHealth,
}

impl<S: OutboxStore> Clone for OutboxProducer<S> {
    fn clone(&self) -> Self {
        Self {
            producer: self.producer.clone(),
            store: self.store.clone(),
            health: self.health.clone(),
        }
    }
}

impl<S: OutboxStore> OutboxProducer<S> {
    /// Wraps `producer` (its delivery timeout is the bound of a direct send) with `store`.
    ///
    /// See the type's example.
    pub fn new(producer: Producer, store: Arc<S>, config: EmergencyConfig) -> Self {
        Self {
            producer,
            store,
            health: BrokerHealth::new(config.probe_interval),
        }
    }

    /// The wrapped producer.
    ///
    /// See the type's example.
    pub fn producer(&self) -> &Producer {
        &self.producer
    }

    /// The outbox store.
    ///
    /// See the type's example.
    pub fn store(&self) -> &Arc<S> {
        &self.store
    }

    /// The circuit breaker, shared with relays made by [`relay`](Self::relay).
    ///
    /// See the type's example.
    pub fn health(&self) -> &BrokerHealth {
        &self.health
    }

    /// A relay for this producer's outbox, sharing its producer and its broker health
    /// (so sends go direct again as soon as the relay gets through).
    ///
    /// See the type's example.
    pub fn relay(&self, config: RelayConfig) -> Relay<S> {
        Relay::new(self.store.clone(), self.producer.clone(), config)
            .with_health(self.health.clone())
    }

    /// Sends `event` with fresh metadata: delivered, or deferred to the outbox.
    ///
    /// See the type's example.
    pub async fn send<E: Event>(&self, event: &E) -> Result<SendOutcome, OutboxError> {
        let record = self.producer.encoder().encode(event, None, None).await?;
        self.send_encoded(&record).await
    }

    /// Sends `event` with the caller's metadata.
    ///
    /// ```no_run
    /// # use event_bus_kafka::outbox::*;
    /// # use event_bus_kafka::prelude::*;
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Serialize, Deserialize, Event)]
    /// # #[event(type = "org.example.shop.order.placed.v1", topic = "orders")]
    /// # struct OrderPlaced { id: String }
    /// # async fn demo(producer: OutboxProducer<PostgresOutbox>) -> Result<(), OutboxError> {
    /// let metadata = EventMetadata::for_event::<OrderPlaced>().with_source("shop/batch");
    /// producer.send_with_metadata(&OrderPlaced { id: "o-1".into() }, metadata).await?;
    /// # Ok(()) }
    /// ```
    pub async fn send_with_metadata<E: Event>(
        &self,
        event: &E,
        metadata: EventMetadata,
    ) -> Result<SendOutcome, OutboxError> {
        let record = self
            .producer
            .encoder()
            .encode(event, Some(metadata), None)
            .await?;
        self.send_encoded(&record).await
    }

    /// Sends `event` to `topic` (prefix applied) instead of its type's topic.
    ///
    /// ```no_run
    /// # use event_bus_kafka::outbox::*;
    /// # use event_bus_kafka::prelude::*;
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Serialize, Deserialize, Event)]
    /// # #[event(type = "org.example.shop.order.placed.v1", topic = "orders")]
    /// # struct OrderPlaced { id: String }
    /// # async fn demo(producer: OutboxProducer<PostgresOutbox>) -> Result<(), OutboxError> {
    /// producer.send_to("orders-eu", &OrderPlaced { id: "o-1".into() }, None).await?;
    /// # Ok(()) }
    /// ```
    pub async fn send_to<E: Event>(
        &self,
        topic: &str,
        event: &E,
        metadata: Option<EventMetadata>,
    ) -> Result<SendOutcome, OutboxError> {
        let record = self
            .producer
            .encoder()
            .encode(event, metadata, Some(topic))
            .await?;
        self.send_encoded(&record).await
    }

    /// Sends an encoded record: directly, or to the outbox (see the type's rules).
    ///
    /// ```no_run
    /// # use event_bus_kafka::outbox::*;
    /// # async fn demo(producer: OutboxProducer<PostgresOutbox>, record: event_bus_kafka::producer::EncodedRecord) -> Result<(), OutboxError> {
    /// let outcome = producer.send_encoded(&record).await?;
    /// # Ok(()) }
    /// ```
    pub async fn send_encoded(&self, record: &EncodedRecord) -> Result<SendOutcome, OutboxError> {
        if Lane::is_ordered(record) {
            match self.store.lane_waiting(Lane::of(record)).await {
                Ok(true) => return self.defer(record, DeferReason::KeyWaiting).await,
                Ok(false) => {}
                Err(error) => return self.defer_unchecked(record, error).await,
            }
        }
        if !self.health.try_direct() {
            return self.defer(record, DeferReason::BrokerFailing).await;
        }
        match self.producer.send_encoded(record).await {
            Ok(delivery) => {
                self.health.mark_healthy();
                Ok(SendOutcome::Delivered(delivery))
            }
            Err(ProducerError::Delivery { source, .. }) if is_permanent(&source) => {
                self.health.probe_inconclusive();
                Err(ProducerError::Delivery {
                    topic: record.topic.clone(),
                    event_id: record.event_id,
                    source,
                }
                .into())
            }
            Err(ProducerError::Delivery { source, .. }) => {
                self.health.mark_failing();
                tracing::warn!(
                    topic = %record.topic,
                    key = record.key_text.as_deref().unwrap_or(""),
                    ce_id = %record.event_id,
                    error = %source,
                    "direct send failed; keeping the event in the outbox"
                );
                self.defer(record, DeferReason::DeliveryFailed).await
            }
            Err(ProducerError::Cancelled { .. }) => {
                self.health.probe_inconclusive();
                self.defer(record, DeferReason::DeliveryFailed).await
            }
            Err(other) => {
                self.health.probe_inconclusive();
                Err(other.into())
            }
        }
    }

    /// The database could not say whether older events of the key wait: sending
    /// directly could overtake them, so the event queues in the outbox behind whatever
    /// is there; if it cannot be stored either, the caller gets both reasons.
    async fn defer_unchecked(
        &self,
        record: &EncodedRecord,
        lane_check: OutboxError,
    ) -> Result<SendOutcome, OutboxError> {
        tracing::warn!(
            topic = %record.topic,
            key = record.key_text.as_deref().unwrap_or(""),
            ce_id = %record.event_id,
            error = %lane_check,
            "cannot check the outbox for older events of this key; keeping the event in the outbox instead of sending it"
        );
        match self.defer(record, DeferReason::KeyUnchecked).await {
            Err(insert) => Err(OutboxError::OrderUnknown {
                topic: record.topic.clone(),
                key: record.key_text.clone().unwrap_or_default(),
                lane_check: Box::new(lane_check),
                insert: Box::new(insert),
            }),
            outcome => outcome,
        }
    }

    async fn defer(
        &self,
        record: &EncodedRecord,
        reason: DeferReason,
    ) -> Result<SendOutcome, OutboxError> {
        let outbox_id = self.store.insert(record).await.inspect_err(|error| {
            tracing::error!(
                topic = %record.topic,
                key = record.key_text.as_deref().unwrap_or(""),
                ce_id = %record.event_id,
                reason = reason.as_str(),
                %error,
                "event neither delivered nor stored; returning the error to the caller"
            );
        })?;
        metrics::record_deferred(&record.event_type, &record.topic);
        tracing::info!(
            topic = %record.topic,
            key = record.key_text.as_deref().unwrap_or(""),
            ce_id = %record.event_id,
            outbox_id = outbox_id.0,
            reason = reason.as_str(),
            "event deferred to the outbox"
        );
        Ok(SendOutcome::Deferred {
            outbox_id,
            event_id: record.event_id,
            reason,
        })
    }
}

/// Whether the broker (or librdkafka) refused the record itself, so retrying from the
/// outbox would fail the same way.
fn is_permanent(error: &KafkaError) -> bool {
    !crate::failure::of_kafka(error).is_retryable()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::types::RDKafkaErrorCode;

    #[test]
    fn timeouts_are_transient_and_size_errors_permanent() {
        assert!(!is_permanent(&KafkaError::MessageProduction(
            RDKafkaErrorCode::MessageTimedOut
        )));
        assert!(!is_permanent(&KafkaError::MessageProduction(
            RDKafkaErrorCode::AllBrokersDown
        )));
        assert!(is_permanent(&KafkaError::MessageProduction(
            RDKafkaErrorCode::MessageSizeTooLarge
        )));
    }
}
