//! Example event types and receivers for signal-bridge.
#![deny(missing_docs)]
