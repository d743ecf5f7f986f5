//! Which consumer groups read a topic now: the dry run of a redrive names them, since
//! every group consuming the original topic reads a redriven record again.
//!
//! The broker's group listing (ListGroups, DescribeGroups) gives each running member's
//! subscription (the consumer protocol's member metadata: a version, then the topic
//! names). Groups with no member running now, and groups of Kafka 4's consumer
//! protocol, which the classic describe does not show, are not listed: the output says
//! "every group subscribed to the topic" as well.

use std::collections::BTreeSet;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::config::KafkaConfig;

/// How long the group listing may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The groups with a running member subscribed to `topic`, by name; `Err` with the
/// reason when the broker could not list them.
pub(super) async fn reading(kafka: &KafkaConfig, topic: &str) -> Result<Vec<String>, String> {
    let consumer: BaseConsumer = kafka
        .client_config(&[])
        .set(
            "group.id",
            format!("event-bus-dlq-groups-{}", uuid::Uuid::new_v4().simple()),
        )
        .create()
        .map_err(|e| crate::config::secret::redact_kafka_error(e).to_string())?;
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        let list = consumer
            .fetch_group_list(None, TIMEOUT)
            .map_err(|e| e.to_string())?;
        let names: BTreeSet<String> = list
            .groups()
            .iter()
            .filter(|g| g.protocol_type() == "consumer")
            .filter(|g| {
                g.members().iter().any(|m| {
                    m.metadata()
                        .and_then(subscribed_topics)
                        .is_some_and(|topics| topics.contains(&topic))
                })
            })
            .map(|g| g.name().to_owned())
            .collect();
        Ok(names.into_iter().collect())
    })
    .await
    .map_err(|e| e.to_string())?
}

/// The topic names of a consumer protocol subscription (version, then an array of
/// strings; what follows them is not needed). `None` when it does not parse.
fn subscribed_topics(metadata: &[u8]) -> Option<Vec<String>> {
    let mut rest = metadata.get(2..)?; // version
    let count = i32::from_be_bytes(rest.get(..4)?.try_into().ok()?);
    rest = rest.get(4..)?;
    let mut topics = Vec::with_capacity(usize::try_from(count).ok()?.min(1024));
    for _ in 0..count {
        let len = usize::from(u16::from_be_bytes(rest.get(..2)?.try_into().ok()?));
        let name = rest.get(2..2 + len)?;
        topics.push(String::from_utf8_lossy(name).into_owned());
        rest = rest.get(2 + len..)?;
    }
    Some(topics)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscriptions_parse_and_garbage_does_not() {
        let mut metadata = vec![0, 3, 0, 0, 0, 2];
        for topic in ["orders", "b"] {
            metadata.extend_from_slice(&(topic.len() as u16).to_be_bytes());
            metadata.extend_from_slice(topic.as_bytes());
        }
        metadata.extend_from_slice(&[0, 0, 0, 0]); // user data, ignored
        assert_eq!(
            subscribed_topics(&metadata),
            Some(vec!["orders".to_owned(), "b".to_owned()])
        );
        assert_eq!(subscribed_topics(&[0, 1, 0, 0, 0, 5, 0]), None);
        assert_eq!(subscribed_topics(&[]), None);
    }
}
