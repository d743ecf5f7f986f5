//! Event type names: `{reverse-dns}.{domain}.{subject}.{action}.v{major}`.
//!
//! For example `org.openedx.learning.course.enrollment.created.v1`: reverse DNS
//! `org.openedx`, domain `learning`, subject `course.enrollment`, action `created`,
//! major version 1. Every segment is lowercase ASCII letters, digits and `_`, starting
//! with a letter, so the name is also a valid Avro namespace.

use std::fmt;
use std::str::FromStr;

/// Fewest segments a name can have: two of reverse DNS, domain, subject, action, version.
const MIN_SEGMENTS: usize = 6;

/// Whether `name` is a well-formed event type name. `const`, so the derive checks
/// names at compile time.
///
/// ```
/// use event_bus_core::event_type::is_valid;
/// assert!(is_valid("org.openedx.learning.course.enrollment.created.v1"));
/// assert!(!is_valid("CourseEnrollmentCreated"));
/// assert!(!is_valid("org.openedx.learning.course.enrollment.created"));
/// ```
pub const fn is_valid(name: &str) -> bool {
    let bytes = name.as_bytes();
    let mut segments = 0;
    let mut segment_start = 0;
    let mut i = 0;
    while i <= bytes.len() {
        if i == bytes.len() || bytes[i] == b'.' {
            if !segment_is_valid(bytes, segment_start, i) {
                return false;
            }
            segments += 1;
            segment_start = i + 1;
        }
        i += 1;
    }
    segments >= MIN_SEGMENTS && version_is_valid(bytes, segment_start_of_last(bytes))
}

const fn segment_is_valid(bytes: &[u8], start: usize, end: usize) -> bool {
    if start >= end || !bytes[start].is_ascii_lowercase() {
        return false;
    }
    let mut i = start;
    while i < end {
        let b = bytes[i];
        if !(b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
            return false;
        }
        i += 1;
    }
    true
}

const fn segment_start_of_last(bytes: &[u8]) -> usize {
    let mut i = bytes.len();
    while i > 0 {
        if bytes[i - 1] == b'.' {
            return i;
        }
        i -= 1;
    }
    0
}

const fn version_is_valid(bytes: &[u8], start: usize) -> bool {
    if bytes.len() < start + 2 || bytes[start] != b'v' || bytes[start + 1] == b'0' {
        return false;
    }
    let mut i = start + 1;
    while i < bytes.len() {
        if !bytes[i].is_ascii_digit() {
            return false;
        }
        i += 1;
    }
    true
}

/// A validated event type name.
///
/// ```
/// use event_bus_core::EventTypeName;
/// let name: EventTypeName = "org.openedx.learning.auth.session.login.completed.v1".parse()?;
/// assert_eq!(name.major_version(), 1);
/// assert_eq!(name.as_str(), "org.openedx.learning.auth.session.login.completed.v1");
/// # Ok::<(), event_bus_core::event_type::InvalidEventTypeName>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventTypeName(String);

impl EventTypeName {
    /// The name as text.
    ///
    /// ```
    /// let name: event_bus_core::EventTypeName = "org.example.a.b.created.v2".parse().unwrap();
    /// assert_eq!(name.as_str(), "org.example.a.b.created.v2");
    /// ```
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The major version, the number after the final `v`.
    ///
    /// ```
    /// let name: event_bus_core::EventTypeName = "org.example.a.b.created.v12".parse().unwrap();
    /// assert_eq!(name.major_version(), 12);
    /// ```
    pub fn major_version(&self) -> u32 {
        let digits = &self.0[segment_start_of_last(self.0.as_bytes()) + 1..];
        digits.parse().unwrap_or(u32::MAX)
    }
}

impl fmt::Display for EventTypeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A string that is not a well-formed event type name.
///
/// ```
/// let err = "Enrollment".parse::<event_bus_core::EventTypeName>().unwrap_err();
/// assert!(err.to_string().contains("{reverse-dns}.{domain}.{subject}.{action}.v{major}"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{name}` is not an event type name: use {{reverse-dns}}.{{domain}}.{{subject}}.{{action}}.v{{major}} in lowercase, e.g. org.example.learning.course.enrollment.created.v1")]
pub struct InvalidEventTypeName {
    /// The rejected text.
    pub name: String,
}

impl FromStr for EventTypeName {
    type Err = InvalidEventTypeName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if is_valid(s) {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidEventTypeName { name: s.to_owned() })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_valid;

    #[test]
    fn accepts_openedx_names() {
        assert!(is_valid(
            "org.openedx.learning.auth.session.login.completed.v1"
        ));
        assert!(is_valid(
            "org.openedx.learning.course.enrollment.created.v1"
        ));
        assert!(is_valid("com.acme.billing.invoice_line.paid.v10"));
    }

    #[test]
    fn rejects_malformed_names() {
        for bad in [
            "",
            "org.openedx.learning.created.v1",
            "org.openedx.learning.course.enrollment.created.v0",
            "org.openedx.learning.course.enrollment.created.V1",
            "org.openedx.learning.course.enrollment.created.1",
            "org.openedx.Learning.course.enrollment.created.v1",
            "org..learning.course.enrollment.created.v1",
            "org.openedx.learning.course.enrollment.created.v1.",
            "org.openedx.learning.course-enrollment.x.created.v1",
            "org.openedx.learning.course.enrollment.created.v1x",
        ] {
            assert!(!is_valid(bad), "{bad} should be rejected");
        }
    }
}
