//! The `produce_event` binary against a real Apache Kafka broker and the embedded
//! registry: good JSON lands on the topic framed exactly like `Producer::send` frames
//! it; bad input exits with code 2 and sends nothing.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use event_bus_core::schema::compat::CompatibilityLevel;
use event_bus_core::{codec, Event};
use event_bus_examples::openedx::{CourseEnrollmentCreated, SessionLoginCompleted, UserData};
use event_bus_kafka::prelude::*;
use event_bus_kafka::registry::RegistryClient;
use event_bus_kafka::topic;
use event_bus_testkit::kafka::KafkaCluster;
use event_bus_testkit::records::read_topic;
use event_bus_testkit::registry::EmbeddedRegistry;
use event_bus_testkit::topics::unique_topic;
use rdkafka::message::{Headers, Message, OwnedMessage};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(30);
const LOGIN: &str = SessionLoginCompleted::EVENT_TYPE;
const ENROLLMENT: &str = CourseEnrollmentCreated::EVENT_TYPE;

struct Stack {
    broker: &'static KafkaCluster,
    registry: EmbeddedRegistry,
    prefix: String,
}

/// What one run of the binary did.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Stack {
    async fn start() -> Self {
        Self {
            broker: KafkaCluster::shared().expect("Apache Kafka (run scripts/install-test-deps)"),
            registry: EmbeddedRegistry::start().await.expect("embedded registry"),
            prefix: unique_topic("cli"),
        }
    }

    async fn topic(&self, name: &str) -> String {
        let full = topic::full_topic(Some(&self.prefix), name);
        self.broker.create_topic(&full, 1).await.expect("topic");
        full
    }

    fn registry_client(&self) -> RegistryClient {
        RegistryClient::new(RegistryConfig::new(self.registry.url())).expect("registry client")
    }

    /// Runs `produce_event` with `args` (and `stdin`), configured for this stack
    /// through the environment, off the async runtime (the registry runs on it).
    async fn produce_event(&self, args: &[&str], stdin: Option<&str>) -> Run {
        let mut command = Command::new(env!("CARGO_BIN_EXE_produce_event"));
        for (name, _) in std::env::vars().filter(|(n, _)| n.starts_with("EVENT_BUS_")) {
            command.env_remove(name);
        }
        command
            .args(args)
            .env(
                "EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS",
                self.broker.bootstrap_servers(),
            )
            .env("EVENT_BUS_KAFKA_LINGER_MS", "0")
            .env("EVENT_BUS_SCHEMA_REGISTRY_URL", self.registry.url())
            .env("EVENT_BUS_TOPIC_PREFIX", &self.prefix)
            .env("EVENT_BUS_SERVICE_NAME", "cli-test")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let stdin = stdin.map(str::to_owned);
        tokio::task::spawn_blocking(move || {
            let mut child = command.spawn().expect("produce_event starts");
            if let Some(mut pipe) = child.stdin.take() {
                if let Some(text) = stdin {
                    pipe.write_all(text.as_bytes()).expect("stdin written");
                }
            }
            let output = child.wait_with_output().expect("produce_event ends");
            Run {
                code: output.status.code(),
                stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            }
        })
        .await
        .expect("blocking task")
    }
}

fn login_json() -> Value {
    json!({"user": {"id": 123, "is_active": true, "pii": {
        "username": "foobob", "email": "bob@foo.example", "name": "Bob Foo"
    }}})
}

fn header(record: &OwnedMessage, name: &str) -> Option<String> {
    record.headers().and_then(|headers| {
        headers
            .iter()
            .find(|h| h.key == name)
            .and_then(|h| h.value.map(|v| String::from_utf8_lossy(v).into_owned()))
    })
}

