//! Committing a plan: as an inactive member of the group, and only while the group
//! has no active members.
//!
//! Kafka has an admin request to alter a group's offsets, but rust-rdkafka does not
//! expose it. A consumer that never subscribes does not join the group; it can still
//! commit offsets for partitions it assigned itself, and the broker accepts such a
//! commit while the group is empty (an active group would reject or overwrite it).
//! So: check the group is empty, assign the partitions, commit synchronously, read
//! the offsets back.
//!
//! Some brokers cannot list a group's members (ListGroups/DescribeGroups; librdkafka's
//! mock cluster answers "unsupported"), and the mock cluster refuses an outsider's
//! commit for any group it has seen. There the commit is made as a member instead:
//! join the group, and commit only when the group assigned *this* member every
//! partition to change — no other member can then consume or commit them — then
//! leave. When another member holds one of them the reset is refused
//! ([`ReplayError::PartitionsHeldByOthers`]); joining makes an active group rebalance
//! (twice: in, and out), which is why this is only done where the group cannot be
//! listed.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use super::admin::{Blocking, OffsetAdmin};
use super::error::ReplayError;
use super::plan::ResetPlan;

/// How a commit may go ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Gate {
    /// The broker listed the group: it has no members. Commit from outside.
    Empty,
    /// The broker cannot list groups: commit as the owner of the partitions.
    Unlisted,
}

/// Whether the error says the brokers do not implement ListGroups/DescribeGroups (as
/// opposed to being unreachable).
fn is_unsupported(error: &KafkaError) -> bool {
    matches!(
        error,
        KafkaError::GroupListFetch(RDKafkaErrorCode::UnsupportedFeature)
    )
}

/// Records the partitions of the first assignment the group gives the member.
#[derive(Default)]
struct AssignmentWatch {
    assigned: Mutex<Option<Vec<(String, i32)>>>,
}

/// Offsets to commit, and the partitions they are for.
type CommitList = (TopicPartitionList, Vec<(String, i32)>);

impl ClientContext for AssignmentWatch {}

impl ConsumerContext for AssignmentWatch {
    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            let partitions = tpl
                .elements()
                .iter()
                .map(|e| (e.topic().to_owned(), e.partition()))
                .collect();
            if let Ok(mut assigned) = self.assigned.lock() {
                *assigned = Some(partitions);
            }
        }
    }
}

impl Blocking {
    /// [`ensure_inactive`](Self::ensure_inactive), except that brokers which cannot
    /// list groups let the commit go ahead as a member ([`Gate::Unlisted`]).
    pub fn gate(&self) -> Result<Gate, ReplayError> {
        match self.ensure_inactive() {
            Ok(()) => Ok(Gate::Empty),
            Err(ReplayError::GroupStateUnavailable { source, .. }) if is_unsupported(&source) => {
                tracing::info!(
                    group = %self.group,
                    bootstrap_servers = %self.bootstrap_servers,
                    error = %source,
                    "the brokers cannot list consumer groups; the new offsets will be committed as the group's only owner of the partitions"
                );
                Ok(Gate::Unlisted)
            }
            Err(error) => Err(error),
        }
    }

    /// Fails with [`ReplayError::GroupActive`] when the group has members.
    pub fn ensure_inactive(&self) -> Result<(), ReplayError> {
        let state = self.group_state()?;
        if state.is_active() {
            tracing::warn!(
                group = %self.group,
                state = %state.state,
                members = state.members.len(),
                "offset reset refused: the group has active members"
            );
            return Err(ReplayError::GroupActive {
                group: self.group.clone(),
                state: state.state,
                members: state.members.iter().map(ToString::to_string).collect(),
            });
        }
        Ok(())
    }

    /// The plan's changes as a list to commit, with their partitions; `None` when it
    /// changes nothing.
    fn offsets_to_commit(&self, plan: &ResetPlan) -> Result<Option<CommitList>, ReplayError> {
        let mut tpl = TopicPartitionList::new();
        let mut keys = Vec::new();
        for (topic, partition, offset) in plan.changes() {
            tpl.add_partition_offset(topic, partition, Offset::Offset(offset))
                .map_err(self.kafka_error("building the list of offsets to commit"))?;
            keys.push((topic.to_owned(), partition));
        }
        Ok((!keys.is_empty()).then_some((tpl, keys)))
    }

