//! Offset resets against a real Apache Kafka broker: replay from a datetime, dry
//! runs, refusal while the group is active, and every reset mode.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use event_bus_examples::openedx::SessionLoginCompleted;
use event_bus_kafka::cli::exit_code;
use event_bus_kafka::consumer::{EventConsumer, RetryPolicy, Shutdown, StatsSnapshot};
use event_bus_kafka::prelude::*;
use event_bus_kafka::replay::{
    self, OffsetAdmin, ReplayError, ResetNote, ResetTarget, ResumeToken,
};
use event_bus_testkit::topics::unique_topic;
use event_bus_tests::stack::{login, Stack, WAIT};
use rdkafka::producer::{FutureProducer, FutureRecord};

/// The stack of these tests: producers are "replay-test", one attempt per event.
async fn start_stack() -> Stack {
    Stack::start("r", "replay")
        .await
        .with_service_name("replay-test")
        .with_retry(RetryPolicy {
            max_attempts: 1,
            initial_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(10),
            max_elapsed: Duration::from_secs(5),
        })
}

/// A bus whose one receiver records the user id of every event, in order.
fn recording_bus() -> (EventBus, Arc<Mutex<Vec<i64>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    let mut bus = EventBus::new();
    bus.connect_fn("recorder", move |event: &SessionLoginCompleted, _| {
        sink.lock().expect("lock").push(event.user.id);
        Ok(())
    })
    .expect("connect");
    (bus, seen)
}

