//! A client for a Confluent-compatible schema registry (Confluent Schema Registry,
//! Karapace, Redpanda, Apicurio's Confluent API, or the testkit's embedded one).
//!
//! It covers what the SDK needs, including what `schema_registry_converter` leaves
//! out: setting a subject's compatibility level, and telling an incompatible schema
//! (409) from an unreachable registry by status and error code.

pub mod answer;
mod client;
mod error;

pub use client::RegistryClient;
pub use error::RegistryError;
