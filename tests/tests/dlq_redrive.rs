//! `event-bus dlq show|redrive` end to end: a receiver fails, the record lands in the
//! dead-letter topic, the receiver is fixed, the record is redriven (only to the
//! receivers that failed, or to all), and consumed again.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use event_bus_examples::openedx::SessionLoginCompleted;
use event_bus_kafka::cli::exit_code;
use event_bus_kafka::consumer::dlq::headers as dlq;
use event_bus_kafka::consumer::{EventConsumer, RetryPolicy, Shutdown, StatsSnapshot};
use event_bus_kafka::prelude::*;
use event_bus_testkit::records::read_topic;
use event_bus_testkit::topics::unique_group;
use event_bus_tests::stack::{login, Stack, WAIT};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::message::{Headers, Message, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};

/// The stack of these tests: two attempts per event, 10–20 ms apart.
async fn start_stack() -> Stack {
    Stack::start("redrive", "redrive")
        .await
        .with_retry(RetryPolicy {
            max_attempts: 2,
            initial_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(20),
            max_elapsed: Duration::from_secs(10),
        })
}

/// Runs a consumer with receivers `a` and `b` (b fails unless `b_works`) until
/// `done` holds for its stats; returns how often each ran.
async fn consume(
    stack: &Stack,
    b_works: bool,
    done: impl Fn(&StatsSnapshot) -> bool,
) -> (usize, usize) {
    consume_in(stack, &stack.group, b_works, done).await
}

