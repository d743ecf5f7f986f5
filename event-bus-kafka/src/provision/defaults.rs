//! Topic settings that apply where no event type declares one, from `EVENT_BUS_TOPIC_*`.

use std::collections::BTreeMap;

use crate::config::{ConfigError, EnvSource};

/// The variable with the default partition count.
pub const PARTITIONS_VARIABLE: &str = "EVENT_BUS_TOPIC_PARTITIONS";
/// The variable with the default replication factor.
pub const REPLICATION_FACTOR_VARIABLE: &str = "EVENT_BUS_TOPIC_REPLICATION_FACTOR";
/// The prefix of variables with default topic configs:
/// `EVENT_BUS_TOPIC_CONFIG_RETENTION_MS=604800000` → `retention.ms`.
pub const CONFIG_VARIABLE_PREFIX: &str = "EVENT_BUS_TOPIC_CONFIG_";

/// Defaults for every topic `topics ensure` manages (dead-letter topics included),
/// used where the event types declare nothing. Unset parts are left to the broker
/// (`num.partitions`, `default.replication.factor`, its config defaults).
///
/// ```
/// use event_bus_kafka::config::EnvSource;
/// use event_bus_kafka::provision::TopicDefaults;
/// let env = EnvSource::from_pairs([
///     ("EVENT_BUS_TOPIC_PARTITIONS", "6"),
///     ("EVENT_BUS_TOPIC_REPLICATION_FACTOR", "3"),
///     ("EVENT_BUS_TOPIC_CONFIG_MIN_INSYNC_REPLICAS", "2"),
/// ]);
/// let defaults = TopicDefaults::from_env_source(&env)?;
/// assert_eq!(defaults.partitions, Some(6));
/// assert_eq!(defaults.replication_factor, Some(3));
/// assert_eq!(defaults.configs["min.insync.replicas"], "2");
/// assert!(TopicDefaults::from_env_source(&EnvSource::from_pairs([("EVENT_BUS_TOPIC_PARTITIONS", "0")])).is_err());
/// # Ok::<(), event_bus_kafka::config::ConfigError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicDefaults {
    /// Partitions of a topic whose event types declare none.
    pub partitions: Option<u32>,
    /// Replication factor of a topic whose event types declare none.
    pub replication_factor: Option<u16>,
    /// Topic configs, by Kafka's name, for configs no event type of the topic declares.
    pub configs: BTreeMap<String, String>,
}

impl TopicDefaults {
    /// From `EVENT_BUS_TOPIC_PARTITIONS`, `EVENT_BUS_TOPIC_REPLICATION_FACTOR` and
    /// `EVENT_BUS_TOPIC_CONFIG_<NAME>` (the name upper-cased, dots as underscores).
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] for a count that is not a whole number ≥ 1.
    ///
    /// See the type's example.
    pub fn from_env_source(env: &EnvSource) -> Result<Self, ConfigError> {
        let partitions = positive::<u32>(env, PARTITIONS_VARIABLE, i32::MAX as u32)?;
        let replication_factor =
            positive::<u16>(env, REPLICATION_FACTOR_VARIABLE, i16::MAX as u16)?;
        let configs = env
            .with_prefix(CONFIG_VARIABLE_PREFIX)
            .filter(|(_, value)| !value.trim().is_empty())
            .map(|(name, value)| (config_name(name), value.trim().to_owned()))
            .collect();
        Ok(Self {
            partitions,
            replication_factor,
            configs,
        })
    }

    /// From the process environment; see [`from_env_source`](Self::from_env_source).
    ///
    /// # Errors
    ///
    /// As for [`from_env_source`](Self::from_env_source).
    ///
    /// ```
    /// let defaults = event_bus_kafka::provision::TopicDefaults::from_env();
    /// # let _ = defaults;
    /// ```
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_env_source(&EnvSource::from_process())
    }
}

/// The Kafka config name of the rest of an `EVENT_BUS_TOPIC_CONFIG_*` variable.
///
/// ```
/// use event_bus_kafka::provision::defaults::{config_name, config_variable};
/// assert_eq!(config_name("RETENTION_MS"), "retention.ms");
/// assert_eq!(config_variable("min.insync.replicas"), "EVENT_BUS_TOPIC_CONFIG_MIN_INSYNC_REPLICAS");
/// ```
pub fn config_name(variable_rest: &str) -> String {
    variable_rest.to_ascii_lowercase().replace('_', ".")
}

/// The variable that sets the default of the topic config `name`.
///
/// See [`config_name`].
pub fn config_variable(name: &str) -> String {
    format!(
        "{CONFIG_VARIABLE_PREFIX}{}",
        name.to_ascii_uppercase().replace(['.', '-'], "_")
    )
}

fn positive<T>(env: &EnvSource, variable: &str, max: T) -> Result<Option<T>, ConfigError>
where
    T: std::str::FromStr + PartialOrd + Default + Copy,
{
    let expected = "a whole number of at least 1";
    let value = env.parsed::<T>(variable, expected)?;
    match value {
        Some(n) if n <= T::default() || n > max => Err(ConfigError::Invalid {
            variable: variable.to_owned(),
            value: env.get(variable).unwrap_or_default().to_owned(),
            expected,
        }),
        other => Ok(other),
    }
}
