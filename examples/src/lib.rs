//! Example event types and receivers for signal-bridge.
//!
//! [`openedx`] holds two real Open edX events whose derived Avro schemas equal the
//! ones Open edX's Python event bus registers, so Rust and Python services share
//! topics.
#![deny(missing_docs)]

pub mod enrollment_service;
pub mod openedx;
pub mod receivers;