/// [`consume`] in consumer group `group`.
async fn consume_in(
    stack: &Stack,
    group: &str,
    b_works: bool,
    done: impl Fn(&StatsSnapshot) -> bool,
) -> (usize, usize) {
    let (a, b) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut bus = EventBus::new();
    let a2 = Arc::clone(&a);
    bus.connect_fn("a", move |_: &SessionLoginCompleted, _| {
        a2.fetch_add(1, Ordering::SeqCst);
        Ok(())
    })
    .expect("connect a");
    let b2 = Arc::clone(&b);
    bus.connect_fn("b", move |_: &SessionLoginCompleted, _| {
        b2.fetch_add(1, Ordering::SeqCst);
        if b_works {
            Ok(())
        } else {
            Err(ReceiverError::new("the search index is down"))
        }
    })
    .expect("connect b");
    let mut config = stack.consumer_config();
    config.group_id = group.to_owned();
    let consumer = EventConsumer::new(config, Arc::new(bus)).expect("consumer");
    let stats = consumer.stats();
    let (trigger, shutdown) = Shutdown::new();
    let task = tokio::spawn(consumer.run(shutdown));
    let started = Instant::now();
    while !done(&stats.snapshot()) && started.elapsed() < WAIT {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    trigger.trigger();
    task.await.expect("task").expect("clean stop");
    (a.load(Ordering::SeqCst), b.load(Ordering::SeqCst))
}

/// The records of `topic`, expecting `count` (a short wait beyond that).
fn records(stack: &Stack, topic: &str, count: usize) -> Vec<OwnedMessage> {
    read_topic(
        stack.broker.bootstrap_servers(),
        topic,
        count + 1,
        Duration::from_secs(3),
    )
    .expect("read")
}

fn header(message: &OwnedMessage, name: &str) -> Option<String> {
    message.headers().and_then(|h| {
        h.iter()
            .find(|x| x.key == name)
            .and_then(|x| x.value.map(|v| String::from_utf8_lossy(v).into_owned()))
    })
}

#[tokio::test]
async fn dead_letters_are_shown_and_redriven_to_the_failed_receivers_only_or_to_all() {
    let stack = start_stack().await;
    let producer = stack.producer();
    let ids: Vec<String> = {
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
        ids
    };

    // b always fails: both events go to the DLQ after a ran.
    let (a, b) = consume(&stack, false, |s| s.records_dead_lettered >= 2).await;
    assert_eq!(
        (a, b),
        (2, 4),
        "a ran once per event, b twice per event (two tries)"
    );

    // show: text and JSON.
    let (result, out) = stack
        .cli(&["dlq", "show", "--topic", &stack.dlq_topic])
        .await;
    result.expect("show");
    assert!(out.contains("receiver_failed"), "{out}");
    assert!(out.contains("receivers: b"), "{out}");
    assert!(out.contains("the search index is down"), "{out}");
    assert!(out.contains(&ids[0]), "{out}");
    assert!(out.contains("2 dead letter(s)"), "{out}");
    let (result, out) = stack
        .cli(&[
            "--output",
            "json",
            "dlq",
            "show",
            "--topic",
            &stack.dlq_topic,
        ])
        .await;
    result.expect("show");
    let shown: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(shown["count"], 2);
    let first = &shown["records"][0];
    assert_eq!(first["original"]["topic"], stack.topic.as_str());
    assert_eq!(first["original"]["offset"], 0);
    assert_eq!(first["failed_receivers"], serde_json::json!(["b"]));
    assert_eq!(first["attempts"], 2);
    assert_eq!(first["consumer_group"], stack.group.as_str());
    assert_eq!(first["ce_id"], ids[0].as_str());
    assert_eq!(first["headers"][dlq::ERROR_KIND], "receiver_failed");

    // Dry run: the plan, nothing sent.
    let (result, out) = stack
        .cli(&[
            "dlq",
            "redrive",
            "--topic",
            &stack.dlq_topic,
            "--receivers-only",
        ])
        .await;
    result.expect("dry run");
    assert!(out.contains("Dry run: nothing was sent"), "{out}");
    assert!(out.contains(&format!("→ {}", stack.topic)), "{out}");
    assert!(out.contains("receivers: b"), "{out}");
    assert_eq!(
        records(&stack, &stack.topic, 2).len(),
        2,
        "nothing republished"
    );

    // b is fixed; redrive to b only.
    let (result, out) = stack
        .cli(&[
            "--output",
            "json",
            "dlq",
            "redrive",
            "--topic",
            &stack.dlq_topic,
            "--receivers-only",
            "--execute",
        ])
        .await;
    result.expect("redrive");
    let report: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(report["redriven"], 2);
    assert_eq!(report["skipped"], 0);
    assert_eq!(
        report["records"][0]["redrive_receivers"],
        serde_json::json!(["b"])
    );
    assert_eq!(report["records"][0]["delivered"]["offset"], 2);

    let on_topic = records(&stack, &stack.topic, 4);
    assert_eq!(on_topic.len(), 4);
    for (original, redriven) in on_topic[..2].iter().zip(&on_topic[2..]) {
        assert_eq!(redriven.key(), original.key(), "key kept");
        assert_eq!(redriven.payload(), original.payload(), "value kept");
        assert_eq!(
            header(redriven, "ce_id"),
            header(original, "ce_id"),
            "original headers kept"
        );
        assert_eq!(
            header(redriven, dlq::REDRIVE_RECEIVERS).as_deref(),
            Some("b")
        );
        let names: Vec<String> = redriven
            .headers()
            .map(|h| h.iter().map(|x| x.key.to_owned()).collect())
            .unwrap_or_default();
        assert!(
            !names
                .iter()
                .any(|n| n.starts_with(dlq::PREFIX) && n != dlq::REDRIVE_GROUP),
            "no dlq_* headers of the failure, only the redrive's group mark: {names:?}"
        );
    }

    let (a, b) = consume(&stack, true, |s| s.records_handled >= 2).await;
    assert_eq!((a, b), (0, 2), "only b ran for the redriven events");
    assert_eq!(
        records(&stack, &stack.dlq_topic, 2).len(),
        2,
        "nothing new in the DLQ"
    );

    // A redrive without --receivers-only runs every receiver.
    let (result, out) = stack
        .cli(&["dlq", "redrive", "--topic", &stack.dlq_topic, "--execute"])
        .await;
    result.expect("redrive");
    assert!(out.contains("Redrove 2 record(s)"), "{out}");
    let on_topic = records(&stack, &stack.topic, 6);
    assert_eq!(on_topic.len(), 6);
    assert!(on_topic[4..]
        .iter()
        .all(|m| header(m, dlq::REDRIVE_RECEIVERS).is_none()));
    let (a, b) = consume(&stack, true, |s| s.records_handled >= 2).await;
    assert_eq!((a, b), (2, 2), "every receiver ran");
}

#[tokio::test]
async fn records_without_an_original_topic_are_reported_not_redriven() {
    let stack = start_stack().await;
    let raw: FutureProducer = stack.broker.producer_config().create().expect("producer");
    raw.send(
        FutureRecord::<str, str>::to(&stack.dlq_topic)
            .key("k")
            .payload("written by hand"),
        Duration::from_secs(10),
    )
    .await
    .map_err(|(e, _)| e)
    .expect("sent");

    let (result, out) = stack
        .cli(&["dlq", "redrive", "--topic", &stack.dlq_topic, "--execute"])
        .await;
    let err = result.expect_err("nothing to redrive it to");
    assert_eq!(err.exit_code(), exit_code::CHECK_FAILED, "{err}");
    assert!(err.to_string().contains("dlq_original_topic"), "{err}");
    assert!(out.contains("SKIPPED"), "{out}");

    let (result, out) = stack
        .cli(&["dlq", "show", "--topic", &stack.dlq_topic])
        .await;
    result.expect("show");
    assert!(out.contains("from ?[?]@?"), "{out}");

    let (result, _) = stack
        .cli(&["dlq", "show", "--topic", "no-such-dlq-topic-here"])
        .await;
    let err = result.expect_err("unknown topic");
    assert_eq!(err.exit_code(), exit_code::USAGE);
}

#[tokio::test]
async fn a_stub_without_its_value_is_not_redriven_as_a_tombstone() {
    let stack = start_stack().await;
    let raw: FutureProducer = stack.broker.producer_config().create().expect("producer");
    // A stub as the consumer writes it for a record too large for the DLQ topic (no
    // value), then a whole dead letter.
    for (id, value) in [("stub", None), ("whole", Some("v"))] {
        let mut headers = OwnedHeaders::new()
            .insert(Header {
                key: "ce_id",
                value: Some(id),
            })
            .insert(Header {
                key: dlq::ORIGINAL_TOPIC,
                value: Some(stack.topic.as_str()),
            })
            .insert(Header {
                key: dlq::ORIGINAL_PARTITION,
                value: Some("0"),
            })
            .insert(Header {
                key: dlq::ORIGINAL_OFFSET,
                value: Some("7"),
            });
        if value.is_none() {
            headers = headers
                .insert(Header {
                    key: dlq::VALUE_DROPPED,
                    value: Some("true"),
                })
                .insert(Header {
                    key: dlq::ORIGINAL_VALUE_SIZE,
                    value: Some("2000000"),
                });
        }
        let mut record = FutureRecord::<str, str>::to(&stack.dlq_topic)
            .key("k")
            .headers(headers);
        if let Some(value) = value {
            record = record.payload(value);
        }
        raw.send(record, Duration::from_secs(10))
            .await
            .map_err(|(e, _)| e)
            .expect("sent");
    }
    let hint = format!("value dropped; copy it from {}[0]@7", stack.topic);

    let (result, out) = stack
        .cli(&["dlq", "redrive", "--topic", &stack.dlq_topic])
        .await;
    let err = result.expect_err("the stub is not redriven");
    assert_eq!(err.exit_code(), exit_code::CHECK_FAILED, "{err}");
    assert!(out.contains(&format!("SKIPPED: {hint}")), "{out}");
    assert!(out.contains("republish 1 record(s)"), "{out}");

    let (result, out) = stack
        .cli(&[
            "--output",
            "json",
            "dlq",
            "redrive",
            "--topic",
            &stack.dlq_topic,
            "--execute",
        ])
        .await;
    let err = result.expect_err("the stub is not redriven");
    assert_eq!(err.exit_code(), exit_code::CHECK_FAILED, "{err}");
    let report: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(report["redriven"], 1, "{report}");
    assert_eq!(report["skipped"], 1, "{report}");
    assert_eq!(report["records"][0]["skipped"], hint.as_str(), "{report}");
    let on_topic = records(&stack, &stack.topic, 1);
    assert_eq!(on_topic.len(), 1, "only the whole dead letter");
    assert_eq!(header(&on_topic[0], "ce_id").as_deref(), Some("whole"));
    assert_eq!(on_topic[0].payload(), Some("v".as_bytes()), "no tombstone");
}

#[tokio::test]
async fn redrive_marks_scope_the_receivers_to_the_group_that_failed() {
    let stack = start_stack().await;
    stack.producer().send(&login(1)).await.expect("sent");
    let (a, b) = consume(&stack, false, |s| s.records_dead_lettered >= 1).await;
    assert_eq!((a, b), (1, 2));

    // The dry run names the groups that read the topic again: one runs now.
    let listed = unique_group("listed");
    let mut config = stack.consumer_config();
    config.group_id = listed.clone();
    let mut bus = EventBus::new();
    bus.connect_fn("c", |_: &SessionLoginCompleted, _| Ok(()))
        .expect("connect");
    let running = EventConsumer::new(config, Arc::new(bus)).expect("consumer");
    let running_stats = running.stats();
    let (stop_running, shutdown) = Shutdown::new();
    let running = tokio::spawn(running.run(shutdown));
    let started = Instant::now();
    while running_stats.snapshot().assignments == 0 && started.elapsed() < WAIT {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (result, out) = stack
        .cli(&[
            "dlq",
            "redrive",
            "--topic",
            &stack.dlq_topic,
            "--receivers-only",
        ])
        .await;
    result.expect("dry run");
    assert!(
        out.contains(&format!("receivers: b in group {}", stack.group)),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "Read again by every group subscribed to {}: now ",
            stack.topic
        )) && out.contains(&listed),
        "{out}"
    );
    stop_running.trigger();
    running.await.expect("task").expect("clean stop");

    let (result, _) = stack
        .cli(&[
            "dlq",
            "redrive",
            "--topic",
            &stack.dlq_topic,
            "--receivers-only",
            "--execute",
        ])
        .await;
    result.expect("redrive");
    let on_topic = records(&stack, &stack.topic, 2);
    assert_eq!(
        header(&on_topic[1], dlq::REDRIVE_GROUP).as_deref(),
        Some(stack.group.as_str()),
        "the mark names the group"
    );

    // The group that failed runs only b; another group runs every receiver on both
    // the original record and the redriven one.
    let (a, b) = consume(&stack, true, |s| s.records_handled >= 1).await;
    assert_eq!((a, b), (0, 1), "only b ran in the group that failed");
    let other = unique_group("other");
    let (a, b) = consume_in(&stack, &other, true, |s| s.records_handled >= 2).await;
    assert_eq!((a, b), (2, 2), "every receiver ran in another group");
}

