//! Reading a topic back with a plain rdkafka consumer, to check what is on the wire.

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::OwnedMessage;
use rdkafka::{Message, Offset, TopicPartitionList};

use crate::kafka::consumer_config;

/// Reads up to `expected` records from every partition of `topic` from the beginning,
/// without joining a group, for at most `timeout`; returns what it found, ordered by
/// partition then offset.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let cluster = event_bus_testkit::kafka::KafkaCluster::shared()?;
/// let records = event_bus_testkit::records::read_topic(cluster.bootstrap_servers(), "orders", 10, std::time::Duration::from_secs(20))?;
/// # Ok(()) }
/// ```
pub fn read_topic(
    bootstrap_servers: &str,
    topic: &str,
    expected: usize,
    timeout: Duration,
) -> Result<Vec<OwnedMessage>, rdkafka::error::KafkaError> {
    let consumer: BaseConsumer = consumer_config(bootstrap_servers, "signal-bridge-testkit-reader")
        .set("enable.partition.eof", "false")
        .create()?;
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let mut assignment = TopicPartitionList::new();
    for t in metadata.topics() {
        for p in t.partitions() {
            assignment.add_partition_offset(topic, p.id(), Offset::Beginning)?;
        }
    }
    consumer.assign(&assignment)?;
    let deadline = Instant::now() + timeout;
    let mut records = Vec::new();
    while records.len() < expected && Instant::now() < deadline {
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            records.push(message?.detach());
        }
    }
    records.sort_by_key(|m| (m.partition(), m.offset()));
    Ok(records)
}
