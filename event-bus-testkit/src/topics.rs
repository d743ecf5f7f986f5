//! Unique names for topics and consumer groups, so tests sharing a broker never
//! see each other's records.

use std::sync::atomic::{AtomicU64, Ordering};

/// Longest topic name Kafka accepts.
const MAX_TOPIC_NAME_LEN: usize = 249;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Returns a topic name that no other test (in this process or another) uses:
/// `{prefix}-{pid}-{counter}-{random}`.
///
/// Characters Kafka does not allow in topic names (anything but ASCII letters,
/// digits, `.`, `_` and `-`) are replaced by `_`, and the result is cut to
/// Kafka's 249-character limit (keeping the unique suffix).
///
/// # Example
///
/// ```
/// use event_bus_testkit::topics::unique_topic;
///
/// let a = unique_topic("orders");
/// let b = unique_topic("orders");
/// assert!(a.starts_with("orders-"));
/// assert_ne!(a, b);
/// ```
pub fn unique_topic(prefix: &str) -> String {
    unique_name(prefix)
}

/// Returns a consumer group id that no other test uses, built like
/// [`unique_topic`]: `{prefix}-{pid}-{counter}-{random}`.
///
/// # Example
///
/// ```
/// use event_bus_testkit::topics::unique_group;
///
/// let group = unique_group("my test/group");
/// assert!(group.starts_with("my_test_group-"));
/// ```
pub fn unique_group(prefix: &str) -> String {
    unique_name(prefix)
}

fn unique_name(prefix: &str) -> String {
    let counter = COUNTER.fetch_add(1, Ordering::Relaxed);
    let random = uuid::Uuid::new_v4().simple().to_string();
    let suffix = format!("-{}-{}-{}", std::process::id(), counter, &random[..8]);
    let mut prefix: String = prefix
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if prefix.is_empty() {
        prefix.push_str("test");
    }
    prefix.truncate(MAX_TOPIC_NAME_LEN.saturating_sub(suffix.len()));
    prefix + &suffix
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_valid_kafka_topic_names() {
        let name = unique_topic(&"ä/x ".repeat(200));
        assert!(name.len() <= MAX_TOPIC_NAME_LEN, "{}", name.len());
        assert!(name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')));
    }

    #[test]
    fn empty_prefix_gets_a_default() {
        assert!(unique_topic("").starts_with("test-"));
    }
}
