//! Texts every event repeats (service, host and library names, event types), kept
//! once for the life of the process so metadata can borrow them instead of allocating
//! a copy per event.
//!
//! A producer stamps the same `ce_source`, `sourcehost` and `sourcelib` on every event,
//! and a consumer reads the same few values back from every record. [`shared`] hands
//! out a `&'static str` for such a text: the first time it is seen it is copied once
//! and kept; later calls find it. What is kept is bounded ([`MAX_TEXTS`] texts of at
//! most [`MAX_TEXT_LEN`] bytes, so at most 256 KiB), because consumers feed it header
//! values from outside the process: once full, or for a longer text, it hands out an
//! owned copy instead, which costs an allocation and nothing else.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashSet;
use std::sync::{LazyLock, PoisonError, RwLock};

/// How many distinct texts are kept at most.
pub const MAX_TEXTS: usize = 1024;

/// The longest text that is kept, in bytes.
pub const MAX_TEXT_LEN: usize = 256;

/// The kept texts. foldhash: short keys hashed per record, where SipHash would cost
/// more than the allocation saved; seeded per process.
type Kept = HashSet<&'static str, foldhash::fast::RandomState>;

static KEPT: LazyLock<RwLock<Kept>> = LazyLock::new(RwLock::default);

/// How many texts each thread remembers having looked up last.
const RECENT: usize = 8;

/// The texts this thread looked up last, found again without the lock or a hash:
/// a consumer's records repeat the same few sources and hosts.
struct Recent {
    texts: [&'static str; RECENT],
    next: usize,
}

thread_local! {
    static RECENTLY_SHARED: RefCell<Recent> = const {
        RefCell::new(Recent { texts: [""; RECENT], next: 0 })
    };
}

/// `text` as a borrowed `&'static str` when it is (or can still be) kept; otherwise
/// an owned copy.
///
/// ```
/// use std::borrow::Cow;
/// let first = event_bus_core::shared_text::shared("billing/web");
/// let again = event_bus_core::shared_text::shared(&String::from("billing/web"));
/// match (first, again) {
///     (Cow::Borrowed(a), Cow::Borrowed(b)) => assert!(std::ptr::eq(a, b)),
///     _ => unreachable!("a short text is kept while there is room"),
/// }
/// let long = "x".repeat(event_bus_core::shared_text::MAX_TEXT_LEN + 1);
/// assert!(matches!(event_bus_core::shared_text::shared(&long), Cow::Owned(_)));
/// ```
pub fn shared(text: &str) -> Cow<'static, str> {
    if text.len() > MAX_TEXT_LEN {
        return Cow::Owned(text.to_owned());
    }
    let recent = RECENTLY_SHARED
        .try_with(|recent| {
            recent
                .borrow()
                .texts
                .iter()
                .find(|kept| **kept == text)
                .copied()
        })
        .ok()
        .flatten();
    if let Some(kept) = recent {
        return Cow::Borrowed(kept);
    }
    let shared = shared_by_all(text);
    if let Cow::Borrowed(kept) = shared {
        let _ = RECENTLY_SHARED.try_with(|recent| {
            let mut recent = recent.borrow_mut();
            let slot = recent.next;
            recent.texts[slot] = kept;
            recent.next = (slot + 1) % RECENT;
        });
    }
    shared
}

/// The process-wide lookup behind [`shared`].
fn shared_by_all(text: &str) -> Cow<'static, str> {
    let found = KEPT
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .get(text)
        .copied();
    if let Some(kept) = found {
        return Cow::Borrowed(kept);
    }
    let mut kept = KEPT.write().unwrap_or_else(PoisonError::into_inner);
    if let Some(found) = kept.get(text) {
        return Cow::Borrowed(found);
    }
    if kept.len() >= MAX_TEXTS {
        return Cow::Owned(text.to_owned());
    }
    let leaked: &'static str = Box::leak(text.to_owned().into_boxed_str());
    kept.insert(leaked);
    Cow::Borrowed(leaked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_full_texts_are_copied_and_still_equal() {
        // Fill whatever room the other tests left.
        for n in 0..MAX_TEXTS {
            let _ = shared(&format!("filler-{n}"));
        }
        let late = shared("a text first seen after the set is full");
        assert!(matches!(late, Cow::Owned(_)));
        assert_eq!(late, "a text first seen after the set is full");
        assert!(KEPT.read().map(|k| k.len()).unwrap_or_default() <= MAX_TEXTS);
        // What was kept before stays borrowed.
        assert!(matches!(shared("filler-0"), Cow::Borrowed("filler-0")));
    }
}
