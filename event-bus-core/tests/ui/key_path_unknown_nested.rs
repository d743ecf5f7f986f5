// A deeper segment of the key path must be a field of the nested struct.
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
    key = "user.login"
)]
struct EnrollmentCreated {
    user: Learner,
}

fn main() {}
