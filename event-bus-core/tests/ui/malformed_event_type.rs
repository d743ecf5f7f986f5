// Event type names are {reverse-dns}.{domain}.{subject}.{action}.v{major}, lowercase.
use event_bus_core::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
#[event(type = "org.example.CourseEnrolled", topic = "enrollments")]
struct CourseEnrolled {
    user_id: i64,
}

fn main() {}
