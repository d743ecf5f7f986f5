//! `OffsetAdmin`: one consumer group's view of the cluster — partitions, watermarks,
//! committed offsets, offsets by time, members.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use super::by_reading::BrokerAnswer;
use super::error::ReplayError;
use crate::config::KafkaConfig;

/// The offsets of one partition as a group sees them.
///
/// ```
/// use event_bus_kafka::replay::PartitionOffsets;
/// let p = PartitionOffsets { topic: "t".into(), partition: 0, committed: Some(4), earliest: 0, latest: 10 };
/// assert_eq!(p.lag(), Some(6));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PartitionOffsets {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The group's committed offset (the next record it will read), if any.
    pub committed: Option<i64>,
    /// The first offset still stored (low watermark).
    pub earliest: i64,
    /// One past the last record (high watermark, the end offset).
    pub latest: i64,
}

impl PartitionOffsets {
    /// Records the group has not consumed yet: `latest − committed` (from `earliest`
    /// when the committed offset was deleted by retention); `None` without a
    /// committed offset.
    ///
    /// See the type's example.
    pub fn lag(&self) -> Option<i64> {
        self.committed
            .map(|committed| (self.latest - committed.max(self.earliest)).max(0))
    }
}

/// The state reported for a group the broker does not know.
const UNKNOWN_STATE: &str = "Unknown";

/// A member of a consumer group, as the broker describes it.
///
/// ```
/// let m = event_bus_kafka::replay::GroupMember { client_id: "svc".into(), host: "/10.0.0.1".into() };
/// assert_eq!(m.to_string(), "svc (/10.0.0.1)");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GroupMember {
    /// The member's `client.id`.
    pub client_id: String,
    /// The member's host, as the broker saw it.
    pub host: String,
}

impl std::fmt::Display for GroupMember {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.client_id, self.host)
    }
}

/// A consumer group's state and members.
///
/// ```
/// let s = event_bus_kafka::replay::GroupState { state: "Empty".into(), members: vec![] };
/// assert!(!s.is_active());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GroupState {
    /// `Empty`, `Stable`, `PreparingRebalance`, `Dead`, … (`Unknown` when the broker
    /// does not know the group).
    pub state: String,
    /// The members.
    pub members: Vec<GroupMember>,
}

impl GroupState {
    /// Whether some consumer is in the group.
    ///
    /// See the type's example.
    pub fn is_active(&self) -> bool {
        !self.members.is_empty()
    }
}

/// A client for one consumer group's offsets: it reads them and commits new ones as
/// an inactive member (it never subscribes, so it never joins the group).
///
/// All calls are blocking librdkafka calls run on tokio's blocking pool, each with
/// the admin's timeout (10 s unless changed).
///
/// ```no_run
/// use event_bus_kafka::config::KafkaConfig;
/// use event_bus_kafka::replay::{OffsetAdmin, ResetTarget};
///
/// # async fn demo() -> Result<(), event_bus_kafka::replay::ReplayError> {
/// let admin = OffsetAdmin::new(&KafkaConfig::new("localhost:9092"), "mailer")?;
/// for p in admin.lag(&["orders".to_string()]).await? {
///     println!("{}[{}] lag {:?}", p.topic, p.partition, p.lag());
/// }
/// let plan = admin.plan(&["orders".to_string()], &ResetTarget::Earliest).await?;
/// admin.apply(&plan).await?; // refuses while the group has members
/// # Ok(()) }
/// ```
pub struct OffsetAdmin {
    consumer: Arc<BaseConsumer>,
    kafka: KafkaConfig,
    group: String,
    bootstrap_servers: String,
    timeout: Duration,
}

