//! `enqueue`'s delivery reports, written by librdkafka's delivery callback on its own
//! thread: a delivered event is logged with its placement and id, an undelivered one
//! with the whole event as JSON (issue 4: "no silent loss").
//!
//! The log goes through a global subscriber (the callback runs on librdkafka's thread,
//! where a thread-local one would not see it), so this file holds one test.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use event_bus_examples::openedx::{SessionLoginCompleted, UserData};
use event_bus_kafka::prelude::*;
use event_bus_kafka::topic;
use event_bus_testkit::kafka::KafkaCluster;
use event_bus_testkit::registry::EmbeddedRegistry;
use event_bus_testkit::topics::unique_topic;

/// Log lines written so far.
#[derive(Clone, Default)]
struct CapturedLog(Arc<Mutex<Vec<u8>>>);

impl CapturedLog {
    fn text(&self) -> String {
        let bytes = self.0.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    fn lines_with(&self, needle: &str) -> Vec<String> {
        self.text()
            .lines()
            .filter(|line| line.contains(needle))
            .map(str::to_owned)
            .collect()
    }
}

impl Write for CapturedLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut log) = self.0.lock() {
            log.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn login() -> SessionLoginCompleted {
    SessionLoginCompleted {
        user: UserData::example(),
    }
}

#[tokio::test]
async fn enqueue_logs_each_delivery_and_each_failure_with_the_event() {
    let log = CapturedLog::default();
    let writer = log.clone();
    tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || writer.clone())
        .init();
    let broker = KafkaCluster::shared().expect("Apache Kafka (run scripts/install-test-deps)");
    let registry = EmbeddedRegistry::start().await.expect("embedded registry");
    let config = |prefix: &str| {
        ProducerConfig::new(
            KafkaConfig::new(broker.bootstrap_servers())
                .with_option("linger.ms", "0")
                .with_option("allow.auto.create.topics", "false"),
            RegistryConfig::new(registry.url()),
        )
        .with_service_name("reports-test")
        .with_topic_prefix(prefix.to_owned())
    };

    // Delivered: one "event delivered" line per event, with its id and offset.
    let prefix = unique_topic("reported");
    let full_topic = topic::full_topic(Some(&prefix), SessionLoginCompleted::TOPIC);
    broker
        .create_topic(&full_topic, 1)
        .await
        .expect("create topic");
    let producer = Producer::new(config(&prefix)).expect("producer");
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(producer.enqueue(&login()).await.expect("queued"));
    }
    producer
        .flush(Duration::from_secs(30))
        .await
        .expect("flushed");
    let delivered = log.lines_with("event delivered");
    assert_eq!(delivered.len(), 5, "{}", log.text());
    for (offset, id) in ids.iter().enumerate() {
        let line = delivered
            .iter()
            .find(|line| line.contains(&id.to_string()))
            .unwrap_or_else(|| panic!("no delivery line for {id}:\n{}", log.text()));
        assert!(line.contains(&format!("offset={offset}")), "{line}");
        assert!(line.contains(&format!("topic={full_topic} ")), "{line}");
    }

    // Not delivered (the topic does not exist and may not be created): the error line
    // carries the event as JSON, so it can be replayed by hand.
    let missing = Producer::new(
        config(&unique_topic("missing")).with_delivery_timeout(Duration::from_secs(3)),
    )
    .expect("producer");
    let lost = missing.enqueue(&login()).await.expect("queued");
    // The delivery fails after the timeout; flush returns once it has been reported.
    let _ = missing.flush(Duration::from_secs(30)).await;
    let failed = log.lines_with("event NOT delivered");
    assert_eq!(failed.len(), 1, "{}", log.text());
    let line = &failed[0];
    assert!(line.contains(&lost.to_string()), "{line}");
    assert!(line.contains("\"username\":\"foobob\""), "{line}");
    assert!(line.contains("\"email\":\"bob@foo.example\""), "{line}");
}
