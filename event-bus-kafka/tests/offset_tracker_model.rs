//! The offset tracker against a model that is plainly right, under random sequences of
//! assign, revoke, start, finish, abandon and commit over two partitions and many
//! assignments of each.
//!
//! The model keeps, per partition, the records started under the current assignment
//! and which of them finished. What must hold after every step:
//! - nothing is offered for commit for a partition not owned;
//! - an offered position never passes a record of the current assignment that has not
//!   finished, and never goes back behind what the broker confirmed;
//! - finishing records of an ended assignment changes nothing;
//! - once every record of an assignment finished, the position is the next offset.

use std::collections::BTreeMap;

use event_bus_kafka::consumer::{Assignment, OffsetTracker};
use proptest::prelude::*;

const TOPIC: &str = "t";

#[derive(Debug, Clone)]
enum Step {
    Assign(i32),
    Revoke(i32),
    /// Take the next record of the partition.
    Start(i32),
    /// Finish the n-th record ever started (modulo their count), current or not.
    Finish(usize),
    /// Abandon the n-th record ever started.
    Abandon(usize),
    /// Commit what is offered, and the broker confirms it.
    Commit,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        1 => (0..2i32).prop_map(Step::Assign),
        1 => (0..2i32).prop_map(Step::Revoke),
        6 => (0..2i32).prop_map(Step::Start),
        5 => any::<usize>().prop_map(Step::Finish),
        1 => any::<usize>().prop_map(Step::Abandon),
        2 => Just(Step::Commit),
    ]
}

/// A record the test started: where, and under which assignment.
struct Started {
    partition: i32,
    offset: i64,
    assignment: Assignment,
    /// The model's number of that assignment.
    epoch: u64,
}

#[derive(Debug, Default)]
struct PartitionModel {
    owned: bool,
    epoch: u64,
    /// The next offset to read: where a new assignment starts (the confirmed commit).
    next: i64,
    confirmed: Option<i64>,
    /// Records of the current assignment: offset → finished.
    current: BTreeMap<i64, bool>,
    /// Abandoned offsets of the current assignment.
    abandoned: Vec<i64>,
}

impl PartitionModel {
    /// The highest position the tracker may offer: the first record of the current
    /// assignment not finished (`None`: no such record).
    fn allowed(&self) -> Option<i64> {
        // The first record not finished bounds the position.
        self.current
            .iter()
            .find(|(_, finished)| !**finished)
            .map(|(offset, _)| *offset)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn the_tracker_never_commits_past_an_unfinished_record_of_the_current_assignment(
        steps in proptest::collection::vec(step(), 1..120)
    ) {
        let mut tracker = OffsetTracker::default();
        let mut model: [PartitionModel; 2] = Default::default();
        let mut started: Vec<Started> = Vec::new();
        let mut epochs = 0u64;

        for step in steps {
            match step {
                Step::Assign(p) => {
                    tracker.assigned(TOPIC, p);
                    epochs += 1;
                    let m = &mut model[p as usize];
                    m.owned = true;
                    m.epoch = epochs;
                    m.current.clear();
                    m.abandoned.clear();
                    // A new owner starts at the confirmed position.
                    m.next = m.confirmed.unwrap_or(0);
                }
                Step::Revoke(p) => {
                    tracker.revoked(TOPIC, p);
                    let m = &mut model[p as usize];
                    m.owned = false;
                    m.current.clear();
                    m.abandoned.clear();
                }
                Step::Start(p) => {
                    let m = &mut model[p as usize];
                    let offset = m.next;
                    let assignment = tracker.started(TOPIC, p, offset);
                    prop_assert_eq!(assignment.is_some(), m.owned, "records start only on owned partitions");
                    if let Some(assignment) = assignment {
                        m.next += 1;
                        m.current.insert(offset, false);
                        started.push(Started { partition: p, offset, assignment, epoch: m.epoch });
                    }
                }
                Step::Finish(n) | Step::Abandon(n) if started.is_empty() => { let _ = n; }
                Step::Finish(n) => {
                    let record = &started[n % started.len()];
                    tracker.finished(TOPIC, record.partition, record.offset, &record.assignment);
                    let m = &mut model[record.partition as usize];
                    let is_current = m.owned && m.epoch == record.epoch;
                    prop_assert_eq!(record.assignment.is_current(), is_current);
                    if is_current && !m.abandoned.contains(&record.offset) {
                        m.current.insert(record.offset, true);
                    }
                }
                Step::Abandon(n) => {
                    let record = &started[n % started.len()];
                    tracker.abandoned(TOPIC, record.partition, record.offset, &record.assignment);
                    let m = &mut model[record.partition as usize];
                    if m.owned && m.epoch == record.epoch && m.current.get(&record.offset) == Some(&false) {
                        m.abandoned.push(record.offset);
                    }
                }
                Step::Commit => {
                    for (topic, p, position) in tracker.to_commit() {
                        prop_assert_eq!(topic.as_str(), TOPIC);
                        tracker.committed(TOPIC, p, position);
                        let m = &mut model[p as usize];
                        m.confirmed = Some(position);
                    }
                }
            }

            // Invariants after every step.
            let offered: BTreeMap<i32, i64> = tracker
                .to_commit()
                .into_iter()
                .map(|(_, p, position)| (p, position))
                .collect();
            for (p, m) in model.iter().enumerate() {
                let offer = offered.get(&(p as i32)).copied();
                prop_assert_eq!(tracker.owns(TOPIC, p as i32), m.owned);
                if !m.owned {
                    prop_assert_eq!(offer, None, "nothing offered for a partition not owned");
                    continue;
                }
                if let Some(position) = offer {
                    if let Some(bound) = m.allowed() {
                        prop_assert!(position <= bound, "offered {position} passes unfinished {bound}");
                    }
                    let highest = m.current.keys().next_back().copied();
                    prop_assert!(highest.is_some_and(|h| position <= h + 1), "offered {position} beyond what was read");
                }
                let all_done = !m.current.is_empty() && m.current.values().all(|f| *f);
                if all_done {
                    let next = m.current.keys().next_back().map(|h| h + 1);
                    let confirmed_here = m.confirmed.filter(|c| Some(*c) >= next);
                    prop_assert!(
                        offer == next || confirmed_here.is_some(),
                        "everything finished: offer {offer:?}, expected {next:?}"
                    );
                }
            }
        }
    }
}
