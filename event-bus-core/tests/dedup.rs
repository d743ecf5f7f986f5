//! The in-memory deduplicator: size and age bounds, failures never remembered, two
//! deliveries of one `ce_id` at once, and what the skip counter counts.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use event_bus_core::dispatch::{DedupWindow, Deduplicated, DeliveryContext};
use event_bus_core::prelude::*;
use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, Mutex};
use tokio::task::JoinHandle;

#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(type = "org.example.test.parcel.shipped.v1", topic = "parcels")]
struct ParcelShipped {
    parcel: i64,
}

/// How long a test waits for something that must happen (never asserted as a duration).
const PATIENCE: Duration = Duration::from_secs(10);

const LARGE: DedupWindow = DedupWindow::new(1_000, Duration::from_secs(600));

fn delivery() -> DeliveryContext {
    DeliveryContext::local(EventMetadata::for_event::<ParcelShipped>())
}

fn event() -> ParcelShipped {
    ParcelShipped { parcel: 1 }
}

/// A deduplicated receiver counting the calls of the receiver it wraps, which fails
/// while `fail` says so.
fn counting(
    window: DedupWindow,
    fail: impl Fn(&DeliveryContext) -> Option<ReceiverError> + Send + Sync + 'static,
) -> (Deduplicated<impl Receiver<ParcelShipped>>, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    let receiver = Deduplicated::from_fn(
        move |_: &ParcelShipped, ctx| {
            counted.fetch_add(1, Ordering::SeqCst);
            fail(ctx).map_or(Ok(()), Err)
        },
        window,
    );
    (receiver, calls)
}

fn never_fails(_: &DeliveryContext) -> Option<ReceiverError> {
    None
}

#[tokio::test]
async fn a_second_delivery_of_a_handled_ce_id_is_skipped_and_counted() {
    let (receiver, calls) = counting(LARGE, never_fails);
    let stats = receiver.stats();
    let mut bus = EventBus::new();
    bus.connect("shipping", receiver).expect("connect");
    let first = delivery();
    let mut again = first.clone();
    again.origin = event_bus_core::dispatch::Origin::Bus {
        topic: "parcels".into(),
        partition: 0,
        offset: 9,
    };

    assert!(bus.dispatch(event(), first).await.all_succeeded());
    let report = bus.dispatch(event(), again).await;
    assert!(report.all_succeeded(), "a skipped duplicate succeeds");
    assert!(bus.dispatch(event(), delivery()).await.all_succeeded());

    assert_eq!(calls.load(Ordering::SeqCst), 2, "two distinct ce_ids");
    assert_eq!(stats.skipped(), 1);
    assert_eq!(stats.remembered(), 2);
}

#[tokio::test]
async fn past_max_entries_the_oldest_id_is_forgotten() {
    let (receiver, calls) = counting(DedupWindow::new(2, Duration::from_secs(600)), never_fails);
    let (a, b, c) = (delivery(), delivery(), delivery());
    for ctx in [&a, &b, &c] {
        receiver.receive(&event(), ctx).await.expect("handled");
    }
    assert_eq!(receiver.stats().remembered(), 2);

    receiver.receive(&event(), &c).await.expect("skipped");
    receiver.receive(&event(), &b).await.expect("skipped");
    assert_eq!(calls.load(Ordering::SeqCst), 3, "b and c are still known");
    receiver.receive(&event(), &a).await.expect("runs again");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        4,
        "a was the oldest: forgotten"
    );
    // Remembering a again pushed out b, the oldest left.
    receiver.receive(&event(), &b).await.expect("runs again");
    assert_eq!(calls.load(Ordering::SeqCst), 5);
    assert_eq!(receiver.stats().skipped(), 2);
}

#[tokio::test]
async fn ids_older_than_max_age_are_forgotten() {
    let max_age = Duration::from_millis(50);
    let (receiver, calls) = counting(DedupWindow::new(1_000, max_age), never_fails);
    let ctx = delivery();
    receiver.receive(&event(), &ctx).await.expect("handled");
    receiver.receive(&event(), &ctx).await.expect("skipped");
    assert_eq!(calls.load(Ordering::SeqCst), 1, "still within the window");

    tokio::time::sleep(max_age * 3).await;
    assert_eq!(receiver.stats().remembered(), 0, "aged out");
    receiver.receive(&event(), &ctx).await.expect("runs again");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(receiver.stats().skipped(), 1);
}

