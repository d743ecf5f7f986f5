//! Comparing the desired topics with the cluster: per setting, in sync, to change, or
//! refused with the reason. Pure: no request is made here.

use std::fmt;

use super::desired::{DesiredTopic, TopicRole, Wanted};
use super::observed::{ObservedCluster, ObservedTopic};
use super::refusal::Refusal;

/// A setting of a topic.
///
/// ```
/// use event_bus_kafka::provision::Setting;
/// assert_eq!(Setting::ReplicationFactor.to_string(), "replication.factor");
/// assert_eq!(Setting::Config("retention.ms".into()).to_string(), "retention.ms");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Setting {
    /// The partition count.
    Partitions,
    /// The replication factor.
    ReplicationFactor,
    /// A topic config.
    Config(String),
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Setting::Partitions => f.write_str("partitions"),
            Setting::ReplicationFactor => f.write_str("replication.factor"),
            Setting::Config(name) => f.write_str(name),
        }
    }
}

/// What becomes of one setting.
///
/// ```
/// use event_bus_kafka::provision::Verdict;
/// assert!(Verdict::Set.is_change());
/// assert!(!Verdict::InSync.is_change());
/// assert_eq!(Verdict::AddPartitions.as_str(), "add_partitions");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The topic already has the wanted value.
    InSync,
    /// The topic is missing and is created with this value.
    Create,
    /// Partitions are added up to the wanted count.
    AddPartitions,
    /// The config is set to the wanted value.
    Set,
    /// The change cannot be made; the topic keeps its value.
    Refused(Refusal),
}

impl Verdict {
    /// Whether applying the plan changes this setting.
    ///
    /// See the type's example.
    pub fn is_change(&self) -> bool {
        matches!(
            self,
            Verdict::Create | Verdict::AddPartitions | Verdict::Set
        )
    }

    /// A stable name, for JSON.
    ///
    /// See the type's example.
    pub fn as_str(&self) -> &'static str {
        match self {
            Verdict::InSync => "in_sync",
            Verdict::Create => "create",
            Verdict::AddPartitions => "add_partitions",
            Verdict::Set => "set",
            Verdict::Refused(_) => "refused",
        }
    }
}

/// One setting of one topic: what it is, what is wanted and by whom, and what
/// becomes of it.
///
/// See [`plan_topic`] for an example.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingPlan {
    /// The setting.
    pub setting: Setting,
    /// The value the topic has (`None`: the topic is missing, or the broker does not
    /// know the config or hides it).
    pub current: Option<String>,
    /// The current value is inherited (a broker or Kafka default), not set on the topic.
    pub current_is_default: bool,
    /// The value wanted, and by whom.
    pub wanted: Wanted<String>,
    /// What becomes of it.
    pub verdict: Verdict,
}

/// What becomes of one topic as a whole.
///
/// ```
/// use event_bus_kafka::provision::TopicAction;
/// assert_eq!(TopicAction::Create.as_str(), "create");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicAction {
    /// It exists and has every wanted value.
    InSync,
    /// It is missing and will be created.
    Create,
    /// It exists and some settings change (others may be refused).
    Update,
    /// Nothing can be done: a missing topic that cannot be created as wanted, or an
    /// existing one whose every difference is refused.
    Refused,
}

impl TopicAction {
    /// A stable name, for JSON and the text table.
    ///
    /// See the type's example.
    pub fn as_str(self) -> &'static str {
        match self {
            TopicAction::InSync => "in_sync",
            TopicAction::Create => "create",
            TopicAction::Update => "update",
            TopicAction::Refused => "refused",
        }
    }
}

/// One topic: what is wanted, what the cluster has, and per setting what becomes of it.
///
/// See [`plan_topic`] for an example.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicPlan {
    /// The topic as it should be.
    pub desired: DesiredTopic,
    /// The topic as it is (`None`: missing).
    pub observed: Option<ObservedTopic>,
    /// Every wanted setting.
    pub settings: Vec<SettingPlan>,
    /// A refusal of the whole topic (the broker would not create it as wanted).
    pub blocked: Option<Refusal>,
}

impl TopicPlan {
    /// What becomes of the topic.
    ///
    /// See [`plan_topic`] for an example.
    pub fn action(&self) -> TopicAction {
        let refused = self.blocked.is_some() || self.refusals().next().is_some();
        if self.observed.is_none() {
            return if refused {
                TopicAction::Refused
            } else {
                TopicAction::Create
            };
        }
        if self.settings.iter().any(|s| s.verdict.is_change()) {
            TopicAction::Update
        } else if refused {
            TopicAction::Refused
        } else {
            TopicAction::InSync
        }
    }

