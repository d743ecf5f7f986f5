//! What the cluster has: its topics' partitions, replication and configs.

use std::collections::BTreeMap;

use rdkafka::admin::{ConfigResource, ConfigSource};
use rdkafka::metadata::MetadataTopic;

/// The cluster as `topics ensure` saw it.
///
/// ```
/// use event_bus_kafka::provision::ObservedCluster;
/// let cluster = ObservedCluster { brokers: 3, topics: Default::default() };
/// assert!(cluster.topics.get("orders").is_none());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObservedCluster {
    /// How many brokers the metadata lists.
    pub brokers: usize,
    /// The topics asked about that exist, by name.
    pub topics: BTreeMap<String, ObservedTopic>,
}

/// One existing topic.
///
/// ```
/// use event_bus_kafka::provision::{ObservedConfig, ObservedTopic};
/// let topic = ObservedTopic {
///     partitions: 3,
///     replication_factor: 1,
///     configs: [("retention.ms".to_string(), ObservedConfig::explicit("86400000"))].into(),
/// };
/// assert_eq!(topic.configs["retention.ms"].value.as_deref(), Some("86400000"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedTopic {
    /// Its partition count.
    pub partitions: u32,
    /// The fewest replicas any of its partitions has.
    pub replication_factor: u16,
    /// Every topic config the broker reports, by name.
    pub configs: BTreeMap<String, ObservedConfig>,
}

/// One topic config as the broker reports it.
///
/// ```
/// use event_bus_kafka::provision::ObservedConfig;
/// let config = ObservedConfig::default_value("604800000");
/// assert!(!config.explicit);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedConfig {
    /// Its value in effect (`None` when the broker hides it as sensitive).
    pub value: Option<String>,
    /// Set on the topic itself, not inherited from a broker or Kafka default.
    pub explicit: bool,
    /// The broker does not let it be changed.
    pub read_only: bool,
    /// The broker hides its value.
    pub sensitive: bool,
}

impl ObservedConfig {
    /// A value set on the topic.
    ///
    /// See [`ObservedTopic`].
    pub fn explicit(value: &str) -> Self {
        Self {
            value: Some(value.to_owned()),
            explicit: true,
            read_only: false,
            sensitive: false,
        }
    }

    /// A value the topic inherits (broker or Kafka default).
    ///
    /// See the type's example.
    pub fn default_value(value: &str) -> Self {
        Self {
            explicit: false,
            ..Self::explicit(value)
        }
    }
}

/// Partition count and smallest replica count of a topic from the metadata.
pub(crate) fn partitions_of(topic: &MetadataTopic) -> (u32, u16) {
    let partitions = u32::try_from(topic.partitions().len()).unwrap_or(u32::MAX);
    let replication = topic
        .partitions()
        .iter()
        .map(|p| u16::try_from(p.replicas().len()).unwrap_or(u16::MAX))
        .min()
        .unwrap_or(0);
    (partitions, replication)
}

/// The configs of a DescribeConfigs answer.
pub(crate) fn configs_of(resource: &ConfigResource) -> BTreeMap<String, ObservedConfig> {
    resource
        .entries
        .iter()
        .map(|entry| {
            (
                entry.name.clone(),
                ObservedConfig {
                    value: entry.value.clone(),
                    explicit: entry.source == ConfigSource::DynamicTopic,
                    read_only: entry.is_read_only,
                    sensitive: entry.is_sensitive,
                },
            )
        })
        .collect()
}
