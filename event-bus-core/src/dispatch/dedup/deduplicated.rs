//! `Deduplicated`: a receiver wrapper that skips the `ce_id`s it already handled, and
//! `DedupStats`, what it counted.

use std::any::type_name;
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use async_trait::async_trait;
use futures::channel::oneshot;
use futures::future::{FutureExt, Shared};
use uuid::Uuid;

use super::receiver_fn::ReceiverFn;
use super::seen_ids::SeenIds;
use super::window::DedupWindow;
use crate::dispatch::{DeliveryContext, Receiver, ReceiverError};
use crate::event::Event;

/// A [`Receiver`] that runs the receiver it wraps at most once per `ce_id` within a
/// [`DedupWindow`]: a delivery whose `ce_id` the wrapped receiver already handled
/// successfully is skipped (it returns `Ok` without calling it), counted in
/// [`DedupStats::skipped`] and logged at debug level with its `ce_id`.
///
/// Best effort, in this process's memory only: see the [module docs](super) for what it
/// does not cover, and `event_bus_kafka::inbox` for an exactly-once effect.
///
/// - An id is remembered only once the wrapped receiver **succeeded** with it. A
///   failure (retryable or permanent) or a panic leaves nothing behind, so the retry,
///   the dead-letter redrive or the next copy runs it again.
/// - Two deliveries of one `ce_id` at the same time (two records with the same `ce_id`
///   in flight with `max_in_flight > 1`, or on two partitions): the second **waits** for
///   the first to finish. If the first succeeded, the second is skipped; if it failed,
///   panicked or was abandoned (a record deadline, a revoke), the second runs. A
///   delivery is never skipped because of a copy that then fails. Deliveries of
///   different ids never wait for each other.
/// - Each wrapper has its own window, so connect one wrapper per receiver: a window
///   shared by two receivers would let one receiver's success skip the other.
///
/// Closures: [`Deduplicated::from_fn`] takes a synchronous function; an async receiver
/// is a type that implements [`Receiver`].
///
/// ```
/// use std::time::Duration;
/// use event_bus_core::prelude::*;
/// use event_bus_core::dispatch::{DedupWindow, Deduplicated, DeliveryContext};
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Serialize, Deserialize, Event)]
/// # #[event(type = "org.example.docs.payment.captured.v1", topic = "payments")]
/// # struct PaymentCaptured { cents: i64 }
///
/// struct Ledger;
/// #[async_trait::async_trait]
/// impl Receiver<PaymentCaptured> for Ledger {
///     async fn receive(&self, _: &PaymentCaptured, _: &DeliveryContext) -> Result<(), ReceiverError> {
///         Ok(())
///     }
/// }
///
/// let mut bus = EventBus::new();
/// bus.connect("ledger", Deduplicated::new(Ledger, DedupWindow::new(10_000, Duration::from_secs(600))))?;
/// # Ok::<(), event_bus_core::dispatch::BusError>(())
/// ```
pub struct Deduplicated<R> {
    inner: R,
    state: Arc<DedupState>,
}

impl<R> Deduplicated<R> {
    /// Wraps `inner`, remembering the ids it handled within `window`.
    ///
    /// ```
    /// use event_bus_core::dispatch::{DedupWindow, Deduplicated, ReceiverFn};
    /// # use event_bus_core::prelude::*;
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Serialize, Deserialize, Event)]
    /// # #[event(type = "org.example.docs.refund.issued.v1", topic = "payments")]
    /// # struct RefundIssued { cents: i64 }
    /// let refunds = ReceiverFn::new(|_: &RefundIssued, _| Ok(()));
    /// let receiver = Deduplicated::new(refunds, DedupWindow::default());
    /// assert_eq!(receiver.stats().window(), DedupWindow::default());
    /// ```
    pub fn new(inner: R, window: DedupWindow) -> Self {
        Self {
            inner,
            state: Arc::new(DedupState {
                ids: Mutex::new(Ids {
                    seen: SeenIds::new(window),
                    in_flight: HashMap::new(),
                }),
                skipped: AtomicU64::new(0),
            }),
        }
    }

    /// The wrapped receiver.
    ///
    /// ```
    /// use event_bus_core::dispatch::{DedupWindow, Deduplicated};
    /// let wrapped = Deduplicated::new("any value", DedupWindow::default());
    /// assert_eq!(*wrapped.inner(), "any value");
    /// ```
    pub fn inner(&self) -> &R {
        &self.inner
    }

    /// A handle on this receiver's counts, still readable once the receiver is
    /// connected (take it before `connect` moves the receiver).
    ///
    /// ```
    /// use event_bus_core::dispatch::{DedupWindow, Deduplicated, ReceiverFn};
    /// # use event_bus_core::prelude::*;
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Serialize, Deserialize, Event)]
    /// # #[event(type = "org.example.docs.coupon.used.v1", topic = "coupons")]
    /// # struct CouponUsed { code: String }
    /// let receiver = Deduplicated::from_fn(|_: &CouponUsed, _| Ok(()), DedupWindow::default());
    /// let stats = receiver.stats();
    /// let mut bus = EventBus::new();
    /// bus.connect("coupons", receiver)?;
    /// assert_eq!(stats.skipped(), 0);
    /// # Ok::<(), event_bus_core::dispatch::BusError>(())
    /// ```
    pub fn stats(&self) -> DedupStats {
        DedupStats {
            state: Arc::clone(&self.state),
        }
    }
}

