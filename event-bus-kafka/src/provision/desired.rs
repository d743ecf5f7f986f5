//! What the topics should look like: the event types' declarations, merged per topic,
//! over the configured defaults, plus the dead-letter topics of those topics.

use std::collections::BTreeMap;
use std::fmt;

use event_bus_core::topic_settings::{Declared, DeclaredTopic, TopicSettingsConflict};
use event_bus_core::EventRegistration;

use super::defaults::{self, TopicDefaults};
use crate::consumer::DlqTopic;
use crate::topic::full_topic;

/// Where a wanted value comes from, so a person knows where to change it.
///
/// ```
/// use event_bus_kafka::provision::Origin;
/// assert_eq!(Origin::EventType("org.example.shop.order.placed.v1").to_string(), "org.example.shop.order.placed.v1");
/// assert_eq!(Origin::Default("EVENT_BUS_TOPIC_PARTITIONS".into()).to_string(), "$EVENT_BUS_TOPIC_PARTITIONS");
/// assert_eq!(Origin::SourceTopic("orders".into()).to_string(), "source topic orders");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Declared in this event type's `#[event(topic_settings(...))]`.
    EventType(&'static str),
    /// The default set by this environment variable.
    Default(String),
    /// A dead-letter topic keeps the durability of the topic whose records it holds.
    SourceTopic(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::EventType(event_type) => f.write_str(event_type),
            Origin::Default(variable) => write!(f, "${variable}"),
            Origin::SourceTopic(topic) => write!(f, "source topic {topic}"),
        }
    }
}

/// A wanted value and where it comes from.
///
/// ```
/// use event_bus_kafka::provision::{Origin, Wanted};
/// let wanted = Wanted { value: 6u32, origin: Origin::Default("EVENT_BUS_TOPIC_PARTITIONS".into()) };
/// assert_eq!(wanted.value, 6);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted<T> {
    /// The value.
    pub value: T,
    /// Who wants it.
    pub origin: Origin,
}

impl<T: Copy> From<Declared<T>> for Wanted<T> {
    fn from(declared: Declared<T>) -> Self {
        Wanted {
            value: declared.value,
            origin: Origin::EventType(declared.by),
        }
    }
}

/// What a topic is for.
///
/// ```
/// use event_bus_kafka::provision::TopicRole;
/// let role = TopicRole::DeadLetters { sources: vec!["orders".into()] };
/// assert_eq!(role.kind(), "dead_letters");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicRole {
    /// Events of these types are sent to it.
    Events {
        /// The event types, sorted.
        event_types: Vec<&'static str>,
        /// Those of them without a key (a compacted topic refuses their records).
        keyless: Vec<&'static str>,
    },
    /// Consumers of these topics (full names) write their dead letters to it.
    DeadLetters {
        /// The source topics.
        sources: Vec<String>,
    },
}

impl TopicRole {
    /// `events` or `dead_letters`, for JSON.
    ///
    /// See the type's example.
    pub fn kind(&self) -> &'static str {
        match self {
            TopicRole::Events { .. } => "events",
            TopicRole::DeadLetters { .. } => "dead_letters",
        }
    }
}

/// One topic as it should be: its full name (prefix applied) and every setting someone
/// asked for. Settings nobody asked for are left as the broker has them.
///
/// See [`desired_topics`] for an example.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredTopic {
    /// The topic on the broker.
    pub name: String,
    /// What it is for.
    pub role: TopicRole,
    /// The partition count wanted.
    pub partitions: Option<Wanted<u32>>,
    /// The replication factor wanted.
    pub replication_factor: Option<Wanted<u16>>,
    /// Topic configs wanted, by Kafka's name.
    pub configs: BTreeMap<String, Wanted<String>>,
}

/// What to build the desired topics from, besides the event types.
///
/// ```
/// use event_bus_kafka::config::EnvSource;
/// use event_bus_kafka::provision::DesiredOptions;
/// let env = EnvSource::from_pairs([("EVENT_BUS_TOPIC_PREFIX", "prod")]);
/// let options = DesiredOptions::from_env_source(&env)?;
/// assert_eq!(options.prefix.as_deref(), Some("prod"));
/// assert!(options.dead_letters.is_some());
/// # Ok::<(), event_bus_kafka::config::ConfigError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct DesiredOptions {
    /// The topic prefix (`EVENT_BUS_TOPIC_PREFIX`).
    pub prefix: Option<String>,
    /// Settings for what the event types leave open.
    pub defaults: TopicDefaults,
    /// How consumers name dead-letter topics; `None` leaves them out.
    pub dead_letters: Option<DlqTopic>,
    /// Only these topics (as the event types name them, no prefix); empty: all.
    pub only: Vec<String>,
}

