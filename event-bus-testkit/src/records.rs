//! Reading a topic back with a plain rdkafka consumer, to check what is on the wire.

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{OwnedHeaders, OwnedMessage};
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

/// Adds a header whose name is any bytes, UTF-8 or not, as producers in other languages
/// can send (rdkafka's own `insert` takes a `&str`), to test readers of such records.
///
/// ```
/// use rdkafka::message::{Headers, OwnedHeaders};
/// let headers = event_bus_testkit::records::with_raw_header(OwnedHeaders::new(), b"x-\xff", b"v");
/// assert_eq!(headers.count(), 1);
/// ```
pub fn with_raw_header(headers: OwnedHeaders, name: &[u8], value: &[u8]) -> OwnedHeaders {
    use rdkafka::bindings as rdsys;
    // `&BorrowedHeaders` is the address of librdkafka's header list itself (rdkafka
    // casts it both ways); the list is owned by `headers` and nothing else reads it now.
    let native = std::ptr::from_ref(headers.as_borrowed())
        .cast::<rdsys::rd_kafka_headers_t>()
        .cast_mut();
    let name_len = isize::try_from(name.len()).unwrap_or(isize::MAX);
    let value_len = isize::try_from(value.len()).unwrap_or(isize::MAX);
    // SAFETY: a live list, pointers with their lengths; librdkafka copies both.
    let status = unsafe {
        rdsys::rd_kafka_header_add(
            native,
            name.as_ptr().cast(),
            name_len,
            value.as_ptr().cast(),
            value_len,
        )
    };
    assert_eq!(
        status,
        rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR,
        "librdkafka refused the header"
    );
    headers
}
