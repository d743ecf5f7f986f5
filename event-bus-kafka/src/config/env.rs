//! Reading configuration from `EVENT_BUS_*` environment variables.

use std::collections::BTreeMap;

use super::secret::{is_secret_variable, redact_url};

/// A configuration value that is missing or does not parse.
///
/// ```
/// use event_bus_kafka::config::{ConfigError, EnvSource, KafkaConfig};
/// let err = KafkaConfig::from_env_source(&EnvSource::from_pairs([("X", "1")])).unwrap_err();
/// assert!(matches!(err, ConfigError::Missing { .. }));
/// assert!(err.to_string().contains("EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A required setting has no value.
    #[error("{setting} is not set: set the environment variable {variable} or the field in code ({hint})")]
    Missing {
        /// The setting's name in code.
        setting: &'static str,
        /// Its environment variable.
        variable: &'static str,
        /// An example value.
        hint: &'static str,
    },
    /// A setting has a value that does not parse.
    #[error("{variable}=`{value}` is invalid: expected {expected}")]
    Invalid {
        /// The variable or field.
        variable: String,
        /// The value given (never a secret).
        value: String,
        /// What would be valid.
        expected: &'static str,
    },
    /// A librdkafka option would break a guarantee of the SDK, so it is refused.
    #[error("the Kafka option {option}=`{value}` is refused: {reason}; remove it from EVENT_BUS_KAFKA_* and --extra")]
    Refused {
        /// The librdkafka option's name.
        option: String,
        /// The value given.
        value: String,
        /// What it would break.
        reason: &'static str,
    },
    /// Two settings give one librdkafka option different values, so one of them would
    /// be ignored without a word (`EVENT_BUS_KAFKA_LINGER_MS` and
    /// `EVENT_BUS_KAFKA_linger_ms`, or an option variable naming `bootstrap.servers`).
    /// The values are not shown: either may be a secret.
    #[error("{first} and {second} both set the Kafka option `{option}`, to different values; keep one of them")]
    Conflict {
        /// The librdkafka option's name.
        option: String,
        /// One setting (a variable's name).
        first: String,
        /// The other.
        second: String,
    },
}

/// A snapshot of environment variables, so configuration can be read from the process
/// environment or from a map in tests. `Debug` hides the values of secret variables
/// (passwords, tokens, SASL secrets) and the passwords in URLs.
///
/// ```
/// use event_bus_kafka::config::EnvSource;
/// let env = EnvSource::from_pairs([
///     ("EVENT_BUS_TOPIC_PREFIX", "dev"),
///     ("EVENT_BUS_SCHEMA_REGISTRY_PASSWORD", "hunter2"),
///     ("EVENT_BUS_OUTBOX_DATABASE_URL", "postgres://app:hunter2@db/app"),
/// ]);
/// assert_eq!(env.get("EVENT_BUS_TOPIC_PREFIX"), Some("dev"));
/// let shown = format!("{env:?}");
/// assert!(shown.contains("dev") && shown.contains("postgres://app:***@db/app"));
/// assert!(!shown.contains("hunter2"));
/// ```
#[derive(Clone, Default)]
pub struct EnvSource {
    vars: BTreeMap<String, String>,
}

impl std::fmt::Debug for EnvSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown: BTreeMap<&str, String> = self
            .vars
            .iter()
            .map(|(name, value)| {
                let value = if is_secret_variable(name) {
                    "***".to_owned()
                } else {
                    redact_url(value)
                };
                (name.as_str(), value)
            })
            .collect();
        f.debug_struct("EnvSource").field("vars", &shown).finish()
    }
}

