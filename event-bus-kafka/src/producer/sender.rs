//! `Producer`: sends encoded events and reports their delivery.

use std::sync::Arc;
use std::time::Duration;

use event_bus_core::{Event, EventMetadata};

use tracing::Instrument;
use uuid::Uuid;

use super::delivery::Delivery;
use super::encoder::{EventEncoder, RegisteredIds};
use super::error::ProducerError;
use super::kafka_client::{KafkaProducer, Ticket, TicketedRecord};
use super::record::EncodedRecord;
use super::reporter::{log_delivery, ReportedEvent};
use super::{KeyText, RecordLabels};
use crate::config::ProducerConfig;
use crate::observability::metrics::FixedCounter;
use crate::observability::{metrics, trace};
use crate::registry::RegistryClient;

/// Publishes typed events.
///
/// `send` waits for the broker's acknowledgement; `enqueue` returns once the event is
/// queued and reports its delivery (or its failure, with the whole event as JSON)
/// through `tracing`. `flush` waits for everything in flight.
///
/// ```no_run
/// use event_bus_kafka::prelude::*;
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Serialize, Deserialize, Event)]
/// # #[event(type = "org.example.shop.order.placed.v1", topic = "orders", key = "id")]
/// # struct OrderPlaced { id: String }
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let config = ProducerConfig::new(KafkaConfig::new("localhost:9092"), RegistryConfig::new("http://localhost:8081"))
///     .with_service_name("shop");
/// let producer = Producer::new(config)?;
/// producer.register::<OrderPlaced>().await?; // optional: fail fast at start-up
/// let delivery = producer.send(&OrderPlaced { id: "o-1".into() }).await?;
/// producer.enqueue(&OrderPlaced { id: "o-2".into() }).await?;
/// producer.flush(std::time::Duration::from_secs(10)).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Producer {
    kafka: KafkaProducer,
    encoder: Arc<EventEncoder>,
    config: Arc<ProducerConfig>,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("config", &self.config)
            .finish()
    }
}

impl Producer {
    /// A producer for `config`. Defaults: `enable.idempotence=true`, `acks=all`,
    /// `compression.type` = [`DEFAULT_COMPRESSION`](crate::config::DEFAULT_COMPRESSION),
    /// `message.timeout.ms` from the delivery timeout, `client.id` from the service
    /// name; any librdkafka option in the config overrides them.
    ///
    /// See the type's example.
    pub fn new(config: ProducerConfig) -> Result<Self, ProducerError> {
        let registry = Arc::new(RegistryClient::new(config.registry.clone()).map_err(
            |source| ProducerError::Registry {
                subject: String::new(),
                source,
            },
        )?);
        Self::with_registry(config, registry)
    }

