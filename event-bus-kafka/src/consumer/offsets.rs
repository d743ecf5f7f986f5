//! Which offsets may be committed: never past a record still in progress, and never
//! for a partition this member does not own.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tokio::sync::watch;

/// One ownership of one partition: given when the partition is assigned, ended when it
/// is revoked. Records carry the assignment they were read under, so finishing a
/// record of a revoked partition (or of an earlier assignment of it) changes nothing.
///
/// ```
/// use event_bus_kafka::consumer::OffsetTracker;
/// let mut t = OffsetTracker::default();
/// let first = t.assigned("orders", 0);
/// assert!(first.is_current());
/// t.revoked("orders", 0);
/// assert!(!first.is_current());
/// ```
#[derive(Debug, Clone)]
pub struct Assignment {
    epoch: u64,
    revoked: watch::Receiver<bool>,
}

impl Assignment {
    /// Whether the partition is still owned under this assignment.
    ///
    /// See the type's example.
    pub fn is_current(&self) -> bool {
        !*self.revoked.borrow()
    }

    /// Resolves once the partition is revoked (at once if it already is).
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # use event_bus_kafka::consumer::OffsetTracker;
    /// let mut t = OffsetTracker::default();
    /// let assignment = t.assigned("orders", 0);
    /// t.revoked("orders", 0);
    /// assignment.ended().await;
    /// # });
    /// ```
    pub async fn ended(&self) {
        let mut revoked = self.revoked.clone();
        // The sender is dropped only with the tracker's state of this assignment.
        let _ = revoked.wait_for(|r| *r).await;
    }
}

/// Per partition owned, the records in progress and the position that is safe to
/// commit.
///
/// A partition is *assigned* (the group gave it to this member) before any of its
/// records is *started*, and *revoked* when the group takes it away. A record is
/// finished when every receiver succeeded, or its dead letter was acknowledged, or
/// it was skipped. The commit position of a partition is the lowest offset still in
/// progress, or one past the highest finished offset when none is in progress, so a
/// commit never skips a record that is not done. A position counts as committed only
/// when the broker confirmed it.
///
/// ```
/// use event_bus_kafka::consumer::OffsetTracker;
/// let mut t = OffsetTracker::default();
/// t.assigned("orders", 0);
/// let a = t.started("orders", 0, 10).expect("owned");
/// let b = t.started("orders", 0, 11).expect("owned");
/// t.finished("orders", 0, 11, &b);
/// // 11 is done but 10 is not: the commit stops at 10, never past it.
/// assert_eq!(t.to_commit(), vec![("orders".to_string(), 0, 10)]);
/// t.finished("orders", 0, 10, &a);
/// assert_eq!(t.to_commit(), vec![("orders".to_string(), 0, 12)]);
/// t.committed("orders", 0, 12);
/// assert!(t.to_commit().is_empty());
///
/// // A partition that was never assigned (or was revoked) takes no records.
/// assert!(t.started("orders", 1, 0).is_none());
/// ```
#[derive(Debug, Default)]
pub struct OffsetTracker {
    /// By topic, then partition: looked up by `&str`, so a record costs no allocation.
    partitions: BTreeMap<String, BTreeMap<i32, PartitionState>>,
    /// Resume timestamps of partitions this consumer no longer owns (revoked, or the
    /// loop stopped), so a resume token taken after `run` still covers them.
    released: BTreeMap<(String, i32), i64>,
    /// The last assignment epoch given out.
    last_epoch: u64,
}

/// A record in progress.
#[derive(Debug, Clone, Copy)]
struct InProgress {
    /// The record's timestamp (milliseconds since the epoch).
    timestamp: Option<i64>,
    /// When the loop took it.
    taken: Instant,
    /// Given up (shutdown in the middle of it): it holds the position for good, even
    /// if it is reported finished later.
    abandoned: bool,
}

/// The record in progress for the longest time, for health reports.
///
/// ```
/// use event_bus_kafka::consumer::OffsetTracker;
/// let mut t = OffsetTracker::default();
/// t.assigned("orders", 3);
/// t.started("orders", 3, 42);
/// let oldest = t.oldest_in_progress().expect("one record");
/// assert_eq!((oldest.topic.as_str(), oldest.partition, oldest.offset), ("orders", 3, 42));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OldestRecord {
    /// Its topic.
    pub topic: String,
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// How long ago the loop took it.
    pub age: Duration,
}

