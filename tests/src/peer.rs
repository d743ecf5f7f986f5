//! The peer baseline of issue 18: what a Rust team writes by hand when it does not use
//! this SDK, with rdkafka and `schema_registry_converter` (the crate Rust users pick to
//! speak Confluent Avro), for the benchmarks' event, `SessionLoginCompleted`.
//!
//! It goes through serde only (none of the SDK's `Event` trait, codec or headers code):
//! the value and the key are encoded by `schema_registry_converter`'s `AvroEncoder`
//! (Confluent framing, TopicRecordNameStrategy subjects: `{topic}-{record full name}`
//! for the value and `{topic}-string` for the key, as the SDK names them), the
//! CloudEvents headers are written one by one into rdkafka's header list, and a record
//! is read back with the `AvroDecoder` (writer schema by id, cached by the crate) into
//! an `apache_avro::types::Value`, then into the struct with `apache_avro::from_value`.
//! The schemas come from the committed `.avsc` file, registered once at start-up, as a
//! deployment step would.
//!
//! ```no_run
//! use event_bus_examples::openedx::{SessionLoginCompleted, UserData};
//! use event_bus_tests::peer::Peer;
//! # async fn demo(registry_url: &str) -> event_bus_tests::peer::PeerResult<()> {
//! let peer = Peer::new(registry_url, "user-login", "peer-service");
//! peer.register_schemas().await?;
//! let event = SessionLoginCompleted { user: UserData::example() };
//! let record = peer.encode(&event).await?;
//! let (metadata, decoded) = peer.decode(&record.to_message(0)).await?;
//! assert_eq!(decoded, event);
//! assert_eq!(metadata.id, record.id);
//! # Ok(()) }
//! ```

use std::error::Error;

use chrono::{DateTime, SecondsFormat, Utc};
use event_bus_examples::openedx::SessionLoginCompleted;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Headers, Message, OwnedHeaders, OwnedMessage, Timestamp};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use schema_registry_converter::async_impl::avro::{AvroDecoder, AvroEncoder};
use schema_registry_converter::async_impl::schema_registry::{post_schema, SrSettings};
use schema_registry_converter::schema_registry_common::{
    SchemaType, SubjectNameStrategy, SuppliedSchema,
};
use uuid::Uuid;

/// What the peer's calls return.
pub type PeerResult<T> = Result<T, Box<dyn Error + Send + Sync>>;

/// The event type (`ce_type`) of the peer's one event.
pub const EVENT_TYPE: &str = "org.openedx.learning.auth.session.login.completed.v1";

/// The Avro record's full name: the value subject's suffix.
pub const RECORD_NAME: &str = "org.openedx.learning.auth.session.login.completed.v1.CloudEvent";

/// The value schema, as the team keeps it: the committed `.avsc` file.
const VALUE_SCHEMA: &str =
    include_str!("../../schemas/org.openedx.learning.auth.session.login.completed.v1/v1.avsc");

/// The key schema: the username, an Avro string.
const KEY_SCHEMA: &str = r#"{"type":"string"}"#;

/// `sourcelib`: the application's own version.
const SOURCE_LIB: &str = env!("CARGO_PKG_VERSION");

/// The CloudEvents attributes the peer reads from a record's headers.
///
/// ```
/// let meta = event_bus_tests::peer::PeerMetadata::default();
/// assert!(meta.event_type.is_empty());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerMetadata {
    /// `ce_id`.
    pub id: Uuid,
    /// `ce_type`.
    pub event_type: String,
    /// `ce_source`.
    pub source: String,
    /// `ce_time`.
    pub time: DateTime<Utc>,
    /// `ce_minorversion`.
    pub minorversion: u32,
    /// `sourcehost`.
    pub sourcehost: String,
    /// `sourcelib`.
    pub sourcelib: String,
}

