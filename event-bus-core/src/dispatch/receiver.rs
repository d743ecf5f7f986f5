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
    kind: FailureKind,
}

/// How the consumer treats a receiver's failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FailureKind {
    /// Retried under the consumer's retry policy, then dead-lettered.
    Retry,
    /// Something the receiver needs is down: retried until it is back, attempts not
    /// counted, never dead-lettered for it.
    WaitForDependency,
    /// Dead-lettered at once.
    Permanent,
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
            kind: FailureKind::Retry,
        }
    }

    /// A failure that retrying cannot fix: the consumer dead-letters at once.
    ///
    /// ```
    /// assert!(!event_bus_core::ReceiverError::permanent("invalid").is_retryable());
    /// ```
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            kind: FailureKind::Permanent,
            ..Self::new(message)
        }
    }

    /// A failure because something the receiver needs is down (its database, a
    /// service): the consumer keeps the record where it is and tries again with backoff
    /// (capped at the retry policy's `max_delay`) until the receiver gets past it,
    /// without counting attempts or giving up on time, so the record is never
    /// dead-lettered for an outage. The partition's later records wait behind it, as
    /// key order requires; shutdown and revocation still stop the wait.
    ///
    /// Use it only for outages that fix themselves (or that a person fixes): a bug
    /// reported this way blocks its partition until it is deployed away.
    ///
    /// ```
    /// let err = event_bus_core::ReceiverError::unavailable("database is down");
    /// assert!(err.is_retryable());
    /// assert!(err.is_unavailable());
    /// assert!(!event_bus_core::ReceiverError::new("timeout").is_unavailable());
    /// ```
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self {
            kind: FailureKind::WaitForDependency,
            ..Self::new(message)
        }
    }

    /// This failure, marked as an outage of something the receiver needs (see
    /// [`unavailable`](Self::unavailable)).
    ///
    /// ```
    /// let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
    /// let err = event_bus_core::ReceiverError::from_error(io).into_unavailable();
    /// assert!(err.is_unavailable());
    /// assert_eq!(err.to_string(), "refused");
    /// ```
    pub fn into_unavailable(self) -> Self {
        Self {
            kind: FailureKind::WaitForDependency,
            ..self
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
            kind: FailureKind::Retry,
        }
    }

    /// Whether the consumer should retry the receiver.
    ///
    /// ```
    /// assert!(event_bus_core::ReceiverError::new("x").is_retryable());
    /// ```
    pub fn is_retryable(&self) -> bool {
        self.kind != FailureKind::Permanent
    }

    /// Whether the consumer should wait for a dependency to come back (see
    /// [`unavailable`](Self::unavailable)) rather than count attempts.
    ///
    /// ```
    /// assert!(event_bus_core::ReceiverError::unavailable("x").is_unavailable());
    /// ```
    pub fn is_unavailable(&self) -> bool {
        self.kind == FailureKind::WaitForDependency
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
            .field("kind", &self.kind)
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
