//! Reused heap homes for the futures of records in flight.
//!
//! The future that handles one record is a few KiB: it holds every state a record can
//! be in (decoding, waiting for the registry, receivers, retries, the grace period).
//! Pushed into a `FuturesUnordered` as it is, it would be copied into a fresh heap
//! block of that size for every record, and a block that large misses the allocator's
//! per-thread cache: the allocation, its free and the copy cost a no-op record more
//! than its decoding. Here each future runs in a slot that goes back to a free list
//! when the future ends, so a steady loop allocates its slots once (as many as
//! records run at once) and the set of running futures holds only a pointer to each.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A heap home for one future, empty between uses.
pub(crate) type Slot<F> = Pin<Box<Option<F>>>;

/// Slots no future runs in, ready for the next one.
///
/// ```ignore
/// let mut slots = Slots::default();
/// let running = slots.run(async { 7 });      // allocates the first slot
/// let (seven, slot) = running.await;
/// slots.give_back(slot);
/// let again = slots.run(async { 8 });        // the same slot, no allocation
/// ```
pub(crate) struct Slots<F> {
    free: Vec<Slot<F>>,
}

impl<F> Default for Slots<F> {
    fn default() -> Self {
        Self { free: Vec::new() }
    }
}

impl<F: Future> Slots<F> {
    /// `future`, moved into a free slot (a new one when none is free).
    pub fn run(&mut self, future: F) -> InSlot<F> {
        let mut slot = self.free.pop().unwrap_or_else(|| Box::pin(None));
        slot.set(Some(future));
        InSlot { slot: Some(slot) }
    }

    /// Takes back the slot of a future that ended.
    pub fn give_back(&mut self, slot: Slot<F>) {
        self.free.push(slot);
    }
}

/// A future running in a slot: its output comes with the slot, emptied, to give back.
pub(crate) struct InSlot<F> {
    slot: Option<Slot<F>>,
}

impl<F: Future> Future for InSlot<F> {
    type Output = (F::Output, Slot<F>);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(slot) = self.slot.as_mut() else {
            // Polled again after it ended: it has nothing more to give.
            return Poll::Pending;
        };
        let Some(future) = slot.as_mut().as_pin_mut() else {
            return Poll::Pending;
        };
        let output = std::task::ready!(future.poll(cx));
        slot.set(None);
        match self.slot.take() {
            Some(slot) => Poll::Ready((output, slot)),
            None => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Slots;
    use futures::stream::{FuturesUnordered, StreamExt};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// Counts its drops, to show a finished future does not linger in its slot.
    struct Dropped(Arc<AtomicUsize>);
    impl Drop for Dropped {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn a_slot_is_reused_and_its_finished_future_dropped_at_once() {
        let drops = Arc::new(AtomicUsize::new(0));
        let mut slots = Slots::default();
        let make = |n: u32| {
            let guard = Dropped(Arc::clone(&drops));
            async move {
                tokio::task::yield_now().await;
                let _guard = guard;
                n
            }
        };
        let (first, slot) = slots.run(make(1)).await;
        assert_eq!(first, 1);
        assert_eq!(drops.load(Ordering::SeqCst), 1, "dropped when it ended");
        assert!(slot.is_none(), "the slot comes back empty");
        let address = &*slot as *const _ as usize;
        slots.give_back(slot);
        let (second, slot) = slots.run(make(2)).await;
        assert_eq!(second, 2);
        assert_eq!(&*slot as *const _ as usize, address, "the same heap block");
        assert_eq!(drops.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn futures_in_slots_run_side_by_side_and_end_in_any_order() {
        let mut slots = Slots::default();
        let mut running = FuturesUnordered::new();
        let mut releases = Vec::new();
        for n in 0..3u32 {
            let (release, released) = tokio::sync::oneshot::channel::<()>();
            releases.push(Some(release));
            running.push(slots.run(async move {
                let _ = released.await;
                n
            }));
        }
        let mut ended = Vec::new();
        for n in [2usize, 0, 1] {
            if let Some(release) = releases[n].take() {
                let _ = release.send(());
            }
            let (which, slot) = running.next().await.expect("a future is running");
            ended.push(which);
            slots.give_back(slot);
        }
        assert_eq!(ended, [2, 0, 1]);
        assert_eq!(slots.free.len(), 3, "every slot came back");
    }
}
