//! Core of signal-bridge: typed events, CloudEvents metadata and its Kafka header
//! mapping, receivers and dispatch, and the Avro schema rules. No Kafka, no network.
//!
//! ```
//! use event_bus_core::prelude::*;
//! use serde::{Deserialize, Serialize};
//!
//! /// A learner's data.
//! #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, EventData)]
//! pub struct Learner {
//!     /// Learner id.
//!     pub id: i64,
//!     /// Login name.
//!     pub username: String,
//! }
//!
//! /// A learner logged in.
//! #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
//! #[event(type = "org.example.learning.auth.session.login.completed.v1", topic = "learning-auth", key = "user.username")]
//! pub struct LoginCompleted {
//!     /// Who logged in.
//!     pub user: Learner,
//! }
//!
//! let event = LoginCompleted { user: Learner { id: 7, username: "ada".into() } };
//! assert_eq!(LoginCompleted::EVENT_TYPE, "org.example.learning.auth.session.login.completed.v1");
//! assert_eq!(event.key().map(|k| k.to_string()), Some("ada".to_string()));
//! ```
#![deny(missing_docs)]

// Lets the derive name this crate as `::event_bus_core` from inside it, too.
extern crate self as event_bus_core;

pub use apache_avro;

pub mod avro;
pub mod codec;
pub mod dispatch;
pub mod error;
pub mod event;
pub mod event_type;
pub mod headers;
pub mod key;
pub mod metadata;
pub mod registration;
pub mod schema;
pub mod shared_text;
pub mod topic_settings;

pub use dispatch::{DispatchReport, EventBus, Receiver, ReceiverError, ReceiverOutcome};
pub use error::Error;
pub use event::Event;
pub use event_bus_macros::{Event, EventData};
pub use event_type::EventTypeName;
pub use key::EventKey;
pub use metadata::EventMetadata;
pub use registration::EventRegistration;
pub use topic_settings::TopicSettings;

/// Everything an application needs to declare and receive events.
///
/// ```
/// use event_bus_core::prelude::*;
/// let bus = EventBus::new();
/// assert_eq!(bus.receiver_count(), 0);
/// ```
pub mod prelude {
    pub use crate::avro::AvroType;
    pub use crate::dispatch::{DispatchReport, EventBus, Receiver, ReceiverError, ReceiverOutcome};
    pub use crate::event::Event;
    pub use crate::key::EventKey;
    pub use crate::metadata::EventMetadata;
    pub use crate::topic_settings::TopicSettings;
    pub use event_bus_macros::{Event, EventData};
}

/// Items the derive macros use. Not a public API: it may change without notice.
#[doc(hidden)]
pub mod __private {
    pub use inventory;
    pub use serde_json;
}
