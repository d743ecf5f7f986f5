//! `event-bus topics ensure` of the example application against Apache Kafka: the
//! example events declare `topic_settings` (user-login: 3 partitions;
//! learning-course-enrollment: 3 partitions, cleanup.policy=delete,
//! retention.ms=1209600000). Each test gives the binary its own topic prefix, so its
//! topics are its own, and checks the cluster with the testkit's admin client.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use event_bus_testkit::kafka::{KafkaCluster, TopicSpec};
use event_bus_testkit::topics::unique_topic;
use rdkafka::admin::{AdminOptions, ConfigSource, ResourceSpecifier};
use serde_json::Value;

const USER_LOGIN: &str = "user-login";
const ENROLLMENT: &str = "learning-course-enrollment";
const DECLARED_RETENTION: &str = "1209600000";

/// What one run of the binary did.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("JSON ({e}): {self:?}"))
    }
}

/// `event-bus topics ensure <args>` with the topic prefix `prefix`, the shared broker,
/// `env` and no other EVENT_BUS_* variable of this process.
fn ensure(broker: &KafkaCluster, prefix: &str, env: &[(&str, &str)], args: &[&str]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_event-bus"));
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("EVENT_BUS_")) {
        command.env_remove(name);
    }
    let output = command
        .args(["topics", "ensure"])
        .args(args)
        .env(
            "EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS",
            broker.bootstrap_servers(),
        )
        .env("EVENT_BUS_TOPIC_PREFIX", prefix)
        .envs(env.iter().copied())
        .output()
        .expect("run event-bus");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn broker() -> &'static KafkaCluster {
    KafkaCluster::shared().expect("Apache Kafka (run scripts/install-test-deps)")
}

/// The JSON entry of `topic` in an ensure document.
fn topic<'a>(document: &'a Value, topic: &str) -> &'a Value {
    document["topics"]
        .as_array()
        .and_then(|topics| topics.iter().find(|t| t["topic"] == topic))
        .unwrap_or_else(|| panic!("{topic} not in {document:#}"))
}

/// The JSON entry of `setting` of `topic`.
fn setting<'a>(document: &'a Value, name: &str, setting: &str) -> &'a Value {
    topic(document, name)["settings"]
        .as_array()
        .and_then(|settings| settings.iter().find(|s| s["setting"] == setting))
        .unwrap_or_else(|| panic!("{setting} of {name} not in {document:#}"))
}

/// Of the topics that exist among `names`: the replica count of each partition.
fn layout(cluster: &KafkaCluster, names: &[&str]) -> BTreeMap<String, Vec<usize>> {
    let metadata = cluster
        .admin()
        .inner()
        .fetch_metadata(None, Duration::from_secs(10))
        .expect("metadata");
    metadata
        .topics()
        .iter()
        .filter(|t| t.error().is_none() && names.contains(&t.name()))
        .map(|t| {
            let replicas = t.partitions().iter().map(|p| p.replicas().len()).collect();
            (t.name().to_owned(), replicas)
        })
        .collect()
}

/// Partition counts of the topics that exist among `names`.
fn partitions(cluster: &KafkaCluster, names: &[&str]) -> BTreeMap<String, usize> {
    layout(cluster, names)
        .into_iter()
        .map(|(name, replicas)| (name, replicas.len()))
        .collect()
}

/// The configs set on `topic` itself (not inherited), by name.
async fn explicit_configs(broker: &KafkaCluster, topic: &str) -> BTreeMap<String, String> {
    let resources = broker
        .admin()
        .describe_configs(&[ResourceSpecifier::Topic(topic)], &AdminOptions::new())
        .await
        .expect("describe configs");
    let resource = resources
        .into_iter()
        .next()
        .expect("one")
        .expect("described");
    resource
        .entries
        .into_iter()
        .filter(|e| e.source == ConfigSource::DynamicTopic)
        .filter_map(|e| Some((e.name, e.value?)))
        .collect()
}