impl EnvSource {
    /// The process environment's `EVENT_BUS_*` variables.
    ///
    /// Other variables are not read, whatever they hold; one whose name is not UTF-8 is
    /// ignored with a warning. An `EVENT_BUS_*` value that is not UTF-8 is kept with its invalid bytes replaced by `�` (so a number, URL or
    /// name fails to parse with an error naming the variable) and logged as a warning.
    ///
    /// ```
    /// let env = event_bus_kafka::config::EnvSource::from_process();
    /// let _ = env.get("EVENT_BUS_SERVICE_NAME");
    /// ```
    pub fn from_process() -> Self {
        // `std::env::vars` panics on the first variable, of any name, that is not
        // UTF-8: the environment is outside input, so read it as `OsString`s.
        Self::from_pairs(std::env::vars_os().filter_map(|(name, value)| {
            let name = match name.into_string() {
                Ok(name) if name.starts_with("EVENT_BUS_") => name,
                Ok(_) => return None,
                Err(raw) => {
                    let shown = raw.to_string_lossy();
                    if shown.starts_with("EVENT_BUS_") {
                        tracing::warn!(variable = %shown, "ignoring {shown}: its name is not UTF-8");
                    }
                    return None;
                }
            };
            let value = value.into_string().unwrap_or_else(|raw| {
                tracing::warn!(
                    variable = %name,
                    "the value of {name} is not UTF-8; its invalid bytes are read as U+FFFD"
                );
                raw.to_string_lossy().into_owned()
            });
            Some((name, value))
        }))
    }

    /// Variables from pairs.
    ///
    /// ```
    /// let env = event_bus_kafka::config::EnvSource::from_pairs([("A", "1")]);
    /// assert_eq!(env.get("A"), Some("1"));
    /// ```
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// The same variables with `name` set to `value` (replacing any value it had): for
    /// flags and defaults written over the environment.
    ///
    /// ```
    /// use event_bus_kafka::config::EnvSource;
    /// let env = EnvSource::from_pairs([("A", "1")]).with_var("A", "2").with_var("B", "3");
    /// assert_eq!((env.get("A"), env.get("B")), (Some("2"), Some("3")));
    /// ```
    pub fn with_var(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.vars.insert(name.into(), value.into());
        self
    }

    /// A variable's value; an empty value counts as unset.
    ///
    /// ```
    /// let env = event_bus_kafka::config::EnvSource::from_pairs([("A", "")]);
    /// assert_eq!(env.get("A"), None);
    /// ```
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }

    /// Variables starting with `prefix`, with the prefix removed.
    ///
    /// ```
    /// let env = event_bus_kafka::config::EnvSource::from_pairs([("P_A", "1"), ("Q", "2")]);
    /// assert_eq!(env.with_prefix("P_").collect::<Vec<_>>(), vec![("A", "1")]);
    /// ```
    pub fn with_prefix<'a>(
        &'a self,
        prefix: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.vars
            .iter()
            .filter_map(move |(k, v)| k.strip_prefix(prefix).map(|rest| (rest, v.as_str())))
    }

    /// A variable parsed as milliseconds.
    ///
    /// ```
    /// let env = event_bus_kafka::config::EnvSource::from_pairs([("T", "250")]);
    /// assert_eq!(env.millis("T").unwrap(), Some(std::time::Duration::from_millis(250)));
    /// ```
    pub fn millis(&self, name: &str) -> Result<Option<std::time::Duration>, ConfigError> {
        self.parsed::<u64>(name, "a whole number of milliseconds")
            .map(|v| v.map(std::time::Duration::from_millis))
    }

    /// A variable parsed with `FromStr`.
    ///
    /// ```
    /// let env = event_bus_kafka::config::EnvSource::from_pairs([("N", "x")]);
    /// assert!(env.parsed::<u32>("N", "a number").is_err());
    /// ```
    pub fn parsed<T: std::str::FromStr>(
        &self,
        name: &str,
        expected: &'static str,
    ) -> Result<Option<T>, ConfigError> {
        self.get(name)
            .map(|v| {
                v.trim().parse().map_err(|_| ConfigError::Invalid {
                    variable: name.to_owned(),
                    value: v.to_owned(),
                    expected,
                })
            })
            .transpose()
    }
}