    /// The refusals: the whole topic's, then each setting's.
    ///
    /// See [`plan_topic`] for an example.
    pub fn refusals(&self) -> impl Iterator<Item = &Refusal> {
        self.blocked
            .iter()
            .chain(self.settings.iter().filter_map(|s| match &s.verdict {
                Verdict::Refused(refusal) => Some(refusal),
                _ => None,
            }))
    }

    /// The partition count to add up to, when partitions are added.
    pub(crate) fn partitions_to_add(&self) -> Option<u32> {
        self.settings
            .iter()
            .find(|s| s.setting == Setting::Partitions && s.verdict == Verdict::AddPartitions)
            .and_then(|s| s.wanted.value.parse().ok())
    }

    /// The configs to set, `(name, value)`.
    pub(crate) fn configs_to_set(&self) -> impl Iterator<Item = (&str, &str)> {
        self.settings
            .iter()
            .filter_map(|s| match (&s.setting, &s.verdict) {
                (Setting::Config(name), Verdict::Set) => {
                    Some((name.as_str(), s.wanted.value.as_str()))
                }
                _ => None,
            })
    }

    /// Marks every planned change of the kind `is_kind` refused by the broker.
    pub(crate) fn refuse_changes(
        &mut self,
        is_kind: impl Fn(&SettingPlan) -> bool,
        refusal: &Refusal,
    ) {
        for setting in self
            .settings
            .iter_mut()
            .filter(|s| s.verdict.is_change() && is_kind(s))
        {
            setting.verdict = Verdict::Refused(refusal.clone());
        }
    }
}

/// Compares one desired topic with what `cluster` has.
///
/// ```
/// use event_bus_kafka::provision::{
///     plan_topic, DesiredTopic, ObservedCluster, ObservedConfig, ObservedTopic, Origin,
///     TopicAction, TopicRole, Verdict, Wanted,
/// };
/// let by = || Origin::EventType("org.example.shop.order.placed.v1");
/// let desired = DesiredTopic {
///     name: "orders".into(),
///     role: TopicRole::Events { event_types: vec!["org.example.shop.order.placed.v1"], keyless: vec![] },
///     partitions: Some(Wanted { value: 6, origin: by() }),
///     replication_factor: Some(Wanted { value: 3, origin: by() }),
///     configs: [("retention.ms".to_string(), Wanted { value: "604800000".into(), origin: by() })].into(),
/// };
/// let observed = ObservedTopic {
///     partitions: 3,
///     replication_factor: 1,
///     configs: [("retention.ms".to_string(), ObservedConfig::default_value("86400000"))].into(),
/// };
/// let cluster = ObservedCluster { brokers: 1, topics: [("orders".to_string(), observed)].into() };
/// let plan = plan_topic(&desired, &cluster);
/// assert_eq!(plan.action(), TopicAction::Update);
/// assert_eq!(plan.settings[0].verdict, Verdict::AddPartitions);
/// assert!(matches!(plan.settings[1].verdict, Verdict::Refused(_))); // replication factor
/// assert_eq!(plan.settings[2].verdict, Verdict::Set);
/// assert_eq!(plan.refusals().count(), 1);
/// ```
pub fn plan_topic(desired: &DesiredTopic, cluster: &ObservedCluster) -> TopicPlan {
    let observed = cluster.topics.get(&desired.name).cloned();
    let mut settings = Vec::new();
    if let Some(wanted) = &desired.partitions {
        let verdict = match &observed {
            None => Verdict::Create,
            Some(topic) if topic.partitions == wanted.value => Verdict::InSync,
            Some(topic) if topic.partitions < wanted.value => Verdict::AddPartitions,
            Some(topic) => Verdict::Refused(Refusal::FewerPartitions {
                have: topic.partitions,
                want: wanted.value,
            }),
        };
        let current = observed.as_ref().map(|t| t.partitions.to_string());
        settings.push(row(Setting::Partitions, current, false, wanted, verdict));
    }
    if let Some(wanted) = &desired.replication_factor {
        let verdict = match &observed {
            // An existing topic is compared with itself: a broker down shrinks the
            // broker count, not the topic's replication.
            None if usize::from(wanted.value) > cluster.brokers => {
                Verdict::Refused(Refusal::NotEnoughBrokers {
                    want: wanted.value,
                    brokers: cluster.brokers,
                })
            }
            None => Verdict::Create,
            Some(topic) if topic.replication_factor == wanted.value => Verdict::InSync,
            Some(topic) => Verdict::Refused(Refusal::ReplicationFactor {
                have: topic.replication_factor,
                want: wanted.value,
            }),
        };
        let current = observed.as_ref().map(|t| t.replication_factor.to_string());
        settings.push(row(
            Setting::ReplicationFactor,
            current,
            false,
            wanted,
            verdict,
        ));
    }
    let replication = observed
        .as_ref()
        .map(|t| t.replication_factor)
        .or(desired.replication_factor.as_ref().map(|r| r.value));
    for (name, wanted) in &desired.configs {
        settings.push(config_row(
            desired,
            observed.as_ref(),
            replication,
            name,
            wanted,
        ));
    }
    refuse_if_hidden_configs(observed.as_ref(), &mut settings);
    TopicPlan {
        desired: desired.clone(),
        observed,
        settings,
        blocked: None,
    }
}