#[derive(Debug)]
struct PartitionState {
    epoch: u64,
    /// Told `true` when the partition is revoked.
    revoke: watch::Sender<bool>,
    in_progress: BTreeMap<i64, InProgress>,
    highest_finished: Option<i64>,
    last_finished_timestamp: Option<i64>,
    committed: Option<i64>,
}

impl PartitionState {
    fn new(epoch: u64) -> Self {
        Self {
            epoch,
            revoke: watch::channel(false).0,
            in_progress: BTreeMap::new(),
            highest_finished: None,
            last_finished_timestamp: None,
            committed: None,
        }
    }

    fn assignment(&self) -> Assignment {
        Assignment {
            epoch: self.epoch,
            revoked: self.revoke.subscribe(),
        }
    }

    fn position(&self) -> Option<i64> {
        // Nothing finished yet: nothing to move forward.
        self.highest_finished?;
        match self.in_progress.keys().next() {
            Some(lowest) => Some(*lowest),
            None => self.highest_finished.map(|o| o + 1),
        }
    }

    /// A timestamp to resume from without missing anything: the earliest record still
    /// in progress, or else the last finished one (read again, a duplicate).
    fn resume_timestamp(&self) -> Option<i64> {
        if self.in_progress.is_empty() {
            self.last_finished_timestamp
        } else {
            self.in_progress.values().filter_map(|r| r.timestamp).min()
        }
    }
}

impl OffsetTracker {
    /// The group gave this member `partition` of `topic`: its records may be started
    /// from now on, under the returned assignment. An assignment still open for the
    /// partition ends first.
    ///
    /// See the type's example.
    pub fn assigned(&mut self, topic: &str, partition: i32) -> Assignment {
        self.revoked(topic, partition);
        self.last_epoch += 1;
        let state = PartitionState::new(self.last_epoch);
        let assignment = state.assignment();
        self.partitions
            .entry(topic.to_owned())
            .or_default()
            .insert(partition, state);
        self.released.remove(&(topic.to_owned(), partition));
        assignment
    }

    /// The group took `partition` of `topic` away: its assignment ends (records of it
    /// finish without effect), and nothing more is committed for it.
    ///
    /// ```
    /// # use event_bus_kafka::consumer::OffsetTracker;
    /// let mut t = OffsetTracker::default();
    /// t.assigned("t", 0);
    /// let a = t.started("t", 0, 1).expect("owned");
    /// t.revoked("t", 0);
    /// t.finished("t", 0, 1, &a);
    /// assert!(t.to_commit().is_empty());
    /// // Assigned again: records of the old assignment still change nothing.
    /// t.assigned("t", 0);
    /// t.finished("t", 0, 1, &a);
    /// assert!(t.to_commit().is_empty());
    /// // A token taken later still covers the partition.
    /// t.assigned("t", 1);
    /// t.started_at("t", 1, 9, Some(500));
    /// t.revoked("t", 1);
    /// assert_eq!(t.resume_timestamps(), vec![("t".to_string(), 1, 500)]);
    /// ```
    pub fn revoked(&mut self, topic: &str, partition: i32) {
        let removed = self
            .partitions
            .get_mut(topic)
            .and_then(|partitions| partitions.remove(&partition));
        if let Some(state) = removed {
            state.revoke.send_replace(true);
            if let Some(ts) = state.resume_timestamp() {
                self.released.insert((topic.to_owned(), partition), ts);
            }
        }
    }

    /// Whether `partition` of `topic` is assigned to this member now.
    ///
    /// ```
    /// # use event_bus_kafka::consumer::OffsetTracker;
    /// let mut t = OffsetTracker::default();
    /// assert!(!t.owns("t", 0));
    /// t.assigned("t", 0);
    /// assert!(t.owns("t", 0));
    /// ```
    pub fn owns(&self, topic: &str, partition: i32) -> bool {
        self.owned(topic, partition).is_some()
    }

