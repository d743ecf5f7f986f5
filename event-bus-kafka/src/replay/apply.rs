//! Committing a plan: as an inactive member of the group, and only while the group
//! has no active members.
//!
//! Kafka has an admin request to alter a group's offsets, but rust-rdkafka does not
//! expose it. A consumer that never subscribes does not join the group; it can still
//! commit offsets for partitions it assigned itself, and the broker accepts such a
//! commit while the group is empty (an active group would reject or overwrite it).
//! So: check the group is empty, assign the partitions, commit synchronously, read
//! the offsets back.

use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use super::admin::{Blocking, OffsetAdmin};
use super::error::ReplayError;
use super::plan::ResetPlan;

impl Blocking {
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

    fn commit_plan(&self, plan: &ResetPlan) -> Result<(), ReplayError> {
        let mut tpl = TopicPartitionList::new();
        let mut keys = Vec::new();
        for (topic, partition, offset) in plan.changes() {
            tpl.add_partition_offset(topic, partition, Offset::Offset(offset))
                .map_err(self.kafka_error("building the list of offsets to commit"))?;
            keys.push((topic.to_owned(), partition));
        }
        if keys.is_empty() {
            return Ok(());
        }
        self.consumer
            .assign(&tpl)
            .map_err(self.kafka_error("assigning the partitions to commit"))?;
        let committed = self.consumer.commit(&tpl, CommitMode::Sync);
        // Leave nothing assigned, whatever the commit did.
        if let Err(error) = self.consumer.unassign() {
            tracing::debug!(error = %error, "unassign after the offset commit failed");
        }
        match committed {
            Ok(()) => {}
            // The broker refuses an outsider's commit while the group has a generation.
            Err(KafkaError::ConsumerCommit(
                code @ (RDKafkaErrorCode::UnknownMemberId
                | RDKafkaErrorCode::IllegalGeneration
                | RDKafkaErrorCode::RebalanceInProgress
                | RDKafkaErrorCode::FencedInstanceId),
            )) => {
                tracing::warn!(group = %self.group, code = ?code, "offset reset refused by the broker: the group has active members");
                return Err(ReplayError::CommitRefused {
                    group: self.group.clone(),
                    code,
                });
            }
            Err(source) => {
                let group = self.group.clone();
                return Err(self.kafka_error(format!(
                    "committing the new offsets of group `{group}`"
                ))(source));
            }
        }
        let stored = self.committed(&keys)?;
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
}

impl OffsetAdmin {
    /// Commits `plan` for the group, after checking that the group has no active
    /// members, then reads the offsets back to prove they stuck.
    ///
    /// # Errors
    ///
    /// [`ReplayError::GroupActive`] while consumers are in the group (stop them
    /// first), [`ReplayError::GroupStateUnavailable`] when the cluster cannot say,
    /// [`ReplayError::NotApplied`] when a consumer committed meanwhile.
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
            b.ensure_inactive()?;
            b.commit_plan(&plan)?;
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

    /// Fails with [`ReplayError::GroupActive`] when the group has members.
    ///
    /// ```no_run
    /// # async fn demo(admin: &event_bus_kafka::replay::OffsetAdmin) -> Result<(), event_bus_kafka::replay::ReplayError> {
    /// admin.ensure_inactive().await?;
    /// # Ok(()) }
    /// ```
    pub async fn ensure_inactive(&self) -> Result<(), ReplayError> {
        self.blocking(|b| b.ensure_inactive()).await
    }
}
