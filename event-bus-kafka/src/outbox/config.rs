//! Outbox settings: the store, the relay and the emergency producer.
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `EVENT_BUS_OUTBOX_DATABASE_URL` | `postgres://…` or `sqlite:…` (`sqlite::memory:` for tests) | required |
//! | `EVENT_BUS_OUTBOX_MAX_BACKLOG` | waiting events beyond which `send`/`enqueue` fail with `OutboxFull` | `100000` |
//! | `EVENT_BUS_OUTBOX_MAX_CONNECTIONS` | database pool size (the relay holds two) | `10` |
//! | `EVENT_BUS_OUTBOX_BATCH_SIZE` | rows the relay publishes per batch | `1000` |
//! | `EVENT_BUS_OUTBOX_MAX_LANES_PER_BATCH` | keys the relay claims per batch | `1000` |
//! | `EVENT_BUS_OUTBOX_POLL_INTERVAL_MS` | relay polling fallback when no NOTIFY arrives | `1000` |
//! | `EVENT_BUS_OUTBOX_RETRY_MIN_DELAY_MS` | first backoff of a failing row | `500` |
//! | `EVENT_BUS_OUTBOX_RETRY_MAX_DELAY_MS` | longest backoff of a failing row | `60000` |
//! | `EVENT_BUS_OUTBOX_MAX_CONSECUTIVE_ERRORS` | database errors in a row that stop the relay (for a supervisor to restart); `0` = never | `0` |
//! | `EVENT_BUS_OUTBOX_STATUS_INTERVAL_MS` | how often the relay records the backlog as metrics and logs it; `0` = never | `15000` |
//! | `EVENT_BUS_OUTBOX_PARK_AFTER_ATTEMPTS` | failed attempts after which a row refused for a passing reason (the classifier's *transient*) is parked; `0` = never. A broker outage never parks | `10` |
//! | `EVENT_BUS_OUTBOX_PARK_PERMANENT_AFTER_ATTEMPTS` | failed attempts after which a row too large for its topic, refused for good, or unreadable is parked; `0` = never | `3` |
//! | `EVENT_BUS_OUTBOX_PARK_PERMANENT_AFTER_MS` | besides those attempts, how long a row too large for its topic or refused for good must have been failing before it is parked (a topic or an ACL granted a moment late needs no person) | `30000` |
//! | `EVENT_BUS_OUTBOX_PROBE_INTERVAL_MS` | while the broker is failing, how often one send still tries it directly | `5000` |

use std::time::Duration;

use crate::config::{ConfigError, EnvSource, Secret};

/// Everything about the outbox: where it is, its limit, the relay and the emergency
/// producer. `Debug` hides the database URL (it may hold a password).
///
/// ```
/// use event_bus_kafka::outbox::OutboxConfig;
/// let config = OutboxConfig::new("postgres://app:pw@db/app").with_max_backlog(50_000);
/// assert_eq!(config.max_backlog, 50_000);
/// assert!(!format!("{config:?}").contains("pw"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxConfig {
    /// `postgres://…` or `sqlite:…`.
    pub database_url: Secret,
    /// Waiting events beyond which new events are refused ([`OutboxError::Full`](super::OutboxError::Full)).
    pub max_backlog: u64,
    /// Database pool size.
    pub max_connections: u32,
    /// The relay.
    pub relay: RelayConfig,
    /// The emergency producer.
    pub emergency: EmergencyConfig,
}

impl OutboxConfig {
    /// Defaults for the database at `database_url`.
    ///
    /// ```
    /// let c = event_bus_kafka::outbox::OutboxConfig::new("sqlite::memory:");
    /// assert_eq!(c.max_backlog, 100_000);
    /// ```
    pub fn new(database_url: impl Into<String>) -> Self {
        Self {
            database_url: Secret::new(database_url),
            max_backlog: 100_000,
            max_connections: 10,
            relay: RelayConfig::default(),
            emergency: EmergencyConfig::default(),
        }
    }

    /// Sets the backlog limit.
    ///
    /// See the type's example.
    pub fn with_max_backlog(mut self, max_backlog: u64) -> Self {
        self.max_backlog = max_backlog;
        self
    }

