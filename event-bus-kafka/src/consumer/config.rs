//! Consumer settings.

use std::time::Duration;

use crate::config::{ConfigError, EnvSource, KafkaConfig, RegistryConfig};
use crate::topic;

/// How failed receivers are retried before the record goes to the dead-letter topic.
///
/// Only the receivers that failed are called again, after an exponential delay with
/// jitter. A receiver that returns a permanent error is not retried.
///
/// ```
/// use event_bus_kafka::consumer::RetryPolicy;
/// let policy = RetryPolicy::default();
/// assert_eq!(policy.max_attempts, 3);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries per receiver, the first one included (1 = no retry).
    pub max_attempts: u32,
    /// Delay before the first retry.
    pub initial_delay: Duration,
    /// Longest delay between retries.
    pub max_delay: Duration,
    /// Stop retrying once this much time has passed since the first try.
    pub max_elapsed: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            initial_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
            max_elapsed: Duration::from_secs(60),
        }
    }
}

/// How the loop reacts to poll failures (broker unreachable, transport errors).
///
/// ```
/// use event_bus_kafka::consumer::PollPolicy;
/// assert_eq!(PollPolicy::default().max_consecutive_errors, 10);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollPolicy {
    /// First backoff delay.
    pub initial_backoff: Duration,
    /// Longest backoff delay.
    pub max_backoff: Duration,
    /// After this many failures in a row the loop ends with an error (0 = never).
    pub max_consecutive_errors: u32,
    /// How long a health probe of the brokers may take.
    pub probe_timeout: Duration,
}

impl Default for PollPolicy {
    fn default() -> Self {
        Self {
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            max_consecutive_errors: 10,
            probe_timeout: Duration::from_secs(5),
        }
    }
}

/// What to do with a record whose event type has no receivers in this service.
///
/// ```
/// assert_eq!(event_bus_kafka::consumer::UnknownTypePolicy::default(), event_bus_kafka::consumer::UnknownTypePolicy::Skip);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UnknownTypePolicy {
    /// Skip it with a debug log and commit past it.
    #[default]
    Skip,
    /// Send it to the dead-letter topic.
    DeadLetter,
}

/// Where dead letters go.
///
/// ```
/// use event_bus_kafka::consumer::DlqTopic;
/// assert_eq!(DlqTopic::default().for_topic("orders"), "orders.dlq");
/// assert_eq!(DlqTopic::Fixed("all.dlq".into()).for_topic("orders"), "all.dlq");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DlqTopic {
    /// `{original topic}{suffix}`; the default suffix is `.dlq`.
    Suffix(String),
    /// One topic for every source topic.
    Fixed(String),
}

impl Default for DlqTopic {
    fn default() -> Self {
        Self::Suffix(".dlq".to_owned())
    }
}

impl DlqTopic {
    /// The dead-letter topic for records of `topic` (a full topic name).
    ///
    /// See the type's example.
    pub fn for_topic(&self, topic: &str) -> String {
        match self {
            Self::Suffix(suffix) => format!("{topic}{suffix}"),
            Self::Fixed(name) => name.clone(),
        }
    }
}

impl DlqTopic {
    /// The dead-letter topic setting of `env`: `EVENT_BUS_CONSUMER_DLQ_TOPIC` (a full
    /// topic name, no prefix applied) when set, else `{topic}.dlq`. The consumer and
    /// `event-bus dlq show|redrive` both read it here, so they agree on the topic.
    ///
    /// ```
    /// use event_bus_kafka::{config::EnvSource, consumer::DlqTopic};
    /// let env = EnvSource::from_pairs([("EVENT_BUS_CONSUMER_DLQ_TOPIC", "all.dlq")]);
    /// assert_eq!(DlqTopic::from_env_source(&env), DlqTopic::Fixed("all.dlq".into()));
    /// assert_eq!(DlqTopic::from_env_source(&EnvSource::from_pairs([("X", "1")])), DlqTopic::default());
    /// ```
    pub fn from_env_source(env: &EnvSource) -> Self {
        match env.get(DLQ_TOPIC_VARIABLE).map(str::trim) {
            Some(name) if !name.is_empty() => Self::Fixed(name.to_owned()),
            _ => Self::default(),
        }
    }

