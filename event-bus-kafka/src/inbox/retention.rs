//! Retention of inbox rows: how old a row may get ([`InboxRetention`]) and the task
//! that deletes older ones periodically ([`InboxPruner`], run by `event-bus outbox
//! relay`).
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `EVENT_BUS_INBOX_RETENTION` | rows handled longer ago than this are pruned (`7d`, `36h`, `90m`…) | `7d` |
//! | `EVENT_BUS_INBOX_PRUNE_BATCH` | rows deleted per statement (each its own transaction) | `1000` |
//! | `EVENT_BUS_INBOX_PRUNE_INTERVAL` | how often the relay prunes (`1h`, `15m`…); `off`: never | `1h` |

use std::future::Future;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::any::AnyInbox;
use crate::config::{ConfigError, EnvSource};
use crate::failure;

/// The variable holding the retention age.
const RETENTION_VAR: &str = "EVENT_BUS_INBOX_RETENTION";
/// The variable holding the prune batch size.
const BATCH_VAR: &str = "EVENT_BUS_INBOX_PRUNE_BATCH";
/// The variable holding the prune interval.
const INTERVAL_VAR: &str = "EVENT_BUS_INBOX_PRUNE_INTERVAL";

/// What a duration variable must look like.
const DURATION_EXPECTED: &str =
    "a duration above zero with a unit, e.g. `7d`, `36h`, `90m` or `1h 30m`";

/// How long inbox rows are kept, and how the relay prunes the older ones.
///
/// The default age is 7 days, the broker's default topic retention
/// (`log.retention.hours=168`): a duplicate comes from the topic (a restart from an
/// older committed offset, a rebalance, a replay) or from a dead-letter redrive, and
/// neither can bring back an event the broker no longer keeps. Keep rows at least as
/// long as your topics and dead-letter topics keep records.
///
/// Batches of 1 000 rows keep each delete short: on SQLite a batch holds the one write
/// lock that transactional receivers also wait for.
///
/// ```
/// use std::time::Duration;
/// use event_bus_kafka::config::EnvSource;
/// use event_bus_kafka::inbox::InboxRetention;
///
/// let retention = InboxRetention::from_env_source(&EnvSource::from_pairs([
///     ("EVENT_BUS_INBOX_RETENTION", "30d"),
///     ("EVENT_BUS_INBOX_PRUNE_INTERVAL", "15m"),
/// ]))?;
/// assert_eq!(retention.max_age, Duration::from_secs(30 * 24 * 3600));
/// assert_eq!(retention.batch_size, 1000);
/// assert_eq!(retention.interval, Some(Duration::from_secs(15 * 60)));
///
/// let zero = EnvSource::from_pairs([("EVENT_BUS_INBOX_RETENTION", "0s")]);
/// let err = InboxRetention::from_env_source(&zero).unwrap_err();
/// assert!(err.to_string().contains("e.g. `7d`"));
/// # Ok::<(), event_bus_kafka::config::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InboxRetention {
    /// Rows handled longer ago than this are deleted.
    pub max_age: Duration,
    /// Rows deleted per statement (at least 1).
    pub batch_size: usize,
    /// How often [`InboxPruner`] prunes; `None`: it never does (the rows are pruned by
    /// `event-bus inbox prune` from a scheduler, or kept).
    pub interval: Option<Duration>,
}

impl Default for InboxRetention {
    fn default() -> Self {
        Self {
            max_age: Duration::from_secs(7 * 24 * 3600),
            batch_size: 1000,
            interval: Some(Duration::from_secs(3600)),
        }
    }
}

