//! A counter whose labels never change, registered once per recorder.
//!
//! The producer counts every event under its (type, topic) labels. Looking the
//! counter up by those labels costs a hash and a lock per event; the encoder keeps
//! one [`FixedCounter`] per (topic, type) instead, which only checks that the
//! recorder in use is still the one its handle came from.

use std::sync::{PoisonError, RwLock};

use ::metrics::{Counter, Key, Label};

use super::{labels, names, METADATA};

/// A counter of one metric with fixed label values.
pub(crate) struct FixedCounter {
    key: Key,
    /// The handle, and the address of the recorder it came from (0: none yet).
    handle: RwLock<(usize, Counter)>,
}

impl std::fmt::Debug for FixedCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FixedCounter")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl FixedCounter {
    /// `event_bus_events_produced_total` of `event_type` on `topic`.
    pub(crate) fn produced(event_type: &str, topic: &str) -> Self {
        let labels = vec![
            Label::new(labels::EVENT_TYPE, event_type.to_owned()),
            Label::new(labels::TOPIC, topic.to_owned()),
        ];
        Self {
            key: Key::from_parts(names::EVENTS_PRODUCED, labels),
            handle: RwLock::new((0, Counter::noop())),
        }
    }

    /// Adds one, registering the counter first with a recorder not seen before.
    pub(crate) fn increment(&self) {
        let recorder = ::metrics::with_recorder(|r| std::ptr::from_ref(r).cast::<()>().addr());
        {
            let handle = self.handle.read().unwrap_or_else(PoisonError::into_inner);
            if handle.0 == recorder {
                handle.1.increment(1);
                return;
            }
        }
        let counter = ::metrics::with_recorder(|r| r.register_counter(&self.key, &METADATA));
        counter.increment(1);
        *self.handle.write().unwrap_or_else(PoisonError::into_inner) = (recorder, counter);
    }
}

#[cfg(all(test, feature = "observability"))]
mod tests {
    use super::*;
    use metrics_exporter_prometheus::PrometheusBuilder;

    #[test]
    fn counts_into_whichever_recorder_is_in_force() {
        let counter = FixedCounter::produced("org.example.a.b.created.v1", "dev-a");
        // Before any recorder: a no-op handle is kept …
        counter.increment();
        let line = r#"event_bus_events_produced_total{event_type="org.example.a.b.created.v1",topic="dev-a"}"#;
        let first = PrometheusBuilder::new().build_recorder();
        ::metrics::with_local_recorder(&first, || {
            counter.increment();
            counter.increment();
        });
        // … and each recorder in force afterwards sees its own calls.
        let second = PrometheusBuilder::new().build_recorder();
        ::metrics::with_local_recorder(&second, || counter.increment());
        let (first, second) = (first.handle().render(), second.handle().render());
        assert!(first.contains(&format!("{line} 2")), "{first}");
        assert!(second.contains(&format!("{line} 1")), "{second}");
    }
}
