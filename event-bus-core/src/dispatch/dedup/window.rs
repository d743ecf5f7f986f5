//! `DedupWindow`: how many handled `ce_id`s a deduplicated receiver remembers, and for
//! how long.

use std::time::Duration;

/// The bounds of a [`Deduplicated`](super::Deduplicated) receiver's memory of handled
/// `ce_id`s: at most `max_entries` ids (the oldest go first), none older than `max_age`
/// (counted from when the receiver succeeded with it).
///
/// Each remembered id costs about 60 bytes, so the default 10 000 entries take well
/// under a megabyte. Size it for the duplicates you want caught: a consumer handling
/// `n` events per second needs about `n × seconds` entries to remember the last
/// `seconds` of them; the duplicates a rebalance or a failed commit causes come from the
/// last commit interval or so, a replay from as far back as it goes.
///
/// A window of zero entries or of zero age remembers nothing: every delivery runs, as
/// if the receiver were not wrapped.
///
/// ```
/// use std::time::Duration;
/// use event_bus_core::dispatch::DedupWindow;
///
/// let window = DedupWindow::new(50_000, Duration::from_secs(3600));
/// assert_eq!(window.max_entries, 50_000);
/// assert_eq!(DedupWindow::default(), DedupWindow::new(10_000, Duration::from_secs(600)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DedupWindow {
    /// How many ids are remembered at most; past that, the oldest is forgotten.
    pub max_entries: usize,
    /// How long an id is remembered after the receiver succeeded with it.
    pub max_age: Duration,
}

impl DedupWindow {
    /// The default number of ids remembered: 10 000.
    ///
    /// ```
    /// assert_eq!(event_bus_core::dispatch::DedupWindow::DEFAULT_MAX_ENTRIES, 10_000);
    /// ```
    pub const DEFAULT_MAX_ENTRIES: usize = 10_000;

    /// The default time an id is remembered: 10 minutes.
    ///
    /// ```
    /// use std::time::Duration;
    /// assert_eq!(event_bus_core::dispatch::DedupWindow::DEFAULT_MAX_AGE, Duration::from_secs(600));
    /// ```
    pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(600);

    /// A window of at most `max_entries` ids, each remembered for at most `max_age`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let window = event_bus_core::dispatch::DedupWindow::new(1_000, Duration::from_secs(60));
    /// assert_eq!(window.max_age, Duration::from_secs(60));
    /// ```
    pub const fn new(max_entries: usize, max_age: Duration) -> Self {
        Self {
            max_entries,
            max_age,
        }
    }

    /// Whether this window remembers anything at all (neither bound is zero).
    ///
    /// ```
    /// use std::time::Duration;
    /// use event_bus_core::dispatch::DedupWindow;
    /// assert!(DedupWindow::default().remembers_anything());
    /// assert!(!DedupWindow::new(0, Duration::from_secs(60)).remembers_anything());
    /// assert!(!DedupWindow::new(100, Duration::ZERO).remembers_anything());
    /// ```
    pub fn remembers_anything(&self) -> bool {
        self.max_entries > 0 && !self.max_age.is_zero()
    }
}

impl Default for DedupWindow {
    /// 10 000 entries, 10 minutes.
    fn default() -> Self {
        Self::new(Self::DEFAULT_MAX_ENTRIES, Self::DEFAULT_MAX_AGE)
    }
}
