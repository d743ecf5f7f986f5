//! Which offsets may be committed: never past a record still in progress.

use std::collections::BTreeMap;

/// Per partition, the records in progress and the position that is safe to commit.
///
/// A record is *started* when the loop takes it and *finished* when every receiver
/// succeeded, or its dead letter was acknowledged, or it was skipped. The commit
/// position of a partition is the lowest offset still in progress, or one past the
/// highest finished offset when none is in progress, so a commit never skips a record
/// that is not done.
///
/// ```
/// use event_bus_kafka::consumer::OffsetTracker;
/// let mut t = OffsetTracker::default();
/// t.started("orders", 0, 10);
/// t.started("orders", 0, 11);
/// t.finished("orders", 0, 11);
/// // 11 is done but 10 is not: the commit stops at 10, never past it.
/// assert_eq!(t.to_commit(), vec![("orders".to_string(), 0, 10)]);
/// t.finished("orders", 0, 10);
/// assert_eq!(t.to_commit(), vec![("orders".to_string(), 0, 12)]);
/// t.committed("orders", 0, 12);
/// assert!(t.to_commit().is_empty());
/// ```
#[derive(Debug, Default)]
pub struct OffsetTracker {
    /// By topic, then partition: looked up by `&str`, so a record costs no allocation.
    partitions: BTreeMap<String, BTreeMap<i32, PartitionState>>,
    /// Resume timestamps of partitions this consumer no longer owns (revoked, or the
    /// loop stopped), so a resume token taken after `run` still covers them.
    released: BTreeMap<(String, i32), i64>,
}

#[derive(Debug, Default)]
struct PartitionState {
    /// Offsets in progress, with their record timestamps.
    in_progress: BTreeMap<i64, Option<i64>>,
    highest_finished: Option<i64>,
    last_finished_timestamp: Option<i64>,
    committed: Option<i64>,
}

impl PartitionState {
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
            self.in_progress.values().flatten().min().copied()
        }
    }
}

impl OffsetTracker {
    /// The loop took the record at `offset`.
    ///
    /// See the type's example.
    pub fn started(&mut self, topic: &str, partition: i32, offset: i64) {
        self.started_at(topic, partition, offset, None);
    }

    /// The loop took the record at `offset`, written at `timestamp` (milliseconds
    /// since the epoch), which resume tokens are made of.
    ///
    /// ```
    /// # use event_bus_kafka::consumer::OffsetTracker;
    /// let mut t = OffsetTracker::default();
    /// t.started_at("t", 0, 1, Some(1_000));
    /// t.finished("t", 0, 1);
    /// assert_eq!(t.resume_timestamps(), vec![("t".to_string(), 0, 1_000)]);
    /// ```
    pub fn started_at(&mut self, topic: &str, partition: i32, offset: i64, timestamp: Option<i64>) {
        self.state(topic, partition)
            .in_progress
            .insert(offset, timestamp);
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

    /// The record at `offset` is done.
    ///
    /// See the type's example.
    pub fn finished(&mut self, topic: &str, partition: i32, offset: i64) {
        let state = self.state(topic, partition);
        if let Some(Some(ts)) = state.in_progress.remove(&offset) {
            state.last_finished_timestamp =
                Some(state.last_finished_timestamp.map_or(ts, |t| t.max(ts)));
        }
        state.highest_finished = Some(state.highest_finished.map_or(offset, |h| h.max(offset)));
    }

    /// The record at `offset` will not be finished by this consumer (shutdown in the
    /// middle of it): it stays uncommitted, so it is read again after a restart.
    ///
    /// ```
    /// # use event_bus_kafka::consumer::OffsetTracker;
    /// let mut t = OffsetTracker::default();
    /// t.started("t", 0, 5);
    /// t.abandoned("t", 0, 5);
    /// assert!(t.to_commit().is_empty());
    ///
    /// // Abandoning a record never releases an earlier one that is still running.
    /// t.started("t", 1, 9);
    /// t.finished("t", 1, 9);
    /// t.started("t", 1, 10); // still running (another key)
    /// t.started("t", 1, 11);
    /// t.abandoned("t", 1, 11);
    /// assert_eq!(t.to_commit(), vec![("t".to_string(), 1, 10)]);
    /// t.finished("t", 1, 10);
    /// assert_eq!(t.to_commit(), vec![("t".to_string(), 1, 11)]);
    /// ```
    pub fn abandoned(&mut self, topic: &str, partition: i32, offset: i64) {
        // The record stays in progress for good, so no commit reaches it; records
        // below it that are still running keep holding the position too.
        self.state(topic, partition)
            .in_progress
            .entry(offset)
            .or_insert(None);
    }

    /// Positions (next offset to read) that are ahead of what was committed.
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

    /// `position` was committed for the partition.
    ///
    /// See the type's example.
    pub fn committed(&mut self, topic: &str, partition: i32, position: i64) {
        let state = self.state(topic, partition);
        state.committed = Some(state.committed.map_or(position, |c| c.max(position)));
    }

    /// Forgets a partition (revoked in a rebalance).
    ///
    /// ```
    /// # use event_bus_kafka::consumer::OffsetTracker;
    /// let mut t = OffsetTracker::default();
    /// t.started("t", 0, 1);
    /// t.finished("t", 0, 1);
    /// t.forget("t", 0);
    /// assert!(t.to_commit().is_empty());
    /// // A token taken later still covers the partition.
    /// t.started_at("t", 1, 9, Some(500));
    /// t.forget("t", 1);
    /// assert_eq!(t.resume_timestamps(), vec![("t".to_string(), 1, 500)]);
    /// ```
    pub fn forget(&mut self, topic: &str, partition: i32) {
        let removed = self
            .partitions
            .get_mut(topic)
            .and_then(|partitions| partitions.remove(&partition));
        if let Some(ts) = removed.and_then(|s| s.resume_timestamp()) {
            self.released.insert((topic.to_owned(), partition), ts);
        }
    }

    fn state(&mut self, topic: &str, partition: i32) -> &mut PartitionState {
        if !self.partitions.contains_key(topic) {
            self.partitions.insert(topic.to_owned(), BTreeMap::new());
        }
        self.partitions
            .get_mut(topic)
            .map(|partitions| partitions.entry(partition).or_default())
            .unwrap_or_else(|| unreachable!("the topic was inserted just above"))
    }
}
