//! Filler that compression cannot shrink, for tests of size limits.
//!
//! The SDK's producers compress by default (`config::DEFAULT_COMPRESSION`), and a
//! broker checks `max.message.bytes` against the compressed batch: a record padded with
//! one repeated byte shrinks to a few dozen bytes and passes any limit. Random content
//! stays about as large on the wire as it is in memory.

use uuid::Uuid;

/// `len` random bytes.
///
/// ```
/// let bytes = event_bus_tests::filler::incompressible_bytes(100);
/// assert_eq!(bytes.len(), 100);
/// assert_ne!(bytes, event_bus_tests::filler::incompressible_bytes(100));
/// ```
pub fn incompressible_bytes(len: usize) -> Vec<u8> {
    std::iter::repeat_with(|| Uuid::new_v4().into_bytes())
        .flatten()
        .take(len)
        .collect()
}

/// `len` random ASCII letters and digits (six bits of chance per byte: lz4 and snappy
/// find nothing to shrink, zstd and gzip a quarter at most).
///
/// ```
/// let text = event_bus_tests::filler::incompressible_text(40);
/// assert_eq!(text.len(), 40);
/// assert!(text.bytes().all(|b| b.is_ascii_alphanumeric()));
/// ```
pub fn incompressible_text(len: usize) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789Ab";
    incompressible_bytes(len)
        .into_iter()
        .map(|b| char::from(ALPHABET[usize::from(b % 64)]))
        .collect()
}
