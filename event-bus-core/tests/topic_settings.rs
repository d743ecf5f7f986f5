//! `#[event(topic_settings(...))]` as an application writes it: the declared values
//! reach `Event::TOPIC_SETTINGS` and the type's registration, in every value form.

use event_bus_core::prelude::*;
use event_bus_core::EventRegistration;
use serde::{Deserialize, Serialize};

/// Everything declared, with each kind of config value.
#[derive(Serialize, Deserialize, Event)]
#[event(
    type = "org.example.tests.ledger.entry.posted.v1",
    topic = "ledger",
    key = "account",
    topic_settings(
        partitions = 12,
        replication_factor = 3,
        config(
            "cleanup.policy" = "compact,delete",
            "retention.ms" = -1,
            "min.insync.replicas" = 2,
            "unclean.leader.election.enable" = false,
        )
    )
)]
struct EntryPosted {
    account: String,
}

/// Only a partition count.
#[derive(Serialize, Deserialize, Event)]
#[event(
    type = "org.example.tests.ledger.entry.voided.v1",
    topic = "ledger",
    topic_settings(partitions = 12)
)]
struct EntryVoided {
    account: String,
}

/// Nothing declared.
#[derive(Serialize, Deserialize, Event)]
#[event(type = "org.example.tests.ledger.audit.done.v1", topic = "audit")]
struct AuditDone {
    id: i64,
}

#[test]
fn declared_settings_reach_the_trait_constant_in_their_kafka_spelling() {
    let settings = EntryPosted::TOPIC_SETTINGS;
    assert_eq!(settings.partitions, Some(12));
    assert_eq!(settings.replication_factor, Some(3));
    assert_eq!(
        settings.configs,
        &[
            ("cleanup.policy", "compact,delete"),
            ("retention.ms", "-1"),
            ("min.insync.replicas", "2"),
            ("unclean.leader.election.enable", "false"),
        ]
    );
    assert_eq!(EntryVoided::TOPIC_SETTINGS.partitions, Some(12));
    assert!(EntryVoided::TOPIC_SETTINGS.configs.is_empty());
    assert!(AuditDone::TOPIC_SETTINGS.is_empty());
}

#[test]
fn registrations_carry_the_settings_so_tools_can_merge_them_per_topic() {
    let found =
        EventRegistration::find("org.example.tests.ledger.entry.posted.v1").expect("registered");
    assert_eq!(found.topic_settings, EntryPosted::TOPIC_SETTINGS);
    let topics = event_bus_core::topic_settings::DeclaredTopic::merge(
        EventRegistration::all()
            .into_iter()
            .map(|r| (r.event_type, r.topic, r.topic_settings)),
    )
    .expect("the two ledger types agree on 12 partitions");
    let ledger = topics.iter().find(|t| t.topic == "ledger").expect("ledger");
    assert_eq!(ledger.event_types.len(), 2);
    assert_eq!(ledger.partitions.map(|p| p.value), Some(12));
    assert_eq!(ledger.configs["retention.ms"].value, "-1");
}
