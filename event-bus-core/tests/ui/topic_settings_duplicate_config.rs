// One config, one value.
use event_bus_core::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
#[event(
    type = "org.example.shop.order.placed.v1",
    topic = "orders",
    key = "id",
    topic_settings(config("retention.ms" = 1000, "retention.ms" = 2000))
)]
struct OrderPlaced {
    id: i64,
}

fn main() {}
