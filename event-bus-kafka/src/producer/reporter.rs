//! Delivery reports of enqueued events: one task per producer awaits them in queue
//! order, so `enqueue` spawns nothing and keeps no event bytes once librdkafka has them.

use std::sync::{Arc, OnceLock};

use apache_avro::Schema;
use event_bus_core::{codec, EventKey};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::DeliveryFuture;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::{KeyText, RecordLabels};
use crate::observability::{metrics, trace};

/// What is kept of an enqueued event until its delivery report arrives.
pub(crate) struct Pending {
    pub future: DeliveryFuture,
    pub topic: Arc<str>,
    pub event_type: &'static str,
    pub event_id: Uuid,
    pub key: Option<EventKey>,
    pub span: tracing::Span,
    pub schema: &'static Schema,
}

/// The sending side of a producer's report task, started on first use.
#[derive(Debug, Default)]
pub(crate) struct Reporter {
    tx: OnceLock<mpsc::UnboundedSender<Pending>>,
}

impl Reporter {
    /// Hands a pending report to the task (starting it the first time).
    pub fn report(&self, pending: Pending) {
        let tx = self.tx.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(run(rx));
            tx
        });
        if let Err(mpsc::error::SendError(pending)) = tx.send(pending) {
            // The task is gone (runtime shutting down): report inline instead.
            tokio::spawn(report(pending));
        }
    }
}

async fn run(mut rx: mpsc::UnboundedReceiver<Pending>) {
    while let Some(pending) = rx.recv().await {
        report(pending).await;
    }
}

/// Logs where an event landed.
pub(crate) fn log_delivery(labels: RecordLabels<'_>, partition: i32, offset: i64) {
    tracing::info!(
        topic = labels.topic,
        partition,
        offset,
        ce_id = %labels.event_id,
        ce_type = labels.event_type,
        key = %labels.key,
        "event delivered"
    );
}

async fn report(pending: Pending) {
    let Pending {
        future,
        topic,
        event_type,
        event_id,
        key,
        span,
        schema,
    } = pending;
    let labels = RecordLabels {
        topic: &topic,
        event_type,
        event_id,
        key: KeyText::Key(key.as_ref()),
        traceparent: None,
    };
    let (error, payload): (KafkaError, Option<Vec<u8>>) = match future.await {
        Ok(Ok(delivery)) => {
            metrics::record_delivered(event_type, &topic);
            trace::record_delivery(&span, delivery.partition, delivery.offset);
            let _entered = span.enter();
            log_delivery(labels, delivery.partition, delivery.offset);
            return;
        }
        Ok(Err((error, message))) => (error, message.payload().map(<[u8]>::to_vec)),
        Err(_) => (KafkaError::Canceled, None),
    };
    metrics::record_failed(event_type, &topic);
    let event_json = payload
        .as_deref()
        .map(|value| value_as_json(value, schema))
        .unwrap_or_else(|| {
            "(the producer shut down before librdkafka returned the event)".to_owned()
        });
    let _entered = span.enter();
    tracing::error!(
        topic = %topic,
        ce_id = %event_id,
        ce_type = event_type,
        key = %labels.key,
        error = %error,
        event = %event_json,
        "event NOT delivered; replay it by hand from the logged event"
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