#[tokio::test]
async fn missing_topics_and_dead_letter_topics_are_created_with_execute_only() {
    let broker = broker();
    let prefix = unique_topic("ensure-create");
    let login = format!("{prefix}-{USER_LOGIN}");
    let enrollment = format!("{prefix}-{ENROLLMENT}");
    let (login_dlq, enrollment_dlq) = (format!("{login}.dlq"), format!("{enrollment}.dlq"));
    let all = [login.as_str(), &enrollment, &login_dlq, &enrollment_dlq];
    // Defaults: what no event type declares.
    let env = [
        ("EVENT_BUS_TOPIC_PARTITIONS", "2"),
        ("EVENT_BUS_TOPIC_CONFIG_RETENTION_MS", "86400000"),
    ];

    let run = ensure(broker, &prefix, &env, &["--output", "json"]);
    assert_eq!(run.code, Some(1), "a dry run with missing topics: {run:?}");
    let plan = run.json();
    assert_eq!(plan["executed"], false);
    for name in all {
        assert_eq!(topic(&plan, name)["action"], "create", "{name}: {plan:#}");
    }
    assert_eq!(topic(&plan, &login_dlq)["role"], "dead_letters");
    assert_eq!(
        topic(&plan, &login_dlq)["dead_letters_of"][0],
        login.as_str()
    );
    let declared = setting(&plan, &enrollment, "retention.ms");
    assert_eq!(
        declared["wanted"], DECLARED_RETENTION,
        "declared beats default"
    );
    assert_eq!(
        declared["wanted_by"],
        "org.openedx.learning.course.enrollment.created.v1"
    );
    let default = setting(&plan, &login, "retention.ms");
    assert_eq!(default["wanted_by"], "$EVENT_BUS_TOPIC_CONFIG_RETENTION_MS");
    assert!(
        partitions(broker, &all).is_empty(),
        "a dry run creates nothing, not even through the broker's auto-creation"
    );

    let run = ensure(broker, &prefix, &env, &["--execute"]);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stdout.contains(&format!("Created {login}.")), "{run:?}");
    let expected: BTreeMap<String, usize> = [
        (&login, 3),
        (&enrollment, 3),
        (&login_dlq, 2),
        (&enrollment_dlq, 2),
    ]
    .into_iter()
    .map(|(name, count)| (name.clone(), count))
    .collect();
    assert_eq!(partitions(broker, &all), expected);
    let configs = explicit_configs(broker, &enrollment).await;
    assert_eq!(configs["retention.ms"], DECLARED_RETENTION);
    assert_eq!(configs["cleanup.policy"], "delete");
    assert_eq!(
        explicit_configs(broker, &login_dlq).await["retention.ms"],
        "86400000"
    );

    let run = ensure(broker, &prefix, &env, &[]);
    assert_eq!(run.code, Some(0), "in sync after --execute: {run:?}");
    assert!(
        run.stdout.contains("Every topic is as declared."),
        "{run:?}"
    );
}

