//! Topic settings an event type declares: partition count, replication factor and
//! topic configs (`cleanup.policy`, `retention.ms`, `min.insync.replicas`, …).
//!
//! They are wishes for the topic, not part of the wire contract: nothing in the
//! producer or consumer reads them. `event-bus topics ensure` creates missing topics
//! with them and shows (or, with `--execute`, fixes) where an existing topic differs.
//! Several event types may share a topic; [`DeclaredTopic::merge`] joins their
//! declarations and refuses two different values for one setting.
//!
//! ```
//! use event_bus_core::prelude::*;
//! use serde::{Deserialize, Serialize};
//!
//! /// An order was placed.
//! #[derive(Serialize, Deserialize, Event)]
//! #[event(
//!     type = "org.example.shop.order.placed.v1",
//!     topic = "orders",
//!     topic_settings(partitions = 6, replication_factor = 3, config("cleanup.policy" = "delete", "retention.ms" = 604800000))
//! )]
//! pub struct OrderPlaced { pub id: i64 }
//!
//! let settings = OrderPlaced::TOPIC_SETTINGS;
//! assert_eq!(settings.partitions, Some(6));
//! assert_eq!(settings.replication_factor, Some(3));
//! assert_eq!(settings.config("retention.ms"), Some("604800000"));
//! ```

use std::collections::BTreeMap;
use std::fmt;

/// What an event type asks of its topic. Every part is optional: what is not declared
/// comes from the configured defaults, else from the broker's.
///
/// ```
/// use event_bus_core::topic_settings::TopicSettings;
/// const COMPACTED: TopicSettings = TopicSettings {
///     partitions: Some(3),
///     replication_factor: None,
///     configs: &[("cleanup.policy", "compact")],
/// };
/// assert_eq!(COMPACTED.config("cleanup.policy"), Some("compact"));
/// assert!(!COMPACTED.is_empty());
/// assert!(TopicSettings::NONE.is_empty());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TopicSettings {
    /// How many partitions the topic should have.
    pub partitions: Option<u32>,
    /// How many copies of each partition the cluster should keep.
    pub replication_factor: Option<u16>,
    /// Topic configs, `(name, value)`, e.g. `("retention.ms", "604800000")`.
    pub configs: &'static [(&'static str, &'static str)],
}

impl TopicSettings {
    /// Nothing declared: what `Event::TOPIC_SETTINGS` is unless the type says more.
    ///
    /// See the type's example.
    pub const NONE: TopicSettings = TopicSettings {
        partitions: None,
        replication_factor: None,
        configs: &[],
    };

    /// Whether nothing is declared.
    ///
    /// See the type's example.
    pub const fn is_empty(&self) -> bool {
        self.partitions.is_none() && self.replication_factor.is_none() && self.configs.is_empty()
    }

    /// The declared value of the topic config `name`.
    ///
    /// See the type's example.
    pub fn config(&self, name: &str) -> Option<&'static str> {
        self.configs
            .iter()
            .find(|(config, _)| *config == name)
            .map(|(_, value)| *value)
    }
}

/// A setting's value and the event type that declared it.
///
/// ```
/// use event_bus_core::topic_settings::Declared;
/// let declared = Declared { value: 6u32, by: "org.example.shop.order.placed.v1" };
/// assert_eq!(declared.to_string(), "6 (org.example.shop.order.placed.v1)");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Declared<T> {
    /// The value.
    pub value: T,
    /// The event type whose declaration gave it.
    pub by: &'static str,
}

impl<T: fmt::Display> fmt::Display for Declared<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.value, self.by)
    }
}

/// One topic (before any prefix) with the settings its event types declare, merged.
///
/// ```
/// use event_bus_core::topic_settings::{DeclaredTopic, TopicSettings};
/// let placed = TopicSettings { partitions: Some(6), ..TopicSettings::NONE };
/// let shipped = TopicSettings { configs: &[("retention.ms", "86400000")], ..TopicSettings::NONE };
/// let topics = DeclaredTopic::merge([
///     ("org.example.shop.order.placed.v1", "orders", placed),
///     ("org.example.shop.order.shipped.v1", "orders", shipped),
/// ])?;
/// assert_eq!(topics.len(), 1);
/// assert_eq!(topics[0].partitions.map(|p| p.value), Some(6));
/// assert_eq!(topics[0].configs["retention.ms"].by, "org.example.shop.order.shipped.v1");
/// assert_eq!(topics[0].event_types.len(), 2);
/// # Ok::<(), event_bus_core::topic_settings::TopicSettingsConflict>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredTopic {
    /// The topic, as the event types name it (no prefix).
    pub topic: &'static str,
    /// Every event type sent to the topic, sorted.
    pub event_types: Vec<&'static str>,
    /// The declared partition count, if any type declares one.
    pub partitions: Option<Declared<u32>>,
    /// The declared replication factor, if any type declares one.
    pub replication_factor: Option<Declared<u16>>,
    /// The declared topic configs, by name.
    pub configs: BTreeMap<&'static str, Declared<&'static str>>,
}

/// Two event types of one topic declare different values for the same setting.
///
/// ```
/// use event_bus_core::topic_settings::SettingConflict;
/// let conflict = SettingConflict {
///     topic: "orders",
///     setting: "partitions".into(),
///     first: ("org.example.shop.order.placed.v1", "6".into()),
///     second: ("org.example.shop.order.shipped.v1", "3".into()),
/// };
/// assert!(conflict.to_string().contains("org.example.shop.order.shipped.v1 declares partitions = 3"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingConflict {
    /// The topic (no prefix).
    pub topic: &'static str,
    /// The setting: `partitions`, `replication_factor` or a config name.
    pub setting: String,
    /// The first event type declaring it, and its value.
    pub first: (&'static str, String),
    /// Another event type declaring a different value.
    pub second: (&'static str, String),
}

impl fmt::Display for SettingConflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "topic `{}`: {} declares {} = {} but {} declares {} = {}",
            self.topic,
            self.first.0,
            self.setting,
            self.first.1,
            self.second.0,
            self.setting,
            self.second.1
        )
    }
}

