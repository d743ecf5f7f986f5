//! Broker connection settings shared by producers, consumers and admin tools.

use std::collections::BTreeMap;
use std::fmt;

use rdkafka::ClientConfig;

use super::compression::default_codec;
use super::env::{ConfigError, EnvSource};
use super::secret::is_secret_option;

/// Where the brokers are, and any librdkafka options, passed through untouched.
///
/// ```
/// use event_bus_kafka::config::KafkaConfig;
/// let kafka = KafkaConfig::new("127.0.0.1:9092").with_option("sasl.password", "s3cret");
/// let debug = format!("{kafka:?}");
/// assert!(debug.contains("127.0.0.1:9092"));
/// assert!(!debug.contains("s3cret"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct KafkaConfig {
    /// `host:port` list of brokers.
    pub bootstrap_servers: String,
    /// librdkafka options (`name` → value), applied after the SDK's defaults.
    pub options: BTreeMap<String, String>,
}

impl KafkaConfig {
    /// Settings for the given brokers.
    ///
    /// ```
    /// let kafka = event_bus_kafka::config::KafkaConfig::new("localhost:9092");
    /// assert!(kafka.options.is_empty());
    /// ```
    pub fn new(bootstrap_servers: impl Into<String>) -> Self {
        Self {
            bootstrap_servers: bootstrap_servers.into(),
            options: BTreeMap::new(),
        }
    }

    /// Adds a librdkafka option.
    ///
    /// ```
    /// let kafka = event_bus_kafka::config::KafkaConfig::new("b:9092").with_option("linger.ms", "5");
    /// assert_eq!(kafka.options["linger.ms"], "5");
    /// ```
    pub fn with_option(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.options.insert(name.into(), value.into());
        self
    }

    /// From `EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS` and `EVENT_BUS_KAFKA_<OPTION>` variables.
    ///
    /// ```
    /// use event_bus_kafka::config::{EnvSource, KafkaConfig};
    /// let env = EnvSource::from_pairs([
    ///     ("EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS", "b:9092"),
    ///     ("EVENT_BUS_KAFKA_SECURITY_PROTOCOL", "SASL_SSL"),
    /// ]);
    /// let kafka = KafkaConfig::from_env_source(&env)?;
    /// assert_eq!(kafka.options["security.protocol"], "SASL_SSL");
    /// # Ok::<(), event_bus_kafka::config::ConfigError>(())
    /// ```
    pub fn from_env_source(env: &EnvSource) -> Result<Self, ConfigError> {
        let bootstrap =
            env.get("EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS")
                .ok_or(ConfigError::Missing {
                    setting: "bootstrap_servers",
                    variable: "EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS",
                    hint: "e.g. localhost:9092",
                })?;
        let mut config = Self::new(bootstrap);
        for (name, value) in env.with_prefix("EVENT_BUS_KAFKA_") {
            if name != "BOOTSTRAP_SERVERS" && !value.trim().is_empty() {
                config.options.insert(
                    name.to_ascii_lowercase().replace('_', "."),
                    value.to_owned(),
                );
            }
        }
        Ok(config)
    }

    /// An rdkafka client configuration: `defaults`, then the brokers and this
    /// config's options (which win).
    ///
    /// ```
    /// let kafka = event_bus_kafka::config::KafkaConfig::new("b:9092").with_option("acks", "1");
    /// let client = kafka.client_config(&[("acks", "all"), ("linger.ms", "5")]);
    /// assert_eq!(client.get("acks"), Some("1"));
    /// assert_eq!(client.get("linger.ms"), Some("5"));
    /// ```
    pub fn client_config(&self, defaults: &[(&str, &str)]) -> ClientConfig {
        let mut client = ClientConfig::new();
        for (name, value) in defaults {
            client.set(*name, *value);
        }
        client.set("bootstrap.servers", &self.bootstrap_servers);
        for (name, value) in &self.options {
            client.set(name, value);
        }
        client
    }

    /// An rdkafka client configuration for a producer: the SDK's producer defaults
    /// (`enable.idempotence=true`, `acks=all`, `compression.type` =
    /// [`DEFAULT_COMPRESSION`](super::DEFAULT_COMPRESSION)), then `defaults`, then the
    /// brokers and this config's options (which win). A codec among the options, under
    /// either of librdkafka's names (`compression.type`, or its alias
    /// `compression.codec`), replaces the default codec.
    ///
    /// ```
    /// use event_bus_kafka::config::{KafkaConfig, DEFAULT_COMPRESSION};
    /// let kafka = KafkaConfig::new("b:9092");
    /// let client = kafka.producer_client_config(&[("linger.ms", "10")]);
    /// assert_eq!(client.get("compression.type"), Some(DEFAULT_COMPRESSION));
    /// assert_eq!(client.get("acks"), Some("all"));
    /// assert_eq!(client.get("linger.ms"), Some("10"));
    ///
    /// // EVENT_BUS_KAFKA_COMPRESSION_TYPE=zstd, or the alias EVENT_BUS_KAFKA_COMPRESSION_CODEC:
    /// let client = kafka.clone().with_option("compression.type", "zstd").producer_client_config(&[]);
    /// assert_eq!(client.get("compression.type"), Some("zstd"));
    /// let client = kafka.with_option("compression.codec", "none").producer_client_config(&[]);
    /// assert_eq!((client.get("compression.codec"), client.get("compression.type")), (Some("none"), None));
    /// ```
    pub fn producer_client_config(&self, defaults: &[(&str, &str)]) -> ClientConfig {
        let mut all = vec![("enable.idempotence", "true"), ("acks", "all")];
        all.extend(default_codec(&self.options));
        all.extend_from_slice(defaults);
        self.client_config(&all)
    }
}

impl fmt::Debug for KafkaConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let options: BTreeMap<&str, &str> = self
            .options
            .iter()
            .map(|(k, v)| {
                let shown = if is_secret_option(k) {
                    "***"
                } else {
                    v.as_str()
                };
                (k.as_str(), shown)
            })
            .collect();
        f.debug_struct("KafkaConfig")
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("options", &options)
            .finish()
    }
}
