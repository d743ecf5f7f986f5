// A compacted topic refuses records without a key, so a keyless type cannot ask for one.
use event_bus_core::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
#[event(
    type = "org.example.shop.cart.emptied.v1",
    topic = "carts",
    topic_settings(config("cleanup.policy" = "compact"))
)]
struct CartEmptied {
    cart_id: i64,
}

fn main() {}
