//! Producer settings.

use std::time::Duration;

use super::env::{ConfigError, EnvSource};
use super::kafka::KafkaConfig;
use super::registry::RegistryConfig;

/// Everything a [`Producer`](crate::producer::Producer) needs.
///
/// Defaults: idempotence on, `acks=all`, 30 s delivery timeout, no topic prefix.
///
/// ```
/// use event_bus_kafka::config::{KafkaConfig, ProducerConfig, RegistryConfig};
/// let config = ProducerConfig::new(KafkaConfig::new("localhost:9092"), RegistryConfig::new("http://localhost:8081"))
///     .with_service_name("enrollments")
///     .with_topic_prefix("prod");
/// assert_eq!(config.full_topic("learning-course"), "prod-learning-course");
/// assert_eq!(config.event_source(), "enrollments");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerConfig {
    /// Brokers and librdkafka options.
    pub kafka: KafkaConfig,
    /// The schema registry.
    pub registry: RegistryConfig,
    /// Topics become `{prefix}-{topic}`; `None` or empty means no prefix.
    pub topic_prefix: Option<String>,
    /// The service's name: librdkafka `client.id`, and `ce_source` unless `source` is set.
    pub service_name: String,
    /// `ce_source` of produced events.
    pub source: Option<String>,
    /// How long one send may wait for the broker's acknowledgement
    /// (librdkafka `message.timeout.ms`).
    pub delivery_timeout: Duration,
}

impl ProducerConfig {
    /// Settings with the defaults.
    ///
    /// ```
    /// # use event_bus_kafka::config::*;
    /// let c = ProducerConfig::new(KafkaConfig::new("b:9092"), RegistryConfig::new("http://r"));
    /// assert_eq!(c.delivery_timeout, std::time::Duration::from_secs(30));
    /// ```
    pub fn new(kafka: KafkaConfig, registry: RegistryConfig) -> Self {
        Self {
            kafka,
            registry,
            topic_prefix: None,
            service_name: "signal-bridge".to_owned(),
            source: None,
            delivery_timeout: Duration::from_secs(30),
        }
    }

    /// Sets the service name.
    ///
    /// ```
    /// # use event_bus_kafka::config::*;
    /// let c = ProducerConfig::new(KafkaConfig::new("b"), RegistryConfig::new("http://r")).with_service_name("lms");
    /// assert_eq!(c.service_name, "lms");
    /// ```
    pub fn with_service_name(mut self, name: impl Into<String>) -> Self {
        self.service_name = name.into();
        self
    }

    /// Sets the topic prefix.
    ///
    /// ```
    /// # use event_bus_kafka::config::*;
    /// let c = ProducerConfig::new(KafkaConfig::new("b"), RegistryConfig::new("http://r")).with_topic_prefix("");
    /// assert_eq!(c.full_topic("t"), "t");
    /// ```
    pub fn with_topic_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.topic_prefix = Some(prefix.into());
        self
    }

    /// Sets the delivery timeout.
    ///
    /// ```
    /// # use event_bus_kafka::config::*;
    /// let c = ProducerConfig::new(KafkaConfig::new("b"), RegistryConfig::new("http://r"))
    ///     .with_delivery_timeout(std::time::Duration::from_secs(2));
    /// assert_eq!(c.delivery_timeout.as_secs(), 2);
    /// ```
    pub fn with_delivery_timeout(mut self, timeout: Duration) -> Self {
        self.delivery_timeout = timeout;
        self
    }

    /// The topic name on the broker: `{prefix}-{topic}` when a prefix is set.
    ///
    /// ```
    /// # use event_bus_kafka::config::*;
    /// let c = ProducerConfig::new(KafkaConfig::new("b"), RegistryConfig::new("http://r")).with_topic_prefix("dev");
    /// assert_eq!(c.full_topic("orders"), "dev-orders");
    /// ```
    pub fn full_topic(&self, topic: &str) -> String {
        crate::topic::full_topic(self.topic_prefix.as_deref(), topic)
    }

    /// `ce_source` of produced events.
    ///
    /// ```
    /// # use event_bus_kafka::config::*;
    /// let c = ProducerConfig::new(KafkaConfig::new("b"), RegistryConfig::new("http://r"));
    /// assert_eq!(c.event_source(), "signal-bridge");
    /// ```
    pub fn event_source(&self) -> &str {
        self.source.as_deref().unwrap_or(&self.service_name)
    }

    /// From `EVENT_BUS_*` variables (see the [module table](crate::config)).
    ///
    /// ```
    /// use event_bus_kafka::config::{EnvSource, ProducerConfig};
    /// let env = EnvSource::from_pairs([
    ///     ("EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS", "b:9092"),
    ///     ("EVENT_BUS_SCHEMA_REGISTRY_URL", "http://r:8081"),
    ///     ("EVENT_BUS_SERVICE_NAME", "lms"),
    ///     ("EVENT_BUS_PRODUCER_DELIVERY_TIMEOUT_MS", "5000"),
    /// ]);
    /// let c = ProducerConfig::from_env_source(&env)?;
    /// assert_eq!(c.service_name, "lms");
    /// assert_eq!(c.delivery_timeout.as_millis(), 5000);
    /// # Ok::<(), event_bus_kafka::config::ConfigError>(())
    /// ```
    pub fn from_env_source(env: &EnvSource) -> Result<Self, ConfigError> {
        let mut config = Self::new(
            KafkaConfig::from_env_source(env)?,
            RegistryConfig::from_env_source(env)?,
        );
        config.topic_prefix = env.get("EVENT_BUS_TOPIC_PREFIX").map(str::to_owned);
        if let Some(name) = env.get("EVENT_BUS_SERVICE_NAME") {
            config.service_name = name.to_owned();
        }
        config.source = env.get("EVENT_BUS_EVENT_SOURCE").map(str::to_owned);
        if let Some(timeout) = env.millis("EVENT_BUS_PRODUCER_DELIVERY_TIMEOUT_MS")? {
            config.delivery_timeout = timeout;
        }
        Ok(config)
    }

    /// From the process environment.
    ///
    /// ```no_run
    /// let config = event_bus_kafka::config::ProducerConfig::from_env()?;
    /// # Ok::<(), event_bus_kafka::config::ConfigError>(())
    /// ```
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_env_source(&EnvSource::from_process())
    }
}