    /// From `EVENT_BUS_OUTBOX_*` variables (listed in `docs/configuration.md`).
    ///
    /// ```
    /// use event_bus_kafka::config::EnvSource;
    /// use event_bus_kafka::outbox::OutboxConfig;
    /// let env = EnvSource::from_pairs([
    ///     ("EVENT_BUS_OUTBOX_DATABASE_URL", "sqlite:outbox.db"),
    ///     ("EVENT_BUS_OUTBOX_BATCH_SIZE", "500"),
    /// ]);
    /// let config = OutboxConfig::from_env_source(&env)?;
    /// assert_eq!(config.relay.batch_size, 500);
    /// assert!(OutboxConfig::from_env_source(&EnvSource::default()).is_err());
    /// # Ok::<(), event_bus_kafka::config::ConfigError>(())
    /// ```
    pub fn from_env_source(env: &EnvSource) -> Result<Self, ConfigError> {
        let url = env
            .get("EVENT_BUS_OUTBOX_DATABASE_URL")
            .ok_or(ConfigError::Missing {
                setting: "outbox database_url",
                variable: "EVENT_BUS_OUTBOX_DATABASE_URL",
                hint: "e.g. postgres://user@localhost/app or sqlite:outbox.db",
            })?;
        let mut config = Self::new(url);
        if let Some(v) = env.parsed("EVENT_BUS_OUTBOX_MAX_BACKLOG", "a whole number of events")? {
            config.max_backlog = v;
        }
        if let Some(v) = positive(env, "EVENT_BUS_OUTBOX_MAX_CONNECTIONS")? {
            config.max_connections = v;
        }
        config.relay = RelayConfig::from_env_source(env)?;
        config.emergency = EmergencyConfig::from_env_source(env)?;
        Ok(config)
    }

    /// From the process environment.
    ///
    /// ```no_run
    /// let config = event_bus_kafka::outbox::OutboxConfig::from_env()?;
    /// # Ok::<(), event_bus_kafka::config::ConfigError>(())
    /// ```
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_env_source(&EnvSource::from_process())
    }
}

/// How the relay works.
///
/// ```
/// use std::time::Duration;
/// use event_bus_kafka::outbox::RelayConfig;
/// let config = RelayConfig::default().with_batch_size(200).with_poll_interval(Duration::from_millis(250));
/// assert_eq!(config.batch_size, 200);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayConfig {
    /// Rows published per batch (sent concurrently, deleted in one statement).
    pub batch_size: usize,
    /// Keys (lanes) claimed per batch.
    pub max_lanes_per_batch: usize,
    /// Polling fallback: the longest the relay sleeps without a NOTIFY.
    pub poll_interval: Duration,
    /// Backoff after a row's first failure (doubled per attempt, with jitter).
    pub retry_min_delay: Duration,
    /// The longest backoff of a failing row.
    pub retry_max_delay: Duration,
    /// Database errors in a row that stop the relay with an error; `None` retries forever.
    pub max_consecutive_errors: Option<u32>,
    /// How often the relay reads [`OutboxStatus`](super::OutboxStatus), records it as
    /// metrics (`event_bus_outbox_backlog`, `event_bus_outbox_oldest_age_seconds`) and
    /// logs it while events wait (`None`: never).
    pub status_interval: Option<Duration>,
    /// Failed attempts after which a row failing for a passing reason
    /// ([`Failure::Transient`](crate::failure::Failure::Transient)) is parked (`None`:
    /// never). Rows failing because the broker is unavailable are never parked.
    pub park_after_attempts: Option<u32>,
    /// Failed attempts after which a row that is too large, refused for good
    /// ([`Failure::TooLarge`](crate::failure::Failure::TooLarge),
    /// [`Failure::Permanent`](crate::failure::Failure::Permanent)) or unreadable is
    /// parked (`None`: never).
    pub park_permanent_after_attempts: Option<u32>,
    /// Besides [`park_permanent_after_attempts`](Self::park_permanent_after_attempts),
    /// how long since its first failure a row too large or refused for good must keep
    /// failing before it is parked, so a topic created or an ACL granted a moment late
    /// needs no person. Attempts made while the broker is unavailable count neither
    /// here nor in the attempts.
    pub park_permanent_after: Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            batch_size: 1000,
            max_lanes_per_batch: 1000,
            poll_interval: Duration::from_secs(1),
            retry_min_delay: Duration::from_millis(500),
            retry_max_delay: Duration::from_secs(60),
            max_consecutive_errors: None,
            status_interval: Some(Duration::from_secs(15)),
            park_after_attempts: Some(10),
            park_permanent_after_attempts: Some(3),
            park_permanent_after: Duration::from_secs(30),
        }
    }
}