    /// The loop took the record at `offset`: its assignment, or `None` when the
    /// partition is not owned (the record belongs to another member; leave it alone).
    ///
    /// See the type's example.
    pub fn started(&mut self, topic: &str, partition: i32, offset: i64) -> Option<Assignment> {
        self.started_at(topic, partition, offset, None)
    }

    /// The loop took the record at `offset`, written at `timestamp` (milliseconds
    /// since the epoch), which resume tokens are made of.
    ///
    /// ```
    /// # use event_bus_kafka::consumer::OffsetTracker;
    /// let mut t = OffsetTracker::default();
    /// t.assigned("t", 0);
    /// let a = t.started_at("t", 0, 1, Some(1_000)).expect("owned");
    /// t.finished("t", 0, 1, &a);
    /// assert_eq!(t.resume_timestamps(), vec![("t".to_string(), 0, 1_000)]);
    /// ```
    pub fn started_at(
        &mut self,
        topic: &str,
        partition: i32,
        offset: i64,
        timestamp: Option<i64>,
    ) -> Option<Assignment> {
        let state = self.owned_mut(topic, partition)?;
        state.in_progress.insert(
            offset,
            InProgress {
                timestamp,
                taken: Instant::now(),
                abandoned: false,
            },
        );
        Some(state.assignment())
    }

    /// Per partition, the timestamp a consumer elsewhere can resume from (see
    /// `offsets_for_times`) and miss nothing this one has not finished.
    ///
    /// See [`OffsetTracker::started_at`].
    pub fn resume_timestamps(&self) -> Vec<(String, i32, i64)> {
        let mut all = self.released.clone();
        for (topic, partitions) in &self.partitions {
            for (partition, state) in partitions {
                if let Some(ts) = state.resume_timestamp() {
                    all.insert((topic.clone(), *partition), ts);
                }
            }
        }
        all.into_iter()
            .map(|((topic, partition), ts)| (topic, partition, ts))
            .collect()
    }

    /// The record at `offset`, started under `assignment`, is done. Nothing changes
    /// when that assignment has ended.
    ///
    /// See the type's example.
    pub fn finished(&mut self, topic: &str, partition: i32, offset: i64, assignment: &Assignment) {
        let Some(state) = self.current_mut(topic, partition, assignment) else {
            return;
        };
        if state.in_progress.get(&offset).is_some_and(|r| r.abandoned) {
            return;
        }
        if let Some(InProgress {
            timestamp: Some(ts),
            ..
        }) = state.in_progress.remove(&offset)
        {
            state.last_finished_timestamp =
                Some(state.last_finished_timestamp.map_or(ts, |t| t.max(ts)));
        }
        state.highest_finished = Some(state.highest_finished.map_or(offset, |h| h.max(offset)));
    }

    /// The record at `offset`, in progress, will not be finished by this consumer
    /// (shutdown in the middle of it): it stays uncommitted, so it is read again after
    /// a restart, even if it is reported finished later.
    ///
    /// ```
    /// # use event_bus_kafka::consumer::OffsetTracker;
    /// let mut t = OffsetTracker::default();
    /// t.assigned("t", 0);
    /// let a = t.started("t", 0, 5).expect("owned");
    /// t.abandoned("t", 0, 5, &a);
    /// assert!(t.to_commit().is_empty());
    ///
    /// // Abandoning a record never releases an earlier one that is still running.
    /// let a = t.assigned("t", 1);
    /// t.started("t", 1, 9);
    /// t.finished("t", 1, 9, &a);
    /// t.started("t", 1, 10); // still running (another key)
    /// t.started("t", 1, 11);
    /// t.abandoned("t", 1, 11, &a);
    /// assert_eq!(t.to_commit(), vec![("t".to_string(), 1, 10)]);
    /// t.finished("t", 1, 10, &a);
    /// assert_eq!(t.to_commit(), vec![("t".to_string(), 1, 11)]);
    /// ```
    pub fn abandoned(&mut self, topic: &str, partition: i32, offset: i64, assignment: &Assignment) {
        // The record stays in progress for good, so no commit reaches it; records
        // below it that are still running keep holding the position too.
        // A record that finished already stays finished.
        if let Some(record) = self
            .current_mut(topic, partition, assignment)
            .and_then(|state| state.in_progress.get_mut(&offset))
        {
            record.abandoned = true;
        }
    }

