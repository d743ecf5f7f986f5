//! Flow control: when the loop has as many records as it may handle, it stops taking
//! more; when that lasts, it pauses its partitions so it can go on polling (which keeps
//! it in the group) without being handed records it has no room for.

use std::collections::BTreeSet;
use std::time::Duration;

use rdkafka::consumer::{Consumer, ConsumerContext};
use rdkafka::TopicPartitionList;
use tokio::time::Instant;

/// Whether the loop is taking records, full, or full and paused.
///
/// Pausing is not free: librdkafka drops what it fetched ahead for the paused
/// partitions and fetches again from the next unread offset on resume. So a loop that
/// is full only briefly (the usual case: a receiver takes milliseconds) just stops
/// reading for that moment, and only a loop full for longer than `pause_after`
/// pauses.
#[derive(Debug)]
pub(crate) struct FlowControl {
    pause_after: Duration,
    /// Since when the loop has been full, if it is.
    full_since: Option<Instant>,
    /// The partitions this loop paused.
    paused: BTreeSet<(String, i32)>,
    is_paused: bool,
}

impl FlowControl {
    /// Pauses when full for longer than `pause_after`.
    pub fn new(pause_after: Duration) -> Self {
        Self {
            pause_after,
            full_since: None,
            paused: BTreeSet::new(),
            is_paused: false,
        }
    }

    /// The pause delay for a consumer whose `max.poll.interval.ms` is
    /// `max_poll_interval`: a second, or less when that interval is short.
    pub fn pause_delay(max_poll_interval: Duration) -> Duration {
        Duration::from_secs(1).min(max_poll_interval / 4)
    }

    /// Whether the partitions are paused now, so polling only serves the group.
    pub fn is_paused(&self) -> bool {
        self.is_paused
    }

    /// Whether the loop should read the message stream now: when it has room, or
    /// when it is paused (then polling serves the group and newly assigned
    /// partitions).
    pub fn may_read(&self, full: bool) -> bool {
        !full || self.is_paused
    }

    /// Records how many records the loop holds; once it is paused, resumes when it
    /// is down to half of `max_in_flight` (so a backlog of slow records does not
    /// pause and resume, dropping and fetching again what was read ahead, on every
    /// record).
    pub fn update<X: ConsumerContext, C: Consumer<X>>(
        &mut self,
        in_flight: usize,
        max_in_flight: usize,
        consumer: &C,
    ) {
        if in_flight >= max_in_flight {
            self.full_since.get_or_insert_with(Instant::now);
            return;
        }
        self.full_since = None;
        if self.is_paused && in_flight <= max_in_flight / 2 {
            self.resume(consumer);
        }
    }

    /// When the loop, full since a while, should pause (`None` when it is not full or
    /// already paused).
    pub fn pause_at(&self) -> Option<Instant> {
        match (self.is_paused, self.full_since) {
            (false, Some(since)) => Some(since + self.pause_after),
            _ => None,
        }
    }

    /// Pauses every partition assigned now.
    pub fn pause_assignment<X: ConsumerContext, C: Consumer<X>>(&mut self, consumer: &C) {
        self.is_paused = true;
        let Ok(assignment) = consumer.assignment() else {
            return;
        };
        let mut list = TopicPartitionList::new();
        for element in assignment.elements() {
            if self
                .paused
                .insert((element.topic().to_owned(), element.partition()))
            {
                list.add_partition(element.topic(), element.partition());
            }
        }
        pause(consumer, &list);
        tracing::debug!(
            partitions = self.paused.len(),
            "full for a while: partitions paused, polling goes on"
        );
    }

    /// Pauses one partition a record came from while paused (newly assigned ones
    /// start unpaused).
    pub fn pause_partition<X: ConsumerContext, C: Consumer<X>>(
        &mut self,
        consumer: &C,
        topic: &str,
        partition: i32,
    ) {
        self.paused.insert((topic.to_owned(), partition));
        let mut list = TopicPartitionList::new();
        list.add_partition(topic, partition);
        pause(consumer, &list);
    }

    /// Resumes every partition this loop paused. Those revoked meanwhile are resumed
    /// too: librdkafka keeps an application's pause on a partition across its
    /// unassignment, so one assigned again later would otherwise never be fetched.
    fn resume<X: ConsumerContext, C: Consumer<X>>(&mut self, consumer: &C) {
        self.is_paused = false;
        let mut list = TopicPartitionList::new();
        for (topic, partition) in std::mem::take(&mut self.paused) {
            list.add_partition(&topic, partition);
        }
        if list.count() > 0 {
            // Per-partition errors (a partition this client no longer knows) are
            // expected and harmless.
            if let Err(error) = consumer.resume(&list) {
                tracing::warn!(error = %error, "could not resume partitions");
            }
        }
    }
}

fn pause<X: ConsumerContext, C: Consumer<X>>(consumer: &C, list: &TopicPartitionList) {
    if list.count() == 0 {
        return;
    }
    if let Err(error) = consumer.pause(list) {
        tracing::warn!(error = %error, "could not pause partitions");
    }
}
