// A key is a string, long, int or boolean: a float cannot partition events.
use event_bus_core::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
#[event(
    type = "org.example.learning.course.grade.changed.v1",
    topic = "grades",
    key = "grade"
)]
struct GradeChanged {
    grade: f64,
}

fn main() {}