    /// The dead-letter topic of records of `topic` (before the prefix) for a consumer
    /// configured by `env`: the prefix `EVENT_BUS_TOPIC_PREFIX` applied to `topic`,
    /// then [`DlqTopic::from_env_source`].
    ///
    /// ```
    /// use event_bus_kafka::{config::EnvSource, consumer::DlqTopic};
    /// let env = EnvSource::from_pairs([("EVENT_BUS_TOPIC_PREFIX", "prod")]);
    /// assert_eq!(DlqTopic::of_source_topic(&env, "orders"), "prod-orders.dlq");
    /// ```
    pub fn of_source_topic(env: &EnvSource, topic: &str) -> String {
        Self::from_env_source(env)
            .for_topic(&topic::full_topic(env.get("EVENT_BUS_TOPIC_PREFIX"), topic))
    }
}

/// The variable naming one dead-letter topic for every consumed topic.
pub(crate) const DLQ_TOPIC_VARIABLE: &str = "EVENT_BUS_CONSUMER_DLQ_TOPIC";

/// The variable setting [`ConsumerConfig::commit_interval`] in milliseconds.
const COMMIT_INTERVAL_VARIABLE: &str = "EVENT_BUS_CONSUMER_COMMIT_INTERVAL_MS";

/// How the consumer writes dead letters, and when it tells health probes it cannot.
///
/// A write the broker refuses for good (authorization, a missing or invalid topic)
/// stops the loop; a record too large for the topic goes there as a stub without its
/// value; any other failure is retried with a backoff, and once the write has failed
/// `stuck_after_attempts` times or not gone through for `stuck_after`, `/healthz` shows
/// the consumer stuck on its dead-letter topic (a `stuck_on_dlq` detail; the status
/// stays healthy) until no write is stuck any more.
///
/// ```
/// use std::time::Duration;
/// use event_bus_kafka::consumer::DlqPolicy;
/// let policy = DlqPolicy::default();
/// assert_eq!(policy.stuck_after, Duration::from_secs(60));
/// assert_eq!(policy.stuck_after_attempts, 5);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DlqPolicy {
    /// How long one write may wait for the broker's acknowledgement (librdkafka's
    /// `message.timeout.ms` of the dead-letter producer) before it counts as failed
    /// and is tried again. Default 30 s.
    pub write_timeout: Duration,
    /// Failed writes of one record after which the consumer counts as stuck on its
    /// dead-letter topic. Default 5.
    pub stuck_after_attempts: u32,
    /// Time after which a dead letter not yet written makes the consumer count as
    /// stuck, failed writes or not. Default 60 s.
    pub stuck_after: Duration,
}

impl DlqPolicy {
    /// Refuses a zero write timeout, stuck time or attempt count: none of them has a
    /// meaning (a zero stuck time or count would show every dead letter as stuck
    /// before its first write).
    ///
    /// ```
    /// use std::time::Duration;
    /// use event_bus_kafka::consumer::DlqPolicy;
    /// assert!(DlqPolicy::default().check().is_ok());
    /// let zero = DlqPolicy { stuck_after: Duration::ZERO, ..DlqPolicy::default() };
    /// let err = zero.check().unwrap_err().to_string();
    /// assert!(err.contains("EVENT_BUS_CONSUMER_DLQ_STUCK_AFTER_MS"), "{err}");
    ///
    /// // Read from the environment, a zero is refused there already.
    /// use event_bus_kafka::{config::EnvSource, consumer::ConsumerConfig};
    /// for variable in [
    ///     "EVENT_BUS_CONSUMER_DLQ_STUCK_AFTER_MS",
    ///     "EVENT_BUS_CONSUMER_DLQ_STUCK_AFTER_ATTEMPTS",
    ///     "EVENT_BUS_CONSUMER_DLQ_WRITE_TIMEOUT_MS",
    /// ] {
    ///     let env = EnvSource::from_pairs([
    ///         ("EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS", "b:9092"),
    ///         ("EVENT_BUS_SCHEMA_REGISTRY_URL", "http://r"),
    ///         ("EVENT_BUS_CONSUMER_GROUP", "g"),
    ///         (variable, "0"),
    ///     ]);
    ///     let err = ConsumerConfig::from_env_source(&env).unwrap_err().to_string();
    ///     assert!(err.contains(variable), "{err}");
    /// }
    /// ```
    pub fn check(&self) -> Result<(), ConfigError> {
        let zero = |variable: &str, expected: &'static str| {
            Err(ConfigError::Invalid {
                variable: variable.to_owned(),
                value: "0".into(),
                expected,
            })
        };
        if self.write_timeout.is_zero() {
            return zero(
                "EVENT_BUS_CONSUMER_DLQ_WRITE_TIMEOUT_MS (dlq.write_timeout)",
                "a time above 0 ms, e.g. 30000",
            );
        }
        if self.stuck_after_attempts == 0 {
            return zero(
                "EVENT_BUS_CONSUMER_DLQ_STUCK_AFTER_ATTEMPTS (dlq.stuck_after_attempts)",
                "at least 1 failed write, e.g. 5",
            );
        }
        if self.stuck_after.is_zero() {
            return zero(
                "EVENT_BUS_CONSUMER_DLQ_STUCK_AFTER_MS (dlq.stuck_after)",
                "a time above 0 ms, e.g. 60000",
            );
        }
        Ok(())
    }
}