#[tokio::test]
async fn partitions_are_added_but_never_removed() {
    let broker = broker();
    let prefix = unique_topic("ensure-partitions");
    let login = format!("{prefix}-{USER_LOGIN}");
    let enrollment = format!("{prefix}-{ENROLLMENT}");
    broker.create_topic(&login, 1).await.expect("login topic");
    let spec = TopicSpec::new(&enrollment, 5)
        .with_config("cleanup.policy", "delete")
        .with_config("retention.ms", DECLARED_RETENTION);
    broker
        .create_topic_with(&spec)
        .await
        .expect("enrollment topic");

    let run = ensure(broker, &prefix, &[], &["--no-dlq", "--output", "json"]);
    assert_eq!(run.code, Some(1), "{run:?}");
    let plan = run.json();
    assert_eq!(topic(&plan, &login)["action"], "update");
    let more = setting(&plan, &login, "partitions");
    assert_eq!(
        (&more["current"], &more["action"]),
        (&Value::from("1"), &Value::from("add_partitions"))
    );
    assert_eq!(topic(&plan, &enrollment)["action"], "refused");
    let fewer = setting(&plan, &enrollment, "partitions");
    assert_eq!(fewer["action"], "refused");
    assert_eq!(fewer["refusal"]["kind"], "fewer_partitions");
    let reason = fewer["refusal"]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("cannot take partitions away"), "{reason}");
    assert_eq!(
        partitions(broker, &[&login])[&login],
        1,
        "a dry run changes nothing"
    );

    let run = ensure(broker, &prefix, &[], &["--no-dlq", "--execute"]);
    assert_eq!(
        run.code,
        Some(1),
        "a refusal exits with 1 even when the rest is done: {run:?}"
    );
    assert!(run.stdout.contains("REFUSED (1)"), "{run:?}");
    assert!(
        run.stdout.contains("cannot take partitions away"),
        "{run:?}"
    );
    assert!(
        run.stdout.contains("changes the partition of most keys"),
        "{run:?}"
    );
    assert!(run.stderr.contains("1 change(s) refused"), "{run:?}");
    let counts = partitions(broker, &[&login, &enrollment]);
    assert_eq!((counts[&login], counts[&enrollment]), (3, 5));
}

#[tokio::test]
async fn config_drift_is_shown_then_fixed_keeping_configs_set_by_others() {
    let broker = broker();
    let prefix = unique_topic("ensure-configs");
    let enrollment = format!("{prefix}-{ENROLLMENT}");
    // retention.ms drifted; max.message.bytes was set by someone else and nobody
    // declares it; cleanup.policy is the broker's default, which is what is declared.
    let spec = TopicSpec::new(&enrollment, 3)
        .with_config("retention.ms", "1000")
        .with_config("max.message.bytes", "200000");
    broker.create_topic_with(&spec).await.expect("topic");
    let args = ["--topic", ENROLLMENT, "--no-dlq"];

    let run = ensure(
        broker,
        &prefix,
        &[],
        &[&args[..], &["--output", "json"]].concat(),
    );
    assert_eq!(run.code, Some(1), "{run:?}");
    let plan = run.json();
    assert_eq!(
        plan["topics"].as_array().map(Vec::len),
        Some(1),
        "--topic: {plan:#}"
    );
    let retention = setting(&plan, &enrollment, "retention.ms");
    assert_eq!(retention["current"], "1000");
    assert_eq!(retention["wanted"], DECLARED_RETENTION);
    assert_eq!(retention["action"], "set");
    let policy = setting(&plan, &enrollment, "cleanup.policy");
    assert_eq!(
        (&policy["action"], &policy["current_is_default"]),
        (&Value::from("in_sync"), &Value::from(true))
    );

    let run = ensure(broker, &prefix, &[], &[&args[..], &["--execute"]].concat());
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(
        run.stdout
            .contains(&format!("Set retention.ms on {enrollment}.")),
        "{run:?}"
    );
    let configs = explicit_configs(broker, &enrollment).await;
    assert_eq!(
        configs.get("retention.ms").map(String::as_str),
        Some(DECLARED_RETENTION)
    );
    assert_eq!(
        configs.get("max.message.bytes").map(String::as_str),
        Some("200000"),
        "a config nobody declared stays as it was set: {configs:?}"
    );
    assert_eq!(ensure(broker, &prefix, &[], &args).code, Some(0));
}

