//! A shutdown signal the loop and its waits listen to.

use tokio::sync::watch;

use super::offsets::Assignment;

/// Tells a running consumer to stop: it finishes the record in hand, commits and
/// leaves the group.
///
/// ```
/// let (trigger, signal) = event_bus_kafka::consumer::Shutdown::new();
/// assert!(!signal.is_triggered());
/// trigger.trigger();
/// assert!(signal.is_triggered());
/// ```
#[derive(Debug, Clone)]
pub struct Shutdown {
    rx: watch::Receiver<bool>,
}

/// The sending side of a [`Shutdown`].
#[derive(Debug, Clone)]
pub struct ShutdownTrigger {
    tx: std::sync::Arc<watch::Sender<bool>>,
}

impl ShutdownTrigger {
    /// Asks every [`Shutdown`] of this pair to stop.
    ///
    /// See [`Shutdown`]'s example.
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }
}

impl Shutdown {
    /// A trigger and its signal.
    ///
    /// See the type's example.
    pub fn new() -> (ShutdownTrigger, Shutdown) {
        let (tx, rx) = watch::channel(false);
        (
            ShutdownTrigger {
                tx: std::sync::Arc::new(tx),
            },
            Shutdown { rx },
        )
    }

    /// A signal triggered by SIGINT or SIGTERM (Ctrl-C on other platforms).
    ///
    /// ```no_run
    /// # async fn demo() {
    /// let shutdown = event_bus_kafka::consumer::Shutdown::on_signals();
    /// shutdown.triggered().await;
    /// # }
    /// ```
    pub fn on_signals() -> Shutdown {
        let (trigger, signal) = Self::new();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutdown signal received; finishing the record in hand");
            trigger.trigger();
        });
        signal
    }

    /// Whether shutdown was asked for.
    ///
    /// See the type's example.
    pub fn is_triggered(&self) -> bool {
        *self.rx.borrow()
    }

    /// Resolves once shutdown is asked for (at once if it already was).
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let (trigger, signal) = event_bus_kafka::consumer::Shutdown::new();
    /// trigger.trigger();
    /// signal.triggered().await;
    /// # });
    /// ```
    pub async fn triggered(&self) {
        let mut rx = self.rx.clone();
        // An error means every trigger is gone: nothing can ask for shutdown any more.
        if rx.wait_for(|stop| *stop).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// What cuts one record's waits (retry backoff, registry and dead-letter retries)
/// short: shutdown, or the revoke of its partition.
pub(crate) struct RecordStop<'a> {
    pub shutdown: &'a Shutdown,
    pub assignment: &'a Assignment,
}

/// Why a record's waits were cut short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StopCause {
    Shutdown,
    Revoked,
}

impl RecordStop<'_> {
    /// Resolves when the loop shuts down or the record's partition is revoked.
    pub async fn stopped(&self) -> StopCause {
        tokio::select! {
            _ = self.shutdown.triggered() => StopCause::Shutdown,
            _ = self.assignment.ended() => StopCause::Revoked,
        }
    }
}

#[cfg(unix)]
async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() {
    let _ = tokio::signal::ctrl_c().await;
}
