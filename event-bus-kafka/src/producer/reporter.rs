//! Delivery reports of enqueued events, written by librdkafka's delivery callback:
//! `enqueue` spawns nothing, and no channel or task sits between the broker's answer
//! and the log.

use std::sync::Arc;

use apache_avro::Schema;
use event_bus_core::{codec, EventKey};
use rdkafka::message::{DeliveryResult, Message};
use uuid::Uuid;

use super::{KeyText, RecordLabels};
use crate::observability::{metrics, trace};

/// What the delivery log of an enqueued event needs, carried by its record through
/// librdkafka and logged by the delivery callback.
pub(crate) struct ReportedEvent {
    pub topic: Arc<str>,
    pub event_type: &'static str,
    pub event_id: Uuid,
    pub key: Option<EventKey>,
    pub span: tracing::Span,
    pub schema: &'static Schema,
}

impl ReportedEvent {
    /// Logs and counts the broker's answer: the placement, or the failure with the
    /// whole event as JSON.
    pub fn report(self, result: &DeliveryResult<'_>) {
        let labels = RecordLabels {
            topic: &self.topic,
            event_type: self.event_type,
            event_id: self.event_id,
            key: KeyText::Key(self.key.as_ref()),
            traceparent: None,
        };
        let (error, message) = match result {
            Ok(message) => {
                metrics::record_delivered(self.event_type, &self.topic);
                trace::record_delivery(&self.span, message.partition(), message.offset());
                let _entered = self.span.enter();
                log_delivery(labels, message.partition(), message.offset());
                return;
            }
            Err((error, message)) => (error, message),
        };
        metrics::record_failed(self.event_type, &self.topic);
        let event_json = message.payload().map_or_else(
            || "(the record came back without its value)".to_owned(),
            |value| value_as_json(value, self.schema),
        );
        let _entered = self.span.enter();
        tracing::error!(
            topic = %self.topic,
            ce_id = %self.event_id,
            ce_type = %self.event_type,
            key = %labels.key,
            error = %error,
            event = %event_json,
            "event NOT delivered; replay it by hand from the logged event"
        );
    }
}

pub(crate) fn log_delivery(labels: RecordLabels<'_>, partition: i32, offset: i64) {
    tracing::info!(
        topic = %labels.topic,
        partition,
        offset,
        ce_id = %labels.event_id,
        ce_type = %labels.event_type,
        key = %labels.key,
        "event delivered"
    );
}

pub(crate) fn value_as_json(value: &[u8], schema: &Schema) -> String {
    let decoded =
        codec::unframe(value).and_then(|(_, datum)| codec::decode_value(datum, schema, None));
    match decoded.map(serde_json::Value::try_from) {
        Ok(Ok(json)) => json.to_string(),
        _ => format!("(undecodable; value bytes: {value:?})"),
    }
}