impl DesiredOptions {
    /// The prefix, defaults and dead-letter naming a consumer configured by `env`
    /// uses (`EVENT_BUS_TOPIC_PREFIX`, `EVENT_BUS_TOPIC_*`,
    /// `EVENT_BUS_CONSUMER_DLQ_TOPIC`), every topic.
    ///
    /// # Errors
    ///
    /// An invalid default (see [`TopicDefaults::from_env_source`]).
    ///
    /// See the type's example.
    pub fn from_env_source(
        env: &crate::config::EnvSource,
    ) -> Result<Self, crate::config::ConfigError> {
        Ok(Self {
            prefix: env.get("EVENT_BUS_TOPIC_PREFIX").map(str::to_owned),
            defaults: TopicDefaults::from_env_source(env)?,
            dead_letters: Some(DlqTopic::from_env_source(env)),
            only: Vec::new(),
        })
    }

    /// [`from_env_source`](Self::from_env_source) of the process environment.
    ///
    /// # Errors
    ///
    /// As for [`from_env_source`](Self::from_env_source).
    ///
    /// ```
    /// let options = event_bus_kafka::provision::DesiredOptions::from_env();
    /// # let _ = options;
    /// ```
    pub fn from_env() -> Result<Self, crate::config::ConfigError> {
        Self::from_env_source(&crate::config::EnvSource::from_process())
    }
}

/// Why the desired topics cannot be worked out.
///
/// ```
/// use event_bus_kafka::provision::DesiredError;
/// let err = DesiredError::UnknownTopic { topic: "ordres".into(), known: vec!["orders".into()] };
/// assert!(err.to_string().contains("orders"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DesiredError {
    /// The program registers no event types, so there is no topic to ensure.
    #[error("this program registers no event types, so it knows no topics: run `topics ensure` from the application's own binary, which links the crate with its #[derive(Event)] types")]
    NoEventTypes,
    /// A topic was asked for that no event type is sent to.
    #[error("no event type is sent to topic `{topic}` (name it without the prefix); the event types' topics are: {}", known.join(", "))]
    UnknownTopic {
        /// The topic asked for.
        topic: String,
        /// The topics the event types name.
        known: Vec<String>,
    },
    /// Event types of one topic declare different settings.
    #[error(transparent)]
    Conflict(#[from] TopicSettingsConflict),
}

/// The topics the event types of `registrations` need, as they should be: one per
/// topic (prefix applied) with the types' merged declarations over `options.defaults`,
/// then one per dead-letter topic. A dead-letter topic gets the defaults, and the
/// replication factor and `min.insync.replicas` of its source topics (the highest,
/// when several share it) so a dead letter is kept as safely as the record it
/// replaces; it never inherits partitions, retention or `cleanup.policy` (compaction
/// would keep only the latest dead letter of each key).
///
/// # Errors
///
/// [`DesiredError`]: no event types, an unknown topic in `options.only`, or a conflict
/// between the declarations of one topic's types.
///
/// ```
/// use event_bus_core::prelude::*;
/// use event_bus_core::EventRegistration;
/// use event_bus_kafka::consumer::DlqTopic;
/// use event_bus_kafka::provision::{desired_topics, DesiredOptions, TopicDefaults};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize, Event)]
/// #[event(type = "org.example.docs.parcel.shipped.v1", topic = "parcels", key = "id",
///         topic_settings(partitions = 6, replication_factor = 3, config("min.insync.replicas" = 2, "retention.ms" = 86400000)))]
/// struct ParcelShipped { id: String }
///
/// let registration = EventRegistration::of::<ParcelShipped>();
/// let options = DesiredOptions {
///     prefix: Some("prod".into()),
///     defaults: TopicDefaults { partitions: Some(1), ..TopicDefaults::default() },
///     dead_letters: Some(DlqTopic::default()),
///     only: vec![],
/// };
/// let topics = desired_topics(&[&registration], &options)?;
/// assert_eq!(topics[0].name, "prod-parcels");
/// assert_eq!(topics[0].partitions.as_ref().map(|p| p.value), Some(6));
/// assert_eq!(topics[1].name, "prod-parcels.dlq");
/// assert_eq!(topics[1].partitions.as_ref().map(|p| p.value), Some(1));
/// assert_eq!(topics[1].replication_factor.as_ref().map(|r| r.value), Some(3));
/// assert_eq!(topics[1].configs["min.insync.replicas"].value, "2");
/// assert!(!topics[1].configs.contains_key("retention.ms"));
/// # Ok::<(), event_bus_kafka::provision::DesiredError>(())
/// ```
pub fn desired_topics(
    registrations: &[&EventRegistration],
    options: &DesiredOptions,
) -> Result<Vec<DesiredTopic>, DesiredError> {
    if registrations.is_empty() {
        return Err(DesiredError::NoEventTypes);
    }
    let declared = DeclaredTopic::merge(
        registrations
            .iter()
            .map(|r| (r.event_type, r.topic, r.topic_settings)),
    )?;
    for topic in &options.only {
        if !declared.iter().any(|d| d.topic == topic) {
            return Err(DesiredError::UnknownTopic {
                topic: topic.clone(),
                known: declared.iter().map(|d| d.topic.to_owned()).collect(),
            });
        }
    }
    let mut topics: Vec<DesiredTopic> = declared
        .iter()
        .filter(|d| options.only.is_empty() || options.only.iter().any(|t| t == d.topic))
        .map(|d| event_topic(d, registrations, options))
        .collect();
    if let Some(naming) = &options.dead_letters {
        let dead_letter_topics = dead_letter_topics(&topics, naming, &options.defaults);
        topics.extend(dead_letter_topics);
    }
    Ok(topics)
}