impl Default for DlqPolicy {
    fn default() -> Self {
        Self {
            write_timeout: Duration::from_secs(30),
            stuck_after_attempts: 5,
            stuck_after: Duration::from_secs(60),
        }
    }
}

/// Everything an [`EventConsumer`](super::EventConsumer) needs.
///
/// ```
/// use event_bus_kafka::config::{KafkaConfig, RegistryConfig};
/// use event_bus_kafka::consumer::ConsumerConfig;
/// let config = ConsumerConfig::new(
///     KafkaConfig::new("localhost:9092"),
///     RegistryConfig::new("http://localhost:8081"),
///     "enrollment-service",
///     ["learning-course-enrollment"],
/// )
/// .with_topic_prefix("prod");
/// assert_eq!(config.full_topics(), vec!["prod-learning-course-enrollment".to_string()]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerConfig {
    /// Brokers and librdkafka options (applied after the SDK's defaults).
    pub kafka: KafkaConfig,
    /// The schema registry.
    pub registry: RegistryConfig,
    /// Consumer group id.
    pub group_id: String,
    /// Topics to subscribe to (before the prefix).
    pub topics: Vec<String>,
    /// Topics become `{prefix}-{topic}`; `None` or empty means no prefix.
    pub topic_prefix: Option<String>,
    /// Receiver retries.
    pub retry: RetryPolicy,
    /// Poll failure backoff.
    pub poll: PollPolicy,
    /// Where dead letters go.
    pub dlq_topic: DlqTopic,
    /// How dead letters are written.
    pub dlq: DlqPolicy,
    /// Records of event types without receivers here.
    pub unknown_types: UnknownTypePolicy,
    /// How often finished offsets are committed (asynchronously); above 0. Longer
    /// means fewer commit requests and, after a crash, more records handled again.
    pub commit_interval: Duration,
    /// Records handled at once. 1 (the default) keeps strict partition order; more
    /// runs different keys of a partition side by side while each key stays in order.
    /// Commits stay contiguous either way.
    pub max_in_flight: usize,
    /// The longest a record's receivers may run, retries included. Past it, the
    /// receivers still running are given up as failed and the record is
    /// dead-lettered. `None` (the default) means four fifths of librdkafka's
    /// `max.poll.interval.ms` (300 s unless set): see
    /// [`ConsumerConfig::record_deadline`].
    pub record_timeout: Option<Duration>,
    /// After a partition is revoked, or shutdown is asked for, how long records
    /// already running may take to finish before they are abandoned uncommitted (the
    /// next owner reads them again). Records of a revoked partition that finish in
    /// time commit nothing either: the partition has a new owner. Default 5 s, well
    /// under the session timeout and a typical shutdown grace period.
    pub revoke_grace: Duration,
}

/// librdkafka's default `max.poll.interval.ms`.
const DEFAULT_MAX_POLL_INTERVAL: Duration = Duration::from_secs(300);

/// librdkafka options that would turn commit-after-success into commit-on-poll.
const AT_LEAST_ONCE_OPTIONS: [&str; 2] = ["enable.auto.commit", "enable.auto.offset.store"];

