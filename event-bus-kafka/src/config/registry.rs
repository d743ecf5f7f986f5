//! Schema registry connection settings.

use std::time::Duration;

use super::env::{ConfigError, EnvSource};
use super::secret::{redact_url, Secret};

/// Where the Confluent-compatible schema registry is, and how to authenticate.
///
/// `Debug` hides the password, also one written into the URL (`https://user:pw@host`).
///
/// ```
/// use event_bus_kafka::config::RegistryConfig;
/// let registry = RegistryConfig::new("http://localhost:8081").with_basic_auth("svc", "pw");
/// assert!(!format!("{registry:?}").contains("pw\""));
/// let in_url = RegistryConfig::new("https://svc:hunter2@registry:8081");
/// assert!(format!("{in_url:?}").contains("https://svc:***@registry:8081"));
/// assert!(!format!("{in_url:?}").contains("hunter2"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct RegistryConfig {
    /// Base URL, e.g. `http://localhost:8081`.
    pub url: String,
    /// Basic-auth user.
    pub username: Option<String>,
    /// Basic-auth password.
    pub password: Option<Secret>,
    /// Timeout of one HTTP request.
    pub timeout: Duration,
}

impl std::fmt::Debug for RegistryConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryConfig")
            .field("url", &redact_url(&self.url))
            .field("username", &self.username)
            .field("password", &self.password)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl RegistryConfig {
    /// A registry at `url`, no auth, 10 s timeout.
    ///
    /// ```
    /// let r = event_bus_kafka::config::RegistryConfig::new("http://r:8081/");
    /// assert_eq!(r.url, "http://r:8081");
    /// ```
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into().trim_end_matches('/').to_owned(),
            username: None,
            password: None,
            timeout: Duration::from_secs(10),
        }
    }

    /// Sets basic auth.
    ///
    /// ```
    /// let r = event_bus_kafka::config::RegistryConfig::new("http://r").with_basic_auth("u", "p");
    /// assert_eq!(r.username.as_deref(), Some("u"));
    /// ```
    pub fn with_basic_auth(
        mut self,
        username: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        self.username = Some(username.into());
        self.password = Some(Secret::new(password));
        self
    }

    /// From `EVENT_BUS_SCHEMA_REGISTRY_URL`, `_USERNAME`, `_PASSWORD`, `_TIMEOUT_MS`.
    ///
    /// ```
    /// use event_bus_kafka::config::{EnvSource, RegistryConfig};
    /// let env = EnvSource::from_pairs([("EVENT_BUS_SCHEMA_REGISTRY_URL", "http://r:8081")]);
    /// assert_eq!(RegistryConfig::from_env_source(&env)?.url, "http://r:8081");
    /// # Ok::<(), event_bus_kafka::config::ConfigError>(())
    /// ```
    pub fn from_env_source(env: &EnvSource) -> Result<Self, ConfigError> {
        let url = env
            .get("EVENT_BUS_SCHEMA_REGISTRY_URL")
            .ok_or(ConfigError::Missing {
                setting: "schema registry url",
                variable: "EVENT_BUS_SCHEMA_REGISTRY_URL",
                hint: "e.g. http://localhost:8081",
            })?;
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(ConfigError::Invalid {
                variable: "EVENT_BUS_SCHEMA_REGISTRY_URL".into(),
                value: redact_url(url),
                expected: "an http:// or https:// URL",
            });
        }
        let mut config = Self::new(url);
        config.username = env
            .get("EVENT_BUS_SCHEMA_REGISTRY_USERNAME")
            .map(str::to_owned);
        config.password = env
            .get("EVENT_BUS_SCHEMA_REGISTRY_PASSWORD")
            .map(Secret::new);
        if let Some(timeout) = env.millis("EVENT_BUS_SCHEMA_REGISTRY_TIMEOUT_MS")? {
            config.timeout = timeout;
        }
        Ok(config)
    }
}
