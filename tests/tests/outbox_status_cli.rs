//! `event-bus outbox status` only reads: against a fresh PostgreSQL database and a fresh
//! SQLite file it reports that there is no outbox table and creates nothing.

use clap::Parser;
use event_bus_kafka::cli::{exit_code, run_with, Cli, CliContext, CliError};
use event_bus_kafka::outbox::OutboxError;
use event_bus_testkit::postgres::TestDatabase;
use event_bus_testkit::topics::unique_topic;

/// Runs `event-bus --output json outbox <command> --database-url <url>`: its output, or
/// its error.
async fn outbox_cli(command: &str, url: &str) -> Result<String, CliError> {
    let args = [
        "event-bus",
        "--output",
        "json",
        "outbox",
        command,
        "--database-url",
        url,
    ];
    let cli = Cli::try_parse_from(args).expect("valid command line");
    let mut out = Vec::new();
    run_with(cli, &CliContext::default(), &mut out).await?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// `status` fails with "no outbox table", exit code 1, and a message naming the fix.
async fn assert_status_finds_no_table(url: &str) {
    let err = outbox_cli("status", url)
        .await
        .expect_err("status without an outbox table");
    let CliError::Outbox(event_bus_kafka::cli::outbox::OutboxError::Outbox(
        OutboxError::NoOutboxTable { .. },
    )) = &err
    else {
        panic!("expected NoOutboxTable, got {err:?}");
    };
    assert_eq!(err.exit_code(), exit_code::CHECK_FAILED);
    let message = err.to_string();
    assert!(message.contains("event-bus outbox migrate"), "{message}");
}

/// Status after `migrate`: the check does not always fail.
async fn assert_status_works_after_migrate(url: &str) {
    outbox_cli("migrate", url).await.expect("migrate");
    let status = outbox_cli("status", url).await.expect("status");
    let status: serde_json::Value = serde_json::from_str(&status).expect("JSON");
    assert_eq!(status["pending"], 0, "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_on_a_fresh_postgres_database_creates_nothing() {
    let db = TestDatabase::create().await.expect("database");

    assert_status_finds_no_table(&db.url()).await;
    let schema: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM information_schema.schemata WHERE schema_name = 'event_bus')",
    )
    .fetch_one(db.pool())
    .await
    .expect("schemata");
    assert!(!schema, "status created schema event_bus");

    assert_status_works_after_migrate(&db.url()).await;
    db.drop_database().await.expect("drop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_on_a_fresh_sqlite_file_creates_nothing() {
    let dir = std::env::temp_dir().join(unique_topic("outbox-status"));
    std::fs::create_dir_all(&dir).expect("temp dir");

    // No file at all: status does not create one.
    let missing = dir.join("missing.db");
    assert_status_finds_no_table(&format!("sqlite:{}", missing.display())).await;
    assert!(!missing.exists(), "status created {}", missing.display());

    // The application's own database, without the outbox.
    let app = dir.join("app.db");
    let url = format!("sqlite:{}", app.display());
    let pool = sqlx::SqlitePool::connect(&format!("{url}?mode=rwc"))
        .await
        .expect("app database");
    sqlx::query("CREATE TABLE orders (id TEXT PRIMARY KEY)")
        .execute(&pool)
        .await
        .expect("orders");
    assert_status_finds_no_table(&url).await;
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .fetch_all(&pool)
            .await
            .expect("tables");
    assert_eq!(tables, ["orders"], "status created tables");

    assert_status_works_after_migrate(&url).await;
    pool.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}
