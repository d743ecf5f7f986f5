//! The `Receiver` trait and the error a receiver returns.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use super::context::DeliveryContext;
use crate::event::Event;

/// Code that reacts to events of type `E`.
///
/// Closures work too: see [`EventBus::connect_fn`](super::EventBus::connect_fn) and
/// [`EventBus::connect_async`](super::EventBus::connect_async).
///
/// ```
/// use event_bus_core::prelude::*;
/// use event_bus_core::dispatch::DeliveryContext;
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Serialize, Deserialize, Event)]
/// # #[event(type = "org.example.docs.order.placed.v1", topic = "orders")]
/// # struct OrderPlaced { id: i64 }
///
/// struct Mailer;
///
/// #[async_trait::async_trait]
/// impl Receiver<OrderPlaced> for Mailer {
///     async fn receive(&self, event: &OrderPlaced, _ctx: &DeliveryContext) -> Result<(), ReceiverError> {
///         if event.id < 0 {
///             return Err(ReceiverError::permanent("negative order id"));
///         }
///         Ok(())
///     }
/// }
///
/// let mut bus = EventBus::new();
/// bus.connect("mailer", Mailer)?;
/// # Ok::<(), event_bus_core::dispatch::BusError>(())
/// ```
#[async_trait]
pub trait Receiver<E: Event>: Send + Sync + 'static {
    /// Handles one event. An `Err` is logged, retried (unless permanent) and finally
    /// dead-lettered by the consumer; it never stops other receivers.
    async fn receive(&self, event: &E, ctx: &DeliveryContext) -> Result<(), ReceiverError>;
}

/// A receiver's failure.
///
/// ```
/// use event_bus_core::ReceiverError;
/// let err = ReceiverError::new("database is down");
/// assert!(err.is_retryable());
/// let io = std::io::Error::new(std::io::ErrorKind::Other, "disk full");
/// let err = ReceiverError::from_error(io);
/// assert_eq!(err.to_string(), "disk full");
/// assert!(!ReceiverError::permanent("bad data").is_retryable());
/// ```
#[derive(Clone)]
pub struct ReceiverError {
    message: String,
    source: Option<Arc<dyn StdError + Send + Sync>>,
    retryable: bool,
}

impl ReceiverError {
    /// A failure worth retrying.
    ///
    /// ```
    /// assert_eq!(event_bus_core::ReceiverError::new("timeout").to_string(), "timeout");
    /// ```
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            source: None,
            retryable: true,
        }
    }

    /// A failure that retrying cannot fix: the consumer dead-letters at once.
    ///
    /// ```
    /// assert!(!event_bus_core::ReceiverError::permanent("invalid").is_retryable());
    /// ```
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            retryable: false,
            ..Self::new(message)
        }
    }

    /// A retryable failure caused by `error`.
    ///
    /// ```
    /// let err = event_bus_core::ReceiverError::from_error(std::fmt::Error);
    /// assert!(std::error::Error::source(&err).is_some());
    /// ```
    pub fn from_error(error: impl StdError + Send + Sync + 'static) -> Self {
        Self {
            message: error.to_string(),
            source: Some(Arc::new(error)),
            retryable: true,
        }
    }

    /// Whether the consumer should retry the receiver.
    ///
    /// ```
    /// assert!(event_bus_core::ReceiverError::new("x").is_retryable());
    /// ```
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }

    /// The failure's message.
    ///
    /// ```
    /// assert_eq!(event_bus_core::ReceiverError::new("x").message(), "x");
    /// ```
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Debug for ReceiverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReceiverError")
            .field("message", &self.message)
            .field("retryable", &self.retryable)
            .finish()
    }
}

impl fmt::Display for ReceiverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl StdError for ReceiverError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}
