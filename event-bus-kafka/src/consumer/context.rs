//! The rdkafka context: commits on partition revoke, reports client errors.

use std::sync::{Arc, Mutex};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio::sync::mpsc;

use super::offsets::OffsetTracker;

/// Shared between the loop and librdkafka's callbacks.
pub(crate) struct LoopContext {
    pub tracker: Arc<Mutex<OffsetTracker>>,
    pub client_errors: mpsc::UnboundedSender<KafkaError>,
}

impl ClientContext for LoopContext {
    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(error = %error, reason, "Kafka client error");
        // The loop may be gone during shutdown; then nobody needs to know.
        let _ = self.client_errors.send(error);
    }
}

impl ConsumerContext for LoopContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(revoked) = rebalance else {
            return;
        };
        let Ok(mut tracker) = self.tracker.lock() else {
            return;
        };
        let mut offsets = TopicPartitionList::new();
        for (topic, partition, position) in tracker.to_commit() {
            let is_revoked = revoked
                .elements()
                .iter()
                .any(|e| e.topic() == topic && e.partition() == partition);
            if is_revoked {
                let _ = offsets.add_partition_offset(&topic, partition, Offset::Offset(position));
            }
        }
        if offsets.count() > 0 {
            match consumer.commit(&offsets, CommitMode::Sync) {
                Ok(()) => tracing::info!(
                    partitions = offsets.count(),
                    "committed finished offsets of revoked partitions"
                ),
                Err(error) => {
                    tracing::warn!(error = %error, "could not commit revoked partitions; their records may be read again")
                }
            }
        }
        for element in revoked.elements() {
            tracker.forget(element.topic(), element.partition());
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        if let Err(error) = result {
            tracing::warn!(error = %error, partitions = offsets.count(), "offset commit failed; records after the last commit may be read again");
        }
    }
}
