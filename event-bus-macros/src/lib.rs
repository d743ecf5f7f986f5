//! Derive macros for signal-bridge: `#[derive(Event)]` and `#[derive(EventData)]`.
//!
//! Use them through `event_bus_core` or `event_bus_kafka::prelude`; this crate is an
//! implementation detail, like `serde_derive` is for `serde`.

mod attrs;
mod binary;
mod crate_path;
mod docs;
mod event;
mod event_data;
mod topic_attrs;

use proc_macro::TokenStream;
use syn::{parse_macro_input, DeriveInput};

/// Implements `Event` for a struct with named fields; see `event_bus_core::Event`.
///
/// Attributes: `#[event(type = "...", topic = "...", key = "dotted.path", minor_version = N,
/// topic_settings(partitions = N, replication_factor = N, config("name" = value, ...)))]`;
/// `key`, `minor_version` and `topic_settings` (and each part of it) are optional.
#[proc_macro_derive(Event, attributes(event))]
pub fn derive_event(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    event::expand(&input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Implements `AvroType` for a struct with named fields (an Avro record named after
/// the struct) or a unit-only enum (an Avro enum), so it can be a field of an event.
#[proc_macro_derive(EventData, attributes(event))]
pub fn derive_event_data(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    event_data::expand(&input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