#[tokio::test]
async fn replication_changes_and_more_replicas_than_brokers_are_refused() {
    let broker = broker();
    assert_eq!(
        broker.default_replication(),
        1,
        "the shared cluster has one node"
    );
    let prefix = unique_topic("ensure-replication");
    let login = format!("{prefix}-{USER_LOGIN}");
    let enrollment = format!("{prefix}-{ENROLLMENT}");
    broker.create_topic(&login, 3).await.expect("topic");
    let env = [("EVENT_BUS_TOPIC_REPLICATION_FACTOR", "3")];

    let run = ensure(
        broker,
        &prefix,
        &env,
        &["--no-dlq", "--execute", "--output", "json"],
    );
    assert_eq!(run.code, Some(1), "{run:?}");
    let plan = run.json();
    let existing = setting(&plan, &login, "replication.factor");
    assert_eq!(existing["refusal"]["kind"], "replication_factor_change");
    let reason = existing["refusal"]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("kafka-reassign-partitions.sh"), "{reason}");
    let missing = setting(&plan, &enrollment, "replication.factor");
    assert_eq!(missing["refusal"]["kind"], "not_enough_brokers");
    assert_eq!(topic(&plan, &enrollment)["action"], "refused");
    assert_eq!(plan["applied"]["created"], Value::Array(vec![]));
    assert!(
        partitions(broker, &[&enrollment]).is_empty(),
        "not created with another replication"
    );
}

#[tokio::test]
async fn one_shared_dead_letter_topic_collects_every_source() {
    let broker = broker();
    let prefix = unique_topic("ensure-dlq");
    let shared = format!("{prefix}-all.dlq");
    let env = [("EVENT_BUS_CONSUMER_DLQ_TOPIC", shared.as_str())];

    let run = ensure(broker, &prefix, &env, &["--output", "json"]);
    assert_eq!(run.code, Some(1), "{run:?}");
    let plan = run.json();
    let dead_letters: Vec<&Value> = plan["topics"]
        .as_array()
        .map(|topics| {
            topics
                .iter()
                .filter(|t| t["role"] == "dead_letters")
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(dead_letters.len(), 1, "{plan:#}");
    assert_eq!(dead_letters[0]["topic"], shared.as_str());
    assert_eq!(
        dead_letters[0]["dead_letters_of"].as_array().map(Vec::len),
        Some(2)
    );

    let run = ensure(broker, &prefix, &env, &["--no-dlq", "--output", "json"]);
    assert!(run.json()["topics"]
        .as_array()
        .is_some_and(|t| t.iter().all(|t| t["role"] == "events")));
    let run = ensure(broker, &prefix, &[], &["--topic", "no-such-topic"]);
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(
        run.stderr.contains(USER_LOGIN),
        "names the known topics: {run:?}"
    );
}

/// Replicas of each partition of `topic`.
fn replicas(cluster: &KafkaCluster, topic: &str) -> Vec<usize> {
    layout(cluster, &[topic]).remove(topic).unwrap_or_default()
}

#[tokio::test]
async fn replication_and_min_insync_defaults_are_applied_on_three_nodes() {
    let cluster = tokio::task::spawn_blocking(|| KafkaCluster::start(3))
        .await
        .expect("join")
        .unwrap_or_else(|error| panic!("start three Kafka nodes: {error}"));
    let prefix = unique_topic("ensure-three");
    let login = format!("{prefix}-{USER_LOGIN}");
    let dlq = format!("{login}.dlq");
    // Not the cluster's default.replication.factor (3), so the 2 must come from ensure.
    let env = [
        ("EVENT_BUS_TOPIC_REPLICATION_FACTOR", "2"),
        ("EVENT_BUS_TOPIC_CONFIG_MIN_INSYNC_REPLICAS", "2"),
    ];
    let args = ["--topic", USER_LOGIN];

    let run = ensure(
        &cluster,
        &prefix,
        &env,
        &[&args[..], &["--execute"]].concat(),
    );
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(
        replicas(&cluster, &login),
        vec![2, 2, 2],
        "3 declared partitions, 2 replicas each"
    );
    assert_eq!(
        replicas(&cluster, &dlq),
        vec![2],
        "the broker's one partition, 2 replicas"
    );
    for topic in [&login, &dlq] {
        let configs = explicit_configs(&cluster, topic).await;
        assert_eq!(
            configs.get("min.insync.replicas").map(String::as_str),
            Some("2"),
            "{topic}"
        );
    }
    let run = ensure(&cluster, &prefix, &env, &args);
    assert_eq!(run.code, Some(0), "in sync: {run:?}");
}
