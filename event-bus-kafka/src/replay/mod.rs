//! Replay and failover: consumer lag, offset resets, and resume tokens.
//!
//! - [`OffsetAdmin`] reads a group's committed offsets and lag, computes a
//!   [`ResetPlan`] for a [`ResetTarget`] (a datetime, offsets, earliest, latest, a
//!   shift, a token) and commits it as an inactive member — refusing while the group
//!   has active members.
//! - [`ResumeToken`] carries, per partition, the time to resume from; it maps to
//!   offsets on *any* cluster holding the same records (a mirror keeps timestamps),
//!   so a group can resume on a standby cluster after a failover, missing nothing
//!   (duplicates possible: deduplicate on `ce_id`).
//! - [`reset_group_to_datetime`] and [`reset_group_to_token`] do it all in one call,
//!   for a consumer binary to run before [`EventConsumer::run`](crate::consumer::EventConsumer::run).
//!
//! Both work on brokers without a time index or without group listing (librdkafka's
//! mock cluster, the embedded dev default): offsets of a time are then found by
//! reading records (a binary search by timestamp), and the new offsets are committed
//! by joining the group as the owner of the partitions to change.
//!
//! ```no_run
//! use event_bus_kafka::config::KafkaConfig;
//! use event_bus_kafka::replay::{self, ResumeToken};
//!
//! # async fn demo(token_text: &str) -> Result<(), Box<dyn std::error::Error>> {
//! let kafka = KafkaConfig::new("standby-kafka:9092");
//! let token: ResumeToken = token_text.parse()?;
//! let plan = replay::reset_group_to_token(&kafka, "mailer", &token).await?;
//! println!("resuming {} partition(s)", plan.changes().count());
//! // … then start the consumer of group "mailer" as usual.
//! # Ok(()) }
//! ```

mod admin;
mod apply;
mod by_reading;
mod by_time;
mod error;
mod lag;
#[cfg(test)]
mod mock_cluster_tests;
mod plan;
mod token;

use chrono::{DateTime, Utc};

pub use admin::{GroupMember, GroupState, OffsetAdmin, PartitionOffsets};
pub use error::ReplayError;
pub use lag::total_lag;
pub use plan::{PartitionReset, ResetNote, ResetPlan, ResetTarget};
pub use token::{ResumeToken, TokenError, TOKEN_VERSION};

use crate::config::KafkaConfig;
use crate::consumer::ConsumerConfig;

/// Moves `group` to the first record at or after `time` on every partition of
/// `topics` (full topic names, prefix applied), and returns what it did. The group
/// must have no active members: call it before starting the consumer.
///
/// The offset is exactly that of the first record whose timestamp is at or after
/// `time`: the broker's by-time answer (exact on Kafka, coarser on some brokers) is
/// refined by reading forward, skipping only records seen to be older. Where the
/// broker cannot answer (librdkafka's mock cluster has no time index) or its answer
/// disagrees with the records around it, the offset is found by a binary search over
/// the partition's records by timestamp instead, which assumes timestamps do not
/// decrease along a partition (always true of `LogAppendTime`, true in practice of
/// producer-assigned `CreateTime`) and never skips a record it read at or after the
/// time. A partition without a record since `time` moves to its end.
///
/// ```no_run
/// use event_bus_kafka::config::KafkaConfig;
/// # async fn demo() -> Result<(), event_bus_kafka::replay::ReplayError> {
/// let time = "2024-05-01T12:00:00Z".parse().expect("RFC 3339");
/// let plan = event_bus_kafka::replay::reset_group_to_datetime(
///     &KafkaConfig::new("localhost:9092"),
///     "mailer",
///     &["prod-orders".to_string()],
///     time,
/// )
/// .await?;
/// # Ok(()) }
/// ```
pub async fn reset_group_to_datetime(
    kafka: &KafkaConfig,
    group: &str,
    topics: &[String],
    time: DateTime<Utc>,
) -> Result<ResetPlan, ReplayError> {
    reset_group(kafka, group, topics, &ResetTarget::Datetime(time)).await
}

