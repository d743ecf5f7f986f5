//! Topic provisioning: the topics an application's event types need, created and kept
//! as they declare them (`event-bus topics ensure`, or [`ensure_topics`] at start-up).
//!
//! 1. [`desired_topics`]: one topic per `#[event(topic = …)]` (prefix applied) with the
//!    settings its event types declare (`#[event(topic_settings(...))]`, merged; a
//!    conflict names both types) over the defaults of [`TopicDefaults`]
//!    (`EVENT_BUS_TOPIC_PARTITIONS`, `EVENT_BUS_TOPIC_REPLICATION_FACTOR`,
//!    `EVENT_BUS_TOPIC_CONFIG_<NAME>`), plus the dead-letter topic of each, named as
//!    the consumer names it ([`DlqTopic`](crate::consumer::DlqTopic)).
//! 2. [`TopicAdmin::plan`]: reads the cluster and compares, per setting — partitions,
//!    replication factor, and only the configs someone asked for, against the value
//!    in effect (set on the topic or inherited) — then lets the broker validate each
//!    change. What cannot be done is a [`Refusal`] with the reason: fewer partitions
//!    (Kafka cannot remove any), another replication factor (a reassignment), more
//!    replicas than brokers, `min.insync.replicas` above the replication factor, an
//!    unknown or read-only config, compaction of a topic with keyless event types.
//! 3. [`TopicAdmin::apply`]: creates missing topics, adds partitions, sets configs,
//!    then waits until the cluster shows it. Refused changes are left; the others
//!    are made.
//!
//! Configs are changed with Kafka's AlterConfigs, which replaces a topic's whole set
//! (rust-rdkafka 0.39 has no IncrementalAlterConfigs): every config set on the topic
//! is sent again with the changes over it, so nothing set by someone else is lost,
//! unless it changes between the reading and the request (a fraction of a second).
//!
//! ```no_run
//! use event_bus_kafka::config::{EnvSource, KafkaConfig};
//! use event_bus_kafka::provision::{ensure_topics, DesiredOptions};
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let env = EnvSource::from_process();
//! let kafka = KafkaConfig::from_env_source(&env)?;
//! let ensured = ensure_topics(&kafka, &DesiredOptions::from_env_source(&env)?, true).await?;
//! for plan in &ensured.plans {
//!     for refusal in plan.refusals() {
//!         eprintln!("{}: {refusal}", plan.desired.name);
//!     }
//! }
//! # Ok(()) }
//! ```

mod admin;
pub mod defaults;
mod desired;
mod ensure;
mod error;
mod observed;
pub mod plan;
#[cfg(test)]
mod plan_tests;
pub mod refusal;

pub use admin::TopicAdmin;
pub use defaults::TopicDefaults;
pub use desired::{
    desired_topics, DesiredError, DesiredOptions, DesiredTopic, Origin, TopicRole, Wanted,
};
pub use ensure::ApplyReport;
pub use error::ProvisionError;
pub use observed::{ObservedCluster, ObservedConfig, ObservedTopic};
pub use plan::{plan_topic, Setting, SettingPlan, TopicAction, TopicPlan, Verdict};
pub use refusal::Refusal;

use crate::config::KafkaConfig;

/// The plans, and what applying them did (`None` for a dry run).
///
/// See [`ensure_topics`].
#[derive(Debug)]
pub struct Ensured {
    /// Per topic, the comparison with the cluster before any change.
    pub plans: Vec<TopicPlan>,
    /// What was done, when asked to apply.
    pub applied: Option<ApplyReport>,
}

/// Plans the topics of every registered event type (see [`desired_topics`]) and,
/// when `execute`, applies the plans: what an application runs at start-up, or
/// `event-bus topics ensure` runs.
///
/// # Errors
///
/// [`ProvisionError`]: the event types' declarations conflict, or the cluster cannot
/// be read or changed as a whole.
///
/// See the [module example](self).
pub async fn ensure_topics(
    kafka: &KafkaConfig,
    options: &DesiredOptions,
    execute: bool,
) -> Result<Ensured, ProvisionError> {
    let registrations = event_bus_core::EventRegistration::all();
    let desired = desired_topics(&registrations, options)?;
    let admin = TopicAdmin::new(kafka)?;
    let plans = admin.plan(&desired).await?;
    let applied = if execute {
        Some(admin.apply(&plans).await?)
    } else {
        None
    };
    Ok(Ensured { plans, applied })
}