fn event_topic(
    declared: &DeclaredTopic,
    registrations: &[&EventRegistration],
    options: &DesiredOptions,
) -> DesiredTopic {
    let keyless = registrations
        .iter()
        .filter(|r| r.topic == declared.topic && r.key_field.is_none())
        .map(|r| r.event_type)
        .collect();
    let mut topic = from_defaults(
        full_topic(options.prefix.as_deref(), declared.topic),
        TopicRole::Events {
            event_types: declared.event_types.clone(),
            keyless,
        },
        &options.defaults,
    );
    if let Some(partitions) = declared.partitions {
        topic.partitions = Some(partitions.into());
    }
    if let Some(replication) = declared.replication_factor {
        topic.replication_factor = Some(replication.into());
    }
    for (name, value) in &declared.configs {
        topic.configs.insert(
            (*name).to_owned(),
            Wanted {
                value: value.value.to_owned(),
                origin: Origin::EventType(value.by),
            },
        );
    }
    topic
}

fn from_defaults(name: String, role: TopicRole, defaults: &TopicDefaults) -> DesiredTopic {
    DesiredTopic {
        name,
        role,
        partitions: defaults.partitions.map(|value| Wanted {
            value,
            origin: Origin::Default(defaults::PARTITIONS_VARIABLE.to_owned()),
        }),
        replication_factor: defaults.replication_factor.map(|value| Wanted {
            value,
            origin: Origin::Default(defaults::REPLICATION_FACTOR_VARIABLE.to_owned()),
        }),
        configs: defaults
            .configs
            .iter()
            .map(|(name, value)| {
                let origin = Origin::Default(defaults::config_variable(name));
                (
                    name.clone(),
                    Wanted {
                        value: value.clone(),
                        origin,
                    },
                )
            })
            .collect(),
    }
}

/// The config a dead-letter topic takes from its sources when they ask more of it.
const MIN_INSYNC_REPLICAS: &str = "min.insync.replicas";

fn dead_letter_topics(
    event_topics: &[DesiredTopic],
    naming: &DlqTopic,
    defaults: &TopicDefaults,
) -> Vec<DesiredTopic> {
    let mut by_name: BTreeMap<String, DesiredTopic> = BTreeMap::new();
    for source in event_topics {
        let name = naming.for_topic(&source.name);
        if event_topics.iter().any(|t| t.name == name) {
            continue;
        }
        let dlq = by_name.entry(name.clone()).or_insert_with(|| {
            let role = TopicRole::DeadLetters {
                sources: Vec::new(),
            };
            from_defaults(name, role, defaults)
        });
        if let TopicRole::DeadLetters { sources } = &mut dlq.role {
            sources.push(source.name.clone());
        }
        let from_source = || Origin::SourceTopic(source.name.clone());
        if let Some(wanted) = &source.replication_factor {
            if dlq
                .replication_factor
                .as_ref()
                .is_none_or(|r| r.value < wanted.value)
            {
                dlq.replication_factor = Some(Wanted {
                    value: wanted.value,
                    origin: from_source(),
                });
            }
        }
        if let Some(wanted) = source.configs.get(MIN_INSYNC_REPLICAS) {
            let higher = |current: &Wanted<String>| number(&current.value) < number(&wanted.value);
            if dlq.configs.get(MIN_INSYNC_REPLICAS).is_none_or(higher) {
                dlq.configs.insert(
                    MIN_INSYNC_REPLICAS.to_owned(),
                    Wanted {
                        value: wanted.value.clone(),
                        origin: from_source(),
                    },
                );
            }
        }
    }
    by_name.into_values().collect()
}

fn number(value: &str) -> i64 {
    value.trim().parse().unwrap_or(i64::MIN)
}
