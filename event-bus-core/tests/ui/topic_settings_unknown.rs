// A misspelt topic setting is refused, with what to write instead.
use event_bus_core::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
#[event(
    type = "org.example.shop.order.placed.v1",
    topic = "orders",
    key = "id",
    topic_settings(partition = 6)
)]
struct OrderPlaced {
    id: i64,
}

fn main() {}