#[tokio::test]
async fn following_the_next_page_hints_reads_every_record_of_several_partitions_once() {
    let stack = start_stack().await;
    let topic = format!("{}.paged-dlq", stack.topic);
    stack.broker.create_topic(&topic, 3).await.expect("topic");
    let raw: FutureProducer = stack.broker.producer_config().create().expect("producer");
    // 3 records in partition 0, none in 1, 4 in 2.
    let mut all = Vec::new();
    for (partition, count) in [(0, 3), (2, 4)] {
        for n in 0..count {
            let id = format!("p{partition}-{n}");
            let headers = OwnedHeaders::new().insert(Header {
                key: "ce_id",
                value: Some(id.as_str()),
            });
            raw.send(
                FutureRecord::<str, str>::to(&topic)
                    .partition(partition)
                    .key("k")
                    .payload("v")
                    .headers(headers),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| e)
            .expect("sent");
            all.push(id);
        }
    }

    // The text output prints the exact arguments of the next page.
    let (result, out) = stack
        .cli(&["dlq", "show", "--dlq-topic", &topic, "--limit", "2"])
        .await;
    result.expect("show");
    assert!(out.contains("the same command with --start 0:2 "), "{out}");

    let mut seen = Vec::new();
    let mut starts: Vec<String> = Vec::new();
    for page in 0.. {
        assert!(page < 10, "paging does not end: {seen:?}");
        let mut argv = vec!["--output", "json", "dlq", "show", "--dlq-topic", &topic];
        argv.extend(["--limit", "2"]);
        for start in &starts {
            argv.extend(["--start", start.as_str()]);
        }
        let (result, out) = stack.cli(&argv).await;
        result.expect("show");
        let shown: serde_json::Value = serde_json::from_str(&out).expect("JSON");
        for record in shown["records"].as_array().expect("records") {
            seen.push(record["ce_id"].as_str().unwrap_or_default().to_owned());
        }
        assert!(shown["incomplete"].is_null(), "{shown}");
        let next = &shown["next_page"];
        if next.is_null() {
            break;
        }
        starts = next["start"]
            .as_array()
            .expect("starts")
            .iter()
            .map(|s| format!("{}:{}", s["partition"], s["offset"]))
            .collect();
    }
    assert_eq!(seen, all, "every record once, in partition order");

    let bad = <event_bus_kafka::cli::Cli as clap::Parser>::try_parse_from([
        "event-bus",
        "dlq",
        "show",
        "--dlq-topic",
        &topic,
        "--start",
        "0-2",
    ])
    .expect_err("not PARTITION:OFFSET");
    assert!(bad.to_string().contains("PARTITION:OFFSET"), "{bad}");
}

