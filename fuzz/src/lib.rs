//! What the fuzz targets share: the example event types, the writer schemas they are
//! read from, the checks each decode must pass, and the seed records.
//!
//! The example events are the examples crate's own source files, compiled here with
//! `#[path]` so the targets decode the very types the examples publish, without
//! building the examples crate's Kafka and database dependencies under a sanitizer.

// `login_counted.rs` imports the prelude through `event_bus_kafka`, which re-exports
// core's; this fuzz crate depends on core alone, under that name too.
extern crate event_bus_core as event_bus_kafka;

pub mod checks;
pub mod events;
pub mod seeds;
pub mod value;