impl ConsumerConfig {
    /// Settings with the defaults: cooperative-sticky assignment, no auto-commit,
    /// `auto.offset.reset=earliest`, 3 tries per receiver, DLQ `{topic}.dlq`,
    /// commits every second.
    ///
    /// See the type's example.
    pub fn new<T: Into<String>>(
        kafka: KafkaConfig,
        registry: RegistryConfig,
        group_id: impl Into<String>,
        topics: impl IntoIterator<Item = T>,
    ) -> Self {
        Self {
            kafka,
            registry,
            group_id: group_id.into(),
            topics: topics.into_iter().map(Into::into).collect(),
            topic_prefix: None,
            retry: RetryPolicy::default(),
            poll: PollPolicy::default(),
            dlq_topic: DlqTopic::default(),
            dlq: DlqPolicy::default(),
            unknown_types: UnknownTypePolicy::default(),
            commit_interval: Duration::from_secs(1),
            max_in_flight: 1,
            record_timeout: None,
            revoke_grace: Duration::from_secs(5),
        }
    }

    /// librdkafka's `max.poll.interval.ms` for this consumer: the option when set and
    /// valid, else its default of 300 s.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use event_bus_kafka::{config::*, consumer::*};
    /// let c = ConsumerConfig::new(
    ///     KafkaConfig::new("b").with_option("max.poll.interval.ms", "10000"),
    ///     RegistryConfig::new("http://r"), "g", ["t"],
    /// );
    /// assert_eq!(c.max_poll_interval(), Duration::from_secs(10));
    /// ```
    pub fn max_poll_interval(&self) -> Duration {
        self.kafka
            .options
            .get("max.poll.interval.ms")
            .and_then(|ms| ms.trim().parse::<u64>().ok())
            .map_or(DEFAULT_MAX_POLL_INTERVAL, Duration::from_millis)
    }

    /// How long one record's receivers may run: `record_timeout`, or four fifths of
    /// [`max_poll_interval`](Self::max_poll_interval).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use event_bus_kafka::{config::*, consumer::*};
    /// let mut c = ConsumerConfig::new(KafkaConfig::new("b"), RegistryConfig::new("http://r"), "g", ["t"]);
    /// assert_eq!(c.record_deadline(), Duration::from_secs(240));
    /// c.record_timeout = Some(Duration::from_secs(30));
    /// assert_eq!(c.record_deadline(), Duration::from_secs(30));
    /// ```
    pub fn record_deadline(&self) -> Duration {
        self.record_timeout
            .unwrap_or_else(|| self.max_poll_interval().mul_f64(0.8))
    }

