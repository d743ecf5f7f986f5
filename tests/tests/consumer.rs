//! The consumer loop against a real Apache Kafka broker and the embedded registry.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use event_bus_examples::openedx::SessionLoginCompleted;
use event_bus_kafka::consumer::dlq::headers as dlq;
use event_bus_kafka::consumer::{EventConsumer, Shutdown, StatsSnapshot};
use event_bus_kafka::prelude::*;
use event_bus_kafka::registry::RegistryClient;
use event_bus_testkit::records::read_topic;
use event_bus_tests::stack::{login, Stack, WAIT};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

/// The stack of these tests: producers are "consumer-test"; the broker's and the
/// clients' size limits are their defaults.
async fn start_stack() -> Stack {
    Stack::start("c", "g")
        .await
        .with_service_name("consumer-test")
}

/// Runs `consumer` until `done` holds for its stats (or WAIT passes), then shuts it down.
async fn run_until(
    consumer: EventConsumer,
    done: impl Fn(&StatsSnapshot) -> bool,
) -> StatsSnapshot {
    let stats = consumer.stats();
    let (trigger, shutdown) = Shutdown::new();
    let task = tokio::spawn(consumer.run(shutdown));
    let started = Instant::now();
    while !done(&stats.snapshot()) && started.elapsed() < WAIT {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    trigger.trigger();
    task.await.expect("task").expect("loop ends cleanly")
}

fn counter() -> Arc<AtomicUsize> {
    Arc::new(AtomicUsize::new(0))
}

fn counting(bus: &mut EventBus, name: &str, count: &Arc<AtomicUsize>) {
    let count = Arc::clone(count);
    bus.connect_fn(name, move |_: &SessionLoginCompleted, _| {
        count.fetch_add(1, Ordering::SeqCst);
        Ok(())
    })
    .expect("connect");
}

#[tokio::test]
async fn only_the_failing_receiver_is_retried_and_the_offset_is_committed_after() {
    let stack = start_stack().await;
    stack.producer().send(&login(1)).await.expect("sent");

    let (a, b, flaky) = (counter(), counter(), counter());
    let mut bus = EventBus::new();
    counting(&mut bus, "a", &a);
    counting(&mut bus, "b", &b);
    let flaky2 = Arc::clone(&flaky);
    bus.connect_fn("flaky", move |_: &SessionLoginCompleted, ctx| {
        flaky2.fetch_add(1, Ordering::SeqCst);
        if ctx.attempt <= 2 {
            Err(ReceiverError::new("not yet"))
        } else {
            Ok(())
        }
    })
    .expect("connect");

    let consumer = EventConsumer::new(stack.consumer_config(), Arc::new(bus)).expect("consumer");
    let stats = run_until(consumer, |s| s.records_handled >= 1).await;
    assert_eq!(stats.records_handled, 1);
    assert_eq!(stats.records_dead_lettered, 0);
    assert_eq!(a.load(Ordering::SeqCst), 1, "a ran once");
    assert_eq!(b.load(Ordering::SeqCst), 1, "b ran once");
    assert_eq!(flaky.load(Ordering::SeqCst), 3, "flaky ran three times");
    assert_eq!(stack.committed(), Some(1));
    let dlq = read_topic(
        stack.broker.bootstrap_servers(),
        &format!("{}.dlq", stack.topic),
        1,
        Duration::from_secs(2),
    )
    .expect("read");
    assert!(dlq.is_empty());
}

#[tokio::test]
async fn an_always_failing_receiver_dead_letters_and_the_others_keep_flowing() {
    let stack = start_stack().await;
    let producer = stack.producer();
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(producer.send(&login(n)).await.expect("sent").event_id);
    }
    let (a, b, broken) = (counter(), counter(), counter());
    let mut bus = EventBus::new();
    counting(&mut bus, "a", &a);
    counting(&mut bus, "b", &b);
    let broken2 = Arc::clone(&broken);
    bus.connect_fn("broken", move |_: &SessionLoginCompleted, _| {
        broken2.fetch_add(1, Ordering::SeqCst);
        Err(ReceiverError::new("downstream API returns 500"))
    })
    .expect("connect");

    let consumer = EventConsumer::new(stack.consumer_config(), Arc::new(bus)).expect("consumer");
    let stats = run_until(consumer, |s| s.records_handled >= 3).await;
    assert_eq!(stats.records_dead_lettered, 3);
    assert_eq!(a.load(Ordering::SeqCst), 3);
    assert_eq!(b.load(Ordering::SeqCst), 3);
    assert_eq!(broken.load(Ordering::SeqCst), 9, "three tries per event");
    assert_eq!(stack.committed(), Some(3));

    let letters = read_topic(
        stack.broker.bootstrap_servers(),
        &format!("{}.dlq", stack.topic),
        3,
        WAIT,
    )
    .expect("read");
    assert_eq!(letters.len(), 3);
    let originals =
        read_topic(stack.broker.bootstrap_servers(), &stack.topic, 3, WAIT).expect("read");
    for (n, (letter, original)) in letters.iter().zip(&originals).enumerate() {
        assert_eq!(letter.payload(), original.payload(), "value kept");
        assert_eq!(letter.key(), original.key(), "key kept");
        let header = |name: &str| {
            letter.headers().and_then(|h| {
                h.iter()
                    .find(|x| x.key == name)
                    .and_then(|x| x.value.map(|v| String::from_utf8_lossy(v).into_owned()))
            })
        };
        assert_eq!(
            header("ce_id"),
            Some(ids[n].to_string()),
            "original headers kept"
        );
        assert_eq!(
            header(dlq::ORIGINAL_TOPIC).as_deref(),
            Some(stack.topic.as_str())
        );
        assert_eq!(header(dlq::ORIGINAL_PARTITION).as_deref(), Some("0"));
        assert_eq!(header(dlq::ORIGINAL_OFFSET), Some(n.to_string()));
        assert!(header(dlq::ORIGINAL_TIMESTAMP).is_some());
        assert_eq!(
            header(dlq::CONSUMER_GROUP).as_deref(),
            Some(stack.group.as_str())
        );
        assert_eq!(header(dlq::ERROR_KIND).as_deref(), Some("receiver_failed"));
        assert!(header(dlq::ERROR_MESSAGE)
            .unwrap_or_default()
            .contains("downstream API returns 500"));
        assert_eq!(header(dlq::FAILED_RECEIVERS).as_deref(), Some("broken"));
        assert_eq!(header(dlq::ATTEMPTS).as_deref(), Some("3"));
        assert!(header(dlq::TIME).is_some());
    }
}