impl InboxRetention {
    /// Sets the age beyond which rows are deleted.
    ///
    /// ```
    /// use std::time::Duration;
    /// let r = event_bus_kafka::inbox::InboxRetention::default().with_max_age(Duration::from_secs(3600));
    /// assert_eq!(r.max_age, Duration::from_secs(3600));
    /// ```
    pub fn with_max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// Sets the rows deleted per statement (0 counts as 1).
    ///
    /// ```
    /// let r = event_bus_kafka::inbox::InboxRetention::default().with_batch_size(0);
    /// assert_eq!(r.batch_size, 1);
    /// ```
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// Sets how often the pruner runs (`None`: never).
    ///
    /// ```
    /// use std::time::Duration;
    /// let r = event_bus_kafka::inbox::InboxRetention::default().with_interval(None);
    /// assert_eq!(r.interval, None);
    /// ```
    pub fn with_interval(mut self, interval: Option<Duration>) -> Self {
        self.interval = interval;
        self
    }

    /// From `EVENT_BUS_INBOX_RETENTION`, `EVENT_BUS_INBOX_PRUNE_BATCH` and
    /// `EVENT_BUS_INBOX_PRUNE_INTERVAL` of the process (see the module's table).
    ///
    /// ```no_run
    /// let retention = event_bus_kafka::inbox::InboxRetention::from_env()?;
    /// # Ok::<(), event_bus_kafka::config::ConfigError>(())
    /// ```
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_env_source(&EnvSource::from_process())
    }

    /// From the variables in `env`; an unset or empty variable keeps its default. A zero,
    /// a number without a unit or a negative value is [`ConfigError::Invalid`], saying
    /// what to write.
    ///
    /// See the type's example.
    pub fn from_env_source(env: &EnvSource) -> Result<Self, ConfigError> {
        let mut retention = Self::default();
        if let Some(age) = env.get(RETENTION_VAR) {
            retention.max_age = parse_age(RETENTION_VAR, age)?;
        }
        if let Some(batch) = env.parsed::<usize>(BATCH_VAR, "a whole number of rows above 0")? {
            if batch == 0 {
                return Err(invalid(BATCH_VAR, "0", "a whole number of rows above 0"));
            }
            retention.batch_size = batch;
        }
        if let Some(interval) = env.get(INTERVAL_VAR) {
            retention.interval = match interval.trim() {
                "off" => None,
                other => Some(parse_age(INTERVAL_VAR, other).map_err(|_| {
                    invalid(
                        INTERVAL_VAR,
                        other,
                        "a duration above zero with a unit, e.g. `1h` or `15m`, or `off`",
                    )
                })?),
            };
        }
        Ok(retention)
    }

    /// Prunes `inbox` every [`interval`](Self::interval) until `stop` completes, the
    /// first time at once; returns the rows deleted by the prunes that completed. A
    /// failed prune is logged (with the failure classifier's verdict) and tried again at
    /// the next interval; it never ends the loop. With no interval it only waits for
    /// `stop`. A prune in progress when `stop` completes is abandoned (each batch is its
    /// own transaction, so what was deleted stays deleted).
    ///
    /// ```no_run
    /// use event_bus_kafka::inbox::{AnyInbox, InboxRetention};
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// let inbox = AnyInbox::connect("sqlite:app.db").await?;
    /// let stop = tokio::signal::ctrl_c();
    /// let deleted = InboxRetention::from_env()?.run_until(&inbox, async { let _ = stop.await; }).await;
    /// # Ok(()) }
    /// ```
    pub async fn run_until(&self, inbox: &AnyInbox, stop: impl Future<Output = ()>) -> u64 {
        tokio::pin!(stop);
        let Some(every) = self.interval else {
            stop.await;
            return 0;
        };
        tracing::info!(
            target: "event_bus::inbox",
            max_age_s = self.max_age.as_secs(),
            batch_size = self.batch_size,
            interval_s = every.as_secs(),
            "inbox pruning started"
        );
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut deleted = 0;
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                () = &mut stop => break,
            }
            tokio::select! {
                pruned = inbox.prune(self.max_age, self.batch_size) => match pruned {
                    Ok(rows) => deleted += rows,
                    Err(error) => tracing::warn!(
                        target: "event_bus::inbox",
                        %error,
                        failure = %failure::of_inbox(&error),
                        retry_in_s = every.as_secs(),
                        "inbox prune failed; trying again at the next interval"
                    ),
                },
                () = &mut stop => break,
            }
        }
        deleted
    }
}