#[tokio::test]
async fn a_failure_or_a_panic_is_not_remembered_so_the_retry_runs() {
    // Attempts 1 and 2 fail (retryable, then permanent), attempt 3 panics, 4 succeeds.
    let (receiver, calls) = counting(LARGE, |ctx| match ctx.attempt {
        1 => Some(ReceiverError::new("smtp down")),
        2 => Some(ReceiverError::permanent("bad address")),
        3 => panic!("receiver bug"),
        _ => None,
    });
    let stats = receiver.stats();
    let mut bus = EventBus::new();
    bus.connect("shipping", receiver).expect("connect");
    let mut ctx = delivery();
    for attempt in 1..=3 {
        ctx.attempt = attempt;
        let report = bus.dispatch(event(), ctx.clone()).await;
        assert!(!report.all_succeeded(), "attempt {attempt} fails");
        assert_eq!(
            stats.remembered(),
            0,
            "attempt {attempt} left nothing behind"
        );
    }
    ctx.attempt = 4;
    assert!(bus.dispatch(event(), ctx.clone()).await.all_succeeded());
    assert_eq!(
        calls.load(Ordering::SeqCst),
        4,
        "every attempt ran the receiver"
    );
    assert_eq!(stats.skipped(), 0);

    ctx.attempt = 1;
    assert!(bus.dispatch(event(), ctx).await.all_succeeded());
    assert_eq!(
        calls.load(Ordering::SeqCst),
        4,
        "remembered once it succeeded"
    );
    assert_eq!(stats.skipped(), 1);
}

#[tokio::test]
async fn a_window_of_zero_remembers_nothing() {
    for window in [
        DedupWindow::new(0, Duration::from_secs(600)),
        DedupWindow::new(1_000, Duration::ZERO),
    ] {
        let (receiver, calls) = counting(window, never_fails);
        let ctx = delivery();
        receiver.receive(&event(), &ctx).await.expect("handled");
        receiver.receive(&event(), &ctx).await.expect("handled");
        assert_eq!(calls.load(Ordering::SeqCst), 2, "{window:?}");
        assert_eq!(receiver.stats().skipped(), 0);
        assert_eq!(receiver.stats().remembered(), 0);
    }
}

/// A receiver each call of which announces itself and then waits for the test to say
/// whether it succeeds.
struct Gated {
    calls: AtomicUsize,
    started: mpsc::UnboundedSender<()>,
    verdicts: Mutex<mpsc::UnboundedReceiver<Result<(), ReceiverError>>>,
}

#[async_trait]
impl Receiver<ParcelShipped> for Gated {
    async fn receive(&self, _: &ParcelShipped, _: &DeliveryContext) -> Result<(), ReceiverError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.started.send(()).expect("test listens");
        let verdict = self.verdicts.lock().await.recv().await;
        verdict.unwrap_or_else(|| Err(ReceiverError::new("test ended")))
    }
}

/// One delivery to a gated receiver, running as a task.
type Delivery = JoinHandle<Result<(), ReceiverError>>;

/// A gated, deduplicated receiver and the test's ends of its channels.
struct Gate {
    receiver: Arc<Deduplicated<Gated>>,
    started: mpsc::UnboundedReceiver<()>,
    verdicts: mpsc::UnboundedSender<Result<(), ReceiverError>>,
}

impl Gate {
    fn new() -> Self {
        let (started_tx, started) = mpsc::unbounded_channel();
        let (verdicts, verdicts_rx) = mpsc::unbounded_channel();
        let gated = Gated {
            calls: AtomicUsize::new(0),
            started: started_tx,
            verdicts: Mutex::new(verdicts_rx),
        };
        Self {
            receiver: Arc::new(Deduplicated::new(gated, LARGE)),
            started,
            verdicts,
        }
    }

    fn deliver(&self, ctx: &DeliveryContext) -> Delivery {
        let receiver = Arc::clone(&self.receiver);
        let ctx = ctx.clone();
        tokio::spawn(async move { receiver.receive(&event(), &ctx).await })
    }

    /// Waits until the wrapped receiver has been called once more.
    async fn started(&mut self) {
        tokio::time::timeout(PATIENCE, self.started.recv())
            .await
            .expect("the receiver was called")
            .expect("receiver alive");
    }

    fn decide(&self, verdict: Result<(), ReceiverError>) {
        self.verdicts.send(verdict).expect("receiver alive");
    }

    /// How often the wrapped receiver was called.
    fn calls(&self) -> usize {
        self.receiver.inner().calls.load(Ordering::SeqCst)
    }

