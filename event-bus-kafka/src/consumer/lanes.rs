//! Key lanes: records of one key run in order, different keys may run side by side.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::Hash;

use foldhash::fast::RandomState;

/// Which records are running and which wait behind a running one of the same lane.
///
/// ```ignore
/// let mut lanes = Lanes::default();
/// assert!(lanes.admit("k", 1).is_some());   // starts
/// assert!(lanes.admit("k", 2).is_none());   // waits behind 1
/// assert_eq!(lanes.finish(&"k"), Some(2));  // 2 starts next
/// ```
///
/// Hashed with foldhash: a lane is looked up two or three times per record, where
/// SipHash showed in profiles of the consumer loop.
#[derive(Debug)]
pub(crate) struct Lanes<L, T> {
    busy: HashSet<L, RandomState>,
    waiting: HashMap<L, VecDeque<T>, RandomState>,
    waiting_count: usize,
}

impl<L, T> Default for Lanes<L, T> {
    fn default() -> Self {
        Self {
            busy: HashSet::default(),
            waiting: HashMap::default(),
            waiting_count: 0,
        }
    }
}

impl<L: Hash + Eq + Clone, T> Lanes<L, T> {
    /// Takes `item` in lane `lane`: returns it back when it may start now, or queues it.
    pub fn admit(&mut self, lane: L, item: T) -> Option<T> {
        if self.busy.insert(lane.clone()) {
            return Some(item);
        }
        self.waiting.entry(lane).or_default().push_back(item);
        self.waiting_count += 1;
        None
    }

    /// The running item of `lane` finished: returns the next one of the lane to start.
    pub fn finish(&mut self, lane: &L) -> Option<T> {
        let next = self.waiting.get_mut(lane).and_then(VecDeque::pop_front);
        match next {
            Some(item) => {
                self.waiting_count -= 1;
                if self.waiting.get(lane).is_some_and(VecDeque::is_empty) {
                    self.waiting.remove(lane);
                }
                Some(item)
            }
            None => {
                self.busy.remove(lane);
                None
            }
        }
    }

    /// How many items wait behind running ones.
    pub fn waiting(&self) -> usize {
        self.waiting_count
    }
}

#[cfg(test)]
mod tests {
    use super::Lanes;

    #[test]
    fn one_lane_runs_in_order_and_others_in_parallel() {
        let mut lanes = Lanes::default();
        assert_eq!(lanes.admit("a", 1), Some(1));
        assert_eq!(lanes.admit("a", 2), None);
        assert_eq!(lanes.admit("b", 3), Some(3));
        assert_eq!(lanes.admit("a", 4), None);
        assert_eq!(lanes.waiting(), 2);
        assert_eq!(lanes.finish(&"a"), Some(2));
        assert_eq!(lanes.finish(&"a"), Some(4));
        assert_eq!(lanes.finish(&"a"), None);
        assert_eq!(lanes.finish(&"b"), None);
        assert_eq!(lanes.waiting(), 0);
        assert_eq!(lanes.admit("a", 5), Some(5));
    }
}
