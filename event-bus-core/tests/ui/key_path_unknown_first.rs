// The key path's first segment must be a field of the event.
use event_bus_core::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, EventData)]
struct Learner {
    id: i64,
    username: String,
}

#[derive(Serialize, Deserialize, Event)]
#[event(
    type = "org.example.learning.course.enrollment.created.v1",
    topic = "enrollments",
    key = "learner.username"
)]
struct EnrollmentCreated {
    user: Learner,
}

fn main() {}
