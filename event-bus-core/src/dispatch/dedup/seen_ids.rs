//! The ids a deduplicated receiver handled, oldest first, within its window's bounds.

use std::time::Instant;

use hashlink::LinkedHashMap;
use uuid::Uuid;

use super::window::DedupWindow;

/// Handled ids with the time each was handled, in that order (the map keeps insertion
/// order, and every insertion goes to the back with the current time), so the oldest
/// id is always at the front: forgetting by age or by count pops from the front.
pub(super) struct SeenIds {
    window: DedupWindow,
    ids: LinkedHashMap<Uuid, Instant>,
}

impl SeenIds {
    pub(super) fn new(window: DedupWindow) -> Self {
        Self {
            window,
            ids: LinkedHashMap::new(),
        }
    }

    pub(super) fn window(&self) -> DedupWindow {
        self.window
    }

    /// Whether `id` was handled within the window, as of `now`; forgets the ids that
    /// aged out first.
    pub(super) fn contains(&mut self, id: &Uuid, now: Instant) -> bool {
        self.forget_older_than(now);
        self.ids.contains_key(id)
    }

    /// Records that `id` was handled at `now` (moving it to the back if it was known),
    /// then forgets what the bounds no longer allow.
    pub(super) fn remember(&mut self, id: Uuid, now: Instant) {
        if !self.window.remembers_anything() {
            return;
        }
        self.ids.insert(id, now);
        while self.ids.len() > self.window.max_entries {
            self.ids.pop_front();
        }
        self.forget_older_than(now);
    }

    /// How many ids are remembered as of `now`.
    pub(super) fn len(&mut self, now: Instant) -> usize {
        self.forget_older_than(now);
        self.ids.len()
    }

    fn forget_older_than(&mut self, now: Instant) {
        while let Some((_, handled_at)) = self.ids.front() {
            if now.saturating_duration_since(*handled_at) < self.window.max_age {
                break;
            }
            self.ids.pop_front();
        }
    }
}
