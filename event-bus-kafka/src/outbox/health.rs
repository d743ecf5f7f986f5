//! The broker's health as the emergency producer and the relay see it: a circuit
//! breaker that stops paying the delivery timeout on every send while the broker fails.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Shared between an [`OutboxProducer`](super::OutboxProducer) and its relay.
///
/// *Closed* (healthy): sends go to the broker. A failed direct send *opens* it: sends go
/// straight to the outbox. It closes again when the relay publishes a row, or when a
/// probe succeeds: while open, one send per probe interval still tries the broker.
///
/// ```
/// use std::time::Duration;
/// use event_bus_kafka::outbox::BrokerHealth;
/// let health = BrokerHealth::new(Duration::from_secs(5));
/// assert!(health.is_healthy());
/// health.mark_failing();
/// assert!(!health.is_healthy());
/// assert!(!health.try_direct()); // no probe before the interval has passed
/// health.mark_healthy();
/// assert!(health.try_direct());
/// ```
#[derive(Debug, Clone)]
pub struct BrokerHealth {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    probe_interval: Duration,
    failing_since: Mutex<Option<Instant>>,
    last_probe: Mutex<Option<Instant>>,
    probing: AtomicBool,
}

impl BrokerHealth {
    /// Healthy, probing every `probe_interval` once failing.
    ///
    /// See the type's example.
    pub fn new(probe_interval: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                probe_interval,
                failing_since: Mutex::new(None),
                last_probe: Mutex::new(None),
                probing: AtomicBool::new(false),
            }),
        }
    }

    /// Whether the broker is considered healthy (circuit closed).
    ///
    /// See the type's example.
    pub fn is_healthy(&self) -> bool {
        self.failing_since().is_none()
    }

    /// How long the broker has been failing, if it is.
    ///
    /// ```
    /// let health = event_bus_kafka::outbox::BrokerHealth::new(std::time::Duration::from_secs(1));
    /// assert!(health.failing_for().is_none());
    /// ```
    pub fn failing_for(&self) -> Option<Duration> {
        self.failing_since().map(|since| since.elapsed())
    }

    /// Whether a send may try the broker now: always when healthy; when failing, once
    /// per probe interval (the caller then reports with [`mark_healthy`](Self::mark_healthy)
    /// or [`mark_failing`](Self::mark_failing)).
    ///
    /// See the type's example.
    pub fn try_direct(&self) -> bool {
        if self.is_healthy() {
            return true;
        }
        let Ok(mut last_probe) = self.inner.last_probe.lock() else {
            return false;
        };
        let due = last_probe.is_none_or(|at| at.elapsed() >= self.inner.probe_interval);
        if due && !self.inner.probing.swap(true, Ordering::AcqRel) {
            *last_probe = Some(Instant::now());
            tracing::info!("broker failing; probing it with one direct send");
            return true;
        }
        false
    }

    /// A send or a relay batch reached the broker: close the circuit.
    ///
    /// See the type's example.
    pub fn mark_healthy(&self) {
        self.inner.probing.store(false, Ordering::Release);
        if let Ok(mut since) = self.inner.failing_since.lock() {
            if let Some(at) = since.take() {
                tracing::info!(
                    failing_ms = at.elapsed().as_millis() as u64,
                    "broker healthy again; sending directly"
                );
            }
        }
    }

    /// A direct send failed, or a relay batch found the broker unreachable: open the
    /// circuit (sends go straight to the outbox).
    ///
    /// See the type's example.
    pub fn mark_failing(&self) {
        self.inner.probing.store(false, Ordering::Release);
        if let Ok(mut since) = self.inner.failing_since.lock() {
            if since.is_none() {
                *since = Some(Instant::now());
                if let Ok(mut last_probe) = self.inner.last_probe.lock() {
                    *last_probe = Some(Instant::now());
                }
                tracing::warn!("broker failing; new events go to the outbox until it recovers");
            }
        }
    }

    /// A probe ended without telling anything about the broker (the event itself was
    /// refused): let the next probe go when due.
    pub(crate) fn probe_inconclusive(&self) {
        self.inner.probing.store(false, Ordering::Release);
    }

    fn failing_since(&self) -> Option<Instant> {
        self.inner.failing_since.lock().map(|s| *s).unwrap_or(None)
    }
}

impl Default for BrokerHealth {
    fn default() -> Self {
        Self::new(Duration::from_secs(5))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_probe_per_interval_while_failing() {
        let health = BrokerHealth::new(Duration::from_millis(20));
        health.mark_failing();
        assert!(!health.try_direct());
        std::thread::sleep(Duration::from_millis(25));
        assert!(health.try_direct(), "probe due");
        assert!(!health.try_direct(), "only one probe at a time");
        health.mark_failing(); // the probe failed
        assert!(!health.try_direct());
        std::thread::sleep(Duration::from_millis(25));
        assert!(health.try_direct());
        health.probe_inconclusive(); // the probe's event was refused for itself
        std::thread::sleep(Duration::from_millis(25));
        assert!(
            health.try_direct(),
            "an inconclusive probe does not block the next one"
        );
        health.mark_healthy();
        assert!(health.is_healthy());
    }
}
