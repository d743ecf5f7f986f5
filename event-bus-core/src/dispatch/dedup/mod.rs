//! Best-effort, in-memory deduplication of one receiver's deliveries by `ce_id`.
//!
//! Delivery is at-least-once: after a crash, a rebalance or a producer retry, a receiver
//! may be handed an event it already handled. [`Deduplicated`] wraps any [`Receiver`]
//! and skips a delivery whose `ce_id` (`ctx.metadata.id`) that receiver already handled
//! successfully within a bounded window ([`DedupWindow`]: at most so many ids, none
//! older than so long).
//!
//! It is **best effort**. The window lives in this process's memory, so it
//!
//! - is lost when the process restarts (the duplicates a crash causes are exactly the
//!   ones a fresh process has never seen);
//! - is per process: after a rebalance, the consumer instance that takes a partition
//!   over has its own, empty window;
//! - forgets the oldest ids once it holds `max_entries` of them, and ids older than
//!   `max_age`.
//!
//! It filters the duplicates that reach the same process within the window (a producer
//! that sent an event twice, a range of offsets read again after a failed commit or a
//! replay) and costs nothing to set up. For an exactly-once *effect* that survives
//! restarts and rebalances, keep the receiver's writes and the record of handled ids
//! in one database transaction: the inbox of `event_bus_kafka::inbox`.
//!
//! [`Receiver`]: super::Receiver
//!
//! ```
//! use std::time::Duration;
//! use event_bus_core::prelude::*;
//! use event_bus_core::dispatch::{DedupWindow, Deduplicated, DeliveryContext};
//! # use serde::{Deserialize, Serialize};
//! # #[derive(Serialize, Deserialize, Event)]
//! # #[event(type = "org.example.docs.invoice.issued.v1", topic = "invoices")]
//! # struct InvoiceIssued { number: i64 }
//!
//! struct Mailer;
//!
//! #[async_trait::async_trait]
//! impl Receiver<InvoiceIssued> for Mailer {
//!     async fn receive(&self, _: &InvoiceIssued, _: &DeliveryContext) -> Result<(), ReceiverError> {
//!         Ok(()) // send the e-mail
//!     }
//! }
//!
//! let mailer = Deduplicated::new(Mailer, DedupWindow::new(10_000, Duration::from_secs(600)));
//! let stats = mailer.stats();
//! let mut bus = EventBus::new();
//! bus.connect("mailer", mailer)?;
//!
//! let metadata = EventMetadata::for_event::<InvoiceIssued>();
//! futures::executor::block_on(async {
//!     bus.dispatch(InvoiceIssued { number: 1 }, DeliveryContext::local(metadata.clone())).await;
//!     // The same ce_id again: the mailer does not run a second time.
//!     bus.dispatch(InvoiceIssued { number: 1 }, DeliveryContext::local(metadata)).await;
//! });
//! assert_eq!(stats.skipped(), 1);
//! # Ok::<(), event_bus_core::dispatch::BusError>(())
//! ```

mod deduplicated;
mod receiver_fn;
mod seen_ids;
mod window;

pub use deduplicated::{DedupStats, Deduplicated};
pub use receiver_fn::ReceiverFn;
pub use window::DedupWindow;