fn row<T: ToString>(
    setting: Setting,
    current: Option<String>,
    current_is_default: bool,
    wanted: &Wanted<T>,
    verdict: Verdict,
) -> SettingPlan {
    SettingPlan {
        setting,
        current,
        current_is_default,
        wanted: Wanted {
            value: wanted.value.to_string(),
            origin: wanted.origin.clone(),
        },
        verdict,
    }
}

fn config_row(
    desired: &DesiredTopic,
    observed: Option<&ObservedTopic>,
    replication: Option<u16>,
    name: &str,
    wanted: &Wanted<String>,
) -> SettingPlan {
    let setting = Setting::Config(name.to_owned());
    let current = observed.and_then(|t| t.configs.get(name));
    let refusal = config_refusal(desired, replication, name, &wanted.value);
    let verdict = match (observed, current) {
        (None, _) => refusal.map_or(Verdict::Create, Verdict::Refused),
        (Some(_), None) => Verdict::Refused(Refusal::UnknownConfig {
            name: name.to_owned(),
        }),
        (Some(_), Some(config))
            if config
                .value
                .as_deref()
                .is_some_and(|v| same_value(v, &wanted.value)) =>
        {
            Verdict::InSync
        }
        (Some(_), Some(config)) if config.read_only => Verdict::Refused(Refusal::ReadOnlyConfig {
            name: name.to_owned(),
        }),
        (Some(_), Some(_)) => refusal.map_or(Verdict::Set, Verdict::Refused),
    };
    let value = current.and_then(|c| c.value.clone());
    let is_default = current.is_some_and(|c| !c.explicit);
    row(setting, value, is_default, wanted, verdict)
}

/// A config value that would break the topic for the SDK.
fn config_refusal(
    desired: &DesiredTopic,
    replication: Option<u16>,
    name: &str,
    value: &str,
) -> Option<Refusal> {
    if name == "min.insync.replicas" {
        let min: u32 = value.trim().parse().ok()?;
        let replication = replication?;
        return (min > u32::from(replication))
            .then_some(Refusal::MinInsyncAboveReplication { min, replication });
    }
    let compacts = name == "cleanup.policy" && value.split(',').any(|p| p.trim() == "compact");
    match &desired.role {
        TopicRole::Events { keyless, .. } if compacts && !keyless.is_empty() => {
            Some(Refusal::CompactedKeyless {
                event_types: keyless.iter().map(|t| (*t).to_owned()).collect(),
            })
        }
        _ => None,
    }
}

/// Kafka's AlterConfigs replaces the topic's whole set of configs; one whose value
/// the broker hides cannot be carried over, so no config may change.
fn refuse_if_hidden_configs(observed: Option<&ObservedTopic>, settings: &mut [SettingPlan]) {
    let Some(hidden) = observed.and_then(|t| {
        t.configs
            .iter()
            .find(|(_, c)| c.explicit && c.value.is_none())
            .map(|(name, _)| name.clone())
    }) else {
        return;
    };
    for setting in settings.iter_mut() {
        if setting.verdict == Verdict::Set {
            setting.verdict = Verdict::Refused(Refusal::HiddenConfig {
                name: hidden.clone(),
            });
        }
    }
}

/// Config values compare as Kafka reads them: surrounding blanks do not count, and a
/// comma-separated list is a set (`compact,delete` = `delete, compact`).
///
/// ```
/// use event_bus_kafka::provision::plan::same_value;
/// assert!(same_value("compact,delete", "delete, compact"));
/// assert!(same_value(" 1000", "1000"));
/// assert!(!same_value("1000", "2000"));
/// ```
pub fn same_value(current: &str, wanted: &str) -> bool {
    let items = |text: &str| {
        let mut items: Vec<String> = text.split(',').map(|i| i.trim().to_owned()).collect();
        items.sort();
        items.dedup();
        items
    };
    items(current) == items(wanted)
}
