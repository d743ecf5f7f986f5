//! Buffers for encoded keys and values, reused across sends on each thread.
//!
//! librdkafka copies a record's key and value when it queues the record, so the
//! buffers they were encoded into are free again as soon as `send` or `enqueue` has
//! handed the record over. An [`OutgoingRecord`](super::outgoing::OutgoingRecord)
//! takes its two buffers from here and gives them back when it is dropped: a steady
//! producer allocates none per event. Each thread keeps at most [`SPARE`] buffers of
//! at most [`LARGEST_KEPT`] bytes; larger ones are freed as usual.

use std::cell::RefCell;

/// Buffers kept per thread.
const SPARE: usize = 8;

/// The largest buffer kept, in bytes; a buffer grown past it by a large event is
/// freed rather than kept.
const LARGEST_KEPT: usize = 64 * 1024;

/// The size a new buffer starts with: the framing and a small event.
const FIRST_CAPACITY: usize = 256;

thread_local! {
    static SPARE_BUFFERS: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// An empty buffer: a spare one of this thread, or a new one.
pub(crate) fn take() -> Vec<u8> {
    SPARE_BUFFERS
        .try_with(|spare| spare.borrow_mut().pop())
        .ok()
        .flatten()
        .unwrap_or_else(|| Vec::with_capacity(FIRST_CAPACITY))
}

/// Keeps `buffer` for a later [`take`] on this thread, emptied, if there is room.
pub(crate) fn give_back(mut buffer: Vec<u8>) {
    if buffer.capacity() == 0 || buffer.capacity() > LARGEST_KEPT {
        return;
    }
    buffer.clear();
    let _ = SPARE_BUFFERS.try_with(|spare| {
        let mut spare = spare.borrow_mut();
        if spare.len() < SPARE {
            spare.push(buffer);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_given_back_is_taken_again_empty() {
        let mut buffer = take();
        buffer.extend_from_slice(b"framed value");
        let address = buffer.as_ptr();
        give_back(buffer);
        let again = take();
        assert!(again.is_empty());
        assert_eq!(again.as_ptr(), address);
    }

    #[test]
    fn large_and_surplus_buffers_are_not_kept() {
        while SPARE_BUFFERS.with(|s| s.borrow_mut().pop()).is_some() {}
        give_back(Vec::with_capacity(LARGEST_KEPT + 1));
        assert_eq!(SPARE_BUFFERS.with(|s| s.borrow().len()), 0);
        for _ in 0..SPARE + 3 {
            give_back(Vec::with_capacity(16));
        }
        assert_eq!(SPARE_BUFFERS.with(|s| s.borrow().len()), SPARE);
    }
}