/// The event types of a topic disagree about its settings; every disagreement is
/// listed.
///
/// ```
/// use event_bus_core::topic_settings::{DeclaredTopic, TopicSettings};
/// let six = TopicSettings { partitions: Some(6), ..TopicSettings::NONE };
/// let three = TopicSettings { partitions: Some(3), ..TopicSettings::NONE };
/// let err = DeclaredTopic::merge([
///     ("org.example.shop.order.placed.v1", "orders", six),
///     ("org.example.shop.order.shipped.v1", "orders", three),
/// ])
/// .unwrap_err();
/// assert_eq!(err.conflicts.len(), 1);
/// assert!(err.to_string().contains("org.example.shop.order.placed.v1"));
/// assert!(err.to_string().contains("declare the same value"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "event types sharing a topic declare different topic settings: {}; declare the same \
     value in each #[event(topic_settings(...))] of the topic, or in one of them only",
    conflicts.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
)]
pub struct TopicSettingsConflict {
    /// Every disagreement found.
    pub conflicts: Vec<SettingConflict>,
}

impl DeclaredTopic {
    /// Joins the declarations of `(event type, topic, settings)` entries into one
    /// [`DeclaredTopic`] per topic, sorted by topic. A setting declared by one type
    /// applies to the whole topic; two types declaring different values for one
    /// setting is a conflict.
    ///
    /// # Errors
    ///
    /// [`TopicSettingsConflict`] naming every pair of types that disagree.
    ///
    /// See the type's example.
    pub fn merge(
        entries: impl IntoIterator<Item = (&'static str, &'static str, TopicSettings)>,
    ) -> Result<Vec<DeclaredTopic>, TopicSettingsConflict> {
        let mut entries: Vec<_> = entries.into_iter().collect();
        // Sorted by event type, so which type is "first" in a message never varies.
        entries.sort_by_key(|(event_type, _, _)| *event_type);
        let mut topics: BTreeMap<&'static str, DeclaredTopic> = BTreeMap::new();
        let mut conflicts = Vec::new();
        for (event_type, topic, settings) in entries {
            let declared = topics.entry(topic).or_insert_with(|| DeclaredTopic {
                topic,
                event_types: Vec::new(),
                partitions: None,
                replication_factor: None,
                configs: BTreeMap::new(),
            });
            declared.event_types.push(event_type);
            let mut note = |setting: &str, first: (&'static str, String), second: String| {
                conflicts.push(SettingConflict {
                    topic,
                    setting: setting.to_owned(),
                    first,
                    second: (event_type, second),
                });
            };
            if let Some(value) = settings.partitions {
                join(&mut declared.partitions, value, event_type, |first| {
                    note("partitions", first, value.to_string());
                });
            }
            if let Some(value) = settings.replication_factor {
                join(
                    &mut declared.replication_factor,
                    value,
                    event_type,
                    |first| {
                        note("replication_factor", first, value.to_string());
                    },
                );
            }
            for (name, value) in settings.configs {
                let slot = declared.configs.get(name).copied();
                let mut merged = slot;
                join(&mut merged, *value, event_type, |first| {
                    note(name, first, (*value).to_owned());
                });
                if let Some(merged) = merged {
                    declared.configs.insert(name, merged);
                }
            }
        }
        if conflicts.is_empty() {
            Ok(topics.into_values().collect())
        } else {
            Err(TopicSettingsConflict { conflicts })
        }
    }
}

/// Sets `slot` to `value` when empty; calls `conflict` with the earlier declaration
/// when it holds a different value.
fn join<T: PartialEq + fmt::Display + Copy>(
    slot: &mut Option<Declared<T>>,
    value: T,
    by: &'static str,
    conflict: impl FnOnce((&'static str, String)),
) {
    match slot {
        None => *slot = Some(Declared { value, by }),
        Some(earlier) if earlier.value != value => {
            conflict((earlier.by, earlier.value.to_string()));
        }
        Some(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_conflict_of_every_topic_is_listed_and_agreement_is_not_one() {
        let a = TopicSettings {
            partitions: Some(6),
            replication_factor: Some(3),
            configs: &[("cleanup.policy", "compact"), ("retention.ms", "1000")],
        };
        let b = TopicSettings {
            partitions: Some(6),
            replication_factor: Some(1),
            configs: &[("cleanup.policy", "delete"), ("retention.ms", "1000")],
        };
        let err =
            DeclaredTopic::merge([("t.b.v1", "orders", b), ("t.a.v1", "orders", a)]).unwrap_err();
        let settings: Vec<&str> = err.conflicts.iter().map(|c| c.setting.as_str()).collect();
        assert_eq!(settings, ["replication_factor", "cleanup.policy"]);
        assert_eq!(err.conflicts[0].first, ("t.a.v1", "3".to_owned()));
        assert_eq!(err.conflicts[0].second, ("t.b.v1", "1".to_owned()));
    }

    #[test]
    fn types_of_different_topics_never_conflict() {
        let six = TopicSettings {
            partitions: Some(6),
            ..TopicSettings::NONE
        };
        let one = TopicSettings {
            partitions: Some(1),
            ..TopicSettings::NONE
        };
        let topics =
            DeclaredTopic::merge([("t.a.v1", "a", six), ("t.b.v1", "b", one)]).expect("merge");
        let names: Vec<_> = topics.iter().map(|t| t.topic).collect();
        assert_eq!(names, ["a", "b"]);
    }
}