/// One encoded event: framed key and value, the header list, and the `ce_id` written.
///
/// See the module's example.
pub struct PeerRecord {
    /// Topic the record is for.
    pub topic: String,
    /// Confluent-framed Avro key (the username).
    pub key: Vec<u8>,
    /// Confluent-framed Avro value.
    pub value: Vec<u8>,
    /// The CloudEvents headers, in rdkafka's (librdkafka's) list.
    pub headers: OwnedHeaders,
    /// The `ce_id` written.
    pub id: Uuid,
    /// The `ce_time` written.
    pub time: DateTime<Utc>,
}

impl PeerRecord {
    /// The record as a consumer would receive it at `offset` of partition 0 (the bytes
    /// and headers copied), for decoding without a broker.
    ///
    /// See the module's example.
    pub fn to_message(&self, offset: i64) -> OwnedMessage {
        OwnedMessage::new(
            Some(self.value.clone()),
            Some(self.key.clone()),
            self.topic.clone(),
            Timestamp::CreateTime(self.time.timestamp_millis()),
            0,
            offset,
            Some(self.headers.clone()),
        )
    }
}

/// The hand-written pipeline: a `schema_registry_converter` encoder and decoder on one
/// registry, for one topic and service.
///
/// See the module's example.
pub struct Peer {
    settings: SrSettings,
    encoder: AvroEncoder,
    decoder: AvroDecoder,
    topic: String,
    value_subject: SubjectNameStrategy,
    key_subject: SubjectNameStrategy,
    source: String,
    host: String,
}

impl Peer {
    /// A pipeline on the registry at `registry_url` for `topic` (the full name on the
    /// broker), writing `source` as `ce_source`.
    ///
    /// See the module's example.
    pub fn new(registry_url: &str, topic: &str, source: &str) -> Self {
        let settings = SrSettings::new(registry_url.to_owned());
        Self {
            encoder: AvroEncoder::new(settings.clone()),
            decoder: AvroDecoder::new(settings.clone()),
            settings,
            topic: topic.to_owned(),
            value_subject: SubjectNameStrategy::TopicRecordNameStrategy(
                topic.to_owned(),
                RECORD_NAME.to_owned(),
            ),
            key_subject: SubjectNameStrategy::TopicRecordNameStrategy(
                topic.to_owned(),
                "string".to_owned(),
            ),
            source: source.to_owned(),
            // Looked up once, as a service does at start-up.
            host: std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_owned())
                .unwrap_or_else(|_| "localhost".to_owned()),
        }
    }

    /// The topic on the broker.
    ///
    /// ```
    /// let peer = event_bus_tests::peer::Peer::new("http://127.0.0.1:1", "dev-user-login", "svc");
    /// assert_eq!(peer.topic(), "dev-user-login");
    /// ```
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Registers the value and key schemas under their subjects (the deployment step);
    /// returns their ids (value, key). Registering a schema the subject already has
    /// returns its id.
    ///
    /// See the module's example.
    pub async fn register_schemas(&self) -> PeerResult<(u32, u32)> {
        let value = post_schema(
            &self.settings,
            format!("{}-{RECORD_NAME}", self.topic),
            SuppliedSchema::new(
                Some(RECORD_NAME.to_owned()),
                SchemaType::Avro,
                VALUE_SCHEMA.to_owned(),
            ),
        )
        .await?;
        let key = post_schema(
            &self.settings,
            format!("{}-string", self.topic),
            SuppliedSchema::new(None, SchemaType::Avro, KEY_SCHEMA.to_owned()),
        )
        .await?;
        Ok((value.id, key.id))
    }

    /// Encodes `event`: value and key through serde and the `AvroEncoder`, a fresh
    /// `ce_id` and `ce_time`, and the ten CloudEvents headers.
    ///
    /// See the module's example.
    pub async fn encode(&self, event: &SessionLoginCompleted) -> PeerResult<PeerRecord> {
        let value = self
            .encoder
            .encode_struct(event, &self.value_subject)
            .await?;
        let key = self
            .encoder
            .encode_struct(&event.user.pii.username, &self.key_subject)
            .await?;
        let id = Uuid::new_v4();
        let time = Utc::now();
        // One list, filled in the order Open edX's producer writes the headers.
        let headers = OwnedHeaders::new_with_capacity(10)
            .insert(text_header("ce_specversion", "1.0"))
            .insert(text_header("content-type", "application/avro"))
            .insert(text_header("ce_datacontenttype", "application/avro"))
            .insert(text_header("ce_type", EVENT_TYPE))
            .insert(text_header("ce_id", &id.to_string()))
            .insert(text_header("ce_source", &self.source))
            .insert(text_header(
                "ce_time",
                &time.to_rfc3339_opts(SecondsFormat::Micros, false),
            ))
            .insert(text_header("ce_minorversion", "0"))
            .insert(text_header("sourcehost", &self.host))
            .insert(text_header("sourcelib", SOURCE_LIB));
        Ok(PeerRecord {
            topic: self.topic.clone(),
            key,
            value,
            headers,
            id,
            time,
        })
    }

    /// Encodes `event` and hands it to `producer` (`send_result`: queued, not awaited).
    ///
    /// ```no_run
    /// # async fn demo(peer: event_bus_tests::peer::Peer, producer: rdkafka::producer::FutureProducer,
    /// #   event: event_bus_examples::openedx::SessionLoginCompleted) -> event_bus_tests::peer::PeerResult<()> {
    /// let delivery = peer.produce(&producer, &event).await?;
    /// let _placement = delivery.await;
    /// # Ok(()) }
    /// ```
    pub async fn produce(
        &self,
        producer: &FutureProducer,
        event: &SessionLoginCompleted,
    ) -> PeerResult<DeliveryFuture> {
        let record = self.encode(event).await?;
        let future = FutureRecord::to(&self.topic)
            .key(record.key.as_slice())
            .payload(record.value.as_slice())
            .headers(record.headers);
        producer
            .send_result(future)
            .map_err(|(error, _): (KafkaError, _)| error.into())
    }

    /// Reads a record: the CloudEvents headers by hand (`ce_type` must be this
    /// event's), then the value through the `AvroDecoder` and serde.
    ///
    /// See the module's example.
    pub async fn decode<M: Message>(
        &self,
        message: &M,
    ) -> PeerResult<(PeerMetadata, SessionLoginCompleted)> {
        let metadata = read_headers(message)?;
        if metadata.event_type != EVENT_TYPE {
            return Err(format!("unexpected ce_type `{}`", metadata.event_type).into());
        }
        let decoded = self.decoder.decode(message.payload()).await?;
        let event = apache_avro::from_value::<SessionLoginCompleted>(&decoded.value)?;
        Ok((metadata, event))
    }
}

