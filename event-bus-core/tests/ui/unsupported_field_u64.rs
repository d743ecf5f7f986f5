// Avro has no unsigned integers: a `u64` field must be told to change type.
use event_bus_core::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
#[event(type = "org.example.learning.course.enrollment.created.v1", topic = "enrollments")]
struct EnrollmentCreated {
    user_id: u64,
}

fn main() {}
