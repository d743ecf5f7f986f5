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
//!
//! A second model adds what happens between the tracker and the broker: commits that
//! are answered later (after their partition was revoked, or revoked and assigned
//! again), commits that fail, two topics, and logs with gaps in their offsets. It keeps
//! the log of each partition and the set of records some assignment handled, and checks
//! that every position the broker stores is below only handled records.

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

/// The slots of the second model: two topics, three partitions in all.
const SLOTS: [(&str, i32); 3] = [("a", 0), ("a", 1), ("b", 0)];

/// Steps of the second model, where commits take time and may fail, and offsets have
/// gaps (compacted records, transaction markers).
#[derive(Debug, Clone)]
enum LogStep {
    Assign(usize),
    Revoke(usize),
    /// Read the next record of the slot's log.
    Read(usize),
    /// Finish the n-th record ever read (modulo their count).
    Finish(usize),
    /// Abandon the n-th record ever read.
    Abandon(usize),
    /// Send what the tracker offers, if no commit is in flight (one at a time, as the
    /// loop does).
    SendCommit,
    /// The broker accepts the commit in flight.
    CommitAccepted,
    /// The broker refuses it (no coordinator, a rebalance): nothing is confirmed.
    CommitFailed,
}

fn log_step() -> impl Strategy<Value = LogStep> {
    let slot = 0..SLOTS.len();
    prop_oneof![
        1 => slot.clone().prop_map(LogStep::Assign),
        1 => slot.clone().prop_map(LogStep::Revoke),
        6 => slot.prop_map(LogStep::Read),
        5 => any::<usize>().prop_map(LogStep::Finish),
        1 => any::<usize>().prop_map(LogStep::Abandon),
        2 => Just(LogStep::SendCommit),
        2 => Just(LogStep::CommitAccepted),
        1 => Just(LogStep::CommitFailed),
    ]
}

/// One partition's log and what happened to its records, across every assignment.
#[derive(Debug, Default)]
struct SlotModel {
    /// Offsets of the records in the log, ascending, with gaps; grown on demand.
    log: Vec<i64>,
    /// Offsets handled (finished before any abandonment) under some assignment.
    handled: std::collections::BTreeSet<i64>,
    /// Where the broker's committed position is (what a new owner starts from).
    broker: Option<i64>,
    /// The model's number of the current assignment, if owned.
    owner: Option<u64>,
    /// The next offset the current owner reads.
    next: i64,
    /// Records of the current assignment: offset → finished; and the abandoned ones.
    current: BTreeMap<i64, bool>,
    abandoned: std::collections::BTreeSet<i64>,
}

impl SlotModel {
    /// The offset of the first record at or after `from`, growing the log with a gap of
    /// `gap` offsets after its last record when needed.
    fn record_at_or_after(&mut self, from: i64, gap: i64) -> i64 {
        if let Some(offset) = self.log.iter().copied().find(|o| *o >= from) {
            return offset;
        }
        let offset = self.log.last().map_or(0, |last| last + 1 + gap).max(from);
        self.log.push(offset);
        offset
    }
}

