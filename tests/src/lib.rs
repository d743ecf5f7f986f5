//! End-to-end tests live in `tests/`; this library holds the setup and helpers they share.

#![deny(missing_docs)]

pub mod bench_support;
pub mod filler;
pub mod outbox_support;
pub mod peer;
pub mod proc_stats;
pub mod sdk_record;
pub mod stack;
pub mod traffic;
