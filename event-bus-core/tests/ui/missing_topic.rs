// Every event type names the topic it goes to.
use event_bus_core::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
#[event(type = "org.example.learning.course.enrollment.created.v1")]
struct EnrollmentCreated {
    user_id: i64,
}

fn main() {}
