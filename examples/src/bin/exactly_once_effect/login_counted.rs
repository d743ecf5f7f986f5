//! The event this service emits: a login, counted.

use event_bus_kafka::prelude::*;
use serde::{Deserialize, Serialize};

/// A learner's login was counted by the login-counter service: it is their
/// `login_number`-th. Emitted once per login event
/// (`org.openedx.learning.auth.session.login.completed.v1`), keyed by username so each
/// learner's counts stay in order. `source_ce_id` is the `ce_id` of the counted login
/// event: it tells which login each count came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(
    type = "org.example.learning.login.counted.v1",
    topic = "learner-login-counts",
    key = "username",
    topic_settings(partitions = 3)
)]
pub struct LoginCounted {
    /// The learner's login name (the record key).
    pub username: String,
    /// The learner's numeric id.
    pub user_id: i64,
    /// 1 for the learner's first login seen by this service, then 2, 3, …
    pub login_number: i64,
    /// The `ce_id` of the login event that was counted (a UUID).
    pub source_ce_id: String,
}
