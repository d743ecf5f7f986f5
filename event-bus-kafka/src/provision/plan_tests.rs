//! The comparison rules of [`super::plan_topic`], one per test, without a cluster.

use super::desired::{DesiredTopic, Origin, TopicRole, Wanted};
use super::observed::{ObservedCluster, ObservedConfig, ObservedTopic};
use super::plan::{plan_topic, TopicAction, Verdict};
use super::refusal::Refusal;

const TYPE: &str = "org.example.tests.thing.done.v1";

fn desired(configs: &[(&str, &str)], keyless: bool) -> DesiredTopic {
    DesiredTopic {
        name: "things".into(),
        role: TopicRole::Events {
            event_types: vec![TYPE],
            keyless: if keyless { vec![TYPE] } else { vec![] },
        },
        partitions: None,
        replication_factor: None,
        configs: configs
            .iter()
            .map(|(name, value)| {
                let wanted = Wanted {
                    value: (*value).to_owned(),
                    origin: Origin::EventType(TYPE),
                };
                ((*name).to_owned(), wanted)
            })
            .collect(),
    }
}

fn cluster(brokers: usize, topic: Option<ObservedTopic>) -> ObservedCluster {
    ObservedCluster {
        brokers,
        topics: topic
            .map(|t| ("things".to_owned(), t))
            .into_iter()
            .collect(),
    }
}

fn existing(replication: u16, configs: &[(&str, ObservedConfig)]) -> ObservedTopic {
    ObservedTopic {
        partitions: 3,
        replication_factor: replication,
        configs: configs
            .iter()
            .map(|(name, config)| ((*name).to_owned(), config.clone()))
            .collect(),
    }
}

fn verdict(plan: &super::plan::TopicPlan) -> &Verdict {
    &plan.settings[0].verdict
}

#[test]
fn an_inherited_value_equal_to_the_wanted_one_is_in_sync() {
    let topic = existing(
        1,
        &[("retention.ms", ObservedConfig::default_value("604800000"))],
    );
    let plan = plan_topic(
        &desired(&[("retention.ms", "604800000")], false),
        &cluster(1, Some(topic)),
    );
    assert_eq!(verdict(&plan), &Verdict::InSync);
    assert!(plan.settings[0].current_is_default);
    assert_eq!(plan.action(), TopicAction::InSync);
}

#[test]
fn a_config_the_broker_does_not_list_is_refused_as_unknown() {
    let topic = existing(1, &[("retention.ms", ObservedConfig::default_value("1"))]);
    let plan = plan_topic(
        &desired(&[("retention.mss", "1")], false),
        &cluster(1, Some(topic)),
    );
    assert!(matches!(
        verdict(&plan),
        Verdict::Refused(Refusal::UnknownConfig { .. })
    ));
    assert_eq!(plan.action(), TopicAction::Refused);
}

#[test]
fn min_insync_replicas_above_the_topics_replication_is_refused() {
    let topic = existing(
        2,
        &[("min.insync.replicas", ObservedConfig::default_value("1"))],
    );
    let plan = plan_topic(
        &desired(&[("min.insync.replicas", "3")], false),
        &cluster(3, Some(topic)),
    );
    assert_eq!(
        verdict(&plan),
        &Verdict::Refused(Refusal::MinInsyncAboveReplication {
            min: 3,
            replication: 2
        })
    );
    let topic = existing(
        3,
        &[("min.insync.replicas", ObservedConfig::default_value("1"))],
    );
    let plan = plan_topic(
        &desired(&[("min.insync.replicas", "2")], false),
        &cluster(3, Some(topic)),
    );
    assert_eq!(verdict(&plan), &Verdict::Set);
}

#[test]
fn compaction_is_refused_while_the_topic_has_keyless_event_types() {
    let policy = [("cleanup.policy", ObservedConfig::default_value("delete"))];
    let wanted = [("cleanup.policy", "compact")];
    let plan = plan_topic(
        &desired(&wanted, true),
        &cluster(1, Some(existing(1, &policy))),
    );
    assert!(matches!(
        verdict(&plan),
        Verdict::Refused(Refusal::CompactedKeyless { .. })
    ));
    let plan = plan_topic(&desired(&wanted, true), &cluster(1, None));
    assert_eq!(
        plan.action(),
        TopicAction::Refused,
        "not created compacted either"
    );
    let plan = plan_topic(
        &desired(&wanted, false),
        &cluster(1, Some(existing(1, &policy))),
    );
    assert_eq!(verdict(&plan), &Verdict::Set);
}

#[test]
fn a_hidden_explicit_config_blocks_every_config_change_but_not_partitions() {
    let hidden = ObservedConfig {
        value: None,
        explicit: true,
        read_only: false,
        sensitive: true,
    };
    let topic = existing(
        1,
        &[
            ("retention.ms", ObservedConfig::default_value("1")),
            ("secret.thing", hidden),
        ],
    );
    let mut wanted = desired(&[("retention.ms", "2")], false);
    wanted.partitions = Some(Wanted {
        value: 6,
        origin: Origin::EventType(TYPE),
    });
    let plan = plan_topic(&wanted, &cluster(1, Some(topic)));
    assert_eq!(plan.settings[0].verdict, Verdict::AddPartitions);
    assert!(
        matches!(&plan.settings[1].verdict, Verdict::Refused(Refusal::HiddenConfig { name }) if name == "secret.thing")
    );
    assert_eq!(plan.action(), TopicAction::Update);
}

#[test]
fn a_broker_down_does_not_refuse_an_existing_topics_replication() {
    let mut wanted = desired(&[], false);
    wanted.replication_factor = Some(Wanted {
        value: 3,
        origin: Origin::EventType(TYPE),
    });
    let plan = plan_topic(&wanted, &cluster(2, Some(existing(3, &[]))));
    assert_eq!(verdict(&plan), &Verdict::InSync);
    let plan = plan_topic(&wanted, &cluster(2, None));
    assert!(matches!(
        verdict(&plan),
        Verdict::Refused(Refusal::NotEnoughBrokers { brokers: 2, .. })
    ));
}
