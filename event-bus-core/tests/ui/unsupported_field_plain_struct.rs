// A nested struct needs #[derive(EventData)] to have an Avro schema.
use event_bus_core::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Learner {
    id: i64,
}

#[derive(Serialize, Deserialize, Event)]
#[event(type = "org.example.learning.course.enrollment.created.v1", topic = "enrollments")]
struct EnrollmentCreated {
    learner: Learner,
}

fn main() {}