/// A duration variable's value: a [`humantime`] duration above zero.
fn parse_age(variable: &str, value: &str) -> Result<Duration, ConfigError> {
    match humantime::parse_duration(value.trim()) {
        Ok(age) if !age.is_zero() => Ok(age),
        _ => Err(invalid(variable, value, DURATION_EXPECTED)),
    }
}

fn invalid(variable: &str, value: &str, expected: &'static str) -> ConfigError {
    ConfigError::Invalid {
        variable: variable.to_owned(),
        value: value.to_owned(),
        expected,
    }
}

/// The retention loop ([`InboxRetention::run_until`]) in a task of its own, beside a
/// relay; [`stop`](Self::stop) ends it (dropping the pruner aborts it).
///
/// ```no_run
/// use event_bus_kafka::inbox::{AnyInbox, InboxPruner, InboxRetention};
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let inbox = AnyInbox::connect("postgres://app@localhost/app").await?;
/// let pruner = InboxPruner::spawn(inbox, InboxRetention::from_env()?);
/// // … run the relay …
/// let deleted = pruner.stop().await;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct InboxPruner {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<u64>>,
}

impl InboxPruner {
    /// Starts pruning `inbox` as `retention` says, on the current tokio runtime.
    ///
    /// See the type's example.
    pub fn spawn(inbox: AnyInbox, retention: InboxRetention) -> Self {
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let stopped = async {
                // A dropped sender stops the loop too.
                let _ = stopped.await;
            };
            retention.run_until(&inbox, stopped).await
        });
        Self {
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Stops pruning and waits for the task; returns the rows deleted by the prunes it
    /// completed (a prune abandoned by the stop is not counted here, but its batches are
    /// in `event_bus_inbox_pruned_total`).
    ///
    /// See the type's example.
    pub async fn stop(mut self) -> u64 {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await.unwrap_or_default(),
            None => 0,
        }
    }
}

impl Drop for InboxPruner {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retention(pairs: &[(&str, &str)]) -> Result<InboxRetention, ConfigError> {
        InboxRetention::from_env_source(&EnvSource::from_pairs(pairs.iter().copied()))
    }

    #[test]
    fn defaults_when_unset_or_empty() {
        assert_eq!(retention(&[]), Ok(InboxRetention::default()));
        assert_eq!(
            retention(&[(RETENTION_VAR, " "), (BATCH_VAR, "")]),
            Ok(InboxRetention::default())
        );
    }

    #[test]
    fn durations_take_units_and_interval_can_be_off() {
        let r = retention(&[
            (RETENTION_VAR, "1h 30m"),
            (BATCH_VAR, "250"),
            (INTERVAL_VAR, "off"),
        ])
        .expect("valid");
        assert_eq!(r.max_age, Duration::from_secs(90 * 60));
        assert_eq!(r.batch_size, 250);
        assert_eq!(r.interval, None);
    }

    #[test]
    fn zero_bare_numbers_and_garbage_are_refused_by_name() {
        for (variable, value) in [
            (RETENTION_VAR, "0d"),
            (RETENTION_VAR, "3600"),
            (RETENTION_VAR, "-1h"),
            (RETENTION_VAR, "week"),
            (BATCH_VAR, "0"),
            (BATCH_VAR, "-5"),
            (BATCH_VAR, "many"),
            (INTERVAL_VAR, "0s"),
            (INTERVAL_VAR, "never"),
        ] {
            let err = retention(&[(variable, value)]).expect_err(value);
            let ConfigError::Invalid {
                variable: named, ..
            } = &err
            else {
                panic!("{variable}={value}: {err:?}");
            };
            assert_eq!(named, variable);
            assert!(
                err.to_string().contains("e.g.") || variable == BATCH_VAR,
                "{err}"
            );
        }
    }
}
