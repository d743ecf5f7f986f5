//! Why a change to a topic is not made, in words that say what to do instead.

use rdkafka::types::RDKafkaErrorCode;

/// A change `topics ensure` will not make, with the reason.
///
/// ```
/// use event_bus_kafka::provision::Refusal;
/// let refusal = Refusal::FewerPartitions { have: 12, want: 6 };
/// assert!(refusal.to_string().contains("cannot take partitions away"));
/// assert_eq!(refusal.kind(), "fewer_partitions");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The topic has more partitions than wanted.
    #[error(
        "the topic has {have} partitions and Kafka cannot take partitions away: declare at \
         least {have} (the extra ones do no harm), or delete and recreate the topic, which \
         deletes its records"
    )]
    FewerPartitions {
        /// Partitions the topic has.
        have: u32,
        /// Partitions wanted.
        want: u32,
    },
    /// The topic has another replication factor than wanted.
    #[error(
        "changing the replication factor from {have} to {want} is a partition reassignment \
         that copies data between brokers, which ensure does not do: run \
         kafka-reassign-partitions.sh, or declare {have}"
    )]
    ReplicationFactor {
        /// The topic's replication factor.
        have: u16,
        /// The one wanted.
        want: u16,
    },
    /// A new topic would need more brokers than the cluster has.
    #[error(
        "replication factor {want} needs {want} brokers but the cluster has {brokers}: lower \
         it (EVENT_BUS_TOPIC_REPLICATION_FACTOR or the event type's topic_settings) or add \
         brokers"
    )]
    NotEnoughBrokers {
        /// The replication factor wanted.
        want: u16,
        /// Brokers in the cluster.
        brokers: usize,
    },
    /// `min.insync.replicas` above the replication factor refuses every `acks=all`
    /// write, and the SDK's producers write with `acks=all`.
    #[error(
        "min.insync.replicas = {min} is more than the replication factor {replication}: the \
         topic would refuse every acks=all write (the SDK's producers use acks=all); use at \
         most {replication}"
    )]
    MinInsyncAboveReplication {
        /// The value wanted.
        min: u32,
        /// The topic's replication factor.
        replication: u16,
    },
    /// The broker lists no such topic config.
    #[error(
        "the broker knows no topic config `{name}`: check its spelling against Kafka's topic \
         configs (names are lowercase words joined by dots)"
    )]
    UnknownConfig {
        /// The config.
        name: String,
    },
    /// The broker reports the config as read-only.
    #[error("the broker reports topic config `{name}` as read-only")]
    ReadOnlyConfig {
        /// The config.
        name: String,
    },
    /// A compacted topic refuses records without a key.
    #[error(
        "a compacted topic refuses records without a key, and these event types of it have \
         none: {}; give them a key, or use cleanup.policy=delete",
        event_types.join(", ")
    )]
    CompactedKeyless {
        /// The keyless event types.
        event_types: Vec<String>,
    },
    /// The topic has a config whose value the broker hides; Kafka's AlterConfigs, which
    /// replaces every config of the topic, would erase it.
    #[error(
        "the topic has `{name}` set to a value the broker does not disclose, and changing its \
         configs replaces all of them, which would erase it: change them with \
         kafka-configs.sh --alter instead"
    )]
    HiddenConfig {
        /// The hidden config.
        name: String,
    },
    /// The broker refused the change when asked to validate it.
    #[error("the broker refuses it ({code:?}): {}", broker_hint(*code))]
    Broker {
        /// The broker's error code.
        code: RDKafkaErrorCode,
    },
}

impl Refusal {
    /// A stable name, for JSON.
    ///
    /// See the type's example.
    pub fn kind(&self) -> &'static str {
        match self {
            Refusal::FewerPartitions { .. } => "fewer_partitions",
            Refusal::ReplicationFactor { .. } => "replication_factor_change",
            Refusal::NotEnoughBrokers { .. } => "not_enough_brokers",
            Refusal::MinInsyncAboveReplication { .. } => "min_insync_above_replication",
            Refusal::UnknownConfig { .. } => "unknown_config",
            Refusal::ReadOnlyConfig { .. } => "read_only_config",
            Refusal::CompactedKeyless { .. } => "compacted_keyless",
            Refusal::HiddenConfig { .. } => "hidden_config",
            Refusal::Broker { .. } => "broker",
        }
    }
}

/// What a broker's refusal code usually means for a topic change.
///
/// ```
/// use event_bus_kafka::provision::refusal::broker_hint;
/// use rdkafka::types::RDKafkaErrorCode;
/// assert!(broker_hint(RDKafkaErrorCode::InvalidConfig).contains("value"));
/// ```
pub fn broker_hint(code: RDKafkaErrorCode) -> &'static str {
    match code {
        RDKafkaErrorCode::InvalidConfig => {
            "a topic config name or value the broker does not accept; check each against \
             Kafka's topic configs"
        }
        RDKafkaErrorCode::InvalidReplicationFactor => {
            "the replication factor is larger than the number of brokers"
        }
        RDKafkaErrorCode::InvalidPartitions => "the partition count is not valid",
        RDKafkaErrorCode::PolicyViolation => {
            "a topic policy of the cluster forbids it; ask its operators"
        }
        RDKafkaErrorCode::TopicAuthorizationFailed
        | RDKafkaErrorCode::ClusterAuthorizationFailed => {
            "this client may not create or change topics: grant it CREATE and ALTER_CONFIGS \
             on the topics (or the cluster)"
        }
        RDKafkaErrorCode::TopicAlreadyExists => {
            "someone created the topic meanwhile; run ensure again"
        }
        RDKafkaErrorCode::InvalidTopic => "the topic name is not valid for Kafka",
        _ => "see the broker's log for the reason",
    }
}
