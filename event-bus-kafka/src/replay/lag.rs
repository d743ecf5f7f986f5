//! Consumer lag: per partition, the committed offset, the end offset and the records
//! in between.

use super::admin::{OffsetAdmin, PartitionOffsets};
use super::error::ReplayError;

/// Total lag of some partitions (those without a committed offset count nothing).
///
/// ```
/// use event_bus_kafka::replay::{total_lag, PartitionOffsets};
/// let parts = [
///     PartitionOffsets { topic: "t".into(), partition: 0, committed: Some(3), earliest: 0, latest: 5 },
///     PartitionOffsets { topic: "t".into(), partition: 1, committed: None, earliest: 0, latest: 9 },
/// ];
/// assert_eq!(total_lag(&parts), 2);
/// ```
pub fn total_lag(partitions: &[PartitionOffsets]) -> i64 {
    partitions.iter().filter_map(PartitionOffsets::lag).sum()
}

impl OffsetAdmin {
    /// Per partition of `topics`: committed offset, end offset and lag
    /// ([`PartitionOffsets::lag`]); partitions the group never committed have no lag.
    ///
    /// Lag is the high watermark minus the committed offset.
    ///
    /// ```no_run
    /// # async fn demo(admin: &event_bus_kafka::replay::OffsetAdmin) -> Result<(), event_bus_kafka::replay::ReplayError> {
    /// let partitions = admin.lag(&["orders".to_string()]).await?;
    /// println!("total lag {}", event_bus_kafka::replay::total_lag(&partitions));
    /// # Ok(()) }
    /// ```
    pub async fn lag(&self, topics: &[String]) -> Result<Vec<PartitionOffsets>, ReplayError> {
        self.offsets(topics).await
    }

    /// Like [`lag`](Self::lag) for every topic the group has committed offsets in
    /// (found by asking for the group's offsets on every partition of the cluster).
    ///
    /// ```no_run
    /// # async fn demo(admin: &event_bus_kafka::replay::OffsetAdmin) -> Result<(), event_bus_kafka::replay::ReplayError> {
    /// for p in admin.lag_of_committed_topics().await? {
    ///     println!("{}[{}] lag {:?}", p.topic, p.partition, p.lag());
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn lag_of_committed_topics(&self) -> Result<Vec<PartitionOffsets>, ReplayError> {
        self.blocking(|b| {
            let keys = b.all_partitions()?;
            let committed = b.committed(&keys)?;
            let with_offsets: Vec<(String, i32)> = committed
                .into_iter()
                .filter_map(|(key, offset)| offset.map(|_| key))
                .collect();
            b.offsets_of(&with_offsets)
        })
        .await
    }
}