fn header_names(record: &OwnedMessage) -> Vec<String> {
    record
        .headers()
        .map(|h| h.iter().map(|x| x.key.to_owned()).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn good_json_lands_on_the_topic_framed_like_the_producer_frames_it() {
    let stack = Stack::start().await;
    let full_topic = stack.topic(SessionLoginCompleted::TOPIC).await;
    let data = login_json().to_string();
    let run = stack
        .produce_event(
            &["--output", "json", "--event-type", LOGIN, "--data", &data],
            None,
        )
        .await;
    assert_eq!(run.code, Some(0), "{run:?}");
    let printed: Value = serde_json::from_str(run.stdout.trim()).expect("one JSON object");
    assert_eq!(printed["topic"], json!(full_topic));
    assert_eq!(printed["event_type"], json!(LOGIN));
    assert_eq!(printed["key"], json!("foobob"));
    assert_eq!(printed["key_field"], json!("user.pii.username"));

    let records = read_topic(stack.broker.bootstrap_servers(), &full_topic, 1, WAIT).expect("read");
    assert_eq!(records.len(), 1);
    let record = &records[0];
    assert_eq!(json!(record.offset()), printed["offset"]);
    assert_eq!(json!(record.partition()), printed["partition"]);
    assert_eq!(
        header(record, "ce_id").map(Value::from),
        Some(printed["ce_id"].clone())
    );
    assert_eq!(header(record, "ce_type").as_deref(), Some(LOGIN));
    assert_eq!(header(record, "ce_source").as_deref(), Some("cli-test"));

    // The value decodes into the event, with the schema registered for its subject.
    let registry = stack.registry_client();
    let (value_id, datum) = codec::unframe(record.payload().expect("value")).expect("framed");
    let writer = registry
        .schema_by_id(value_id)
        .await
        .expect("writer schema");
    let event = SessionLoginCompleted::from_avro_datum(datum, &writer).expect("decodes");
    assert_eq!(event.user, UserData::example());
    for subject in [
        topic::value_subject(&full_topic, LOGIN),
        topic::key_subject(&full_topic, "string"),
    ] {
        assert_eq!(
            registry.compatibility(&subject).await.expect("level"),
            Some(CompatibilityLevel::FullTransitive),
            "{subject}"
        );
    }

    // Same subjects, same ids, same bytes and header set as a typed `Producer::send`.
    let producer = Producer::new(
        ProducerConfig::new(
            KafkaConfig::new(stack.broker.bootstrap_servers()),
            RegistryConfig::new(stack.registry.url()),
        )
        .with_topic_prefix(stack.prefix.clone()),
    )
    .expect("producer");
    let typed = producer
        .encoder()
        .encode(&event, None, None)
        .await
        .expect("typed encoding");
    assert_eq!(
        record.payload(),
        Some(typed.value.as_slice()),
        "value bytes"
    );
    assert_eq!(record.key(), typed.key.as_deref(), "key bytes");
    let typed_names: Vec<String> = typed.headers.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(header_names(record), typed_names, "header names and order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_from_a_file_or_stdin_with_another_topic_and_key_field() {
    let stack = Stack::start().await;
    let other = stack.topic("cli-other").await;
    let file = std::env::temp_dir().join(format!("{}.json", unique_topic("event")));
    std::fs::write(&file, login_json().to_string()).expect("file written");
    let at_file = format!("@{}", file.display());
    let run = stack
        .produce_event(
            &[
                "--output",
                "json",
                "--event-type",
                LOGIN,
                "--topic",
                "cli-other",
                "--key-field",
                "user.id",
                "--data",
                &at_file,
            ],
            None,
        )
        .await;
    let _ = std::fs::remove_file(&file);
    assert_eq!(run.code, Some(0), "{run:?}");
    let printed: Value = serde_json::from_str(run.stdout.trim()).expect("one JSON object");
    assert_eq!(printed["topic"], json!(other));
    assert_eq!(printed["key"], json!("123"));

    // The key is a long, registered under `{topic}-long` as Open edX names it.
    let records = read_topic(stack.broker.bootstrap_servers(), &other, 1, WAIT).expect("read");
    assert_eq!(records.len(), 1);
    let (key_id, key_datum) = codec::unframe(records[0].key().expect("key")).expect("framed key");
    let registry = stack.registry_client();
    let key_schema = registry.schema_by_id(key_id).await.expect("key schema");
    let key = codec::decode_value(key_datum, &key_schema, None).expect("key decodes");
    assert_eq!(key, apache_avro::types::Value::Long(123));
    let subjects = registry.subjects().await.expect("subjects");
    assert!(
        subjects.contains(&topic::key_subject(&other, "long")),
        "{subjects:?}"
    );

    // Standard input, text output.
    let run = stack
        .produce_event(
            &["--event-type", LOGIN, "--topic", "cli-other", "--data", "-"],
            Some(&login_json().to_string()),
        )
        .await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stdout.starts_with(&format!("{other}[0]@")), "{run:?}");
    assert!(run.stdout.contains("key foobob"), "{run:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_exits_2_with_a_clear_message_and_sends_nothing() {
    let stack = Stack::start().await;
    let full_topic = stack.topic(SessionLoginCompleted::TOPIC).await;
    let good = login_json().to_string();
    let mut missing_field = login_json();
    missing_field["user"]
        .as_object_mut()
        .expect("object")
        .remove("is_active");
    let missing_field = missing_field.to_string();
    let enrollment = json!({"enrollment": {
        "user": login_json()["user"],
        "course": {"course_key": "course-v1:edX+DemoX+Demo_Course", "display_name": "Demo",
                   "start": null, "end": null},
        "mode": "audit", "is_active": true, "creation_date": "2024-05-01T12:00:00Z",
        "created_by": null,
    }})
    .to_string();
    let cases: Vec<(&str, Vec<&str>, Vec<&str>)> = vec![
        (
            "not JSON",
            vec!["--event-type", LOGIN, "--data", "{\"user\": "],
            vec!["not valid JSON", LOGIN],
        ),
        (
            "unknown event type",
            vec![
                "--event-type",
                "org.example.no.such.thing.v1",
                "--data",
                &good,
            ],
            vec!["unknown event type `org.example.no.such.thing.v1`", LOGIN],
        ),
        (
            "JSON of the wrong shape",
            vec!["--event-type", LOGIN, "--data", &missing_field],
            vec![LOGIN, "is_active", "nothing was sent"],
        ),
        (
            "missing key path",
            vec![
                "--event-type",
                LOGIN,
                "--key-field",
                "user.pii.nope",
                "--data",
                &good,
            ],
            vec!["user.pii.nope", "has no field `nope`", LOGIN],
        ),
        (
            "key path to a record",
            vec![
                "--event-type",
                LOGIN,
                "--key-field",
                "user.pii",
                "--data",
                &good,
            ],
            vec!["user.pii", "record", LOGIN],
        ),
        (
            "key path to an empty optional field",
            vec![
                "--event-type",
                ENROLLMENT,
                "--key-field",
                "enrollment.created_by.id",
                "--data",
                &enrollment,
            ],
            vec!["enrollment.created_by.id", "no value there", ENROLLMENT],
        ),
    ];
    for (case, args, expected) in &cases {
        let run = stack.produce_event(args, None).await;
        assert_eq!(run.code, Some(2), "{case}: {run:?}");
        for text in expected {
            assert!(
                run.stderr.contains(text),
                "{case}: `{text}` not in {:?}",
                run.stderr
            );
        }
        assert!(run.stdout.is_empty(), "{case}: {run:?}");
    }

    let records = read_topic(
        stack.broker.bootstrap_servers(),
        &full_topic,
        1,
        Duration::from_secs(3),
    )
    .expect("read");
    assert!(records.is_empty(), "nothing was sent: {records:?}");
    let subjects = stack.registry_client().subjects().await.expect("subjects");
    assert!(subjects.is_empty(), "nothing was registered: {subjects:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_explains_the_flags_and_no_broker_is_needed_to_reject_input() {
    let stack = Stack::start().await;
    let run = stack.produce_event(&["--help"], None).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    for flag in [
        "--event-type",
        "--topic",
        "--key-field",
        "--data",
        "@file.json",
        "--bootstrap-servers",
    ] {
        assert!(run.stdout.contains(flag), "`{flag}` in {}", run.stdout);
    }
    // A missing --data is clap's usage error, code 2.
    let run = stack.produce_event(&["--event-type", LOGIN], None).await;
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(run.stderr.contains("--data"), "{run:?}");
}