    /// Sets the topic prefix.
    ///
    /// See the type's example.
    pub fn with_topic_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.topic_prefix = Some(prefix.into());
        self
    }

    /// Sets the retry policy.
    ///
    /// ```
    /// # use event_bus_kafka::{config::*, consumer::*};
    /// let c = ConsumerConfig::new(KafkaConfig::new("b"), RegistryConfig::new("http://r"), "g", ["t"])
    ///     .with_retry(RetryPolicy { max_attempts: 5, ..RetryPolicy::default() });
    /// assert_eq!(c.retry.max_attempts, 5);
    /// ```
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The subscribed topics with the prefix applied.
    ///
    /// See the type's example.
    pub fn full_topics(&self) -> Vec<String> {
        self.topics
            .iter()
            .map(|t| topic::full_topic(self.topic_prefix.as_deref(), t))
            .collect()
    }

    /// From `EVENT_BUS_*` variables: the Kafka and registry ones of the producer, plus
    /// `EVENT_BUS_CONSUMER_GROUP`, `EVENT_BUS_CONSUMER_TOPICS` (comma-separated),
    /// `EVENT_BUS_TOPIC_PREFIX`, `EVENT_BUS_CONSUMER_MAX_ATTEMPTS`,
    /// `EVENT_BUS_CONSUMER_MAX_POLL_ERRORS`, `EVENT_BUS_CONSUMER_MAX_IN_FLIGHT`,
    /// `EVENT_BUS_CONSUMER_DLQ_TOPIC`, `EVENT_BUS_CONSUMER_DLQ_WRITE_TIMEOUT_MS`,
    /// `EVENT_BUS_CONSUMER_DLQ_STUCK_AFTER_ATTEMPTS`,
    /// `EVENT_BUS_CONSUMER_DLQ_STUCK_AFTER_MS`, `EVENT_BUS_CONSUMER_RECORD_TIMEOUT_MS`,
    /// `EVENT_BUS_CONSUMER_REVOKE_GRACE_MS`, `EVENT_BUS_CONSUMER_COMMIT_INTERVAL_MS`
    /// (above 0).
    ///
    /// ```
    /// use event_bus_kafka::{config::EnvSource, consumer::ConsumerConfig};
    /// let env = EnvSource::from_pairs([
    ///     ("EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS", "b:9092"),
    ///     ("EVENT_BUS_SCHEMA_REGISTRY_URL", "http://r:8081"),
    ///     ("EVENT_BUS_CONSUMER_GROUP", "g"),
    ///     ("EVENT_BUS_CONSUMER_TOPICS", "a, b"),
    /// ]);
    /// let c = ConsumerConfig::from_env_source(&env)?;
    /// assert_eq!(c.topics, vec!["a", "b"]);
    /// assert_eq!(c.commit_interval, std::time::Duration::from_secs(1));
    ///
    /// let slow = EnvSource::from_pairs([
    ///     ("EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS", "b:9092"),
    ///     ("EVENT_BUS_SCHEMA_REGISTRY_URL", "http://r:8081"),
    ///     ("EVENT_BUS_CONSUMER_GROUP", "g"),
    ///     ("EVENT_BUS_CONSUMER_COMMIT_INTERVAL_MS", "5000"),
    /// ]);
    /// let c = ConsumerConfig::from_env_source(&slow)?;
    /// assert_eq!(c.commit_interval, std::time::Duration::from_secs(5));
    /// let zero = EnvSource::from_pairs([
    ///     ("EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS", "b:9092"),
    ///     ("EVENT_BUS_SCHEMA_REGISTRY_URL", "http://r:8081"),
    ///     ("EVENT_BUS_CONSUMER_GROUP", "g"),
    ///     ("EVENT_BUS_CONSUMER_COMMIT_INTERVAL_MS", "0"),
    /// ]);
    /// assert!(ConsumerConfig::from_env_source(&zero).is_err());
    /// # Ok::<(), event_bus_kafka::config::ConfigError>(())
    /// ```
    pub fn from_env_source(env: &EnvSource) -> Result<Self, ConfigError> {
        let group = env
            .get("EVENT_BUS_CONSUMER_GROUP")
            .ok_or(ConfigError::Missing {
                setting: "group_id",
                variable: "EVENT_BUS_CONSUMER_GROUP",
                hint: "e.g. enrollment-service",
            })?;
        let topics: Vec<String> = env
            .get("EVENT_BUS_CONSUMER_TOPICS")
            .map(|t| {
                t.split(',')
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let mut config = Self::new(
            KafkaConfig::from_env_source(env)?,
            RegistryConfig::from_env_source(env)?,
            group,
            topics,
        );
        config.topic_prefix = env.get("EVENT_BUS_TOPIC_PREFIX").map(str::to_owned);
        if let Some(n) = env.parsed("EVENT_BUS_CONSUMER_MAX_ATTEMPTS", "a whole number ≥ 1")? {
            config.retry.max_attempts = n;
        }
        if let Some(n) = env.parsed("EVENT_BUS_CONSUMER_MAX_POLL_ERRORS", "a whole number")? {
            config.poll.max_consecutive_errors = n;
        }
        if let Some(n) = env.parsed("EVENT_BUS_CONSUMER_MAX_IN_FLIGHT", "a whole number ≥ 1")? {
            config.max_in_flight = n;
        }
        config.dlq_topic = DlqTopic::from_env_source(env);
        if let Some(timeout) = env.millis("EVENT_BUS_CONSUMER_DLQ_WRITE_TIMEOUT_MS")? {
            config.dlq.write_timeout = timeout;
        }
        if let Some(n) = env.parsed(
            "EVENT_BUS_CONSUMER_DLQ_STUCK_AFTER_ATTEMPTS",
            "a whole number ≥ 1",
        )? {
            config.dlq.stuck_after_attempts = n;
        }
        if let Some(after) = env.millis("EVENT_BUS_CONSUMER_DLQ_STUCK_AFTER_MS")? {
            config.dlq.stuck_after = after;
        }
        config.dlq.check()?;
        if let Some(timeout) = env.millis("EVENT_BUS_CONSUMER_RECORD_TIMEOUT_MS")? {
            config.record_timeout = Some(timeout);
        }
        if let Some(grace) = env.millis("EVENT_BUS_CONSUMER_REVOKE_GRACE_MS")? {
            config.revoke_grace = grace;
        }
        if let Some(interval) = env.millis(COMMIT_INTERVAL_VARIABLE)? {
            config.commit_interval = interval;
            config.check_commit_interval()?;
        }
        Ok(config)
    }

    /// From the process environment (see [`ConsumerConfig::from_env_source`]).
    ///
    /// ```no_run
    /// let config = event_bus_kafka::consumer::ConsumerConfig::from_env()?;
    /// # Ok::<(), event_bus_kafka::config::ConfigError>(())
    /// ```
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_env_source(&EnvSource::from_process())
    }

    /// Refuses a zero commit interval: the commit timer needs a period.
    fn check_commit_interval(&self) -> Result<(), ConfigError> {
        if self.commit_interval.is_zero() {
            return Err(ConfigError::Invalid {
                variable: format!("{COMMIT_INTERVAL_VARIABLE} (commit_interval)"),
                value: "0".into(),
                expected: "a time above 0 ms, e.g. 1000",
            });
        }
        Ok(())
    }

    /// Checks the settings a consumer cannot run without, and refuses librdkafka
    /// options that would commit records before they are handled
    /// (`enable.auto.commit` or `enable.auto.offset.store` set to true).
    ///
    /// ```
    /// # use event_bus_kafka::{config::*, consumer::*};
    /// let c = ConsumerConfig::new(KafkaConfig::new("b"), RegistryConfig::new("http://r"), "g", Vec::<String>::new());
    /// assert!(c.validate().is_err());
    ///
    /// let c = ConsumerConfig::new(
    ///     KafkaConfig::new("b").with_option("enable.auto.commit", "true"),
    ///     RegistryConfig::new("http://r"), "g", ["t"],
    /// );
    /// assert!(matches!(c.validate(), Err(ConfigError::Refused { .. })));
    ///
    /// let mut c = ConsumerConfig::new(KafkaConfig::new("b"), RegistryConfig::new("http://r"), "g", ["t"]);
    /// c.commit_interval = std::time::Duration::ZERO;
    /// let err = c.validate().unwrap_err().to_string();
    /// assert!(err.contains("EVENT_BUS_CONSUMER_COMMIT_INTERVAL_MS"), "{err}");
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        for option in AT_LEAST_ONCE_OPTIONS {
            if let Some(value) = self.kafka.options.get(option) {
                if !matches!(value.trim().to_ascii_lowercase().as_str(), "false" | "0") {
                    return Err(ConfigError::Refused {
                        option: option.to_owned(),
                        value: value.clone(),
                        reason: "the consumer commits a record only after it is handled (at-least-once); this option would commit records as soon as they are read, and lose them when a receiver fails or the process dies",
                    });
                }
            }
        }
        if self.record_timeout.is_some_and(|t| t.is_zero()) {
            return Err(ConfigError::Invalid {
                variable: "record_timeout".into(),
                value: "0 ms".into(),
                expected: "more than 0 (it is the time a record's receivers may run)",
            });
        }
        if self.record_deadline() >= self.max_poll_interval() {
            return Err(ConfigError::Invalid {
                variable: "record_timeout".into(),
                value: format!("{} ms", self.record_deadline().as_millis()),
                expected: "less than max.poll.interval.ms (librdkafka's limit between polls)",
            });
        }
        if self.group_id.trim().is_empty() {
            return Err(ConfigError::Missing {
                setting: "group_id",
                variable: "EVENT_BUS_CONSUMER_GROUP",
                hint: "e.g. enrollment-service",
            });
        }
        if self.topics.is_empty() {
            return Err(ConfigError::Missing {
                setting: "topics",
                variable: "EVENT_BUS_CONSUMER_TOPICS",
                hint: "e.g. learning-course-enrollment",
            });
        }
        if self.max_in_flight == 0 {
            return Err(ConfigError::Invalid {
                variable: "max_in_flight".into(),
                value: "0".into(),
                expected: "at least 1",
            });
        }
        self.dlq.check()?;
        self.check_commit_interval()?;
        if self.retry.max_attempts == 0 {
            return Err(ConfigError::Invalid {
                variable: "retry.max_attempts".into(),
                value: "0".into(),
                expected: "at least 1 (the first try)",
            });
        }
        Ok(())
    }
}