    fn commit_plan(&self, plan: &ResetPlan) -> Result<(), ReplayError> {
        let Some((tpl, keys)) = self.offsets_to_commit(plan)? else {
            return Ok(());
        };
        self.consumer
            .assign(&tpl)
            .map_err(self.kafka_error("assigning the partitions to commit"))?;
        let committed = self.consumer.commit(&tpl, CommitMode::Sync);
        // Leave nothing assigned, whatever the commit did.
        if let Err(error) = self.consumer.unassign() {
            tracing::debug!(error = %error, "unassign after the offset commit failed");
        }
        self.commit_outcome(committed, "the group has active members")?;
        self.verify_committed(plan, &keys)
    }

    /// Reads the group's offsets back: they must be the plan's.
    fn verify_committed(
        &self,
        plan: &ResetPlan,
        keys: &[(String, i32)],
    ) -> Result<(), ReplayError> {
        let stored = self.committed(keys)?;
        let mismatches: Vec<String> = plan
            .changes()
            .filter_map(|(topic, partition, wanted)| {
                let found = stored
                    .get(&(topic.to_owned(), partition))
                    .copied()
                    .flatten();
                (found != Some(wanted)).then(|| {
                    let found = found.map_or_else(|| "none".to_string(), |o| o.to_string());
                    format!("{topic}[{partition}]: wanted {wanted}, found {found}")
                })
            })
            .collect();
        if !mismatches.is_empty() {
            return Err(ReplayError::NotApplied {
                group: self.group.clone(),
                mismatches,
            });
        }
        Ok(())
    }