/// Runs a consumer until `done` holds for what it recorded (or WAIT passes).
async fn consume_until(stack: &Stack, done: impl Fn(&[i64]) -> bool) -> (Vec<i64>, StatsSnapshot) {
    let (bus, seen) = recording_bus();
    let consumer = EventConsumer::new(stack.consumer_config(), Arc::new(bus)).expect("consumer");
    let (trigger, shutdown) = Shutdown::new();
    let task = tokio::spawn(consumer.run(shutdown));
    let started = Instant::now();
    while !done(&seen.lock().expect("lock")) && started.elapsed() < WAIT {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    trigger.trigger();
    let stats = task.await.expect("task").expect("loop ends cleanly");
    let seen = seen.lock().expect("lock").clone();
    (seen, stats)
}

#[tokio::test]
async fn a_reset_to_a_datetime_replays_the_events_from_then_on_in_order() {
    let stack = start_stack().await;
    let producer = stack.producer();
    for n in 0..50 {
        producer.send(&login(n)).await.expect("sent");
    }
    // Let the clock move past the first half's timestamps.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let middle = chrono::Utc::now();
    tokio::time::sleep(Duration::from_millis(50)).await;
    for n in 50..100 {
        producer.send(&login(n)).await.expect("sent");
    }

    let (first, _) = consume_until(&stack, |seen| seen.len() >= 100).await;
    assert_eq!(first, (0..100).collect::<Vec<_>>(), "all 100, in order");
    assert_eq!(stack.committed_offsets().await, vec![Some(100)]);

    let time = middle.to_rfc3339();
    let (result, out) = stack
        .cli(&[
            "offsets",
            "reset",
            "--group",
            &stack.group,
            "--topic",
            &stack.topic,
            "--to-datetime",
            &time,
            "--execute",
        ])
        .await;
    result.expect("reset");
    assert!(out.contains("Committed the new offsets"), "{out}");
    assert_eq!(
        stack.committed_offsets().await,
        vec![Some(50)],
        "the first record at or after the time"
    );

    let (again, _) = consume_until(&stack, |seen| seen.last() == Some(&99)).await;
    assert_eq!(
        again,
        (50..100).collect::<Vec<_>>(),
        "the events from the time on, in order"
    );
}

#[tokio::test]
async fn a_dry_run_changes_nothing_and_prints_the_plan() {
    let stack = start_stack().await;
    let producer = stack.producer();
    for n in 0..5 {
        producer.send(&login(n)).await.expect("sent");
    }
    consume_until(&stack, |seen| seen.len() >= 5).await;
    assert_eq!(stack.committed_offsets().await, vec![Some(5)]);

    let (result, out) = stack
        .cli(&[
            "offsets",
            "reset",
            "--group",
            &stack.group,
            "--topic",
            &stack.topic,
            "--to-earliest",
        ])
        .await;
    result.expect("dry run");
    assert!(out.contains("Dry run: nothing changed"), "{out}");
    assert!(out.contains("-5"), "the plan shows the change: {out}");
    assert_eq!(
        stack.committed_offsets().await,
        vec![Some(5)],
        "nothing committed"
    );

    let (result, out) = stack
        .cli(&[
            "--output",
            "json",
            "offsets",
            "reset",
            "--group",
            &stack.group,
            "--topic",
            &stack.topic,
            "--to-earliest",
        ])
        .await;
    result.expect("dry run");
    let plan: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(plan["executed"], false);
    assert_eq!(plan["partitions"][0]["current"], 5);
    assert_eq!(plan["partitions"][0]["new"], 0);
    assert_eq!(
        stack.committed_offsets().await,
        vec![Some(5)],
        "nothing committed"
    );
}

#[tokio::test]
async fn a_reset_is_refused_while_the_group_has_active_members() {
    let stack = start_stack().await;
    stack.producer().send(&login(1)).await.expect("sent");
    let (bus, seen) = recording_bus();
    let consumer = EventConsumer::new(stack.consumer_config(), Arc::new(bus)).expect("consumer");
    let (trigger, shutdown) = Shutdown::new();
    let task = tokio::spawn(consumer.run(shutdown));
    let started = Instant::now();
    while seen.lock().expect("lock").is_empty() && started.elapsed() < WAIT {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        seen.lock().expect("lock").len(),
        1,
        "the consumer is in the group"
    );

    let (result, out) = stack
        .cli(&[
            "offsets",
            "reset",
            "--group",
            &stack.group,
            "--topic",
            &stack.topic,
            "--to-earliest",
            "--execute",
        ])
        .await;
    let err = result.expect_err("refused");
    assert_eq!(err.exit_code(), exit_code::CHECK_FAILED, "{err}");
    let message = err.to_string();
    assert!(message.contains("active member"), "{message}");
    assert!(message.contains("stop every consumer"), "{message}");
    assert!(!out.contains("Committed"), "{out}");
    let direct = replay::reset_group(
        &stack.kafka(),
        &stack.group,
        std::slice::from_ref(&stack.topic),
        &ResetTarget::Earliest,
    )
    .await
    .expect_err("refused");
    // Refused by the SDK's membership check, or else by the broker itself.
    assert!(
        matches!(
            direct,
            ReplayError::GroupActive { .. } | ReplayError::CommitRefused { .. }
        ),
        "{direct}"
    );

    trigger.trigger();
    task.await.expect("task").expect("clean stop");
    assert_eq!(
        stack.committed_offsets().await,
        vec![Some(1)],
        "the refused reset changed nothing"
    );
    // Once the consumer left, the same reset goes through.
    let (result, _) = stack
        .cli(&[
            "offsets",
            "reset",
            "--group",
            &stack.group,
            "--topic",
            &stack.topic,
            "--to-earliest",
            "--execute",
        ])
        .await;
    result.expect("reset after the consumer stopped");
    assert_eq!(stack.committed_offsets().await, vec![Some(0)]);
}

/// Two partitions with records one second apart, one record per batch.
struct TimedTopic {
    stack: Stack,
    topic: String,
    base: i64,
}

impl TimedTopic {
    const COUNTS: [i64; 2] = [10, 6];

    async fn start() -> Self {
        let stack = start_stack().await;
        let topic = unique_topic("modes");
        stack.broker.create_topic(&topic, 2).await.expect("topic");
        let producer: FutureProducer = stack.broker.producer_config().create().expect("producer");
        let base = 1_700_000_000_000;
        for (partition, count) in Self::COUNTS.iter().enumerate() {
            for i in 0..*count {
                let value = format!("p{partition}-{i}");
                producer
                    .send(
                        FutureRecord::<(), str>::to(&topic)
                            .partition(partition as i32)
                            .payload(&value)
                            .timestamp(base + i * 1_000),
                        Duration::from_secs(10),
                    )
                    .await
                    .map_err(|(e, _)| e)
                    .expect("delivered");
            }
        }
        Self { stack, topic, base }
    }

    async fn reset(&self, target: &[&str]) -> String {
        let mut args = vec![
            "offsets",
            "reset",
            "--group",
            &self.stack.group,
            "--topic",
            &self.topic,
        ];
        args.extend_from_slice(target);
        args.push("--execute");
        let (result, out) = self.stack.cli(&args).await;
        result.unwrap_or_else(|e| panic!("reset {target:?}: {e}\n{out}"));
        out
    }

    async fn committed(&self) -> Vec<Option<i64>> {
        self.stack.committed_offsets_of(&self.topic).await
    }
}

#[tokio::test]
async fn every_reset_mode_moves_the_committed_offsets() {
    let timed = TimedTopic::start().await;
    assert_eq!(timed.committed().await, vec![None, None]);

    timed.reset(&["--to-offset", "0:7", "1:2"]).await;
    assert_eq!(
        timed.committed().await,
        vec![Some(7), Some(2)],
        "--to-offset"
    );

    let out = timed.reset(&["--shift-by", "-3"]).await;
    assert_eq!(
        timed.committed().await,
        vec![Some(4), Some(0)],
        "--shift-by -3 (partition 1 clamped)"
    );
    assert!(
        out.contains("before the earliest"),
        "the clamp is explained: {out}"
    );

    timed.reset(&["--shift-by", "2"]).await;
    assert_eq!(
        timed.committed().await,
        vec![Some(6), Some(2)],
        "--shift-by 2"
    );

    timed.reset(&["--to-latest"]).await;
    assert_eq!(
        timed.committed().await,
        vec![Some(10), Some(6)],
        "--to-latest"
    );

    timed.reset(&["--to-earliest"]).await;
    assert_eq!(
        timed.committed().await,
        vec![Some(0), Some(0)],
        "--to-earliest"
    );

    timed.reset(&["--to-offset", "1:99"]).await;
    assert_eq!(
        timed.committed().await,
        vec![Some(0), Some(6)],
        "--to-offset clamps; partition 0 stays"
    );

    let time = chrono::DateTime::from_timestamp_millis(timed.base + 4_500).expect("time");
    timed.reset(&["--to-datetime", &time.to_rfc3339()]).await;
    assert_eq!(
        timed.committed().await,
        vec![Some(5), Some(5)],
        "--to-datetime: the first record at or after base + 4.5 s"
    );

    let later = chrono::DateTime::from_timestamp_millis(timed.base + 100_000).expect("time");
    let out = timed.reset(&["--to-datetime", &later.to_rfc3339()]).await;
    assert_eq!(
        timed.committed().await,
        vec![Some(10), Some(6)],
        "no record since: the end"
    );
    assert!(out.contains("no record at or after that time"), "{out}");

    let token = ResumeToken::from_timestamps([(timed.topic.clone(), 0, timed.base + 2_000)]);
    let out = timed.reset(&["--to-token", &token.to_string()]).await;
    assert_eq!(
        timed.committed().await,
        vec![Some(2), Some(6)],
        "--to-token: partition 0 at the token's time, partition 1 (not in the token) stays"
    );
    assert!(out.contains("not in the token"), "{out}");
}

#[tokio::test]
async fn the_library_plans_and_applies_the_same_resets() {
    let timed = TimedTopic::start().await;
    let admin = OffsetAdmin::new(&timed.stack.kafka(), &timed.stack.group).expect("admin");
    let topics = vec![timed.topic.clone()];

    let err = admin
        .plan(&topics, &ResetTarget::ShiftBy(-1))
        .await
        .expect_err("nothing to shift");
    assert!(matches!(err, ReplayError::NothingToShift { .. }), "{err}");
    let err = admin
        .plan(
            &topics,
            &ResetTarget::Offsets([(5, 1)].into_iter().collect()),
        )
        .await
        .expect_err("no partition 5");
    assert!(
        matches!(
            err,
            ReplayError::UnknownPartition {
                partition: 5,
                count: 2,
                ..
            }
        ),
        "{err}"
    );
    let err = admin
        .plan(&["no-such-topic-here".to_string()], &ResetTarget::Earliest)
        .await
        .expect_err("unknown");
    assert!(matches!(err, ReplayError::UnknownTopic { .. }), "{err}");

    let plan = admin
        .plan(&topics, &ResetTarget::Latest)
        .await
        .expect("plan");
    assert_eq!(
        plan.changes().map(|(_, p, o)| (p, o)).collect::<Vec<_>>(),
        vec![(0, 10), (1, 6)]
    );
    assert_eq!(
        timed.committed().await,
        vec![None, None],
        "planning changes nothing"
    );
    admin.apply(&plan).await.expect("applied");
    assert_eq!(timed.committed().await, vec![Some(10), Some(6)]);

    let time = chrono::DateTime::from_timestamp_millis(timed.base + 1_000_000).expect("time");
    let plan =
        replay::reset_group_to_datetime(&timed.stack.kafka(), &timed.stack.group, &topics, time)
            .await
            .expect("reset");
    assert!(plan
        .partitions
        .iter()
        .all(|p| p.note == Some(ResetNote::NoRecordSince)));

    let token = ResumeToken::from_timestamps([(timed.topic.clone(), 1, timed.base)]);
    let plan = replay::reset_group_to_token(&timed.stack.kafka(), &timed.stack.group, &token)
        .await
        .expect("reset");
    assert_eq!(plan.partitions[0].new, None);
    assert_eq!(plan.partitions[1].new, Some(0));
    assert_eq!(timed.committed().await, vec![Some(10), Some(0)]);
}
