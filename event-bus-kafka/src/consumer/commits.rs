//! Offset commits whose results the loop reads: one commit at a time runs on a
//! blocking thread, and its positions count as committed only when the broker
//! accepted them. A commit that fails leaves its positions unconfirmed, so the next
//! tick sends them again.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext, StreamConsumer};
use rdkafka::error::KafkaResult;
use rdkafka::{Offset, TopicPartitionList};
use tokio::task::JoinHandle;

use super::offsets::OffsetTracker;

/// The answer to one commit: the positions sent, the result, and how long it took.
pub(crate) struct CommitAnswer {
    pub positions: Vec<(String, i32, i64)>,
    pub result: KafkaResult<()>,
    pub took: std::time::Duration,
}

/// The positions to commit now, as librdkafka takes them (`None`: nothing new).
pub(crate) fn pending(tracker: &Mutex<OffsetTracker>) -> Option<Vec<(String, i32, i64)>> {
    let positions = tracker.lock().ok()?.to_commit();
    (!positions.is_empty()).then_some(positions)
}

fn as_list(positions: &[(String, i32, i64)]) -> TopicPartitionList {
    let mut offsets = TopicPartitionList::new();
    for (topic, partition, position) in positions {
        let _ = offsets.add_partition_offset(topic, *partition, Offset::Offset(*position));
    }
    offsets
}

/// Commits `positions` on a blocking thread, so the loop goes on while the broker
/// answers (or while there is no coordinator to answer).
pub(crate) fn spawn<C: ConsumerContext + 'static>(
    consumer: &Arc<StreamConsumer<C>>,
    positions: Vec<(String, i32, i64)>,
) -> JoinHandle<CommitAnswer> {
    let consumer = Arc::clone(consumer);
    tokio::task::spawn_blocking(move || commit_now(&consumer, positions))
}

/// Commits `positions` and waits for the broker's answer.
pub(crate) fn commit_now<C: ConsumerContext>(
    consumer: &StreamConsumer<C>,
    positions: Vec<(String, i32, i64)>,
) -> CommitAnswer {
    let started = Instant::now();
    let result = consumer.commit(&as_list(&positions), CommitMode::Sync);
    CommitAnswer {
        positions,
        result,
        took: started.elapsed(),
    }
}

/// Records what the broker accepted; `true` when it accepted the commit.
pub(crate) fn confirm(tracker: &Mutex<OffsetTracker>, answer: &CommitAnswer) -> bool {
    match &answer.result {
        Ok(()) => {
            if let Ok(mut tracker) = tracker.lock() {
                for (topic, partition, position) in &answer.positions {
                    tracker.committed(topic, *partition, *position);
                }
            }
            true
        }
        Err(error) => {
            tracing::warn!(
                error = %error,
                partitions = answer.positions.len(),
                "offset commit failed; its positions stay unconfirmed and are sent again on the next tick (a partition lost meanwhile is read again from its last confirmed position)"
            );
            false
        }
    }
}