async fn raw_producer(stack: &Stack) -> FutureProducer {
    stack
        .broker
        .producer_config()
        .create()
        .expect("raw producer")
}

fn valid_headers(event_type: &str) -> OwnedHeaders {
    EventMetadata::new(event_type.to_owned())
        .to_headers()
        .into_iter()
        .fold(OwnedHeaders::new(), |h, (k, v)| {
            h.insert(Header {
                key: k,
                value: Some(v.as_bytes()),
            })
        })
}

#[tokio::test]
async fn poison_records_are_dead_lettered_and_the_loop_stays_alive() {
    let stack = start_stack().await;
    // Register the type so a valid id exists, and learn it.
    let producer = stack.producer();
    let ids = producer
        .encoder()
        .register::<SessionLoginCompleted>(None)
        .await
        .expect("registered");
    let good = login(5).to_avro_datum().expect("datum");
    let framed = event_bus_core::codec::frame(ids.value_id, &good);
    let raw = raw_producer(&stack).await;
    let event_type = SessionLoginCompleted::EVENT_TYPE;
    let mut bad_magic = framed.clone();
    bad_magic[0] = 7;
    let unknown_id = event_bus_core::codec::frame(999_999, &good);
    let truncated = framed[..framed.len() - 4].to_vec();
    // Large, but within the default limits of librdkafka (message.max.bytes 1 000 000)
    // and the broker (1 048 588), for the record and for its dead letter.
    let mut garbage: Vec<u8> = (0..900_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    garbage[0] = 0xde;
    let no_id_headers = OwnedHeaders::new().insert(Header {
        key: "ce_type",
        value: Some(event_type.as_bytes()),
    });
    let poisons: Vec<(&str, Vec<u8>, OwnedHeaders)> = vec![
        ("invalid_framing", bad_magic, valid_headers(event_type)),
        ("unknown_schema_id", unknown_id, valid_headers(event_type)),
        ("undecodable_avro", truncated, valid_headers(event_type)),
        ("invalid_headers", framed.clone(), no_id_headers),
        ("invalid_framing", garbage, valid_headers(event_type)),
    ];
    for (_, value, headers) in &poisons {
        raw.send(
            FutureRecord::<[u8], [u8]>::to(&stack.topic)
                .payload(value)
                .headers(headers.clone()),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(e, _)| e)
        .expect("poison sent");
    }
    producer
        .send(&login(6))
        .await
        .expect("valid event after the poison");

    let seen = counter();
    let mut bus = EventBus::new();
    counting(&mut bus, "seen", &seen);
    let consumer = EventConsumer::new(stack.consumer_config(), Arc::new(bus)).expect("consumer");
    let stats = run_until(consumer, |s| s.records_handled >= 6).await;
    assert_eq!(stats.records_handled, 6);
    assert_eq!(stats.records_dead_lettered, 5);
    assert_eq!(
        seen.load(Ordering::SeqCst),
        1,
        "the valid event after the poison was handled"
    );
    assert_eq!(stack.committed(), Some(6));
    let letters = read_topic(
        stack.broker.bootstrap_servers(),
        &format!("{}.dlq", stack.topic),
        5,
        WAIT,
    )
    .expect("read");
    let kinds: Vec<String> = letters
        .iter()
        .map(|l| {
            l.headers()
                .and_then(|h| {
                    h.iter()
                        .find(|x| x.key == dlq::ERROR_KIND)
                        .and_then(|x| x.value.map(|v| String::from_utf8_lossy(v).into_owned()))
                })
                .unwrap_or_default()
        })
        .collect();
    let expected: Vec<String> = poisons
        .iter()
        .map(|(kind, _, _)| kind.to_string())
        .collect();
    assert_eq!(kinds, expected);
    assert_eq!(
        letters[4].payload().map(<[u8]>::len),
        Some(900_000),
        "the garbage is kept whole"
    );
}

#[tokio::test]
async fn unknown_event_types_are_skipped_and_committed() {
    let stack = start_stack().await;
    let registry = RegistryClient::new(RegistryConfig::new(stack.registry.url())).expect("client");
    let id = registry.register("other", r#""string""#).await.expect("id");
    let raw = raw_producer(&stack).await;
    let value = event_bus_core::codec::frame(id, &[2, b'x']);
    raw.send(
        FutureRecord::<[u8], [u8]>::to(&stack.topic)
            .payload(&value)
            .headers(valid_headers("org.example.other.thing.happened.v1")),
        Duration::from_secs(10),
    )
    .await
    .map_err(|(e, _)| e)
    .expect("sent");
    let seen = counter();
    let mut bus = EventBus::new();
    counting(&mut bus, "seen", &seen);
    let consumer = EventConsumer::new(stack.consumer_config(), Arc::new(bus)).expect("consumer");
    let stats = run_until(consumer, |s| s.records_handled >= 1).await;
    assert_eq!(stats.records_skipped, 1);
    assert_eq!(stats.records_dead_lettered, 0);
    assert_eq!(seen.load(Ordering::SeqCst), 0);
    assert_eq!(stack.committed(), Some(1));
}

#[tokio::test]
async fn a_redriven_record_runs_only_the_named_receivers() {
    let stack = start_stack().await;
    let producer = stack.producer();
    let record = producer
        .encoder()
        .encode(&login(9), None, None)
        .await
        .expect("encoded");
    let mut headers = record.headers.clone();
    headers.push((dlq::REDRIVE_RECEIVERS.to_owned(), b"b".to_vec()));
    headers.push((
        dlq::REDRIVE_GROUP.to_owned(),
        stack.group.clone().into_bytes(),
    ));
    headers.push((dlq::ERROR_KIND.to_owned(), b"receiver_failed".to_vec()));
    let raw = raw_producer(&stack).await;
    let owned = headers.iter().fold(OwnedHeaders::new(), |h, (k, v)| {
        h.insert(Header {
            key: k,
            value: Some(v.as_slice()),
        })
    });
    raw.send(
        FutureRecord::<[u8], [u8]>::to(&stack.topic)
            .payload(&record.value)
            .headers(owned),
        Duration::from_secs(10),
    )
    .await
    .map_err(|(e, _)| e)
    .expect("sent");
    let (a, b) = (counter(), counter());
    let mut bus = EventBus::new();
    counting(&mut bus, "a", &a);
    counting(&mut bus, "b", &b);
    let consumer = EventConsumer::new(stack.consumer_config(), Arc::new(bus)).expect("consumer");
    run_until(consumer, |s| s.records_handled >= 1).await;
    assert_eq!(a.load(Ordering::SeqCst), 0);
    assert_eq!(b.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn key_ordered_concurrency_keeps_each_key_in_order_and_commits_contiguously() {
    use std::collections::HashMap;
    use std::sync::Mutex;

    let stack = start_stack().await;
    let producer = stack.producer();
    let keys = ["ann", "bob", "cyd", "dee"];
    for n in 0..40 {
        let mut event = login(n);
        event.user.pii.username = keys[(n % 4) as usize].to_owned();
        producer.enqueue(&event).await.expect("queued");
    }
    producer.flush(WAIT).await.expect("flushed");

    let seen: Arc<Mutex<HashMap<String, Vec<i64>>>> = Arc::default();
    let running = counter();
    let peak = counter();
    let mut bus = EventBus::new();
    let (seen2, running2, peak2) = (Arc::clone(&seen), Arc::clone(&running), Arc::clone(&peak));
    bus.connect_async("slow", move |event: Arc<SessionLoginCompleted>, _| {
        let (seen, running, peak) = (
            Arc::clone(&seen2),
            Arc::clone(&running2),
            Arc::clone(&peak2),
        );
        async move {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20 + (event.user.id as u64 * 7) % 30)).await;
            if let Ok(mut seen) = seen.lock() {
                seen.entry(event.user.pii.username.clone())
                    .or_default()
                    .push(event.user.id);
            }
            running.fetch_sub(1, Ordering::SeqCst);
            Ok(())
        }
    })
    .expect("connect");
    let mut config = stack.consumer_config();
    config.max_in_flight = 8;
    let consumer = EventConsumer::new(config, Arc::new(bus)).expect("consumer");
    let stats = run_until(consumer, |s| s.records_handled >= 40).await;
    assert_eq!(stats.records_handled, 40);
    let seen = seen.lock().expect("lock").clone();
    for (i, key) in keys.iter().enumerate() {
        let expected: Vec<i64> = (0..40).filter(|n| n % 4 == i as i64).collect();
        assert_eq!(
            seen.get(*key),
            Some(&expected),
            "key {key} in produce order"
        );
    }
    assert!(
        peak.load(Ordering::SeqCst) > 1,
        "different keys ran side by side"
    );
    assert!(
        peak.load(Ordering::SeqCst) <= 4,
        "one record per key at a time"
    );
    assert_eq!(stack.committed(), Some(40));
}
