//! `event-bus offsets show` and the command line's checks, against a real broker
//! process (Apache Kafka).

use std::time::Duration;

use clap::Parser;
use event_bus_kafka::cli::{exit_code, run_with, Cli, CliContext, CliError};
use event_bus_kafka::config::KafkaConfig;
use event_bus_kafka::replay::{OffsetAdmin, ResetTarget};
use event_bus_testkit::kafka::KafkaCluster;
use event_bus_testkit::topics::{unique_group, unique_topic};
use rdkafka::producer::{FutureProducer, FutureRecord};

struct Topic {
    broker: &'static KafkaCluster,
    topic: String,
    group: String,
}

impl Topic {
    /// A topic with `counts[p]` records in partition `p`, enqueued at once so they go
    /// in multi-record batches (end offsets and lag must be exact all the same).
    async fn with_records(counts: &[usize]) -> Self {
        let broker = KafkaCluster::shared().expect("Apache Kafka (run scripts/install-test-deps)");
        let topic = unique_topic("offsets-cli");
        broker
            .create_topic(&topic, counts.len() as i32)
            .await
            .expect("topic");
        let producer: FutureProducer = broker.producer_config().create().expect("producer");
        let mut deliveries = Vec::new();
        for (partition, count) in counts.iter().enumerate() {
            for i in 0..*count {
                let value = format!("{partition}-{i}");
                let delivery = producer
                    .send_result(
                        FutureRecord::<(), str>::to(&topic)
                            .partition(partition as i32)
                            .payload(&value),
                    )
                    .map_err(|(e, _)| e)
                    .expect("enqueued");
                deliveries.push(delivery);
            }
        }
        for delivery in deliveries {
            delivery
                .await
                .expect("delivery report")
                .map_err(|(e, _)| e)
                .expect("delivered");
        }
        Self {
            broker,
            topic,
            group: unique_group("offsets-cli"),
        }
    }

    fn kafka(&self) -> KafkaConfig {
        KafkaConfig::new(self.broker.bootstrap_servers())
    }

    async fn commit(&self, offsets: &[(i32, i64)]) {
        let admin = OffsetAdmin::new(&self.kafka(), &self.group).expect("admin");
        let target = ResetTarget::Offsets(offsets.iter().copied().collect());
        let plan = admin
            .plan(std::slice::from_ref(&self.topic), &target)
            .await
            .expect("plan");
        admin.apply(&plan).await.expect("commit");
    }

    async fn cli(&self, args: &[&str]) -> (Result<(), CliError>, String) {
        let mut argv = vec!["event-bus"];
        argv.extend_from_slice(args);
        argv.extend_from_slice(&["--bootstrap-servers", self.broker.bootstrap_servers()]);
        let cli = Cli::try_parse_from(argv).expect("valid flags");
        let mut out = Vec::new();
        let result = run_with(cli, &CliContext::default(), &mut out).await;
        (result, String::from_utf8(out).expect("UTF-8 output"))
    }
}

#[tokio::test]
async fn show_prints_committed_end_and_lag_per_partition() {
    let topic = Topic::with_records(&[5, 3]).await;
    topic.commit(&[(0, 3)]).await;

    let (result, out) = topic
        .cli(&[
            "offsets",
            "show",
            "--group",
            &topic.group,
            "--topic",
            &topic.topic,
        ])
        .await;
    result.expect("show");
    assert!(out.contains("TOPIC"), "{out}");
    let rows: Vec<Vec<&str>> = out
        .lines()
        .filter(|l| l.starts_with(&topic.topic))
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 2, "{out}");
    assert_eq!(rows[0][1..], ["0", "3", "5", "2"], "{out}");
    assert_eq!(rows[1][1..], ["1", "-", "3", "-"], "{out}");
    assert!(out.contains("total lag 2"), "{out}");

    let (result, out) = topic
        .cli(&[
            "--output",
            "json",
            "offsets",
            "show",
            "--group",
            &topic.group,
            "--topic",
            &topic.topic,
        ])
        .await;
    result.expect("show");
    let document: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(document["group"], topic.group.as_str());
    assert_eq!(document["total_lag"], 2);
    let partitions = document["partitions"].as_array().expect("partitions");
    assert_eq!(partitions.len(), 2);
    assert_eq!(partitions[0]["committed"], 3);
    assert_eq!(partitions[0]["end"], 5);
    assert_eq!(partitions[0]["lag"], 2);
    assert!(partitions[1]["committed"].is_null());
    assert!(partitions[1]["lag"].is_null());
    assert_eq!(
        document["members"],
        serde_json::json!([]),
        "nobody consumes"
    );
}

