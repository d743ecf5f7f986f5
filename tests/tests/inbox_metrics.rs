//! The inbox's metrics on `/metrics` text: handled and duplicate deliveries per
//! receiver, rows counted by status and prune, rows pruned. A binary of its own: the
//! Prometheus recorder is process-wide.

use std::time::Duration;

use event_bus_core::dispatch::DeliveryContext;
use event_bus_examples::openedx::SessionLoginCompleted;
use event_bus_kafka::inbox::{Inbox, InboxStore, SqliteInbox};
use event_bus_kafka::observability::PrometheusMetrics;
use event_bus_kafka::prelude::*;
use event_bus_tests::stack::login;
use uuid::Uuid;

#[tokio::test]
async fn handled_duplicates_rows_and_pruned_rows_are_exported() {
    let prometheus = PrometheusMetrics::install().expect("recorder (the only one here)");
    let path = std::env::temp_dir().join(format!("inbox-metrics-{}.db", Uuid::new_v4().simple()));
    let store = SqliteInbox::connect(&format!("sqlite:{}", path.display()))
        .await
        .expect("open");
    store.migrate().await.expect("migrate");
    let inbox = Inbox::new(store);
    let mut bus = EventBus::new();
    inbox
        .connect_fn(&mut bus, "metered", |_: &SessionLoginCompleted, _, _| {
            Box::pin(async { Ok(()) })
        })
        .expect("connect");

    // The same event twice, then another: 2 handled, 1 duplicate.
    let metadata = EventMetadata::for_event::<SessionLoginCompleted>();
    for metadata in [
        metadata.clone(),
        metadata,
        EventMetadata::for_event::<SessionLoginCompleted>(),
    ] {
        let report = bus
            .dispatch(login(1), DeliveryContext::local(metadata))
            .await;
        assert!(report.all_succeeded());
    }
    let store = inbox.store();
    assert_eq!(store.status().await.expect("status").rows, 2);
    let text = prometheus.render();
    assert!(
        text.contains(r#"event_bus_inbox_handled_total{receiver="metered"} 2"#),
        "{text}"
    );
    assert!(
        text.contains(r#"event_bus_inbox_duplicates_total{receiver="metered"} 1"#),
        "{text}"
    );
    assert!(text.contains("event_bus_inbox_rows 2"), "{text}");

    // One row made old and pruned.
    sqlx::query("UPDATE event_bus_inbox SET handled_at_ms = handled_at_ms - 7200000 WHERE rowid = (SELECT min(rowid) FROM event_bus_inbox)")
        .execute(store.pool())
        .await
        .expect("age a row");
    assert_eq!(
        store
            .prune(Duration::from_secs(3600), 100)
            .await
            .expect("prune"),
        1
    );
    let text = prometheus.render();
    assert!(text.contains("event_bus_inbox_pruned_total 1"), "{text}");
    assert!(text.contains("event_bus_inbox_rows 1"), "{text}");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}