/// A header with a UTF-8 value.
fn text_header<'a>(key: &'a str, value: &'a str) -> Header<'a, &'a str> {
    Header {
        key,
        value: Some(value),
    }
}

/// The CloudEvents attributes of `message`; `ce_id`, `ce_type` and `ce_time` are
/// required.
fn read_headers<M: Message>(message: &M) -> PeerResult<PeerMetadata> {
    let headers = message.headers().ok_or("the record has no headers")?;
    let mut metadata = PeerMetadata::default();
    let (mut id, mut time) = (None, None);
    for header in headers.iter() {
        let Some(value) = header.value else {
            continue;
        };
        let text = std::str::from_utf8(value)?;
        match header.key {
            "ce_id" => id = Some(Uuid::parse_str(text)?),
            "ce_type" => metadata.event_type = text.to_owned(),
            "ce_source" => metadata.source = text.to_owned(),
            "ce_time" => time = Some(DateTime::parse_from_rfc3339(text)?.with_timezone(&Utc)),
            "ce_minorversion" => metadata.minorversion = text.parse()?,
            "sourcehost" => metadata.sourcehost = text.to_owned(),
            "sourcelib" => metadata.sourcelib = text.to_owned(),
            _ => {}
        }
    }
    metadata.id = id.ok_or("header ce_id is missing")?;
    metadata.time = time.ok_or("header ce_time is missing")?;
    if metadata.event_type.is_empty() {
        return Err("header ce_type is missing".into());
    }
    Ok(metadata)
}
