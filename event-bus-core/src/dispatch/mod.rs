//! Receivers and dispatch: several named receivers per event type, each isolated
//! from the others' failures (Django's `send_robust` semantics).

mod bus;
mod context;
pub mod dedup;
mod receiver;
mod report;

pub use bus::{BusError, DecodedEvent, EventBus};
pub use context::{DeliveryContext, Origin};
pub use dedup::{DedupStats, DedupWindow, Deduplicated, ReceiverFn};
pub use receiver::{Receiver, ReceiverError};
pub use report::{DispatchReport, ReceiverOutcome};
