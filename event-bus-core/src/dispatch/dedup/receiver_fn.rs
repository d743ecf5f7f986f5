//! `ReceiverFn`: a synchronous function used where a [`Receiver`] value is needed.

use std::fmt;

use async_trait::async_trait;

use crate::dispatch::{DeliveryContext, Receiver, ReceiverError};
use crate::event::Event;

/// A function of `(&E, &DeliveryContext)` as a [`Receiver`] of `E`, for wrappers that
/// take a receiver value, such as [`Deduplicated`](super::Deduplicated).
/// [`EventBus::connect_fn`](crate::EventBus::connect_fn) needs no such adapter.
///
/// ```
/// use event_bus_core::prelude::*;
/// use event_bus_core::dispatch::ReceiverFn;
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Serialize, Deserialize, Event)]
/// # #[event(type = "org.example.docs.badge.earned.v1", topic = "badges")]
/// # struct BadgeEarned { user_id: i64 }
///
/// let audit = ReceiverFn::new(|event: &BadgeEarned, ctx| {
///     println!("badge for {} ({})", event.user_id, ctx.metadata.id);
///     Ok(())
/// });
/// let mut bus = EventBus::new();
/// bus.connect("audit", audit)?;
/// # Ok::<(), event_bus_core::dispatch::BusError>(())
/// ```
#[derive(Clone, Copy)]
pub struct ReceiverFn<F> {
    f: F,
}

impl<F> ReceiverFn<F> {
    /// Wraps `f`, a receiver of `E`.
    ///
    /// ```
    /// # use event_bus_core::prelude::*;
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Serialize, Deserialize, Event)]
    /// # #[event(type = "org.example.docs.badge.revoked.v1", topic = "badges")]
    /// # struct BadgeRevoked { user_id: i64 }
    /// let _ = event_bus_core::dispatch::ReceiverFn::new(|_: &BadgeRevoked, _| Ok(()));
    /// ```
    pub fn new<E>(f: F) -> Self
    where
        E: Event,
        F: Fn(&E, &DeliveryContext) -> Result<(), ReceiverError> + Send + Sync + 'static,
    {
        Self { f }
    }
}

impl<F> fmt::Debug for ReceiverFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReceiverFn")
    }
}

#[async_trait]
impl<E, F> Receiver<E> for ReceiverFn<F>
where
    E: Event,
    F: Fn(&E, &DeliveryContext) -> Result<(), ReceiverError> + Send + Sync + 'static,
{
    async fn receive(&self, event: &E, ctx: &DeliveryContext) -> Result<(), ReceiverError> {
        (self.f)(event, ctx)
    }
}
