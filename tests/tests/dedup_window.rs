//! The in-memory deduplicator on a real consumer: records that carry one `ce_id` more
//! than once, and a range of offsets read twice, reach a `Deduplicated` receiver once
//! per `ce_id`, while a plain receiver beside it sees every copy.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use event_bus_core::dispatch::{DedupWindow, Deduplicated};
use event_bus_examples::openedx::SessionLoginCompleted;
use event_bus_kafka::consumer::{EventConsumer, Shutdown, StatsSnapshot};
use event_bus_kafka::prelude::*;
use event_bus_testkit::topics::unique_group;
use event_bus_tests::stack::{login, Stack, WAIT};
use uuid::Uuid;

/// Runs `consumer` until it handled `records` records (or WAIT passes), then shuts it
/// down.
async fn handle(consumer: EventConsumer, records: u64) -> StatsSnapshot {
    let stats = consumer.stats();
    let (trigger, shutdown) = Shutdown::new();
    let task = tokio::spawn(consumer.run(shutdown));
    let started = Instant::now();
    while stats.snapshot().records_handled < records && started.elapsed() < WAIT {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    trigger.trigger();
    task.await.expect("task").expect("loop ends cleanly")
}

/// A login of user `id` named `username` (the record key).
fn login_of(id: i64, username: &str) -> SessionLoginCompleted {
    let mut event = login(id);
    event.user.pii.username = username.to_owned();
    event
}

#[tokio::test]
async fn a_deduplicated_receiver_runs_once_per_ce_id_and_a_plain_one_for_every_copy() {
    let stack = Stack::start("dedup", "dedup").await;
    let producer = stack.producer();
    // One ce_id three times: twice under one key (in order), once under another key (may
    // be in flight at the same time, max_in_flight is 4); and one other event.
    let repeated = EventMetadata::for_event::<SessionLoginCompleted>();
    producer
        .send_with_metadata(&login_of(1, "ada"), repeated.clone())
        .await
        .expect("sent");
    producer
        .send_with_metadata(&login_of(1, "bob"), repeated.clone())
        .await
        .expect("sent");
    producer.send(&login_of(2, "cy")).await.expect("sent");
    producer
        .send_with_metadata(&login_of(1, "ada"), repeated.clone())
        .await
        .expect("sent");

    let plain = Arc::new(AtomicUsize::new(0));
    let handled_ids = Arc::new(Mutex::new(Vec::<Uuid>::new()));
    let mut bus = EventBus::new();
    let plain_count = Arc::clone(&plain);
    bus.connect_fn("plain", move |_: &SessionLoginCompleted, _| {
        plain_count.fetch_add(1, Ordering::SeqCst);
        Ok(())
    })
    .expect("connect");
    let seen = Arc::clone(&handled_ids);
    let once = Deduplicated::from_fn(
        move |_: &SessionLoginCompleted, ctx| {
            seen.lock().expect("unpoisoned").push(ctx.metadata.id);
            Ok(())
        },
        DedupWindow::new(1_000, Duration::from_secs(600)),
    );
    let dedup = once.stats();
    bus.connect("once", once).expect("connect");
    let bus = Arc::new(bus);

    let mut config = stack.consumer_config();
    config.max_in_flight = 4;
    let stats = handle(
        EventConsumer::new(config, Arc::clone(&bus)).expect("consumer"),
        4,
    )
    .await;
    assert_eq!(stats.records_handled, 4);
    assert_eq!(
        plain.load(Ordering::SeqCst),
        4,
        "the plain receiver saw every copy"
    );
    let ids = handled_ids.lock().expect("unpoisoned").clone();
    assert_eq!(ids.len(), 2, "once per ce_id: {ids:?}");
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 2);
    assert!(ids.contains(&repeated.id));
    assert_eq!(dedup.skipped(), 2);
    assert_eq!(
        stack.committed(),
        Some(4),
        "skipped copies are committed too"
    );

    // The same range read again (a second group from the start, as after a replay or an
    // offset reset) by the same process: the plain receiver runs for all of it again.
    let mut again = stack.consumer_config();
    again.group_id = unique_group("dedup-again");
    let stats = handle(
        EventConsumer::new(again, Arc::clone(&bus)).expect("consumer"),
        4,
    )
    .await;
    assert_eq!(stats.records_handled, 4);
    assert_eq!(plain.load(Ordering::SeqCst), 8);
    assert_eq!(
        handled_ids.lock().expect("unpoisoned").len(),
        2,
        "nothing ran twice"
    );
    assert_eq!(dedup.skipped(), 6);
}
