// Fields become Avro record fields, so they need names.
use event_bus_core::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
#[event(type = "org.example.learning.course.enrollment.created.v1", topic = "enrollments")]
struct EnrollmentCreated(i64, String);

fn main() {}