    /// A producer sharing an existing registry client (and its schema cache).
    ///
    /// ```no_run
    /// # use std::sync::Arc;
    /// # use event_bus_kafka::{prelude::*, registry::RegistryClient};
    /// # fn demo(config: ProducerConfig) -> Result<(), Box<dyn std::error::Error>> {
    /// let registry = Arc::new(RegistryClient::new(config.registry.clone())?);
    /// let producer = Producer::with_registry(config, registry)?;
    /// # Ok(()) }
    /// ```
    pub fn with_registry(
        config: ProducerConfig,
        registry: Arc<RegistryClient>,
    ) -> Result<Self, ProducerError> {
        let timeout_ms = config.delivery_timeout.as_millis().max(1).to_string();
        let client_config = config.kafka.producer_client_config(&[
            ("message.timeout.ms", &timeout_ms),
            ("client.id", &config.service_name),
        ]);
        let kafka = KafkaProducer::create(&client_config).map_err(ProducerError::Client)?;
        let encoder = EventEncoder::new(
            registry,
            config.topic_prefix.clone(),
            config.event_source().to_owned(),
        );
        Ok(Self {
            kafka,
            encoder: Arc::new(encoder),
            config: Arc::new(config),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ProducerConfig {
        &self.config
    }

    /// The encoder (schema registration and framing), shared with the outbox.
    pub fn encoder(&self) -> &Arc<EventEncoder> {
        &self.encoder
    }

    /// The underlying Kafka client (shared with the outbox relay).
    pub fn kafka(&self) -> &KafkaProducer {
        &self.kafka
    }

    /// Sets FULL_TRANSITIVE and registers `E`'s schemas for its topic now, so an
    /// incompatible schema fails at start-up instead of at the first send.
    ///
    /// See the type's example.
    pub async fn register<E: Event>(&self) -> Result<RegisteredIds, ProducerError> {
        self.encoder.register::<E>(None).await
    }

    /// Sends `event` with fresh metadata and waits for the broker's acknowledgement.
    ///
    /// See the type's example.
    pub async fn send<E: Event>(&self, event: &E) -> Result<Delivery, ProducerError> {
        let record = self.encoder.encode_outgoing(event, None, None).await?;
        self.deliver(
            |ticket| record.ticketed(ticket),
            record.labels(),
            Some(&record.produced),
        )
        .await
    }

    /// Sends `event` with the caller's metadata (id, time, source, trace context…).
    ///
    /// ```no_run
    /// # use event_bus_kafka::prelude::*;
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Serialize, Deserialize, Event)]
    /// # #[event(type = "org.example.shop.order.placed.v1", topic = "orders")]
    /// # struct OrderPlaced { id: String }
    /// # async fn demo(producer: Producer) -> Result<(), ProducerError> {
    /// let metadata = EventMetadata::for_event::<OrderPlaced>().with_source("shop/batch");
    /// producer.send_with_metadata(&OrderPlaced { id: "o-1".into() }, metadata).await?;
    /// # Ok(()) }
    /// ```
    pub async fn send_with_metadata<E: Event>(
        &self,
        event: &E,
        metadata: EventMetadata,
    ) -> Result<Delivery, ProducerError> {
        let record = self
            .encoder
            .encode_outgoing(event, Some(metadata), None)
            .await?;
        self.deliver(
            |ticket| record.ticketed(ticket),
            record.labels(),
            Some(&record.produced),
        )
        .await
    }

    /// Sends `event` to `topic` (prefix applied) instead of its type's topic.
    ///
    /// ```no_run
    /// # use event_bus_kafka::prelude::*;
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Serialize, Deserialize, Event)]
    /// # #[event(type = "org.example.shop.order.placed.v1", topic = "orders")]
    /// # struct OrderPlaced { id: String }
    /// # async fn demo(producer: Producer) -> Result<(), ProducerError> {
    /// producer.send_to("orders-replay", &OrderPlaced { id: "o-1".into() }, None).await?;
    /// # Ok(()) }
    /// ```
    pub async fn send_to<E: Event>(
        &self,
        topic: &str,
        event: &E,
        metadata: Option<EventMetadata>,
    ) -> Result<Delivery, ProducerError> {
        let record = self
            .encoder
            .encode_outgoing(event, metadata, Some(topic))
            .await?;
        self.deliver(
            |ticket| record.ticketed(ticket),
            record.labels(),
            Some(&record.produced),
        )
        .await
    }

    /// Sends an already encoded record (from the outbox, a DLQ redrive, or the CLI)
    /// and waits for the acknowledgement.
    ///
    /// ```no_run
    /// # use event_bus_kafka::prelude::*;
    /// # use event_bus_kafka::producer::EncodedRecord;
    /// # async fn demo(producer: Producer, record: EncodedRecord) -> Result<(), ProducerError> {
    /// let delivery = producer.send_encoded(&record).await?;
    /// # Ok(()) }
    /// ```
    pub async fn send_encoded(&self, record: &EncodedRecord) -> Result<Delivery, ProducerError> {
        self.deliver(|ticket| record.ticketed(ticket), record.labels(), None)
            .await
    }

    /// Sends one record and waits for the broker's answer, with its span, metrics and
    /// delivery log; `produced` is the record's counter handle, when the encoder has one.
    async fn deliver<'a>(
        &self,
        build: impl Fn(Ticket) -> TicketedRecord<'a>,
        labels: RecordLabels<'_>,
        produced: Option<&FixedCounter>,
    ) -> Result<Delivery, ProducerError> {
        let span = trace::produce_span(labels);
        match produced {
            Some(counter) => counter.increment(),
            None => metrics::record_produced(labels.event_type, labels.topic),
        }
        let result = self
            .kafka
            .send(build, self.config.delivery_timeout)
            .instrument(span.clone())
            .await;
        match result {
            Ok((partition, offset)) => {
                metrics::record_delivered(labels.event_type, labels.topic);
                trace::record_delivery(&span, partition, offset);
                span.in_scope(|| log_delivery(labels, partition, offset));
                Ok(Delivery {
                    topic: labels.topic.to_owned(),
                    partition,
                    offset,
                    event_id: labels.event_id,
                })
            }
            Err(source) => {
                metrics::record_failed(labels.event_type, labels.topic);
                Err(ProducerError::Delivery {
                    topic: labels.topic.to_owned(),
                    event_id: labels.event_id,
                    source,
                })
            }
        }
    }

    /// Queues `event` and returns its `ce_id` at once, without waiting for the broker.
    /// The delivery is reported through `tracing` (info: topic, partition, offset,
    /// `ce_id`, key); a failure is logged at error level with the whole event as JSON so
    /// it can be replayed by hand. Only the first event of a type waits for schema
    /// registration.
    ///
    /// See the type's example.
    pub async fn enqueue<E: Event>(&self, event: &E) -> Result<Uuid, ProducerError> {
        let mut record = self.encoder.encode_outgoing(event, None, None).await?;
        // The key moves on with the delivery report; the span borrows it first.
        let key = record.key_value.take();
        let labels = RecordLabels {
            key: KeyText::Key(key.as_ref()),
            ..record.labels()
        };
        let event_id = labels.event_id;
        let span = trace::produce_span(labels);
        record.produced.increment();
        let reported = ReportedEvent {
            topic: Arc::clone(&record.topic),
            event_type: E::EVENT_TYPE,
            event_id,
            key,
            span,
            schema: E::schema(),
        };
        self.kafka
            .queue_reported(|ticket| record.ticketed(ticket), reported)
            .map_err(|source| {
                metrics::record_failed(E::EVENT_TYPE, &record.topic);
                ProducerError::Delivery {
                    topic: record.topic.as_ref().to_owned(),
                    event_id,
                    source,
                }
            })?;
        Ok(event_id)
    }

    /// Waits up to `timeout` for every queued event to be acknowledged or failed.
    ///
    /// See the type's example.
    pub async fn flush(&self, timeout: Duration) -> Result<(), ProducerError> {
        let kafka = self.kafka.clone();
        tokio::task::spawn_blocking(move || kafka.flush(timeout))
            .await
            .map_err(|_| ProducerError::Cancelled {
                event_id: Uuid::nil(),
            })?
            .map_err(|source| ProducerError::Delivery {
                topic: String::new(),
                event_id: Uuid::nil(),
                source,
            })
    }

    /// How many events are queued or in flight.
    pub fn in_flight(&self) -> i32 {
        self.kafka.in_flight_count()
    }
}
