//! Dispatch isolation: every receiver runs, failures and panics are reported.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use event_bus_core::dispatch::{BusError, DeliveryContext};
use event_bus_core::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(
    type = "org.example.test.order.placed.v1",
    topic = "orders",
    key = "order_id"
)]
struct OrderPlaced {
    order_id: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(type = "org.example.test.order.cancelled.v1", topic = "orders")]
struct OrderCancelled {
    order_id: i64,
}

fn counter() -> Arc<AtomicUsize> {
    Arc::new(AtomicUsize::new(0))
}

fn ctx() -> DeliveryContext {
    DeliveryContext::local(EventMetadata::for_event::<OrderPlaced>())
}

#[tokio::test]
async fn a_failing_or_panicking_receiver_does_not_stop_the_others() {
    let (a, b) = (counter(), counter());
    let mut bus = EventBus::new();
    let a2 = Arc::clone(&a);
    bus.connect_fn("first", move |_: &OrderPlaced, _| {
        a2.fetch_add(1, Ordering::SeqCst);
        Ok(())
    })
    .expect("connect");
    bus.connect_fn("fails", |_: &OrderPlaced, _| {
        Err(ReceiverError::new("db down"))
    })
    .expect("connect");
    bus.connect_fn("panics", |_: &OrderPlaced, _| panic!("bug in receiver"))
        .expect("connect");
    let b2 = Arc::clone(&b);
    bus.connect_async("last", move |_: Arc<OrderPlaced>, _| {
        let b2 = Arc::clone(&b2);
        async move {
            b2.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    })
    .expect("connect");

    let report = bus.dispatch(OrderPlaced { order_id: 1 }, ctx()).await;
    assert_eq!(a.load(Ordering::SeqCst), 1);
    assert_eq!(b.load(Ordering::SeqCst), 1);
    assert_eq!(report.outcomes.len(), 4);
    assert_eq!(report.failed_receivers(), vec!["fails", "panics"]);
    let (_, panic) = report.failures().nth(1).expect("panic reported");
    assert!(panic.message().contains("bug in receiver"), "{panic}");
}

#[tokio::test]
async fn retry_runs_only_the_named_receivers() {
    let (ok, flaky) = (counter(), counter());
    let mut bus = EventBus::new();
    let ok2 = Arc::clone(&ok);
    bus.connect_fn("ok", move |_: &OrderPlaced, _| {
        ok2.fetch_add(1, Ordering::SeqCst);
        Ok(())
    })
    .expect("connect");
    let flaky2 = Arc::clone(&flaky);
    bus.connect_fn("flaky", move |_: &OrderPlaced, ctx| {
        flaky2.fetch_add(1, Ordering::SeqCst);
        if ctx.attempt < 2 {
            Err(ReceiverError::new("try again"))
        } else {
            Ok(())
        }
    })
    .expect("connect");
    let event: Arc<OrderPlaced> = Arc::new(OrderPlaced { order_id: 2 });
    let first = bus
        .dispatch_decoded(OrderPlaced::EVENT_TYPE, event.clone(), ctx(), None)
        .await;
    let failed: Vec<String> = first
        .failed_receivers()
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(failed, vec!["flaky".to_string()]);
    let mut retry_ctx = ctx();
    retry_ctx.attempt = 2;
    let second = bus
        .dispatch_decoded(OrderPlaced::EVENT_TYPE, event, retry_ctx, Some(&failed))
        .await;
    assert!(second.all_succeeded());
    assert_eq!(
        ok.load(Ordering::SeqCst),
        1,
        "the successful receiver ran once"
    );
    assert_eq!(flaky.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn receivers_only_see_their_event_type() {
    let cancelled = counter();
    let mut bus = EventBus::new();
    let c2 = Arc::clone(&cancelled);
    bus.connect_fn("cancel", move |_: &OrderCancelled, _| {
        c2.fetch_add(1, Ordering::SeqCst);
        Ok(())
    })
    .expect("connect");
    let report = bus.dispatch(OrderPlaced { order_id: 3 }, ctx()).await;
    assert!(report.outcomes.is_empty());
    assert_eq!(cancelled.load(Ordering::SeqCst), 0);
    assert_eq!(bus.event_types(), vec![OrderCancelled::EVENT_TYPE]);
}

#[tokio::test]
async fn a_receiver_can_tell_the_event_came_from_the_bus() {
    let republished = counter();
    let mut bus = EventBus::new();
    let r2 = Arc::clone(&republished);
    bus.connect_fn("mirror", move |_: &OrderPlaced, ctx| {
        if !ctx.from_bus() {
            r2.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    })
    .expect("connect");
    bus.dispatch(OrderPlaced { order_id: 4 }, ctx()).await;
    let from_bus =
        DeliveryContext::from_record(EventMetadata::for_event::<OrderPlaced>(), "orders", 0, 7);
    bus.dispatch(OrderPlaced { order_id: 4 }, from_bus).await;
    assert_eq!(republished.load(Ordering::SeqCst), 1);
}

#[test]
fn duplicate_receiver_names_are_refused() {
    let mut bus = EventBus::new();
    bus.connect_fn("x", |_: &OrderPlaced, _| Ok(()))
        .expect("first");
    let err = bus
        .connect_fn("x", |_: &OrderPlaced, _| Ok(()))
        .unwrap_err();
    assert_eq!(
        err,
        BusError::DuplicateReceiver {
            event_type: OrderPlaced::EVENT_TYPE,
            receiver: "x".into()
        }
    );
    // The same name on another event type is fine.
    bus.connect_fn("x", |_: &OrderCancelled, _| Ok(()))
        .expect("other type");
}

#[test]
fn decodes_for_the_registered_type_only() {
    let mut bus = EventBus::new();
    bus.connect_fn("x", |_: &OrderPlaced, _| Ok(()))
        .expect("connect");
    let datum = OrderPlaced { order_id: 5 }.to_avro_datum().expect("encode");
    let decoded = bus
        .decode(OrderPlaced::EVENT_TYPE, &datum, OrderPlaced::schema())
        .expect("known type")
        .expect("decodes");
    assert_eq!(
        decoded.downcast_ref::<OrderPlaced>().map(|e| e.order_id),
        Some(5)
    );
    assert!(bus
        .decode(OrderCancelled::EVENT_TYPE, &datum, OrderCancelled::schema())
        .is_none());
    let truncated = bus.decode(OrderPlaced::EVENT_TYPE, &[], OrderPlaced::schema());
    assert!(matches!(truncated, Some(Err(_))));
}