    /// Delivers one ce_id twice: the first delivery is inside the wrapped receiver, the
    /// second (checked) waits for it, neither running the receiver nor skipping.
    async fn two_copies_in_flight(&mut self) -> (Delivery, Delivery) {
        let ctx = delivery();
        let first = self.deliver(&ctx);
        self.started().await;
        let second = self.deliver(&ctx);
        self.settle().await;
        assert_eq!(self.calls(), 1, "the copy waits instead of running");
        assert!(!second.is_finished(), "the copy waits instead of skipping");
        (first, second)
    }

    /// Lets other tasks run for a while, so a delivery that should wait has every
    /// chance to (wrongly) call the receiver.
    async fn settle(&self) {
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn finished(task: Delivery) -> Result<(), ReceiverError> {
    tokio::time::timeout(PATIENCE, task)
        .await
        .expect("the delivery finished")
        .expect("no panic")
}

#[tokio::test]
async fn a_copy_in_flight_waits_for_the_first_and_is_skipped_when_it_succeeds() {
    let mut gate = Gate::new();
    let (first, second) = gate.two_copies_in_flight().await;

    gate.decide(Ok(()));
    finished(first).await.expect("first succeeds");
    finished(second).await.expect("the copy is skipped");
    assert_eq!(gate.calls(), 1);
    assert_eq!(gate.receiver.stats().skipped(), 1);
}

#[tokio::test]
async fn a_copy_in_flight_runs_when_the_first_fails() {
    let mut gate = Gate::new();
    let (first, second) = gate.two_copies_in_flight().await;

    gate.decide(Err(ReceiverError::new("smtp down")));
    assert!(finished(first).await.is_err());
    gate.started().await;
    assert_eq!(gate.calls(), 2, "the copy ran after the first failed");
    gate.decide(Ok(()));
    finished(second).await.expect("the copy succeeds");
    assert_eq!(gate.receiver.stats().skipped(), 0);
    assert_eq!(gate.receiver.stats().remembered(), 1);
}

#[tokio::test]
async fn a_copy_in_flight_runs_when_the_first_is_abandoned() {
    let mut gate = Gate::new();
    let (first, second) = gate.two_copies_in_flight().await;

    // A record deadline or a revoke drops the first delivery's future mid-call.
    first.abort();
    assert!(first.await.expect_err("aborted").is_cancelled());
    gate.started().await;
    assert_eq!(gate.calls(), 2, "the copy ran after the first was dropped");
    gate.decide(Ok(()));
    finished(second).await.expect("the copy succeeds");
    assert_eq!(gate.receiver.stats().skipped(), 0);
}

#[tokio::test]
async fn deliveries_of_different_ids_do_not_wait_for_each_other() {
    let mut gate = Gate::new();
    let first = gate.deliver(&delivery());
    gate.started().await;
    let other = gate.deliver(&delivery());
    gate.started().await;
    assert_eq!(gate.calls(), 2, "both run at once");
    gate.decide(Ok(()));
    gate.decide(Ok(()));
    finished(first).await.expect("ok");
    finished(other).await.expect("ok");
    assert_eq!(gate.receiver.stats().remembered(), 2);
}

proptest! {
    /// For any sequence of deliveries (a few ids, each delivery succeeding or failing):
    /// the wrapped receiver runs for a delivery exactly when its id has not succeeded
    /// before, and the counter counts exactly the other deliveries.
    #[test]
    fn the_counter_counts_exactly_the_deliveries_of_ids_already_handled(
        deliveries in prop::collection::vec((0usize..5, any::<bool>()), 0..60)
    ) {
        let ids: Vec<DeliveryContext> = (0..5).map(|_| delivery()).collect();
        let outcome = Arc::new(std::sync::Mutex::new(true));
        let next = Arc::clone(&outcome);
        let (receiver, calls) = counting(LARGE, move |_| {
            let ok = *next.lock().expect("unpoisoned");
            (!ok).then(|| ReceiverError::new("planned failure"))
        });
        let mut handled = HashSet::new();
        let (mut expected_calls, mut expected_skips) = (0, 0);
        for (id, succeeds) in deliveries {
            *outcome.lock().expect("unpoisoned") = succeeds;
            let result = futures::executor::block_on(receiver.receive(&event(), &ids[id]));
            if handled.contains(&id) {
                expected_skips += 1;
                prop_assert!(result.is_ok());
            } else {
                expected_calls += 1;
                prop_assert_eq!(result.is_ok(), succeeds);
                if succeeds {
                    handled.insert(id);
                }
            }
        }
        prop_assert_eq!(calls.load(Ordering::SeqCst), expected_calls);
        prop_assert_eq!(receiver.stats().skipped(), expected_skips);
        prop_assert_eq!(receiver.stats().remembered(), handled.len());
    }
}
