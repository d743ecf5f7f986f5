//! Why reading or resetting a consumer group's offsets failed.

use rdkafka::error::KafkaError;

use super::token::TokenError;

/// Why reading or resetting a consumer group's offsets failed. Every message says
/// what to do about it.
///
/// ```
/// use event_bus_kafka::replay::ReplayError;
///
/// let err = ReplayError::GroupActive {
///     group: "mailer".into(),
///     state: "Stable".into(),
///     members: vec!["mailer-1 (/10.0.0.7)".into()],
/// };
/// assert!(err.to_string().contains("stop every consumer of group `mailer`"));
/// assert!(err.is_refusal());
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// The group id is empty.
    #[error("the consumer group id is empty: name the group whose offsets to read or reset")]
    EmptyGroup,
    /// librdkafka refused the client configuration.
    #[error("cannot create the Kafka client: {0}; check the EVENT_BUS_KAFKA_* options")]
    Client(#[source] Box<KafkaError>),
    /// A request to the brokers failed.
    #[error("{operation} failed against {bootstrap_servers}: {source}; check that the brokers are reachable and the credentials allow it")]
    Kafka {
        /// What was asked, e.g. "reading committed offsets of group `g`".
        operation: String,
        /// The brokers.
        bootstrap_servers: String,
        /// librdkafka's error.
        #[source]
        source: Box<KafkaError>,
    },
    /// The topic is not on the cluster.
    #[error("topic `{topic}` does not exist on {bootstrap_servers}; check its name (and the topic prefix, EVENT_BUS_TOPIC_PREFIX)")]
    UnknownTopic {
        /// The topic.
        topic: String,
        /// The brokers asked.
        bootstrap_servers: String,
    },
    /// An offset was given for a partition the topic does not have.
    #[error("topic `{topic}` has no partition {partition} (it has {count}: 0..{count}); fix the `<partition>:<offset>` pair")]
    UnknownPartition {
        /// The topic.
        topic: String,
        /// The partition asked for.
        partition: i32,
        /// How many partitions the topic has.
        count: usize,
    },
    /// `--shift-by` needs a committed offset to shift from.
    #[error(
        "group `{group}` has no committed offset for {}, so there is nothing to shift by; \
         reset those with --to-earliest, --to-latest, --to-datetime or --to-offset instead",
        partitions.join(", ")
    )]
    NothingToShift {
        /// The group.
        group: String,
        /// `topic[partition]` of each partition without a committed offset.
        partitions: Vec<String>,
    },
    /// The token has no entry for the topic being reset.
    #[error(
        "the resume token has no partition of topic `{topic}` (it covers: {}); reset the topics the token names",
        if token_topics.is_empty() { "nothing".to_string() } else { token_topics.join(", ") }
    )]
    TokenLacksTopic {
        /// The topic being reset.
        topic: String,
        /// The topics the token covers.
        token_topics: Vec<String>,
    },
    /// The token does not parse.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// Looking up offsets by timestamp failed. Resets by time do not fail with it: they
    /// find the offsets by reading records instead (and log this error).
    #[error(
        "cannot look up offsets by timestamp on {bootstrap_servers}: {source}; the cluster must \
         answer ListOffsets by timestamp (Kafka ≥ 0.10.1)"
    )]
    TimestampLookup {
        /// The brokers.
        bootstrap_servers: String,
        /// librdkafka's error.
        #[source]
        source: Box<KafkaError>,
    },
    /// The group has members: a commit now would be overwritten, or refused.
    #[error(
        "consumer group `{group}` has {} active member(s) (state {state}: {}); its offsets \
         can only be changed while nobody consumes: stop every consumer of group `{group}` \
         (they commit and leave on the way out), wait for the session timeout if one \
         crashed, then run the reset again",
        members.len(), members.join(", ")
    )]
    GroupActive {
        /// The group.
        group: String,
        /// The group's state as the broker reports it (`Stable`, `PreparingRebalance`, …).
        state: String,
        /// `client.id (host)` of each member.
        members: Vec<String>,
    },
    /// The broker refused the commit because the group has a live generation.
    #[error(
        "the broker refused the new offsets of consumer group `{group}` ({code:?}): the \
         group has active members or is rebalancing; stop every consumer of group \
         `{group}`, wait for the session timeout if one crashed, then run the reset again. \
         Nothing was changed"
    )]
    CommitRefused {
        /// The group.
        group: String,
        /// The broker's error code.
        code: rdkafka::types::RDKafkaErrorCode,
    },
    /// The brokers cannot say whether the group has members.
    #[error(
        "cannot tell whether consumer group `{group}` has active members: {source}; the \
         cluster must answer ListGroups/DescribeGroups (librdkafka's mock cluster does not). \
         Nothing was changed"
    )]
    GroupStateUnavailable {
        /// The group.
        group: String,
        /// librdkafka's error.
        #[source]
        source: Box<KafkaError>,
    },
    /// On brokers that cannot list a group's members, the reset joins the group to
    /// commit, and other members hold partitions it would change.
    #[error(
        "consumer group `{group}` has active members: they hold {}; its offsets can only \
         be changed while nobody consumes: stop every consumer of group `{group}`, wait \
         for the session timeout if one crashed, then run the reset again. Nothing was changed",
        partitions.join(", ")
    )]
    PartitionsHeldByOthers {
        /// The group.
        group: String,
        /// `topic[partition]` of each partition another member holds.
        partitions: Vec<String>,
    },
    /// On brokers that cannot list a group's members, the reset joins the group to
    /// commit, and no assignment came in time.
    #[error(
        "could not join consumer group `{group}` on {bootstrap_servers} within {waited:?} to \
         commit its new offsets (these brokers cannot list a group's members, so the reset \
         commits as a member); check that the brokers are reachable, wait for the session \
         timeout if a consumer of the group crashed, then run the reset again. Nothing was changed"
    )]
    JoinTimedOut {
        /// The group.
        group: String,
        /// The brokers.
        bootstrap_servers: String,
        /// How long the join was waited for.
        waited: std::time::Duration,
    },
    /// The commit was acknowledged but reading back shows other offsets.
    #[error(
        "the new offsets of group `{group}` did not stick: {}; a consumer of the group \
         probably started meanwhile and committed its own. Stop it and run the reset again",
        mismatches.join(", ")
    )]
    NotApplied {
        /// The group.
        group: String,
        /// `topic[partition]: wanted X, found Y` for each partition that differs.
        mismatches: Vec<String>,
    },
    /// Reading a record to find an offset by time got neither a record nor the end of
    /// the partition in time.
    #[error(
        "reading `{topic}` partition {partition} at offset {offset} on {bootstrap_servers} \
         gave no record within {timeout:?}; the offset of a time is found by reading records \
         when the broker cannot look it up: check that the partition's leader is reachable \
         and the credentials allow reading the topic, then run the command again"
    )]
    ReadTimedOut {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The offset read from.
        offset: i64,
        /// The brokers.
        bootstrap_servers: String,
        /// How long the read waited.
        timeout: std::time::Duration,
    },
    /// A background task running a blocking client call died.
    #[error("a Kafka client call was interrupted ({0}); run the command again")]
    Interrupted(String),
}

impl ReplayError {
    /// Whether this is a refusal the user must act on (a group still active) rather
    /// than a failure to run.
    ///
    /// See the type's example.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            Self::GroupActive { .. }
                | Self::CommitRefused { .. }
                | Self::PartitionsHeldByOthers { .. }
                | Self::NotApplied { .. }
        )
    }

    /// Whether the input was wrong (topic, partition, token, nothing to shift) rather
    /// than the cluster unreachable.
    ///
    /// ```
    /// use event_bus_kafka::replay::ReplayError;
    /// assert!(ReplayError::EmptyGroup.is_usage());
    /// ```
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            Self::EmptyGroup
                | Self::UnknownTopic { .. }
                | Self::UnknownPartition { .. }
                | Self::NothingToShift { .. }
                | Self::TokenLacksTopic { .. }
                | Self::Token(_)
        )
    }
}