impl RelayConfig {
    /// Sets rows per batch (at least 1).
    ///
    /// See the type's example.
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// Sets keys per batch (at least 1).
    ///
    /// ```
    /// let c = event_bus_kafka::outbox::RelayConfig::default().with_max_lanes_per_batch(10);
    /// assert_eq!(c.max_lanes_per_batch, 10);
    /// ```
    pub fn with_max_lanes_per_batch(mut self, lanes: usize) -> Self {
        self.max_lanes_per_batch = lanes.max(1);
        self
    }

    /// Sets the polling fallback.
    ///
    /// See the type's example.
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// Sets the backoff range of failing rows.
    ///
    /// ```
    /// use std::time::Duration;
    /// let c = event_bus_kafka::outbox::RelayConfig::default().with_retry_delays(Duration::from_millis(100), Duration::from_secs(2));
    /// assert_eq!(c.retry_max_delay, Duration::from_secs(2));
    /// ```
    pub fn with_retry_delays(mut self, min: Duration, max: Duration) -> Self {
        self.retry_min_delay = min;
        self.retry_max_delay = max.max(min);
        self
    }

    /// Sets after how many failed attempts rows are parked: `transient` for rows failing
    /// for a passing reason, `permanent` for rows too large, refused for good or
    /// unreadable (`None`: never; `Some(0)` counts as 1).
    ///
    /// ```
    /// let c = event_bus_kafka::outbox::RelayConfig::default().with_park_after(None, Some(1));
    /// assert_eq!(c.park_after_attempts, None);
    /// assert_eq!(c.park_permanent_after_attempts, Some(1));
    /// ```
    pub fn with_park_after(mut self, transient: Option<u32>, permanent: Option<u32>) -> Self {
        self.park_after_attempts = transient.map(|n| n.max(1));
        self.park_permanent_after_attempts = permanent.map(|n| n.max(1));
        self
    }

    /// Sets how long a row too large or refused for good must have been failing before
    /// it is parked (besides the attempts; `Duration::ZERO`: the attempts alone decide).
    ///
    /// ```
    /// use std::time::Duration;
    /// let c = event_bus_kafka::outbox::RelayConfig::default().with_park_permanent_after(Duration::from_secs(5));
    /// assert_eq!(c.park_permanent_after, Duration::from_secs(5));
    /// ```
    pub fn with_park_permanent_after(mut self, failing_for: Duration) -> Self {
        self.park_permanent_after = failing_for;
        self
    }