impl std::fmt::Debug for OffsetAdmin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OffsetAdmin")
            .field("group", &self.group)
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl OffsetAdmin {
    /// An admin for `group` on the cluster of `kafka` (its librdkafka options apply).
    ///
    /// ```
    /// use event_bus_kafka::config::KafkaConfig;
    /// use event_bus_kafka::replay::{OffsetAdmin, ReplayError};
    /// let err = OffsetAdmin::new(&KafkaConfig::new("localhost:9092"), " ").unwrap_err();
    /// assert!(matches!(err, ReplayError::EmptyGroup));
    /// ```
    pub fn new(kafka: &KafkaConfig, group: &str) -> Result<Self, ReplayError> {
        if group.trim().is_empty() {
            return Err(ReplayError::EmptyGroup);
        }
        let consumer: BaseConsumer = kafka
            .client_config(&[
                ("enable.auto.commit", "false"),
                ("enable.auto.offset.store", "false"),
                ("enable.partition.eof", "false"),
            ])
            .set("group.id", group)
            .create()
            .map_err(|e| {
                ReplayError::Client(Box::new(crate::config::secret::redact_kafka_error(e)))
            })?;
        Ok(Self {
            consumer: Arc::new(consumer),
            kafka: kafka.clone(),
            group: group.to_owned(),
            bootstrap_servers: kafka.bootstrap_servers.clone(),
            timeout: Duration::from_secs(10),
        })
    }

    /// Sets how long each request may take (default 10 s).
    ///
    /// ```
    /// # use event_bus_kafka::{config::KafkaConfig, replay::OffsetAdmin};
    /// let admin = OffsetAdmin::new(&KafkaConfig::new("b:9092"), "g")?
    ///     .with_timeout(std::time::Duration::from_secs(30));
    /// # Ok::<(), event_bus_kafka::replay::ReplayError>(())
    /// ```
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The group this admin works on.
    ///
    /// ```
    /// # use event_bus_kafka::{config::KafkaConfig, replay::OffsetAdmin};
    /// let admin = OffsetAdmin::new(&KafkaConfig::new("b:9092"), "mailer")?;
    /// assert_eq!(admin.group(), "mailer");
    /// # Ok::<(), event_bus_kafka::replay::ReplayError>(())
    /// ```
    pub fn group(&self) -> &str {
        &self.group
    }

    /// The brokers this admin talks to.
    ///
    /// ```
    /// # use event_bus_kafka::{config::KafkaConfig, replay::OffsetAdmin};
    /// let admin = OffsetAdmin::new(&KafkaConfig::new("b:9092"), "mailer")?;
    /// assert_eq!(admin.bootstrap_servers(), "b:9092");
    /// # Ok::<(), event_bus_kafka::replay::ReplayError>(())
    /// ```
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap_servers
    }

    /// Runs a blocking client call on tokio's blocking pool.
    pub(crate) async fn blocking<T, F>(&self, call: F) -> Result<T, ReplayError>
    where
        T: Send + 'static,
        F: FnOnce(&Blocking) -> Result<T, ReplayError> + Send + 'static,
    {
        let blocking = Blocking {
            consumer: Arc::clone(&self.consumer),
            kafka: self.kafka.clone(),
            group: self.group.clone(),
            bootstrap_servers: self.bootstrap_servers.clone(),
            timeout: self.timeout,
        };
        tokio::task::spawn_blocking(move || call(&blocking))
            .await
            .map_err(|e| ReplayError::Interrupted(e.to_string()))?
    }

    /// The partitions of `topic`, sorted.
    ///
    /// ```no_run
    /// # async fn demo(admin: &event_bus_kafka::replay::OffsetAdmin) -> Result<(), event_bus_kafka::replay::ReplayError> {
    /// let partitions = admin.partitions("orders").await?;
    /// # Ok(()) }
    /// ```
    pub async fn partitions(&self, topic: &str) -> Result<Vec<i32>, ReplayError> {
        let topic = topic.to_owned();
        self.blocking(move |b| b.partitions(&topic)).await
    }

    /// Per partition of `topics`: the committed offset and the watermarks.
    ///
    /// ```no_run
    /// # async fn demo(admin: &event_bus_kafka::replay::OffsetAdmin) -> Result<(), event_bus_kafka::replay::ReplayError> {
    /// for p in admin.offsets(&["orders".to_string()]).await? {
    ///     println!("{}[{}] committed {:?} end {}", p.topic, p.partition, p.committed, p.latest);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn offsets(&self, topics: &[String]) -> Result<Vec<PartitionOffsets>, ReplayError> {
        let topics = topics.to_vec();
        self.blocking(move |b| b.offsets(&topics)).await
    }

    /// Per partition of `topic`, the offset of the first record at or after `time`
    /// (the end offset when there is none yet), sorted by partition.
    ///
    /// ```no_run
    /// # async fn demo(admin: &event_bus_kafka::replay::OffsetAdmin) -> Result<(), event_bus_kafka::replay::ReplayError> {
    /// let time = "2024-05-01T12:00:00Z".parse().expect("RFC 3339");
    /// for (partition, offset) in admin.offsets_for_time("orders", time).await? {
    ///     println!("partition {partition}: from offset {offset}");
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn offsets_for_time(
        &self,
        topic: &str,
        time: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<(i32, i64)>, ReplayError> {
        let topic = topic.to_owned();
        self.blocking(move |b| {
            let partitions = b.partitions(&topic)?;
            let wanted: Vec<(String, i32, i64)> = partitions
                .iter()
                .map(|p| (topic.clone(), *p, time.timestamp_millis()))
                .collect();
            let found = b.first_offsets_at(&wanted)?;
            partitions
                .into_iter()
                .map(|partition| match found.get(&(topic.clone(), partition)) {
                    Some(Some(offset)) => Ok((partition, *offset)),
                    _ => b
                        .watermarks(&topic, partition)
                        .map(|(_, high)| (partition, high)),
                })
                .collect()
        })
        .await
    }

    /// The group's state and members (ListGroups/DescribeGroups).
    ///
    /// ```no_run
    /// # async fn demo(admin: &event_bus_kafka::replay::OffsetAdmin) -> Result<(), event_bus_kafka::replay::ReplayError> {
    /// let state = admin.group_state().await?;
    /// if state.is_active() { println!("{} member(s)", state.members.len()); }
    /// # Ok(()) }
    /// ```
    pub async fn group_state(&self) -> Result<GroupState, ReplayError> {
        self.blocking(|b| b.group_state()).await
    }
}

