//! The outcome of dispatching one event to its receivers.

use super::receiver::ReceiverError;

/// One receiver's result.
///
/// ```
/// use event_bus_core::{ReceiverError, ReceiverOutcome};
/// let ok = ReceiverOutcome { receiver: "a".into(), result: Ok(()) };
/// let failed = ReceiverOutcome { receiver: "b".into(), result: Err(ReceiverError::new("x")) };
/// assert!(ok.succeeded() && !failed.succeeded());
/// ```
#[derive(Debug, Clone)]
pub struct ReceiverOutcome {
    /// The receiver's name.
    pub receiver: std::borrow::Cow<'static, str>,
    /// What it returned (a panic becomes an error).
    pub result: Result<(), ReceiverError>,
}

impl ReceiverOutcome {
    /// Whether the receiver succeeded.
    ///
    /// ```
    /// let o = event_bus_core::ReceiverOutcome { receiver: "a".into(), result: Ok(()) };
    /// assert!(o.succeeded());
    /// ```
    pub fn succeeded(&self) -> bool {
        self.result.is_ok()
    }
}

/// Every receiver's outcome for one event, in connection order.
///
/// ```
/// use event_bus_core::{DispatchReport, ReceiverError, ReceiverOutcome};
/// let report = DispatchReport { outcomes: vec![
///     ReceiverOutcome { receiver: "a".into(), result: Ok(()) },
///     ReceiverOutcome { receiver: "b".into(), result: Err(ReceiverError::new("x")) },
/// ]};
/// assert!(!report.all_succeeded());
/// assert_eq!(report.failed_receivers(), vec!["b"]);
/// ```
#[derive(Debug, Clone, Default)]
pub struct DispatchReport {
    /// One outcome per receiver that ran.
    pub outcomes: Vec<ReceiverOutcome>,
}

impl DispatchReport {
    /// Whether every receiver that ran succeeded (true when none ran).
    ///
    /// ```
    /// assert!(event_bus_core::DispatchReport::default().all_succeeded());
    /// ```
    pub fn all_succeeded(&self) -> bool {
        self.outcomes.iter().all(ReceiverOutcome::succeeded)
    }

    /// Names of the receivers that failed.
    ///
    /// ```
    /// assert!(event_bus_core::DispatchReport::default().failed_receivers().is_empty());
    /// ```
    pub fn failed_receivers(&self) -> Vec<&str> {
        self.failures().map(|(name, _)| name).collect()
    }

    /// The failed receivers with their errors.
    ///
    /// ```
    /// assert_eq!(event_bus_core::DispatchReport::default().failures().count(), 0);
    /// ```
    pub fn failures(&self) -> impl Iterator<Item = (&str, &ReceiverError)> {
        self.outcomes
            .iter()
            .filter_map(|o| o.result.as_ref().err().map(|e| (o.receiver.as_ref(), e)))
    }
}
