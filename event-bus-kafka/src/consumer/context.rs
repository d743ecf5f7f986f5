//! The rdkafka context: tracks assignments, commits on revoke, and passes the client
//! errors the loop must act on.
//!
//! Commit results do not come through here: rdkafka's `commit_callback` is not called
//! for manual commits (the crate does not set librdkafka's `offset_commit_cb`), so
//! the loop commits synchronously on a blocking thread and reads the result itself
//! (see `commits.rs`).

use std::sync::{Arc, Mutex};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio::sync::mpsc;

use super::offsets::OffsetTracker;
use super::stats::ConsumerStats;

/// Shared between the loop and librdkafka's callbacks, which run on the loop's own
/// task while it polls the message stream.
pub(crate) struct LoopContext {
    pub tracker: Arc<Mutex<OffsetTracker>>,
    pub stats: Arc<ConsumerStats>,
    /// Client errors the loop reacts to (see [`is_outage`]); the others are logged.
    pub client_errors: mpsc::UnboundedSender<KafkaError>,
}

/// Whether a client error means the loop cannot go on as it is: every broker is down,
/// or the client hit a fatal error. librdkafka recovers from the rest (one broker's
/// transport failing, a coordinator moving) on its own.
pub(crate) fn is_outage(error: &KafkaError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(RDKafkaErrorCode::AllBrokersDown | RDKafkaErrorCode::Fatal)
    )
}

impl ClientContext for LoopContext {
    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(error = %error, reason, "Kafka client error");
        if is_outage(&error) {
            // The loop may be gone during shutdown; then nobody needs to know.
            let _ = self.client_errors.send(error);
        }
    }
}

impl ConsumerContext for LoopContext {
    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        // librdkafka keeps an application's pause on a partition across its
        // unassignment: a partition the loop paused, lost and now got back would
        // never be fetched. Every assigned partition starts unpaused.
        if let Rebalance::Assign(assigned) = rebalance {
            if assigned.count() > 0 {
                if let Err(error) = consumer.resume(assigned) {
                    tracing::warn!(error = %error, "could not resume newly assigned partitions");
                }
            }
        }
    }

    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Ok(mut tracker) = self.tracker.lock() else {
            return;
        };
        match rebalance {
            Rebalance::Assign(assigned) => {
                for element in assigned.elements() {
                    tracker.assigned(element.topic(), element.partition());
                }
                self.stats.assigned();
                tracing::info!(
                    partitions = %describe(assigned),
                    "partitions assigned"
                );
            }
            Rebalance::Revoke(revoked) => {
                // A lost assignment (the session expired, or the coordinator is gone)
                // cannot be committed for: the member is out of the group already, and
                // a commit would only hold the loop until librdkafka gives up on it.
                if consumer.assignment_lost() {
                    tracing::warn!(
                        partitions = %describe(revoked),
                        "assignment lost (session expired); records after the last confirmed commit will be read again"
                    );
                } else {
                    commit_revoked(consumer, &mut tracker, revoked);
                }
                for element in revoked.elements() {
                    tracker.revoked(element.topic(), element.partition());
                }
                self.stats.revoked();
                tracing::info!(
                    partitions = %describe(revoked),
                    "partitions revoked; their records still in progress finish without committing, and no more of them start"
                );
            }
            Rebalance::Error(error) => {
                tracing::warn!(error = %error, "rebalance failed");
            }
        }
    }
}

/// Commits, synchronously, what finished in the partitions being revoked, so the next
/// owner starts right after it.
fn commit_revoked(
    consumer: &BaseConsumer<LoopContext>,
    tracker: &mut OffsetTracker,
    revoked: &TopicPartitionList,
) {
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
    if offsets.count() == 0 {
        return;
    }
    match consumer.commit(&offsets, CommitMode::Sync) {
        Ok(()) => tracing::info!(
            partitions = offsets.count(),
            "committed finished offsets of revoked partitions"
        ),
        Err(error) => {
            tracing::warn!(error = %error, "could not commit revoked partitions; their records after the last commit will be read again")
        }
    }
}

fn describe(partitions: &TopicPartitionList) -> String {
    partitions
        .elements()
        .iter()
        .map(|e| format!("{}[{}]", e.topic(), e.partition()))
        .collect::<Vec<_>>()
        .join(",")
}