/// A record read in the second model.
struct ReadRecord {
    slot: usize,
    offset: i64,
    assignment: Assignment,
    epoch: u64,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    /// What the broker stores never passes a record that no assignment handled, even
    /// when a commit is answered after its partition was revoked and assigned again,
    /// when commits fail, and when offsets have gaps. Nothing is offered for a
    /// partition not owned, an offer is always ahead of what the broker confirmed to
    /// this assignment, and once every record read under an assignment is handled the
    /// position offered (or confirmed) is one past the last of them.
    #[test]
    fn the_broker_never_stores_a_position_past_a_record_no_assignment_handled(
        steps in proptest::collection::vec((log_step(), 0..3i64), 1..160)
    ) {
        let mut tracker = OffsetTracker::default();
        let mut slots: [SlotModel; 3] = Default::default();
        let mut read: Vec<ReadRecord> = Vec::new();
        let mut in_flight: Option<Vec<(String, i32, i64)>> = None;
        // What this assignment's tracker was told the broker confirmed, per slot.
        let mut confirmed_here: [Option<i64>; 3] = [None; 3];
        let mut epochs = 0u64;
        let slot_of = |topic: &str, partition: i32| {
            SLOTS.iter().position(|s| *s == (topic, partition)).expect("a slot of the model")
        };

        for (step, gap) in steps {
            match step {
                LogStep::Assign(s) => {
                    let (topic, partition) = SLOTS[s];
                    tracker.assigned(topic, partition);
                    epochs += 1;
                    let m = &mut slots[s];
                    m.owner = Some(epochs);
                    m.next = m.broker.unwrap_or(0);
                    m.current.clear();
                    m.abandoned.clear();
                    confirmed_here[s] = None;
                }
                LogStep::Revoke(s) => {
                    let (topic, partition) = SLOTS[s];
                    tracker.revoked(topic, partition);
                    let m = &mut slots[s];
                    m.owner = None;
                    m.current.clear();
                    m.abandoned.clear();
                }
                LogStep::Read(s) => {
                    let (topic, partition) = SLOTS[s];
                    let m = &mut slots[s];
                    let Some(epoch) = m.owner else {
                        prop_assert!(tracker.started(topic, partition, m.next).is_none(),
                            "a record of a partition not owned must not start");
                        continue;
                    };
                    let offset = m.record_at_or_after(m.next, gap);
                    let assignment = tracker.started(topic, partition, offset);
                    prop_assert!(assignment.is_some(), "records start on owned partitions");
                    if let Some(assignment) = assignment {
                        m.next = offset + 1;
                        m.current.insert(offset, false);
                        read.push(ReadRecord { slot: s, offset, assignment, epoch });
                    }
                }
                LogStep::Finish(_) | LogStep::Abandon(_) if read.is_empty() => {}
                LogStep::Finish(n) => {
                    let r = &read[n % read.len()];
                    let (topic, partition) = SLOTS[r.slot];
                    tracker.finished(topic, partition, r.offset, &r.assignment);
                    let m = &mut slots[r.slot];
                    let is_current = m.owner == Some(r.epoch);
                    prop_assert_eq!(r.assignment.is_current(), is_current);
                    if is_current && !m.abandoned.contains(&r.offset) {
                        m.current.insert(r.offset, true);
                        m.handled.insert(r.offset);
                    }
                }
                LogStep::Abandon(n) => {
                    let r = &read[n % read.len()];
                    let (topic, partition) = SLOTS[r.slot];
                    tracker.abandoned(topic, partition, r.offset, &r.assignment);
                    let m = &mut slots[r.slot];
                    if m.owner == Some(r.epoch) && m.current.get(&r.offset) == Some(&false) {
                        m.abandoned.insert(r.offset);
                    }
                }
                LogStep::SendCommit => {
                    if in_flight.is_none() {
                        let offer = tracker.to_commit();
                        if !offer.is_empty() {
                            in_flight = Some(offer);
                        }
                    }
                }
                LogStep::CommitAccepted => {
                    let Some(positions) = in_flight.take() else { continue };
                    for (topic, partition, position) in &positions {
                        let s = slot_of(topic, *partition);
                        let m = &mut slots[s];
                        // The broker stores it whoever owns the partition now.
                        m.broker = Some(*position);
                        let unhandled = m.log.iter().find(|o| **o < *position && !m.handled.contains(o));
                        prop_assert!(unhandled.is_none(),
                            "the broker stores {position} for {topic}/{partition}, past {unhandled:?}, which no assignment handled");
                        tracker.committed(topic, *partition, *position);
                        if m.owner.is_some() {
                            confirmed_here[s] = Some(confirmed_here[s].map_or(*position, |c| c.max(*position)));
                        }
                    }
                }
                LogStep::CommitFailed => {
                    in_flight = None;
                }
            }

            // Invariants after every step.
            let offered: BTreeMap<usize, i64> = tracker
                .to_commit()
                .into_iter()
                .map(|(topic, partition, position)| (slot_of(&topic, partition), position))
                .collect();
            for (s, m) in slots.iter().enumerate() {
                let (topic, partition) = SLOTS[s];
                let offer = offered.get(&s).copied();
                prop_assert_eq!(tracker.owns(topic, partition), m.owner.is_some());
                if m.owner.is_none() {
                    prop_assert_eq!(offer, None, "nothing offered for a partition not owned");
                    continue;
                }
                if let (Some(position), Some(confirmed)) = (offer, confirmed_here[s]) {
                    prop_assert!(position > confirmed, "offer {position} not ahead of confirmed {confirmed}");
                }
                let all_done = !m.current.is_empty() && m.current.values().all(|f| *f);
                if all_done {
                    let next = m.current.keys().next_back().map(|h| h + 1);
                    let covered = confirmed_here[s].is_some_and(|c| Some(c) >= next);
                    prop_assert!(offer == next || covered,
                        "every record of the assignment handled: offer {offer:?}, expected {next:?}");
                }
            }
        }
    }
}
