//! Broker connection settings shared by producers, consumers and admin tools.

use std::collections::BTreeMap;
use std::fmt;

use rdkafka::ClientConfig;

use super::compression::default_codec;
use super::env::{ConfigError, EnvSource};
use super::secret::is_secret_option;

/// The variable of the brokers.
const BOOTSTRAP_VARIABLE: &str = "EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS";
/// `EVENT_BUS_KAFKA_<NAME>` sets the librdkafka option `<name>` (lower case, `_` → `.`).
const OPTION_PREFIX: &str = "EVENT_BUS_KAFKA_";

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
    /// Two variables that set one option to different values (they differ in case, or
    /// one names `bootstrap.servers`) are a [`ConfigError::Conflict`]: one of them would
    /// otherwise be ignored.
    ///
    /// ```
    /// use event_bus_kafka::config::{ConfigError, EnvSource, KafkaConfig};
    /// let env = EnvSource::from_pairs([
    ///     ("EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS", "b:9092"),
    ///     ("EVENT_BUS_KAFKA_SECURITY_PROTOCOL", "SASL_SSL"),
    /// ]);
    /// let kafka = KafkaConfig::from_env_source(&env)?;
    /// assert_eq!(kafka.options["security.protocol"], "SASL_SSL");
    ///
    /// let twice = EnvSource::from_pairs([
    ///     ("EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS", "b:9092"),
    ///     ("EVENT_BUS_KAFKA_LINGER_MS", "5"),
    ///     ("EVENT_BUS_KAFKA_linger_ms", "50"),
    /// ]);
    /// assert!(matches!(KafkaConfig::from_env_source(&twice), Err(ConfigError::Conflict { .. })));
    /// # Ok::<(), event_bus_kafka::config::ConfigError>(())
    /// ```
    pub fn from_env_source(env: &EnvSource) -> Result<Self, ConfigError> {
        let bootstrap = env.get(BOOTSTRAP_VARIABLE).ok_or(ConfigError::Missing {
            setting: "bootstrap_servers",
            variable: BOOTSTRAP_VARIABLE,
            hint: "e.g. localhost:9092",
        })?;
        let mut config = Self::new(bootstrap);
        // The variable that set each option, to name both sides of a conflict.
        let mut set_by = BTreeMap::from([(
            "bootstrap.servers".to_owned(),
            BOOTSTRAP_VARIABLE.to_owned(),
        )]);
        for (name, value) in env.with_prefix(OPTION_PREFIX) {
            if name == "BOOTSTRAP_SERVERS" || value.trim().is_empty() {
                continue;
            }
            let option = name.to_ascii_lowercase().replace('_', ".");
            let variable = format!("{OPTION_PREFIX}{name}");
            let earlier = match option.as_str() {
                "bootstrap.servers" => Some(bootstrap),
                _ => config.options.get(&option).map(String::as_str),
            };
            if earlier.is_some_and(|earlier| earlier != value) {
                return Err(ConfigError::Conflict {
                    first: set_by.remove(&option).unwrap_or_default(),
                    second: variable,
                    option,
                });
            }
            set_by.insert(option.clone(), variable);
            if option != "bootstrap.servers" {
                config.options.insert(option, value.to_owned());
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

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<KafkaConfig, ConfigError> {
        KafkaConfig::from_env_source(&EnvSource::from_pairs(pairs.iter().copied()))
    }

    #[test]
    fn an_option_variable_cannot_replace_the_brokers() {
        let err = config(&[
            ("EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS", "b:9092"),
            ("EVENT_BUS_KAFKA_bootstrap_servers", "elsewhere:9092"),
        ])
        .expect_err("two broker lists");
        assert_eq!(
            err,
            ConfigError::Conflict {
                option: "bootstrap.servers".into(),
                first: "EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS".into(),
                second: "EVENT_BUS_KAFKA_bootstrap_servers".into(),
            }
        );
        let same = config(&[
            ("EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS", "b:9092"),
            ("EVENT_BUS_KAFKA_bootstrap_servers", "b:9092"),
        ])
        .expect("the same brokers twice");
        assert_eq!(same.bootstrap_servers, "b:9092");
        assert!(same.options.is_empty());
    }

    #[test]
    fn options_set_twice_to_different_values_are_refused_without_their_values() {
        let err = config(&[
            ("EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS", "b:9092"),
            ("EVENT_BUS_KAFKA_SASL_PASSWORD", "first-secret"),
            ("EVENT_BUS_KAFKA_sasl_password", "second-secret"),
        ])
        .expect_err("two passwords");
        let shown = err.to_string();
        assert!(shown.contains("EVENT_BUS_KAFKA_SASL_PASSWORD"), "{shown}");
        assert!(shown.contains("EVENT_BUS_KAFKA_sasl_password"), "{shown}");
        assert!(!shown.contains("secret"), "{shown}");
        let same = config(&[
            ("EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS", "b:9092"),
            ("EVENT_BUS_KAFKA_LINGER_MS", "5"),
            ("EVENT_BUS_KAFKA_linger_ms", "5"),
        ])
        .expect("one value twice");
        assert_eq!(same.options["linger.ms"], "5");
    }
}