/// Moves `group` to the times of `token` on every partition the token covers (its
/// topics, as they are named on this cluster), and returns what it did. Partitions
/// the token does not cover keep their committed offsets. The group must have no
/// active members: call it before starting the consumer.
///
/// ```no_run
/// use event_bus_kafka::config::KafkaConfig;
/// use event_bus_kafka::replay::ResumeToken;
/// # async fn demo(token: ResumeToken) -> Result<(), event_bus_kafka::replay::ReplayError> {
/// event_bus_kafka::replay::reset_group_to_token(&KafkaConfig::new("standby:9092"), "mailer", &token).await?;
/// # Ok(()) }
/// ```
pub async fn reset_group_to_token(
    kafka: &KafkaConfig,
    group: &str,
    token: &ResumeToken,
) -> Result<ResetPlan, ReplayError> {
    let topics: Vec<String> = token.topics().map(str::to_owned).collect();
    reset_group(kafka, group, &topics, &ResetTarget::Token(token.clone())).await
}

/// [`reset_group_to_datetime`] for a consumer's group and subscribed topics.
///
/// ```no_run
/// use event_bus_kafka::consumer::ConsumerConfig;
/// # async fn demo(config: ConsumerConfig) -> Result<(), event_bus_kafka::replay::ReplayError> {
/// let time = chrono::Utc::now() - chrono::Duration::hours(1);
/// event_bus_kafka::replay::reset_consumer_to_datetime(&config, time).await?;
/// // then EventConsumer::new(config, bus)?.run(shutdown).await
/// # Ok(()) }
/// ```
pub async fn reset_consumer_to_datetime(
    config: &ConsumerConfig,
    time: DateTime<Utc>,
) -> Result<ResetPlan, ReplayError> {
    reset_group_to_datetime(&config.kafka, &config.group_id, &config.full_topics(), time).await
}

/// [`reset_group_to_token`] for a consumer's group, limited to the topics it
/// subscribes to (entries of other topics in the token are ignored).
///
/// ```no_run
/// use event_bus_kafka::consumer::ConsumerConfig;
/// use event_bus_kafka::replay::ResumeToken;
/// # async fn demo(config: ConsumerConfig, token: ResumeToken) -> Result<(), event_bus_kafka::replay::ReplayError> {
/// event_bus_kafka::replay::reset_consumer_to_token(&config, &token).await?;
/// # Ok(()) }
/// ```
pub async fn reset_consumer_to_token(
    config: &ConsumerConfig,
    token: &ResumeToken,
) -> Result<ResetPlan, ReplayError> {
    let topics: Vec<String> = config
        .full_topics()
        .into_iter()
        .filter(|topic| !token.partitions(topic).is_empty())
        .collect();
    if topics.is_empty() {
        return Err(ReplayError::TokenLacksTopic {
            topic: config.full_topics().join(", "),
            token_topics: token.topics().map(str::to_owned).collect(),
        });
    }
    reset_group(
        &config.kafka,
        &config.group_id,
        &topics,
        &ResetTarget::Token(token.clone()),
    )
    .await
}

/// Plans `target` for `group` on `topics` and commits it (refused while the group
/// has active members).
///
/// ```no_run
/// use event_bus_kafka::config::KafkaConfig;
/// use event_bus_kafka::replay::ResetTarget;
/// # async fn demo() -> Result<(), event_bus_kafka::replay::ReplayError> {
/// let kafka = KafkaConfig::new("localhost:9092");
/// event_bus_kafka::replay::reset_group(&kafka, "mailer", &["orders".into()], &ResetTarget::ShiftBy(-50)).await?;
/// # Ok(()) }
/// ```
pub async fn reset_group(
    kafka: &KafkaConfig,
    group: &str,
    topics: &[String],
    target: &ResetTarget,
) -> Result<ResetPlan, ReplayError> {
    let admin = OffsetAdmin::new(kafka, group)?;
    // Refuse before planning so an active group is reported as such.
    admin.refuse_if_active().await?;
    let plan = admin.plan(topics, target).await?;
    admin.apply(&plan).await?;
    Ok(plan)
}
