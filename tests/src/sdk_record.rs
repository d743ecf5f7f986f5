//! The SDK consumer's per-record work outside librdkafka, rebuilt from its public parts
//! so it runs without a broker: what `cpu_per_event` measures as `sdk-decode` and what
//! the peer interoperability test decodes with.
//!
//! Step for step as the consumer does it (`consumer/runner.rs` `handle` and `process`,
//! `consumer/decode.rs`, `consumer/retry.rs`): the record's headers read into a `Vec`
//! of pairs (`RecordView::of`, with the SDK's `record_headers::header_pairs`),
//! `parse_headers`, the bus's name of the type,
//! the Confluent framing taken off, the writer schema compared with the reader schema
//! once per schema id (the registry asked only then; a schema of another record
//! refused) and the datum decoded as the reader type, a `DeliveryContext` with the consumer group, shared in an `Arc`, and
//! `dispatch_decoded` under the record deadline (`within_deadline`), every
//! outcome checked. Left out: the consume span and metrics (no subscriber and no
//! recorder here, where both cost little), the offset tracker and the poll loop.
//!
//! ```no_run
//! use event_bus_core::EventBus;
//! use event_bus_examples::openedx::SessionLoginCompleted;
//! use event_bus_tests::sdk_record::SdkRecordPath;
//! # async fn demo(registry_url: &str, message: rdkafka::message::OwnedMessage) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let mut bus = EventBus::new();
//! bus.connect_fn("noop", |_: &SessionLoginCompleted, _| Ok(()))?;
//! let path = SdkRecordPath::new(bus, registry_url, "my-group")?;
//! path.handle(&message).await?;
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::error::Error;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use apache_avro::Schema;

use event_bus_core::codec::{self, CodecError};
use event_bus_core::dispatch::{DecodedEvent, DeliveryContext};
use event_bus_core::headers::parse_headers;
use event_bus_core::EventBus;
use event_bus_kafka::config::RegistryConfig;
use event_bus_kafka::consumer::within_deadline;
use event_bus_kafka::producer::EncodedRecord;
use event_bus_kafka::record_headers::{header_pairs, NativeHeaders};
use event_bus_kafka::registry::RegistryClient;
use rdkafka::message::{Header, Message, OwnedHeaders, OwnedMessage, Timestamp};

/// What [`SdkRecordPath::handle`] returns.
pub type RecordResult<T> = Result<T, Box<dyn Error + Send + Sync>>;

/// The record deadline for `within_deadline`: the consumer's default, 0.8 of librdkafka's
/// default `max.poll.interval.ms` (300 s).
const RECORD_DEADLINE: Duration = Duration::from_secs(240);

/// The SDK's decode and dispatch of one record, on a bus and a registry client.
///
/// See the module's example.
pub struct SdkRecordPath {
    bus: EventBus,
    registry: RegistryClient,
    group: Arc<str>,
    same_as_reader: RwLock<HashMap<(u32, &'static str), bool, foldhash::fast::RandomState>>,
}

impl SdkRecordPath {
    /// A path dispatching to `bus`'s receivers, fetching writer schemas from the
    /// registry at `registry_url`, as a member of consumer group `group`.
    ///
    /// See the module's example.
    pub fn new(bus: EventBus, registry_url: &str, group: &str) -> RecordResult<Self> {
        Ok(Self {
            bus,
            registry: RegistryClient::new(RegistryConfig::new(registry_url))?,
            group: Arc::from(group),
            same_as_reader: RwLock::new(HashMap::default()),
        })
    }