impl<F> Deduplicated<ReceiverFn<F>> {
    /// Wraps a synchronous function of `(&E, &DeliveryContext)`, like
    /// [`EventBus::connect_fn`](crate::EventBus::connect_fn) takes.
    ///
    /// ```
    /// use std::time::Duration;
    /// use event_bus_core::prelude::*;
    /// use event_bus_core::dispatch::{DedupWindow, Deduplicated};
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Serialize, Deserialize, Event)]
    /// # #[event(type = "org.example.docs.seat.booked.v1", topic = "seats")]
    /// # struct SeatBooked { seat: String }
    /// let mut bus = EventBus::new();
    /// bus.connect("tickets", Deduplicated::from_fn(
    ///     |event: &SeatBooked, _ctx| {
    ///         println!("print a ticket for {}", event.seat);
    ///         Ok(())
    ///     },
    ///     DedupWindow::new(1_000, Duration::from_secs(60)),
    /// ))?;
    /// # Ok::<(), event_bus_core::dispatch::BusError>(())
    /// ```
    pub fn from_fn<E>(f: F, window: DedupWindow) -> Self
    where
        E: Event,
        F: Fn(&E, &DeliveryContext) -> Result<(), ReceiverError> + Send + Sync + 'static,
    {
        Self::new(ReceiverFn::new(f), window)
    }
}

impl<R> fmt::Debug for Deduplicated<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Deduplicated")
            .field("receiver", &type_name::<R>())
            .field("stats", &self.stats())
            .finish()
    }
}

#[async_trait]
impl<E: Event, R: Receiver<E>> Receiver<E> for Deduplicated<R> {
    async fn receive(&self, event: &E, ctx: &DeliveryContext) -> Result<(), ReceiverError> {
        let id = ctx.metadata.id;
        let claim = loop {
            match self.state.turn(id) {
                Turn::Run(claim) => break claim,
                Turn::Skip => {
                    self.state.skipped.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(
                        ce_id = %id,
                        ce_type = %ctx.metadata.event_type,
                        receiver_type = type_name::<R>(),
                        attempt = ctx.attempt,
                        "duplicate skipped: this receiver already handled this ce_id"
                    );
                    return Ok(());
                }
                Turn::Wait(first) => {
                    tracing::debug!(
                        ce_id = %id,
                        ce_type = %ctx.metadata.event_type,
                        receiver_type = type_name::<R>(),
                        "waiting for another delivery of this ce_id to finish"
                    );
                    // Woken when the first delivery ends, whatever its outcome.
                    let _ = first.await;
                }
            }
        };
        let result = self.inner.receive(event, ctx).await;
        claim.finish(result.is_ok());
        result
    }
}

/// What a [`Deduplicated`] receiver counted; cheap to clone, shared with the receiver.
///
/// ```
/// use event_bus_core::dispatch::{DedupWindow, Deduplicated, ReceiverFn};
/// # use event_bus_core::prelude::*;
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Serialize, Deserialize, Event)]
/// # #[event(type = "org.example.docs.cart.emptied.v1", topic = "carts")]
/// # struct CartEmptied { cart: i64 }
/// let receiver = Deduplicated::from_fn(|_: &CartEmptied, _| Ok(()), DedupWindow::default());
/// let stats = receiver.stats();
/// assert_eq!((stats.skipped(), stats.remembered()), (0, 0));
/// ```
#[derive(Clone)]
pub struct DedupStats {
    state: Arc<DedupState>,
}

