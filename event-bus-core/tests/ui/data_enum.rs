// An EventData enum is an Avro enum: its variants carry no data.
use event_bus_core::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, EventData)]
enum Mode {
    Audit,
    Verified { price_cents: i64 },
}

fn main() {}
