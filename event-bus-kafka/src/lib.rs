//! Kafka transport for signal-bridge.
#![deny(missing_docs)]

pub use event_bus_core;