    /// Positions (next offset to read) of owned partitions that are ahead of what the
    /// broker confirmed.
    ///
    /// See the type's example.
    pub fn to_commit(&self) -> Vec<(String, i32, i64)> {
        self.partitions
            .iter()
            .flat_map(|(topic, partitions)| {
                partitions.iter().filter_map(move |(partition, state)| {
                    let position = state.position()?;
                    (Some(position) > state.committed)
                        .then(|| (topic.clone(), *partition, position))
                })
            })
            .collect()
    }

    /// The broker confirmed `position` for the partition. Ignored for a partition not
    /// owned.
    ///
    /// See the type's example.
    pub fn committed(&mut self, topic: &str, partition: i32, position: i64) {
        if let Some(state) = self.owned_mut(topic, partition) {
            state.committed = Some(state.committed.map_or(position, |c| c.max(position)));
        }
    }

    /// The record in progress for the longest time, if any.
    ///
    /// See [`OldestRecord`].
    pub fn oldest_in_progress(&self) -> Option<OldestRecord> {
        let now = Instant::now();
        self.partitions
            .iter()
            .flat_map(|(topic, partitions)| {
                partitions.iter().filter_map(move |(partition, state)| {
                    let (offset, record) = state.in_progress.iter().min_by_key(|(_, r)| r.taken)?;
                    Some((topic, *partition, *offset, record.taken))
                })
            })
            .min_by_key(|(_, _, _, taken)| *taken)
            .map(|(topic, partition, offset, taken)| OldestRecord {
                topic: topic.clone(),
                partition,
                offset,
                age: now.saturating_duration_since(taken),
            })
    }

    fn owned(&self, topic: &str, partition: i32) -> Option<&PartitionState> {
        self.partitions.get(topic)?.get(&partition)
    }

    fn owned_mut(&mut self, topic: &str, partition: i32) -> Option<&mut PartitionState> {
        self.partitions.get_mut(topic)?.get_mut(&partition)
    }

    fn current_mut(
        &mut self,
        topic: &str,
        partition: i32,
        assignment: &Assignment,
    ) -> Option<&mut PartitionState> {
        self.owned_mut(topic, partition)
            .filter(|state| state.epoch == assignment.epoch)
    }
}

#[cfg(test)]
mod tests {
    use super::OffsetTracker;

    /// The defect this type's assignments fix: a record of a revoked partition that
    /// finished later used to bring the partition back and commit past records that
    /// never finished.
    #[test]
    fn a_record_finishing_after_its_partition_was_revoked_commits_nothing() {
        let mut t = OffsetTracker::default();
        t.assigned("t", 0);
        let first = t.started("t", 0, 10).expect("owned");
        let late = t.started("t", 0, 11).expect("owned");
        t.revoked("t", 0);
        t.finished("t", 0, 11, &late);
        assert!(t.to_commit().is_empty());
        assert!(!t.owns("t", 0));
        t.committed("t", 0, 12);
        assert!(
            !t.owns("t", 0),
            "a late commit confirmation does not own it"
        );

        // Owned again (another member had it meanwhile): the old records stay inert,
        // and the new assignment's own records move the position.
        let again = t.assigned("t", 0);
        t.finished("t", 0, 10, &first);
        assert!(t.to_commit().is_empty());
        t.started("t", 0, 20);
        t.finished("t", 0, 20, &again);
        assert_eq!(t.to_commit(), vec![("t".to_string(), 0, 21)]);
    }

    #[test]
    fn oldest_in_progress_is_the_earliest_taken_record() {
        let mut t = OffsetTracker::default();
        assert!(t.oldest_in_progress().is_none());
        t.assigned("a", 0);
        t.assigned("b", 1);
        t.started("b", 1, 7);
        let a = t.started("a", 0, 3).expect("owned");
        assert_eq!(t.oldest_in_progress().map(|o| o.offset), Some(7));
        t.finished("a", 0, 3, &a);
        t.revoked("b", 1);
        assert!(t.oldest_in_progress().is_none());
    }
}
