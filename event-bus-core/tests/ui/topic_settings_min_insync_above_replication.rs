// min.insync.replicas above the replication factor would refuse every acks=all write.
use event_bus_core::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
#[event(
    type = "org.example.shop.order.placed.v1",
    topic = "orders",
    key = "id",
    topic_settings(replication_factor = 2, config("min.insync.replicas" = 3))
)]
struct OrderPlaced {
    id: i64,
}

fn main() {}