    /// From `EVENT_BUS_OUTBOX_*` variables (listed in `docs/configuration.md`).
    ///
    /// ```
    /// use event_bus_kafka::config::EnvSource;
    /// let env = EnvSource::from_pairs([
    ///     ("EVENT_BUS_OUTBOX_MAX_CONSECUTIVE_ERRORS", "5"),
    ///     ("EVENT_BUS_OUTBOX_PARK_AFTER_ATTEMPTS", "0"),
    /// ]);
    /// let c = event_bus_kafka::outbox::RelayConfig::from_env_source(&env)?;
    /// assert_eq!(c.max_consecutive_errors, Some(5));
    /// assert_eq!(c.park_after_attempts, None);
    /// assert_eq!(c.park_permanent_after_attempts, Some(3));
    /// assert_eq!(c.park_permanent_after, std::time::Duration::from_secs(30));
    /// # Ok::<(), event_bus_kafka::config::ConfigError>(())
    /// ```
    pub fn from_env_source(env: &EnvSource) -> Result<Self, ConfigError> {
        let mut config = Self::default();
        if let Some(v) = positive(env, "EVENT_BUS_OUTBOX_BATCH_SIZE")? {
            config.batch_size = v;
        }
        if let Some(v) = positive(env, "EVENT_BUS_OUTBOX_MAX_LANES_PER_BATCH")? {
            config.max_lanes_per_batch = v;
        }
        if let Some(v) = env.millis("EVENT_BUS_OUTBOX_POLL_INTERVAL_MS")? {
            config.poll_interval = v;
        }
        if let Some(v) = env.millis("EVENT_BUS_OUTBOX_RETRY_MIN_DELAY_MS")? {
            config.retry_min_delay = v;
        }
        if let Some(v) = env.millis("EVENT_BUS_OUTBOX_RETRY_MAX_DELAY_MS")? {
            config.retry_max_delay = v;
        }
        if config.retry_max_delay < config.retry_min_delay {
            return Err(ConfigError::Invalid {
                variable: "EVENT_BUS_OUTBOX_RETRY_MAX_DELAY_MS".into(),
                value: config.retry_max_delay.as_millis().to_string(),
                expected: "at least EVENT_BUS_OUTBOX_RETRY_MIN_DELAY_MS",
            });
        }
        if let Some(v) = env.parsed::<u32>(
            "EVENT_BUS_OUTBOX_MAX_CONSECUTIVE_ERRORS",
            "a whole number (0 = never stop)",
        )? {
            config.max_consecutive_errors = (v > 0).then_some(v);
        }
        if let Some(v) = env.millis("EVENT_BUS_OUTBOX_STATUS_INTERVAL_MS")? {
            config.status_interval = (!v.is_zero()).then_some(v);
        }
        if let Some(v) = env.parsed::<u32>(
            "EVENT_BUS_OUTBOX_PARK_AFTER_ATTEMPTS",
            "a whole number of attempts (0 = never park)",
        )? {
            config.park_after_attempts = (v > 0).then_some(v);
        }
        if let Some(v) = env.parsed::<u32>(
            "EVENT_BUS_OUTBOX_PARK_PERMANENT_AFTER_ATTEMPTS",
            "a whole number of attempts (0 = never park)",
        )? {
            config.park_permanent_after_attempts = (v > 0).then_some(v);
        }
        if let Some(v) = env.millis("EVENT_BUS_OUTBOX_PARK_PERMANENT_AFTER_MS")? {
            config.park_permanent_after = v;
        }
        Ok(config)
    }
}

/// How the emergency producer ([`OutboxProducer`](super::OutboxProducer)) decides
/// between the broker and the outbox.
///
/// The bound on one direct send is the producer's own delivery timeout
/// ([`ProducerConfig::delivery_timeout`](crate::config::ProducerConfig::delivery_timeout),
/// librdkafka's `message.timeout.ms`): set it to what a request may wait, e.g. 5 s.
///
/// ```
/// use std::time::Duration;
/// let c = event_bus_kafka::outbox::EmergencyConfig::default().with_probe_interval(Duration::from_secs(2));
/// assert_eq!(c.probe_interval, Duration::from_secs(2));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmergencyConfig {
    /// While the broker is failing every send goes straight to the outbox; once per
    /// interval one send (of a key with nothing waiting) still tries the broker, so the
    /// producer notices recovery even without an in-process relay.
    pub probe_interval: Duration,
}

impl Default for EmergencyConfig {
    fn default() -> Self {
        Self {
            probe_interval: Duration::from_secs(5),
        }
    }
}

impl EmergencyConfig {
    /// Sets the probe interval.
    ///
    /// See the type's example.
    pub fn with_probe_interval(mut self, interval: Duration) -> Self {
        self.probe_interval = interval;
        self
    }

    /// From `EVENT_BUS_OUTBOX_PROBE_INTERVAL_MS`.
    ///
    /// ```
    /// use event_bus_kafka::config::EnvSource;
    /// let env = EnvSource::from_pairs([("EVENT_BUS_OUTBOX_PROBE_INTERVAL_MS", "abc")]);
    /// assert!(event_bus_kafka::outbox::EmergencyConfig::from_env_source(&env).is_err());
    /// ```
    pub fn from_env_source(env: &EnvSource) -> Result<Self, ConfigError> {
        let mut config = Self::default();
        if let Some(v) = env.millis("EVENT_BUS_OUTBOX_PROBE_INTERVAL_MS")? {
            config.probe_interval = v;
        }
        Ok(config)
    }
}

/// A variable that must be a whole number above zero.
fn positive<T>(env: &EnvSource, name: &str) -> Result<Option<T>, ConfigError>
where
    T: std::str::FromStr + PartialOrd + Default + ToString,
{
    match env.parsed::<T>(name, "a whole number above 0")? {
        Some(v) if v <= T::default() => Err(ConfigError::Invalid {
            variable: name.to_owned(),
            value: v.to_string(),
            expected: "a whole number above 0",
        }),
        other => Ok(other),
    }
}