    /// Commits `plan` as a member of the group that owns every partition it changes
    /// (see the module docs), then leaves the group and reads the offsets back.
    fn commit_plan_as_member(&self, plan: &ResetPlan) -> Result<(), ReplayError> {
        let Some((tpl, keys)) = self.offsets_to_commit(plan)? else {
            return Ok(());
        };
        let topics: BTreeSet<&str> = keys.iter().map(|(topic, _)| topic.as_str()).collect();
        let topics: Vec<&str> = topics.into_iter().collect();
        let mut config = self.kafka.client_config(&[]);
        // A static member id would fence the consumer that owns it.
        config.remove("group.instance.id");
        let member: BaseConsumer<AssignmentWatch> = config
            .set("group.id", &self.group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            .create_with_context(AssignmentWatch::default())
            .map_err(|e| {
                ReplayError::Client(Box::new(crate::config::secret::redact_kafka_error(e)))
            })?;
        let group = self.group.clone();
        member.subscribe(&topics).map_err(self.kafka_error(format!(
            "joining consumer group `{group}` to commit its new offsets"
        )))?;
        let outcome = self.commit_as_owner(&member, &tpl, &keys);
        // Leave the group whatever happened (closing the consumer sends LeaveGroup);
        // nothing was stored for it to commit on the way out.
        member.unsubscribe();
        drop(member);
        outcome?;
        self.verify_committed(plan, &keys)
    }

    fn commit_as_owner(
        &self,
        member: &BaseConsumer<AssignmentWatch>,
        tpl: &TopicPartitionList,
        keys: &[(String, i32)],
    ) -> Result<(), ReplayError> {
        // A join waits for the group's other members to rejoin (up to their session
        // timeout) and, on an empty group, for the broker's initial rebalance delay.
        let deadline = Instant::now() + self.timeout * 3;
        let assigned = loop {
            // Records fetched meanwhile are dropped: this member never processes one.
            if let Some(Err(error)) = member.poll(Duration::from_millis(100)) {
                tracing::debug!(group = %self.group, error = %error, "while joining the group to commit");
            }
            let seen = member
                .context()
                .assigned
                .lock()
                .map_err(|_| ReplayError::Interrupted("the assignment watch was poisoned".into()))?
                .clone();
            if let Some(assigned) = seen {
                break assigned;
            }
            if Instant::now() >= deadline {
                return Err(ReplayError::JoinTimedOut {
                    group: self.group.clone(),
                    bootstrap_servers: self.bootstrap_servers.clone(),
                    waited: self.timeout * 3,
                });
            }
        };
        let held_by_others: Vec<String> = keys
            .iter()
            .filter(|key| !assigned.contains(key))
            .map(|(topic, partition)| format!("{topic}[{partition}]"))
            .collect();
        if !held_by_others.is_empty() {
            tracing::warn!(
                group = %self.group,
                partitions = ?held_by_others,
                "offset reset refused: other members of the group hold partitions to change"
            );
            return Err(ReplayError::PartitionsHeldByOthers {
                group: self.group.clone(),
                partitions: held_by_others,
            });
        }
        // Refused when someone joined between the assignment and the commit.
        self.commit_outcome(
            member.commit(tpl, CommitMode::Sync),
            "the group is rebalancing",
        )
    }

    /// Maps a commit's result: the broker's refusals of a commit from a member it
    /// does not count in the group's generation become [`ReplayError::CommitRefused`]
    /// (logged with `why` as the likely reason), other errors say what was being
    /// committed.
    fn commit_outcome(
        &self,
        committed: Result<(), KafkaError>,
        why: &'static str,
    ) -> Result<(), ReplayError> {
        match committed {
            Ok(()) => Ok(()),
            Err(KafkaError::ConsumerCommit(
                code @ (RDKafkaErrorCode::UnknownMemberId
                | RDKafkaErrorCode::IllegalGeneration
                | RDKafkaErrorCode::RebalanceInProgress
                | RDKafkaErrorCode::FencedInstanceId),
            )) => {
                tracing::warn!(group = %self.group, code = ?code, why, "offset reset refused by the broker");
                Err(ReplayError::CommitRefused {
                    group: self.group.clone(),
                    code,
                })
            }
            Err(source) => {
                let group = self.group.clone();
                Err(self.kafka_error(format!(
                    "committing the new offsets of group `{group}`"
                ))(source))
            }
        }
    }
}

impl OffsetAdmin {
    /// Commits `plan` for the group, after checking that the group has no active
    /// members, then reads the offsets back to prove they stuck.
    ///
    /// # Errors
    ///
    /// [`ReplayError::GroupActive`] while consumers are in the group (stop them
    /// first), [`ReplayError::GroupStateUnavailable`] when the cluster cannot be
    /// asked, [`ReplayError::NotApplied`] when a consumer committed meanwhile. On
    /// brokers that do not implement listing groups (librdkafka's mock cluster) the
    /// commit is made by joining the group as the owner of the partitions to change,
    /// refused with [`ReplayError::PartitionsHeldByOthers`] when another member holds
    /// some of them.
    ///
    /// ```no_run
    /// use event_bus_kafka::config::KafkaConfig;
    /// use event_bus_kafka::replay::{OffsetAdmin, ResetTarget};
    /// # async fn demo() -> Result<(), event_bus_kafka::replay::ReplayError> {
    /// let admin = OffsetAdmin::new(&KafkaConfig::new("localhost:9092"), "mailer")?;
    /// let plan = admin.plan(&["orders".to_string()], &ResetTarget::Latest).await?;
    /// admin.apply(&plan).await?;
    /// # Ok(()) }
    /// ```
    pub async fn apply(&self, plan: &ResetPlan) -> Result<(), ReplayError> {
        let plan = plan.clone();
        self.blocking(move |b| {
            match b.gate()? {
                Gate::Empty => b.commit_plan(&plan)?,
                Gate::Unlisted => b.commit_plan_as_member(&plan)?,
            }
            tracing::info!(
                group = %plan.group,
                target = %plan.target,
                partitions = plan.changes().count(),
                "offset reset committed"
            );
            Ok(())
        })
        .await
    }

    /// Fails with [`ReplayError::GroupActive`] when the group has members, and with
    /// [`ReplayError::GroupStateUnavailable`] when the brokers cannot say.
    ///
    /// ```no_run
    /// # async fn demo(admin: &event_bus_kafka::replay::OffsetAdmin) -> Result<(), event_bus_kafka::replay::ReplayError> {
    /// admin.ensure_inactive().await?;
    /// # Ok(()) }
    /// ```
    pub async fn ensure_inactive(&self) -> Result<(), ReplayError> {
        self.blocking(|b| b.ensure_inactive()).await
    }

    /// Fails with [`ReplayError::GroupActive`] when the group has members; brokers
    /// that cannot list groups pass (`apply` then commits as the partitions' owner).
    pub(crate) async fn refuse_if_active(&self) -> Result<(), ReplayError> {
        self.blocking(|b| b.gate().map(|_| ())).await
    }
}
