//! The `consume_events` binary's flags: `--offset-time` moves the group before it
//! joins, bad flags exit with code 2, a program without receivers and a loop that
//! cannot reach its brokers exit with code 3.

use std::collections::HashSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use event_bus_core::Event;
use event_bus_examples::openedx::{SessionLoginCompleted, UserData};
use event_bus_examples::receivers::{ReceivedLog, RECEIVED_LOG_ENV};
use event_bus_kafka::prelude::*;
use event_bus_testkit::kafka::KafkaCluster;
use event_bus_testkit::registry::EmbeddedRegistry;
use event_bus_testkit::topics::{unique_group, unique_topic};
use uuid::Uuid;

const EXTRA: &str = r#"{"session.timeout.ms": "6000", "heartbeat.interval.ms": "1000"}"#;

fn command(binary: &str) -> Command {
    let mut command = Command::new(binary);
    for (name, _) in std::env::vars().filter(|(n, _)| n.starts_with("EVENT_BUS_")) {
        command.env_remove(name);
    }
    command
        .env("RUST_LOG", "warn,event_bus_kafka=info")
        // Parallel tests: a free port each, not the default 0.0.0.0:9464.
        .env("EVENT_BUS_OBSERVABILITY_ADDRESS", "127.0.0.1:0")
        .stdin(Stdio::null());
    command
}

