//! Topic names and schema registry subject names.

/// The topic on the broker: `{prefix}-{topic}`, or `topic` when the prefix is `None`
/// or empty.
///
/// ```
/// use event_bus_kafka::topic::full_topic;
/// assert_eq!(full_topic(Some("prod"), "user-login"), "prod-user-login");
/// assert_eq!(full_topic(Some(""), "user-login"), "user-login");
/// assert_eq!(full_topic(None, "user-login"), "user-login");
/// ```
pub fn full_topic(prefix: Option<&str>, topic: &str) -> String {
    match prefix.map(str::trim).filter(|p| !p.is_empty()) {
        Some(prefix) => format!("{prefix}-{topic}"),
        None => topic.to_owned(),
    }
}

/// The value subject (TopicRecordNameStrategy): `{full_topic}-{event_type}.CloudEvent`.
///
/// ```
/// let s = event_bus_kafka::topic::value_subject("user-login", "org.openedx.learning.auth.session.login.completed.v1");
/// assert_eq!(s, "user-login-org.openedx.learning.auth.session.login.completed.v1.CloudEvent");
/// ```
pub fn value_subject(full_topic: &str, event_type: &str) -> String {
    format!("{full_topic}-{event_type}.CloudEvent")
}

/// The key subject, as Open edX's producer names it: `{full_topic}-{avro type}`,
/// e.g. `user-login-string`.
///
/// ```
/// assert_eq!(event_bus_kafka::topic::key_subject("user-login", "string"), "user-login-string");
/// ```
pub fn key_subject(full_topic: &str, key_avro_type: &str) -> String {
    format!("{full_topic}-{key_avro_type}")
}