/// What a blocking call gets: the client and its settings.
pub(crate) struct Blocking {
    pub consumer: Arc<BaseConsumer>,
    pub kafka: KafkaConfig,
    pub group: String,
    pub bootstrap_servers: String,
    pub timeout: Duration,
}

impl Blocking {
    pub fn kafka_error(
        &self,
        operation: impl Into<String>,
    ) -> impl FnOnce(KafkaError) -> ReplayError + '_ {
        let operation = operation.into();
        move |source| ReplayError::Kafka {
            operation,
            bootstrap_servers: self.bootstrap_servers.clone(),
            source: Box::new(source),
        }
    }

    /// Every partition of every topic on the cluster but internal ones (`__…`), from
    /// one metadata request, sorted.
    pub fn all_partitions(&self) -> Result<Vec<(String, i32)>, ReplayError> {
        let metadata = self
            .consumer
            .fetch_metadata(None, self.timeout)
            .map_err(self.kafka_error("listing topics"))?;
        let mut partitions: Vec<(String, i32)> = metadata
            .topics()
            .iter()
            .filter(|t| t.error().is_none() && !t.name().starts_with("__"))
            .flat_map(|t| {
                t.partitions()
                    .iter()
                    .map(move |p| (t.name().to_owned(), p.id()))
            })
            .collect();
        partitions.sort();
        Ok(partitions)
    }

    pub fn partitions(&self, topic: &str) -> Result<Vec<i32>, ReplayError> {
        let metadata = self
            .consumer
            .fetch_metadata(Some(topic), self.timeout)
            .map_err(self.kafka_error(format!("reading the metadata of topic `{topic}`")))?;
        let unknown = || ReplayError::UnknownTopic {
            topic: topic.to_owned(),
            bootstrap_servers: self.bootstrap_servers.clone(),
        };
        let found = metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic)
            .ok_or_else(unknown)?;
        if found.error().is_some() || found.partitions().is_empty() {
            return Err(unknown());
        }
        let mut partitions: Vec<i32> = found.partitions().iter().map(|p| p.id()).collect();
        partitions.sort_unstable();
        Ok(partitions)
    }

    pub fn watermarks(&self, topic: &str, partition: i32) -> Result<(i64, i64), ReplayError> {
        self.consumer
            .fetch_watermarks(topic, partition, self.timeout)
            .map_err(self.kafka_error(format!(
                "reading the watermarks of `{topic}` partition {partition}"
            )))
    }

    /// Committed offsets of the group for these partitions (`None`: nothing committed).
    pub fn committed(
        &self,
        partitions: &[(String, i32)],
    ) -> Result<BTreeMap<(String, i32), Option<i64>>, ReplayError> {
        let mut tpl = TopicPartitionList::new();
        for (topic, partition) in partitions {
            tpl.add_partition(topic, *partition);
        }
        let group = self.group.clone();
        // The group's coordinator may be moving or still loading (on a new cluster,
        // the first group creates the offsets topic): ask again until the timeout.
        let deadline = Instant::now() + self.timeout;
        let mut delays =
            crate::consumer::backoff::jittered(Duration::from_millis(50), Duration::from_secs(1));
        let committed = loop {
            match self.consumer.committed_offsets(tpl.clone(), self.timeout) {
                Err(error) if coordinator_unsettled(&error) && Instant::now() < deadline => {
                    tracing::debug!(group = %group, error = %error, "group coordinator not ready; asking again");
                    std::thread::sleep(delays.next().unwrap_or(Duration::from_secs(1)));
                }
                answer => {
                    break answer.map_err(self.kafka_error(format!(
                        "reading the committed offsets of group `{group}`"
                    )))?
                }
            }
        };
        Ok(committed
            .elements()
            .iter()
            .map(|e| {
                let offset = match e.offset() {
                    Offset::Offset(o) if o >= 0 => Some(o),
                    _ => None,
                };
                ((e.topic().to_owned(), e.partition()), offset)
            })
            .collect())
    }

    pub fn offsets(&self, topics: &[String]) -> Result<Vec<PartitionOffsets>, ReplayError> {
        let mut keys = Vec::new();
        for topic in topics {
            for partition in self.partitions(topic)? {
                keys.push((topic.clone(), partition));
            }
        }
        self.offsets_of(&keys)
    }

    pub fn offsets_of(&self, keys: &[(String, i32)]) -> Result<Vec<PartitionOffsets>, ReplayError> {
        let committed = self.committed(keys)?;
        keys.iter()
            .map(|(topic, partition)| {
                let (earliest, latest) = self.watermarks(topic, *partition)?;
                Ok(PartitionOffsets {
                    topic: topic.clone(),
                    partition: *partition,
                    committed: committed
                        .get(&(topic.clone(), *partition))
                        .copied()
                        .flatten(),
                    earliest,
                    latest,
                })
            })
            .collect()
    }

    /// The broker's answer to a by-time lookup, per partition: an offset (at or before
    /// the first record at or after the time, on a broker with a time index), "end",
    /// or the partition's error. Fails as a whole when the request does.
    pub fn offsets_for_times(
        &self,
        wanted: &[(String, i32, i64)],
    ) -> Result<BTreeMap<(String, i32), BrokerAnswer>, ReplayError> {
        if wanted.is_empty() {
            return Ok(BTreeMap::new());
        }
        let lookup_failed = |source| ReplayError::TimestampLookup {
            bootstrap_servers: self.bootstrap_servers.clone(),
            source: Box::new(source),
        };
        let mut tpl = TopicPartitionList::new();
        for (topic, partition, millis) in wanted {
            tpl.add_partition_offset(topic, *partition, Offset::Offset(*millis))
                .map_err(lookup_failed)?;
        }
        let answer = self
            .consumer
            .offsets_for_times(tpl, self.timeout)
            .map_err(lookup_failed)?;
        Ok(answer
            .elements()
            .iter()
            .map(|element| {
                let found = match (element.error(), element.offset()) {
                    (Err(error), _) => BrokerAnswer::Failed(error.to_string()),
                    (Ok(()), Offset::Offset(o)) if o >= 0 => BrokerAnswer::Offset(o),
                    (Ok(()), _) => BrokerAnswer::End,
                };
                ((element.topic().to_owned(), element.partition()), found)
            })
            .collect())
    }

    /// The group's state, from the broker's own group listing (DescribeGroups): a
    /// group it does not know is [`UNKNOWN_STATE`] with no members.
    pub fn group_state(&self) -> Result<GroupState, ReplayError> {
        self.group_state_once()
    }

    fn group_state_once(&self) -> Result<GroupState, ReplayError> {
        let unavailable = |source| ReplayError::GroupStateUnavailable {
            group: self.group.clone(),
            source: Box::new(source),
        };
        let list = match self
            .consumer
            .fetch_group_list(Some(&self.group), self.timeout)
        {
            Ok(list) => list,
            // Brokers answer a group they never saw with "not found" or "dead".
            Err(KafkaError::GroupListFetch(RDKafkaErrorCode::GroupIdNotFound)) => {
                return Ok(GroupState {
                    state: UNKNOWN_STATE.into(),
                    members: Vec::new(),
                })
            }
            Err(source) => return Err(unavailable(source)),
        };
        let Some(info) = list.groups().iter().find(|g| g.name() == self.group) else {
            return Ok(GroupState {
                state: UNKNOWN_STATE.into(),
                members: Vec::new(),
            });
        };
        Ok(GroupState {
            state: info.state().to_owned(),
            members: info
                .members()
                .iter()
                .map(|m| GroupMember {
                    client_id: m.client_id().to_owned(),
                    host: m.client_host().to_owned(),
                })
                .collect(),
        })
    }
}

/// Whether `error` says the group's coordinator is moving or loading (or another
/// passing refusal, by [`crate::failure::of_kafka`]): worth asking again shortly.
fn coordinator_unsettled(error: &KafkaError) -> bool {
    crate::failure::of_kafka(error) == crate::failure::Failure::Transient
}
