// A misspelt setting is refused, with the list of valid ones.
use event_bus_core::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
#[event(
    type = "org.example.learning.course.enrollment.created.v1",
    topic = "enrollments",
    partition_key = "user_id"
)]
struct EnrollmentCreated {
    user_id: i64,
}

fn main() {}