#[tokio::test]
async fn show_without_a_topic_lists_the_topics_the_group_committed_in() {
    let topic = Topic::with_records(&[4]).await;
    let (result, out) = topic
        .cli(&["offsets", "show", "--group", &topic.group])
        .await;
    result.expect("show");
    assert!(out.contains("has no committed offsets"), "{out}");

    topic.commit(&[(0, 1)]).await;
    let (result, out) = topic
        .cli(&[
            "--output",
            "json",
            "offsets",
            "show",
            "--group",
            &topic.group,
        ])
        .await;
    result.expect("show");
    let document: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    let partitions = document["partitions"].as_array().expect("partitions");
    assert_eq!(partitions.len(), 1, "{out}");
    assert_eq!(partitions[0]["topic"], topic.topic.as_str());
    assert_eq!(partitions[0]["lag"], 3);
}

#[tokio::test]
async fn reset_prints_a_json_plan_and_commits_it_with_execute() {
    let topic = Topic::with_records(&[6, 2]).await;
    topic.commit(&[(0, 6), (1, 2)]).await;
    let (result, out) = topic
        .cli(&[
            "--output",
            "json",
            "offsets",
            "reset",
            "--group",
            &topic.group,
            "--topic",
            &topic.topic,
            "--shift-by",
            "-4",
            "--execute",
        ])
        .await;
    result.expect("reset");
    let plan: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(plan["executed"], true);
    assert_eq!(plan["target"], "shift by -4");
    assert_eq!(plan["partitions"][0]["new"], 2);
    assert_eq!(plan["partitions"][0]["change"], -4);
    assert_eq!(plan["partitions"][1]["new"], 0);
    assert!(plan["partitions"][1]["note"]
        .as_str()
        .unwrap_or_default()
        .contains("before the earliest"));
    let (_, out) = topic
        .cli(&[
            "--output",
            "json",
            "offsets",
            "show",
            "--group",
            &topic.group,
            "--topic",
            &topic.topic,
        ])
        .await;
    let shown: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(shown["partitions"][0]["committed"], 2);
    assert_eq!(shown["partitions"][1]["committed"], 0);
}

#[tokio::test]
async fn bad_input_gets_a_clear_error_and_the_usage_exit_code() {
    let topic = Topic::with_records(&[1]).await;

    let (result, _) = topic
        .cli(&[
            "offsets",
            "show",
            "--group",
            &topic.group,
            "--topic",
            "no-such-topic-anywhere",
        ])
        .await;
    let err = result.expect_err("unknown topic");
    assert_eq!(err.exit_code(), exit_code::USAGE);
    assert!(err.to_string().contains("does not exist"), "{err}");

    let (result, _) = topic
        .cli(&[
            "offsets",
            "reset",
            "--group",
            &topic.group,
            "--topic",
            &topic.topic,
            "--to-offset",
            "4:1",
        ])
        .await;
    let err = result.expect_err("unknown partition");
    assert_eq!(err.exit_code(), exit_code::USAGE);
    assert!(err.to_string().contains("has no partition 4"), "{err}");

    let (result, _) = topic
        .cli(&[
            "offsets",
            "reset",
            "--group",
            &topic.group,
            "--topic",
            &topic.topic,
            "--shift-by",
            "-1",
        ])
        .await;
    let err = result.expect_err("nothing committed to shift");
    assert_eq!(err.exit_code(), exit_code::USAGE);
    assert!(err.to_string().contains("no committed offset"), "{err}");

    let token =
        event_bus_kafka::replay::ResumeToken::from_timestamps([("other-topic".to_string(), 0, 1)]);
    let (result, _) = topic
        .cli(&[
            "offsets",
            "reset",
            "--group",
            &topic.group,
            "--topic",
            &topic.topic,
            "--to-token",
            &token.to_string(),
        ])
        .await;
    let err = result.expect_err("token without the topic");
    assert_eq!(err.exit_code(), exit_code::USAGE);
    assert!(err.to_string().contains("other-topic"), "{err}");
}

#[test]
fn the_command_line_rejects_bad_targets() {
    let base = [
        "event-bus",
        "offsets",
        "reset",
        "--group",
        "g",
        "--topic",
        "t",
    ];
    let parse = |extra: &[&str]| Cli::try_parse_from(base.iter().chain(extra.iter()).copied());
    let no_target = parse(&[]).expect_err("a target is required");
    assert_eq!(no_target.exit_code(), i32::from(exit_code::USAGE));
    assert!(
        parse(&["--to-earliest", "--shift-by", "3"]).is_err(),
        "two targets"
    );
    let bad_time = parse(&["--to-datetime", "yesterday"]).expect_err("bad time");
    assert!(bad_time.to_string().contains("RFC 3339"), "{bad_time}");
    let bad_pair = parse(&["--to-offset", "7"]).expect_err("bad pair");
    assert!(
        bad_pair.to_string().contains("<partition>:<offset>"),
        "{bad_pair}"
    );
    let bad_token = parse(&["--to-token", "!!!"]).expect_err("bad token");
    assert!(bad_token.to_string().contains("base64"), "{bad_token}");
    assert!(
        parse(&["--shift-by", "-3"]).is_ok(),
        "negative shifts parse"
    );
    assert!(
        Cli::try_parse_from([
            "event-bus",
            "offsets",
            "reset",
            "--group",
            "g",
            "--to-latest"
        ])
        .is_err(),
        "a topic is required"
    );
}