/// Runs `command` to its end, killing it after a minute (a hang is a failure too).
async fn output(mut command: Command) -> Output {
    tokio::task::spawn_blocking(move || {
        let dir = std::env::temp_dir().join(unique_topic("cli-consume"));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let (out, err) = (dir.join("stdout"), dir.join("stderr"));
        let mut child = command
            .stdout(File::create(&out).expect("stdout file"))
            .stderr(File::create(&err).expect("stderr file"))
            .spawn()
            .expect("binary runs");
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().expect("child status") {
                break status;
            }
            if started.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                break child.wait().expect("child status");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let output = Output {
            status,
            stdout: std::fs::read(&out).unwrap_or_default(),
            stderr: std::fs::read(&err).unwrap_or_default(),
        };
        let _ = std::fs::remove_dir_all(&dir);
        output
    })
    .await
    .expect("blocking task")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn received(path: &Path) -> HashSet<Uuid> {
    ReceivedLog::read_ids(path, "audit")
}

fn login(n: i64) -> SessionLoginCompleted {
    let mut user = UserData::example();
    user.id = n;
    SessionLoginCompleted { user }
}

fn stop(child: &mut Child) -> Option<i32> {
    let pid = child.id().to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        if let Ok(Some(status)) = child.try_wait() {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offset_time_moves_the_group_to_that_time_before_consuming() {
    let broker = KafkaCluster::shared().expect("Apache Kafka (run scripts/install-test-deps)");
    let registry = EmbeddedRegistry::start().await.expect("registry");
    let prefix = unique_topic("otime");
    let group = unique_group("otime");
    let topic = format!("{prefix}-{}", SessionLoginCompleted::TOPIC);
    broker.create_topic(&topic, 2).await.expect("topic");
    let producer = Producer::new(
        ProducerConfig::new(
            KafkaConfig::new(broker.bootstrap_servers()).with_option("linger.ms", "100"),
            RegistryConfig::new(registry.url()),
        )
        .with_topic_prefix(prefix.clone()),
    )
    .expect("producer");
    producer
        .register::<SessionLoginCompleted>()
        .await
        .expect("registered");
    // Each group of six is sent at once, so records share batches: the lookup must
    // still land on the first record at or after the time, not on its batch.
    let send_six = |from: i64| {
        let producer = &producer;
        async move {
            let events: Vec<_> = (from..from + 6).map(login).collect();
            futures::future::join_all(events.iter().map(|e| producer.send(e)))
                .await
                .into_iter()
                .map(|sent| sent.expect("sent").event_id)
                .collect::<HashSet<_>>()
        }
    };
    let before = send_six(0).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let time = chrono::Utc::now();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let after = send_six(6).await;

    let dir = std::env::temp_dir().join(unique_topic("otime"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let log: PathBuf = dir.join("received.log");
    let out = File::create(dir.join("stdout.log")).expect("stdout file");
    let err = File::create(dir.join("stderr.log")).expect("stderr file");
    let mut consumer = command(env!("CARGO_BIN_EXE_consume_events"))
        .args([
            "--topic",
            SessionLoginCompleted::TOPIC,
            "--group",
            &group,
            "--extra",
            EXTRA,
        ])
        .args(["--offset-time", &time.to_rfc3339()])
        .env(
            "EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS",
            broker.bootstrap_servers(),
        )
        .env("EVENT_BUS_SCHEMA_REGISTRY_URL", registry.url())
        .env("EVENT_BUS_TOPIC_PREFIX", &prefix)
        .env(RECEIVED_LOG_ENV, &log)
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("consume_events starts");

    let deadline = Instant::now() + Duration::from_secs(45);
    while !after.is_subset(&received(&log)) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let exit = tokio::task::spawn_blocking(move || stop(&mut consumer))
        .await
        .expect("stop task");
    let seen = received(&log);
    let stdout = std::fs::read_to_string(dir.join("stdout.log")).unwrap_or_default();
    let stderr = std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default();
    assert!(
        after.is_subset(&seen),
        "every event after the time was consumed; stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        seen.is_disjoint(&before),
        "no event before the time was consumed"
    );
    assert_eq!(exit, Some(0), "stderr:\n{stderr}");
    assert!(
        stdout.contains(&format!("group {group} moved to")),
        "{stdout}"
    );
    assert!(stdout.contains(&format!("{topic}[0] offset")), "{stdout}");
    assert!(stdout.contains("stopped: "), "{stdout}");
    // The command hands back a resume token covering what it finished.
    let token_text = stdout
        .lines()
        .find_map(|l| l.strip_prefix("resume token: "))
        .unwrap_or_else(|| panic!("no resume token in:\n{stdout}"));
    let token =
        event_bus_kafka::replay::ResumeToken::parse(token_text.trim()).expect("token parses");
    assert!(token.to_string().len() > 10, "{token}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_flags_exit_2_with_a_clear_message() {
    let base = [
        "--topic",
        "t",
        "--group",
        "g",
        "--bootstrap-servers",
        "127.0.0.1:1",
        "--schema-registry-url",
        "http://127.0.0.1:1",
    ];
    let cases: [(&[&str], &[&str]); 8] = [
        (&["--extra", "{\"a\": "], &["--extra is not valid JSON"]),
        (&["--extra", "[\"a\"]"], &["JSON object", "an array"]),
        (
            &["--extra", r#"{"session.timeout.ms": 6000}"#],
            &["`session.timeout.ms`", "a number", "\"6000\""],
        ),
        (
            &["--offset-time", "yesterday"],
            &["--offset-time", "RFC 3339"],
        ),
        (&["--max-in-flight", "0"], &["--max-in-flight"]),
        // Commit-on-read would lose events a receiver failed on: refused by name.
        (
            &["--extra", r#"{"enable.auto.commit": "true"}"#],
            &["enable.auto.commit", "refused", "at-least-once"],
        ),
        (
            &["--extra", r#"{"enable.auto.offset.store": "true"}"#],
            &["enable.auto.offset.store", "refused"],
        ),
        (&["--max-attempts", "0"], &["--max-attempts"]),
    ];
    for (extra_args, expected) in cases {
        let mut command = command(env!("CARGO_BIN_EXE_consume_events"));
        command.args(base).args(extra_args);
        let output = output(command).await;
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{extra_args:?}: {stderr}");
        for needle in expected {
            assert!(
                stderr.contains(needle),
                "{extra_args:?}: `{needle}` not in {stderr}"
            );
        }
    }
    // No group anywhere: the message names the variable and the flag.
    let mut command = command(env!("CARGO_BIN_EXE_consume_events"));
    command.args(["--topic", "t", "--bootstrap-servers", "127.0.0.1:1"]);
    command.args(["--schema-registry-url", "http://127.0.0.1:1"]);
    let output = output(command).await;
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("EVENT_BUS_CONSUMER_GROUP") && stderr.contains("--group"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_explains_every_flag() {
    let mut command = command(env!("CARGO_BIN_EXE_consume_events"));
    command.arg("--help");
    let output = output(command).await;
    let help = text(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{help}");
    for flag in [
        "--topic",
        "--group",
        "--offset-time",
        "--dlq-topic",
        "--max-in-flight",
        "--resume-token",
        "--max-attempts",
        "--max-poll-errors",
        "--extra",
        "--bootstrap-servers",
        "--schema-registry-url",
    ] {
        assert!(help.contains(flag), "`{flag}` in {help}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_program_without_receivers_exits_3_and_says_why() {
    let mut command = command(env!("CARGO_BIN_EXE_event-bus"));
    command.args(["consume-events", "--topic", "t", "--group", "g"]);
    command.args([
        "--bootstrap-servers",
        "127.0.0.1:1",
        "--schema-registry-url",
        "http://127.0.0.1:1",
    ]);
    let output = output(command).await;
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("with_bus"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_brokers_end_the_loop_with_exit_code_3() {
    let port = event_bus_testkit::ports::free_loopback_port().expect("free port");
    let mut command = command(env!("CARGO_BIN_EXE_consume_events"));
    command.args(["--topic", "t", "--group", "g", "--max-poll-errors", "2"]);
    command.args(["--bootstrap-servers", &format!("127.0.0.1:{port}")]);
    command.args(["--schema-registry-url", "http://127.0.0.1:1"]);
    command.args(["--extra", r#"{"reconnect.backoff.max.ms": "200"}"#]);
    let output = output(command).await;
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("polling failed 2 times in a row"),
        "{stderr}"
    );
}
