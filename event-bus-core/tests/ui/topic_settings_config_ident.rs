// Topic config names are Kafka's dotted names, written as strings.
use event_bus_core::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
#[event(
    type = "org.example.shop.order.placed.v1",
    topic = "orders",
    key = "id",
    topic_settings(config(retention_ms = 604800000))
)]
struct OrderPlaced {
    id: i64,
}

fn main() {}