    /// Decodes `message` and dispatches the event to the bus's receivers; fails on a
    /// record the consumer would dead-letter or a receiver's failure.
    ///
    /// See the module's example.
    pub async fn handle<M>(&self, message: &M) -> RecordResult<()>
    where
        M: Message,
        M::Headers: NativeHeaders,
    {
        // RecordView::of
        let headers = message
            .headers()
            .map(|h| header_pairs(h.borrowed()))
            .unwrap_or_default();
        // RecordDecoder::decode
        let parsed = parse_headers(headers.iter().map(|(name, value)| (name.as_ref(), *value)))?;
        let event_type = self
            .bus
            .known_type(&parsed.metadata.event_type)
            .ok_or("no receiver for this event type")?;
        let value = message.payload().ok_or("the record has no value")?;
        let (id, datum) = codec::unframe(value)?;
        let cached = self
            .same_as_reader
            .read()
            .ok()
            .and_then(|c| c.get(&(id, event_type)).copied());
        let decoded = match cached {
            Some(true) => self.bus.decode_as_reader(event_type, datum),
            _ => Box::pin(self.decode_with_writer(event_type, id, datum)).await?,
        };
        let event = decoded.ok_or("no decoder for this event type")??;
        // process + RetryRun::run, first try
        let ctx = DeliveryContext::from_record(
            parsed.metadata,
            message.topic(),
            message.partition(),
            message.offset(),
        )
        .with_consumer_group(Arc::clone(&self.group));
        let ctx = Arc::new(ctx);
        let deadline = tokio::time::Instant::now() + RECORD_DEADLINE;
        let dispatch = self
            .bus
            .dispatch_decoded(event_type, event.clone(), Arc::clone(&ctx), None);
        let report = within_deadline(deadline, dispatch).await?;
        for outcome in &report.outcomes {
            if let Err(error) = &outcome.result {
                return Err(format!("receiver {} failed: {error}", outcome.receiver).into());
            }
        }
        Ok(())
    }

    /// The first record of a schema id: the writer schema from the registry, compared
    /// with the reader schema (remembered), and the datum decoded with it.
    async fn decode_with_writer(
        &self,
        event_type: &'static str,
        id: u32,
        datum: &[u8],
    ) -> RecordResult<Option<Result<DecodedEvent, CodecError>>> {
        let writer = self.registry.schema_by_id(id).await?;
        let reader = self.bus.reader_schema(event_type);
        let same = reader.is_some_and(|reader| *writer == *reader);
        if let Ok(mut cache) = self.same_as_reader.write() {
            cache.insert((id, event_type), same);
        }
        if same {
            return Ok(self.bus.decode_as_reader(event_type, datum));
        }
        // A schema id of another event type's record is refused (the consumer's
        // schema_mismatch; its check also accepts the reader's aliases).
        if let (Schema::Record(writer), Some(Schema::Record(reader))) = (&*writer, reader) {
            if writer.name != reader.name {
                return Err(format!("schema id {id} is not a schema of {event_type}").into());
            }
        }
        Ok(self.bus.decode(event_type, datum, &writer))
    }
}

/// `record` as a consumer would receive it at `offset` of partition 0 (bytes and
/// headers copied), for decoding without a broker.
///
/// ```
/// use event_bus_kafka::producer::EncodedRecord;
/// use rdkafka::Message;
/// let record = EncodedRecord {
///     topic: "orders".into(),
///     key: None,
///     value: vec![0, 0, 0, 0, 2],
///     headers: vec![("ce_id".into(), b"x".to_vec())],
///     event_type: "org.example.shop.order.placed.v1".into(),
///     event_id: uuid::Uuid::nil(),
///     key_text: None,
/// };
/// let message = event_bus_tests::sdk_record::message_of(&record, 7);
/// assert_eq!((message.offset(), message.payload()), (7, Some(&[0, 0, 0, 0, 2][..])));
/// ```
pub fn message_of(record: &EncodedRecord, offset: i64) -> OwnedMessage {
    let mut headers = OwnedHeaders::new_with_capacity(record.headers.len());
    for (key, value) in &record.headers {
        headers = headers.insert(Header {
            key,
            value: Some(value.as_slice()),
        });
    }
    OwnedMessage::new(
        Some(record.value.clone()),
        record.key.clone(),
        record.topic.clone(),
        Timestamp::CreateTime(0),
        0,
        offset,
        Some(headers),
    )
}