impl DedupStats {
    /// How many deliveries were skipped as duplicates since the receiver was made.
    ///
    /// ```
    /// # use event_bus_core::dispatch::{DedupWindow, Deduplicated, ReceiverFn};
    /// # use event_bus_core::prelude::*;
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Serialize, Deserialize, Event)]
    /// # #[event(type = "org.example.docs.cart.filled.v1", topic = "carts")]
    /// # struct CartFilled { cart: i64 }
    /// let receiver = Deduplicated::from_fn(|_: &CartFilled, _| Ok(()), DedupWindow::default());
    /// assert_eq!(receiver.stats().skipped(), 0);
    /// ```
    pub fn skipped(&self) -> u64 {
        self.state.skipped.load(Ordering::Relaxed)
    }

    /// How many handled ids the window holds now (those aged out are not counted).
    ///
    /// ```
    /// # use event_bus_core::dispatch::{DedupWindow, Deduplicated, ReceiverFn};
    /// # use event_bus_core::prelude::*;
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Serialize, Deserialize, Event)]
    /// # #[event(type = "org.example.docs.cart.shared.v1", topic = "carts")]
    /// # struct CartShared { cart: i64 }
    /// let receiver = Deduplicated::from_fn(|_: &CartShared, _| Ok(()), DedupWindow::default());
    /// assert_eq!(receiver.stats().remembered(), 0);
    /// ```
    pub fn remembered(&self) -> usize {
        self.state.lock().seen.len(Instant::now())
    }

    /// The window's bounds.
    ///
    /// ```
    /// # use event_bus_core::dispatch::{DedupWindow, Deduplicated, ReceiverFn};
    /// # use event_bus_core::prelude::*;
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Serialize, Deserialize, Event)]
    /// # #[event(type = "org.example.docs.cart.saved.v1", topic = "carts")]
    /// # struct CartSaved { cart: i64 }
    /// let window = DedupWindow::new(5, std::time::Duration::from_secs(5));
    /// let receiver = Deduplicated::from_fn(|_: &CartSaved, _| Ok(()), window);
    /// assert_eq!(receiver.stats().window(), window);
    /// ```
    pub fn window(&self) -> DedupWindow {
        self.state.lock().seen.window()
    }
}

impl fmt::Debug for DedupStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DedupStats")
            .field("skipped", &self.skipped())
            .field("remembered", &self.remembered())
            .field("window", &self.window())
            .finish()
    }
}

/// The memory shared by a [`Deduplicated`] receiver's deliveries and its stats.
struct DedupState {
    ids: Mutex<Ids>,
    skipped: AtomicU64,
}

struct Ids {
    /// Ids the receiver succeeded with.
    seen: SeenIds,
    /// Ids a delivery is running the receiver for now; completes (as cancelled) when it
    /// ends.
    in_flight: HashMap<Uuid, InFlight>,
}

type InFlight = Shared<oneshot::Receiver<()>>;

/// What a delivery of an id does next.
enum Turn<'a> {
    /// The id was handled: skip.
    Skip,
    /// Another delivery of the id is running: wait for it, then ask again.
    Wait(InFlight),
    /// Run the receiver; the claim marks the id in flight until dropped.
    Run(Claim<'a>),
}

impl DedupState {
    fn lock(&self) -> MutexGuard<'_, Ids> {
        // Nothing panics while the lock is held, and the maps stay consistent if it did.
        self.ids.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn turn(&self, id: Uuid) -> Turn<'_> {
        let mut ids = self.lock();
        if !ids.seen.window().remembers_anything() {
            return Turn::Run(Claim::untracked(self, id));
        }
        if ids.seen.contains(&id, Instant::now()) {
            return Turn::Skip;
        }
        if let Some(first) = ids.in_flight.get(&id) {
            return Turn::Wait(first.clone());
        }
        let (done, finished) = oneshot::channel();
        ids.in_flight.insert(id, finished.shared());
        Turn::Run(Claim {
            state: self,
            id,
            done: Some(done),
            succeeded: false,
        })
    }
}

/// One delivery's hold on an id while it runs the receiver. Dropping it (after the
/// receiver returned, or because the delivery was abandoned or panicked) takes the id
/// out of flight, remembers it if the receiver succeeded, and then wakes the
/// deliveries waiting for it.
struct Claim<'a> {
    state: &'a DedupState,
    id: Uuid,
    /// `None` when the window remembers nothing, so nothing is tracked.
    done: Option<oneshot::Sender<()>>,
    succeeded: bool,
}

impl<'a> Claim<'a> {
    fn untracked(state: &'a DedupState, id: Uuid) -> Self {
        Self {
            state,
            id,
            done: None,
            succeeded: false,
        }
    }

    fn finish(mut self, succeeded: bool) {
        self.succeeded = succeeded;
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        let Some(done) = self.done.take() else {
            return;
        };
        {
            let mut ids = self.state.lock();
            ids.in_flight.remove(&self.id);
            if self.succeeded {
                ids.seen.remember(self.id, Instant::now());
            }
        }
        // Only now, with the id remembered (or not), do the waiting deliveries look again.
        drop(done);
    }
}
