//! The inbox pruner outlives its failures: on a real SQLite file without the inbox
//! table each prune fails, is logged as a warning with the failure classifier's verdict,
//! and is tried again at the next interval; once the table exists (migrated while the
//! pruner runs) old rows are deleted and fresh ones kept, and `stop` reports the count.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use event_bus_kafka::inbox::{AnyInbox, InboxPruner, InboxRetention};

/// How long the test waits for anything (a hang is a failure, not a measurement).
const WAIT: Duration = Duration::from_secs(30);

/// Log lines written by the test's `tracing` subscriber.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("log buffer")).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Waits (up to [`WAIT`]) until `line` was logged `times` times.
async fn logged(logs: &Captured, line: &str, times: usize) {
    let seen = async {
        while logs.text().matches(line).count() < times {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    if tokio::time::timeout(WAIT, seen).await.is_err() {
        panic!("`{line}` not logged {times} time(s):\n{}", logs.text());
    }
}

// current_thread: the pruner's task runs on this thread, under the subscriber set here.
#[tokio::test(flavor = "current_thread")]
async fn failed_prunes_are_logged_and_retried_until_the_table_exists() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let dir = std::env::temp_dir().join(format!("inbox-retention-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let url = format!("sqlite:{}", dir.join("app.db").display());
    let inbox = AnyInbox::connect(&url).await.expect("SQLite file");

    let retention = InboxRetention::default()
        .with_max_age(Duration::from_secs(3600))
        .with_batch_size(2)
        .with_interval(Some(Duration::from_millis(50)));
    let pruner = InboxPruner::spawn(inbox.clone(), retention);

    // No table: prunes fail, one warning each, and the pruner keeps going.
    logged(&logs, "inbox prune failed", 2).await;
    let text = logs.text();
    assert!(text.contains("WARN"), "{text}");
    assert!(text.contains("failure=unavailable"), "{text}");
    assert!(text.contains("event-bus outbox migrate"), "{text}");

    inbox.migrate().await.expect("migrations");
    #[allow(irrefutable_let_patterns)] // a build with only the `sqlite` store
    let AnyInbox::Sqlite(store) = &inbox
    else {
        unreachable!("a sqlite: URL")
    };
    // One statement, so one prune finds all three old rows (in batches of 2 and 1).
    let now_ms = chrono::Utc::now().timestamp_millis();
    sqlx::query(
        "INSERT INTO event_bus_inbox (consumer_group, receiver, ce_id, handled_at_ms) \
         VALUES ('g', 'r', 'a', ?1), ('g', 'r', 'b', ?2), ('g', 'r', 'c', ?3), ('g', 'r', 'd', ?4)",
    )
    .bind(now_ms - 3 * 3_600_000)
    .bind(now_ms - 7_200_000)
    .bind(now_ms - 4_000_000)
    .bind(now_ms)
    .execute(store.pool())
    .await
    .expect("inbox rows");
    // The prune's closing line: it has returned its count to the pruner's loop (a prune
    // still running when `stop` comes is abandoned, its count with it).
    logged(&logs, "inbox rows pruned deleted=3 rows=1", 1).await;

    assert_eq!(
        pruner.stop().await,
        3,
        "rows deleted over the pruner's life"
    );
    let left: Vec<String> = sqlx::query_scalar("SELECT ce_id FROM event_bus_inbox")
        .fetch_all(store.pool())
        .await
        .expect("rows");
    assert_eq!(left, ["d"], "only the fresh row is kept");
    let _ = std::fs::remove_dir_all(&dir);
}
