//! Client configurations fit for tests against a test cluster.

use rdkafka::config::ClientConfig;

/// A consumer configuration for tests against `bootstrap_servers`: `group.id`,
/// `session.timeout.ms=6000` (the broker's minimum: a dead member is noticed soon),
/// `auto.offset.reset=earliest`, `enable.auto.commit=false`,
/// `enable.partition.eof=false`, `reconnect.backoff.max.ms=1000` (quick recovery
/// after a broker outage). Change or add options with `set` before `create`.
///
/// # Example
///
/// ```
/// let config = event_bus_testkit::kafka::consumer_config("127.0.0.1:9092", "g1");
/// assert_eq!(config.get("session.timeout.ms"), Some("6000"));
/// assert_eq!(config.get("group.id"), Some("g1"));
/// ```
pub fn consumer_config(bootstrap_servers: &str, group_id: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap_servers)
        .set("group.id", group_id)
        .set("session.timeout.ms", "6000")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .set("reconnect.backoff.max.ms", "1000");
    config
}

/// A producer configuration for tests against `bootstrap_servers`:
/// `message.timeout.ms=30000` and `reconnect.backoff.max.ms=1000` (quick recovery
/// after a broker outage). Change or add options with `set` before `create`.
///
/// # Example
///
/// ```
/// let config = event_bus_testkit::kafka::producer_config("127.0.0.1:9092");
/// assert_eq!(config.get("message.timeout.ms"), Some("30000"));
/// ```
pub fn producer_config(bootstrap_servers: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap_servers)
        .set("message.timeout.ms", "30000")
        .set("reconnect.backoff.max.ms", "1000");
    config
}