/// Six dead letters in partition 0, one hour apart from 2024-01-01T00:00Z, with
/// `ce_id` `id-0` … `id-5`, pointing back to the stack's topic.
async fn six_dead_letters(stack: &Stack) {
    let raw: FutureProducer = stack.broker.producer_config().create().expect("producer");
    let start = 1_704_067_200_000_i64;
    for n in 0..6 {
        let id = format!("id-{n}");
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "ce_id",
                value: Some(id.as_str()),
            })
            .insert(Header {
                key: dlq::ORIGINAL_TOPIC,
                value: Some(stack.topic.as_str()),
            })
            .insert(Header {
                key: dlq::CONSUMER_GROUP,
                value: Some(stack.group.as_str()),
            });
        raw.send(
            FutureRecord::<str, str>::to(&stack.dlq_topic)
                .partition(0)
                .key("k")
                .payload("v")
                .timestamp(start + n * 3_600_000)
                .headers(headers),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(e, _)| e)
        .expect("sent");
    }
}

/// The `ce_id`s of the records `dlq show` prints with `args`, and its next page.
async fn shown(stack: &Stack, args: &[&str]) -> (Vec<String>, serde_json::Value) {
    let mut argv = vec![
        "--output",
        "json",
        "dlq",
        "show",
        "--topic",
        &stack.dlq_topic,
    ];
    argv.extend_from_slice(args);
    let (result, out) = stack.cli(&argv).await;
    result.expect("show");
    let shown: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    let ids = shown["records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|r| r["ce_id"].as_str().unwrap_or_default().to_owned())
        .collect();
    (ids, shown["next_page"].clone())
}

#[tokio::test]
async fn show_and_redrive_select_by_offset_and_time_range_and_page() {
    let stack = start_stack().await;
    six_dead_letters(&stack).await;

    let (ids, _) = shown(
        &stack,
        &["--partition", "0", "--from-offset", "2", "--to-offset", "3"],
    )
    .await;
    assert_eq!(ids, ["id-2", "id-3"]);
    let (ids, _) = shown(
        &stack,
        &[
            "--since",
            "2024-01-01T01:00:00Z",
            "--until",
            "2024-01-01T04:00:00Z",
        ],
    )
    .await;
    assert_eq!(ids, ["id-1", "id-2", "id-3"]);

    let (ids, next) = shown(&stack, &["--limit", "2"]).await;
    assert_eq!(ids, ["id-0", "id-1"]);
    assert_eq!(
        next["start"],
        serde_json::json!([{"partition": 0, "offset": 2}])
    );
    assert_eq!(next["args"], "--start 0:2");
    let (ids, next) = shown(&stack, &["--limit", "2", "--start", "0:2"]).await;
    assert_eq!(ids, ["id-2", "id-3"]);
    assert_eq!(next["args"], "--start 0:4");
    let (ids, next) = shown(&stack, &["--limit", "2", "--start", "0:4"]).await;
    assert_eq!(ids, ["id-4", "id-5"]);
    assert!(next.is_null(), "the last page: {next}");

    let (result, _) = stack
        .cli(&[
            "dlq",
            "show",
            "--topic",
            &stack.dlq_topic,
            "--partition",
            "7",
        ])
        .await;
    let err = result.expect_err("no such partition");
    assert_eq!(err.exit_code(), exit_code::USAGE, "{err}");

    // Redrive only the records since 04:00.
    let (result, out) = stack
        .cli(&[
            "dlq",
            "redrive",
            "--topic",
            &stack.dlq_topic,
            "--since",
            "2024-01-01T04:00:00Z",
            "--execute",
        ])
        .await;
    result.expect("redrive");
    assert!(out.contains("Redrove 2 record(s)"), "{out}");
    let on_topic = records(&stack, &stack.topic, 2);
    let ids: Vec<Option<String>> = on_topic.iter().map(|m| header(m, "ce_id")).collect();
    assert_eq!(ids, [Some("id-4".to_owned()), Some("id-5".to_owned())]);
}
