//! The example application's `event-bus` binary, `offsets` subcommand: help, usage
//! errors, and the refusal to reset an active group, as a person sees them (stdout,
//! stderr, exit code).

use std::process::Command;
use std::time::{Duration, Instant};

use event_bus_testkit::kafka::KafkaCluster;
use event_bus_testkit::topics::{unique_group, unique_topic};
use rdkafka::consumer::{BaseConsumer, Consumer};

/// What one run of the binary did.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn event_bus(args: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_event-bus"))
        .args(args)
        .env_remove("EVENT_BUS_TOPIC_PREFIX")
        .env_remove("EVENT_BUS_OUTPUT")
        .output()
        .expect("run event-bus");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[test]
fn reset_help_lists_every_target_and_the_exit_codes() {
    let run = event_bus(&["offsets", "reset", "--help"]);
    assert_eq!(run.code, Some(0), "{run:?}");
    for flag in [
        "--to-datetime",
        "--to-offset",
        "--to-earliest",
        "--to-latest",
        "--shift-by",
        "--to-token",
        "--execute",
        "Exit codes",
    ] {
        assert!(run.stdout.contains(flag), "{flag} missing:\n{}", run.stdout);
    }
    let run = event_bus(&["offsets", "reset", "--group", "g", "--topic", "t"]);
    assert_eq!(run.code, Some(2), "a target is required: {run:?}");
    let run = event_bus(&[
        "offsets",
        "reset",
        "--group",
        "g",
        "--topic",
        "t",
        "--to-earliest",
        "--to-latest",
    ]);
    assert_eq!(run.code, Some(2), "only one target: {run:?}");
}

#[tokio::test]
async fn the_binary_refuses_to_reset_an_active_group_with_exit_code_1() {
    let broker = KafkaCluster::shared().expect("Apache Kafka (run scripts/install-test-deps)");
    let topic = unique_topic("bin-offsets");
    broker.create_topic(&topic, 1).await.expect("topic");
    let group = unique_group("bin-offsets");
    let bootstrap = broker.bootstrap_servers().to_owned();

    let run = event_bus(&[
        "offsets",
        "show",
        "--group",
        &group,
        "--topic",
        "no-such-topic-for-the-binary",
        "--bootstrap-servers",
        &bootstrap,
    ]);
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(run.stderr.contains("does not exist"), "{run:?}");

    // A plain consumer joins the group and stays in it.
    let member: BaseConsumer = broker.consumer_config(&group).create().expect("consumer");
    member.subscribe(&[&topic]).expect("subscribe");
    let started = Instant::now();
    while member.assignment().map(|a| a.count()).unwrap_or(0) == 0
        && started.elapsed() < Duration::from_secs(60)
    {
        let _ = member.poll(Duration::from_millis(100));
    }
    assert_eq!(
        member.assignment().map(|a| a.count()).unwrap_or(0),
        1,
        "joined"
    );

    let run = event_bus(&[
        "offsets",
        "reset",
        "--group",
        &group,
        "--topic",
        &topic,
        "--to-earliest",
        "--execute",
        "--bootstrap-servers",
        &bootstrap,
    ]);
    assert_eq!(run.code, Some(1), "refused: {run:?}");
    assert!(run.stderr.contains("active member"), "{run:?}");
    assert!(run.stderr.contains("stop every consumer"), "{run:?}");
    assert!(!run.stdout.contains("Committed"), "{run:?}");
    drop(member);
}