mod tail {
    use super::*;
    use event_bus_examples::openedx::{SessionLoginCompleted, UserData};
    use event_bus_kafka::prelude::{Event, Producer, ProducerConfig, RegistryConfig};
    use event_bus_testkit::registry::EmbeddedRegistry;

    fn login(n: i64) -> SessionLoginCompleted {
        let mut user = UserData::example();
        user.id = n;
        SessionLoginCompleted { user }
    }

    async fn tail(
        broker: &KafkaCluster,
        registry: &EmbeddedRegistry,
        args: &[&str],
    ) -> Vec<serde_json::Value> {
        let url = registry.url();
        let mut argv = vec!["event-bus", "tail"];
        argv.extend_from_slice(args);
        argv.extend_from_slice(&[
            "--bootstrap-servers",
            broker.bootstrap_servers(),
            "--schema-registry-url",
            &url,
        ]);
        let cli = Cli::try_parse_from(argv).expect("valid flags");
        let mut out = Vec::new();
        run_with(cli, &CliContext::default(), &mut out)
            .await
            .expect("tail");
        String::from_utf8(out)
            .expect("UTF-8")
            .lines()
            .map(|line| serde_json::from_str(line).expect("one JSON document per line"))
            .collect()
    }

    #[tokio::test]
    async fn tail_decodes_any_event_type_through_the_registry_as_json_lines() {
        let broker = KafkaCluster::shared().expect("Apache Kafka");
        let registry = EmbeddedRegistry::start().await.expect("registry");
        let prefix = unique_topic("tail");
        let topic = format!("{prefix}-{}", SessionLoginCompleted::TOPIC);
        broker.create_topic(&topic, 1).await.expect("topic");
        let producer = Producer::new(
            ProducerConfig::new(
                KafkaConfig::new(broker.bootstrap_servers()),
                RegistryConfig::new(registry.url()),
            )
            .with_topic_prefix(prefix.clone()),
        )
        .expect("producer");
        let mut ids = Vec::new();
        for n in 1..=2 {
            ids.push(
                producer
                    .send(&login(n))
                    .await
                    .expect("sent")
                    .event_id
                    .to_string(),
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let middle = chrono::Utc::now();
        tokio::time::sleep(Duration::from_millis(50)).await;
        ids.push(
            producer
                .send(&login(3))
                .await
                .expect("sent")
                .event_id
                .to_string(),
        );
        let raw: FutureProducer = broker.producer_config().create().expect("raw producer");
        raw.send(
            FutureRecord::<str, [u8]>::to(&topic)
                .key("k")
                .payload(&[1, 2, 3][..]),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(e, _)| e)
        .expect("garbage sent");

        let lines = tail(
            broker,
            &registry,
            &["--topic", &topic, "--from-beginning", "--until-end"],
        )
        .await;
        assert_eq!(lines.len(), 4, "{lines:#?}");
        let first = &lines[0];
        assert_eq!(first["topic"], topic.as_str());
        assert_eq!(first["offset"], 0);
        assert_eq!(first["event_type"], SessionLoginCompleted::EVENT_TYPE);
        assert_eq!(first["metadata"]["id"], ids[0].as_str());
        assert_eq!(first["payload"]["user"]["id"], 1, "{first:#}");
        assert!(first["schema_id"].is_u64());
        assert!(!first["key"].is_null(), "the Avro key decodes: {first:#}");
        assert_eq!(
            first["headers"]["ce_type"],
            SessionLoginCompleted::EVENT_TYPE
        );
        assert!(first.get("error").is_none(), "{first:#}");
        let garbage = &lines[3];
        assert_eq!(garbage["key"], "k");
        assert!(garbage["payload"].is_null());
        assert_eq!(garbage["value_base64"], "AQID");
        assert!(
            garbage["error"]
                .as_str()
                .unwrap_or_default()
                .contains("value"),
            "{garbage:#}"
        );

        let lines = tail(
            broker,
            &registry,
            &["--topic", &topic, "--from-beginning", "--max", "2"],
        )
        .await;
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1]["payload"]["user"]["id"], 2);

        let lines = tail(
            broker,
            &registry,
            &[
                "--topic",
                &topic,
                "--from-datetime",
                &middle.to_rfc3339(),
                "--until-end",
            ],
        )
        .await;
        let users: Vec<&serde_json::Value> =
            lines.iter().map(|l| &l["payload"]["user"]["id"]).collect();
        assert_eq!(lines.len(), 2, "the events from the time on: {lines:#?}");
        assert_eq!(users[0], 3);
        assert_eq!(lines[0]["metadata"]["id"], ids[2].as_str());
    }
}
