//! Two Open edX events, declared in Rust, wire-compatible with openedx-events 11.2.0.
//!
//! ```
//! use event_bus_examples::openedx::*;
//! use event_bus_core::Event;
//! let event = SessionLoginCompleted { user: UserData::example() };
//! assert_eq!(event.key().map(|k| k.to_string()), Some("foobob".to_string()));
//! ```

use chrono::{DateTime, Utc};
use event_bus_core::prelude::*;
use serde::{Deserialize, Serialize};

/// Personal data of a user (PII: never logged at info level).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, EventData)]
pub struct UserPersonalData {
    /// Login name.
    pub username: String,
    /// E-mail address.
    pub email: String,
    /// Full name.
    pub name: String,
}

/// A user of the platform.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, EventData)]
pub struct UserData {
    /// Numeric user id.
    pub id: i64,
    /// Whether the account is active.
    pub is_active: bool,
    /// Personal data.
    pub pii: UserPersonalData,
}

impl UserData {
    /// The user of Open edX's published wire vector.
    ///
    /// ```
    /// assert_eq!(event_bus_examples::openedx::UserData::example().id, 123);
    /// ```
    pub fn example() -> Self {
        Self {
            id: 123,
            is_active: true,
            pii: UserPersonalData {
                username: "foobob".into(),
                email: "bob@foo.example".into(),
                name: "Bob Foo".into(),
            },
        }
    }
}

/// A course.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, EventData)]
pub struct CourseData {
    /// Course key, e.g. `course-v1:edX+DemoX+Demo_Course`.
    pub course_key: String,
    /// Display name.
    pub display_name: String,
    /// Start date.
    pub start: Option<DateTime<Utc>>,
    /// End date.
    pub end: Option<DateTime<Utc>>,
}

/// A user's enrollment in a course.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, EventData)]
pub struct CourseEnrollmentData {
    /// The enrolled user.
    pub user: UserData,
    /// The course.
    pub course: CourseData,
    /// Enrollment mode, e.g. `audit` or `verified`.
    pub mode: String,
    /// Whether the enrollment is active.
    pub is_active: bool,
    /// When the enrollment was created.
    pub creation_date: DateTime<Utc>,
    /// Who created it, when not the user.
    pub created_by: Option<UserData>,
}

/// A user logged in (`SESSION_LOGIN_COMPLETED`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(
    type = "org.openedx.learning.auth.session.login.completed.v1",
    topic = "user-login",
    key = "user.pii.username",
    topic_settings(partitions = 3)
)]
pub struct SessionLoginCompleted {
    /// The user who logged in.
    pub user: UserData,
}

/// A user enrolled in a course (`COURSE_ENROLLMENT_CREATED`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(
    type = "org.openedx.learning.course.enrollment.created.v1",
    topic = "learning-course-enrollment",
    key = "enrollment.course.course_key",
    topic_settings(
        partitions = 3,
        config("cleanup.policy" = "delete", "retention.ms" = 1209600000)
    )
)]
pub struct CourseEnrollmentCreated {
    /// The new enrollment.
    pub enrollment: CourseEnrollmentData,
}
