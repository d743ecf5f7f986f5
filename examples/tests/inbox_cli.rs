//! `event-bus inbox status|prune` and the relay's inbox pruning, through the example
//! `event-bus` binary against real PostgreSQL and SQLite databases (rows are written
//! with old `handled_at` times directly in SQL), and a running `event-bus outbox relay`
//! against Apache Kafka.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use event_bus_kafka::cli::exit_code;
use event_bus_testkit::kafka::KafkaCluster;
use event_bus_testkit::postgres::TestDatabase;
use event_bus_testkit::registry::EmbeddedRegistry;
use event_bus_testkit::topics::unique_topic;
use serde_json::Value;

const BINARY: &str = env!("CARGO_BIN_EXE_event-bus");
/// How long the test waits for anything (a hang is a failure, not a measurement).
const WAIT: Duration = Duration::from_secs(60);
const HOUR: i64 = 3600;
const DAY: i64 = 24 * HOUR;

/// The `event-bus` binary with no `EVENT_BUS_*` variable of the test's environment.
fn event_bus(args: &[&str]) -> Command {
    let mut command = Command::new(BINARY);
    for (name, _) in std::env::vars().filter(|(n, _)| n.starts_with("EVENT_BUS_")) {
        command.env_remove(name);
    }
    command.args(args).stdin(Stdio::null());
    command
}

/// Runs `event-bus <args> --database-url <url>`.
fn run(args: &[&str], url: &str) -> Output {
    let mut all = args.to_vec();
    all.extend(["--database-url", url]);
    event_bus(&all).output().expect("event-bus runs")
}

/// Runs a command that must succeed; its stdout.
fn stdout_of(args: &[&str], url: &str) -> String {
    let output = run(args, url);
    assert!(
        output.status.success(),
        "event-bus {args:?}: {:?}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8")
}

/// Runs a command with `--output json` that must succeed; its document.
fn json_of(args: &[&str], url: &str) -> Value {
    let mut all = vec!["--output", "json"];
    all.extend_from_slice(args);
    let out = stdout_of(&all, url);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// A database with the inbox table, on PostgreSQL or SQLite.
enum Store {
    Postgres(Box<TestDatabase>),
    Sqlite {
        dir: PathBuf,
        pool: sqlx::SqlitePool,
    },
}

impl Store {
    /// A fresh database, migrated by `event-bus outbox migrate` when `migrate`.
    async fn new(postgres: bool, migrate: bool) -> Self {
        let store = if postgres {
            Self::Postgres(Box::new(TestDatabase::create().await.expect("database")))
        } else {
            let dir = std::env::temp_dir().join(unique_topic("inbox-cli"));
            std::fs::create_dir_all(&dir).expect("temp dir");
            let url = format!("sqlite:{}?mode=rwc", dir.join("app.db").display());
            let pool = sqlx::SqlitePool::connect(&url).await.expect("SQLite file");
            Self::Sqlite { dir, pool }
        };
        if migrate {
            stdout_of(&["outbox", "migrate"], &store.url());
        }
        store
    }

    fn url(&self) -> String {
        match self {
            Self::Postgres(db) => db.url(),
            Self::Sqlite { dir, .. } => format!("sqlite:{}", dir.join("app.db").display()),
        }
    }

    /// Writes `count` rows of (`group`, `receiver`) handled `age_s` seconds ago.
    async fn insert(&self, group: &str, receiver: &str, count: usize, age_s: i64) {
        for _ in 0..count {
            match self {
                Self::Postgres(db) => sqlx::query(
                    "INSERT INTO event_bus.inbox (consumer_group, receiver, ce_id, handled_at) \
                     VALUES ($1, $2, gen_random_uuid(), now() - make_interval(secs => $3))",
                )
                .bind(group)
                .bind(receiver)
                .bind(age_s as f64)
                .execute(db.pool())
                .await
                .map(drop),
                Self::Sqlite { pool, .. } => sqlx::query(
                    "INSERT INTO event_bus_inbox (consumer_group, receiver, ce_id, handled_at_ms) \
                     VALUES (?1, ?2, ?3, ?4)",
                )
                .bind(group)
                .bind(receiver)
                .bind(uuid::Uuid::new_v4().to_string())
                .bind(chrono::Utc::now().timestamp_millis() - age_s * 1000)
                .execute(pool)
                .await
                .map(drop),
            }
            .expect("inbox row");
        }
    }

    /// The rows left, as (receiver, handled more than an hour ago), sorted.
    async fn rows(&self) -> Vec<(String, bool)> {
        let mut rows: Vec<(String, bool)> =
            match self {
                Self::Postgres(db) => sqlx::query_as(
                    "SELECT receiver, handled_at < now() - interval '1 hour' FROM event_bus.inbox",
                )
                .fetch_all(db.pool())
                .await,
                Self::Sqlite { pool, .. } => {
                    sqlx::query_as("SELECT receiver, handled_at_ms < ?1 FROM event_bus_inbox")
                        .bind(chrono::Utc::now().timestamp_millis() - HOUR * 1000)
                        .fetch_all(pool)
                        .await
                }
            }
            .expect("inbox rows");
        rows.sort();
        rows
    }

    async fn remove(self) {
        match self {
            Self::Postgres(db) => db.drop_database().await.expect("drop"),
            Self::Sqlite { dir, pool } => {
                pool.close().await;
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }
}

/// Status (text and JSON) and prune in batches smaller than the rows to delete.
async fn status_then_prune(postgres: bool) {
    let store = Store::new(postgres, true).await;
    let url = store.url();
    store.insert("billing", "invoice", 5, 3 * HOUR).await;
    store.insert("billing", "invoice", 2, 0).await;
    store.insert("", "audit", 1, 2 * DAY + HOUR).await;

    let doc = json_of(&["inbox", "status"], &url);
    assert_eq!(doc["rows"], 8, "{doc}");
    let oldest_ms = doc["oldest_age_ms"].as_i64().expect("oldest age");
    assert!(oldest_ms >= (2 * DAY + HOUR) * 1000, "{doc}");
    let receivers = doc["receivers"].as_array().expect("receivers");
    assert_eq!(receivers.len(), 2, "{doc}");
    assert_eq!(
        (&receivers[0]["consumer_group"], &receivers[0]["receiver"]),
        (&Value::from(""), &Value::from("audit"))
    );
    assert_eq!(receivers[0]["rows"], 1);
    assert_eq!(receivers[1]["receiver"], "invoice");
    assert_eq!(receivers[1]["consumer_group"], "billing");
    assert_eq!(receivers[1]["rows"], 7);
    let invoice_ms = receivers[1]["oldest_age_ms"].as_i64().expect("age");
    assert!((3 * HOUR * 1000..DAY * 1000).contains(&invoice_ms), "{doc}");
    assert!(receivers[1]["oldest_handled_at"].is_string(), "{doc}");

    let text = stdout_of(&["inbox", "status"], &url);
    assert!(text.contains("inbox rows:  8"), "{text}");
    assert!(text.contains("oldest row:  handled "), "{text}");
    let table: Vec<Vec<&str>> = text
        .lines()
        .skip_while(|line| !line.starts_with("GROUP"))
        .map(|line| line.split_whitespace().collect())
        .collect();
    assert_eq!(table.len(), 3, "{text}");
    assert_eq!(table[1][..3], ["(local)", "audit", "1"], "{text}");
    // GROUP RECEIVER ROWS OLDEST-HANDLED, then the age in words (`2days 1h 2s`).
    assert!(table[1][4..].join(" ").starts_with("2days 1h"), "{text}");
    assert_eq!(table[2][..3], ["billing", "invoice", "7"], "{text}");

    // 6 rows are older than an hour; batches of 2 take three statements and a last
    // empty one.
    let pruned = json_of(
        &["inbox", "prune", "--older-than", "1h", "--batch-size", "2"],
        &url,
    );
    assert_eq!(pruned["deleted"], 6, "{pruned}");
    assert_eq!(pruned["rows_left"], 2, "{pruned}");
    assert_eq!(pruned["older_than_s"], HOUR, "{pruned}");
    assert_eq!(pruned["batch_size"], 2, "{pruned}");
    let young = vec![("invoice".to_owned(), false); 2];
    assert_eq!(store.rows().await, young);

    // Nothing is older any more; the text says so.
    store.insert("billing", "invoice", 1, 2 * HOUR).await;
    let text = stdout_of(&["inbox", "prune", "--older-than", "90m"], &url);
    assert!(
        text.starts_with("deleted 1 inbox row(s) handled more than 1h 30m ago"),
        "{text}"
    );
    assert!(text.contains("2 row(s) left"), "{text}");
    assert_eq!(store.rows().await, young);
    store.remove().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_prune_on_postgres() {
    status_then_prune(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_prune_on_sqlite() {
    status_then_prune(false).await;
}

/// Without an inbox table, both commands exit with 1 and name the migration.
fn assert_no_table(url: &str) {
    for args in [
        &["inbox", "status"][..],
        &["inbox", "prune", "--older-than", "1h"],
    ] {
        let output = run(args, url);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(i32::from(exit_code::CHECK_FAILED)),
            "{args:?}: {stderr}"
        );
        assert!(stderr.contains("no inbox table"), "{args:?}: {stderr}");
        assert!(
            stderr.contains("event-bus outbox migrate"),
            "{args:?}: {stderr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_table_names_the_migration_and_creates_nothing() {
    let db = Store::new(true, false).await;
    assert_no_table(&db.url());
    let Store::Postgres(pg) = &db else {
        unreachable!()
    };
    let schema: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM information_schema.schemata WHERE schema_name = 'event_bus')",
    )
    .fetch_one(pg.pool())
    .await
    .expect("schemata");
    assert!(!schema, "the inbox commands created schema event_bus");
    db.remove().await;

    // A SQLite file with other tables, then no file at all (none is created).
    let file = Store::new(false, false).await;
    assert_no_table(&file.url());
    let missing = std::env::temp_dir()
        .join(unique_topic("inbox-cli"))
        .join("missing.db");
    assert_no_table(&format!("sqlite:{}", missing.display()));
    assert!(!missing.exists(), "created {}", missing.display());
    file.remove().await;
}

#[test]
fn bad_ages_and_batch_sizes_are_usage_errors() {
    for args in [
        &["inbox", "prune", "--older-than", "0s"][..],
        &["inbox", "prune", "--older-than", "3600"],
        &["inbox", "prune", "--batch-size", "0"],
    ] {
        let output = run(args, "sqlite::memory:");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(i32::from(exit_code::USAGE)),
            "{stderr}"
        );
    }
    // A bad variable says which one and what to write.
    let output = event_bus(&["inbox", "prune", "--database-url", "sqlite::memory:"])
        .env("EVENT_BUS_INBOX_RETENTION", "7")
        .output()
        .expect("event-bus runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(i32::from(exit_code::USAGE)));
    assert!(
        stderr.contains("EVENT_BUS_INBOX_RETENTION") && stderr.contains("e.g. `7d`"),
        "{stderr}"
    );
}

/// A relay process whose stderr goes to a file, SIGKILLed if the test ends before it
/// stopped.
struct Relay(Child, PathBuf);

impl Relay {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.1).unwrap_or_default()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_file(&self.1);
    }
}

/// Waits (up to [`WAIT`]) until the store holds `expected`.
async fn wait_for_rows(store: &Store, expected: &[(String, bool)], relay: &mut Relay) {
    let deadline = Instant::now() + WAIT;
    loop {
        let rows = store.rows().await;
        if rows == expected {
            return;
        }
        if let Ok(Some(status)) = relay.0.try_wait() {
            panic!(
                "the relay ended ({status}) with rows {rows:?}:\n{}",
                relay.log()
            );
        }
        assert!(
            Instant::now() < deadline,
            "rows {rows:?}, expected {expected:?}; relay log:\n{}",
            relay.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_relay_prunes_old_rows_at_start_and_every_interval() {
    let broker = KafkaCluster::shared().expect("Apache Kafka (run scripts/install-test-deps)");
    let registry = EmbeddedRegistry::start().await.expect("registry");
    let store = Store::new(true, true).await;
    store.insert("billing", "invoice", 3, 2 * DAY).await;
    store.insert("billing", "invoice", 1, 0).await;
    let fresh = vec![("invoice".to_owned(), false)];

    let log = std::env::temp_dir().join(format!("{}.log", unique_topic("inbox-relay")));
    let mut relay = Relay(
        event_bus(&["outbox", "relay"])
            .env("EVENT_BUS_OUTBOX_DATABASE_URL", store.url())
            .env(
                "EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS",
                broker.bootstrap_servers(),
            )
            .env("EVENT_BUS_SCHEMA_REGISTRY_URL", registry.url())
            .env("EVENT_BUS_OBSERVABILITY_ADDRESS", "127.0.0.1:0")
            .env("EVENT_BUS_INBOX_RETENTION", "1h")
            .env("EVENT_BUS_INBOX_PRUNE_INTERVAL", "1s")
            .env("EVENT_BUS_INBOX_PRUNE_BATCH", "2")
            .env("RUST_LOG", "warn,event_bus=info,event_bus_kafka=info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("start event-bus outbox relay"),
        log,
    );
    wait_for_rows(&store, &fresh, &mut relay).await;

    // Rows aged past the retention while it runs go at a later interval.
    store.insert("", "audit", 2, 2 * HOUR).await;
    store.insert("", "audit", 1, 0).await;
    let mut both = fresh.clone();
    both.insert(0, ("audit".to_owned(), false));
    wait_for_rows(&store, &both, &mut relay).await;

    // SIGTERM stops the pruner with the relay, which exits normally.
    let pid = relay.0.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status();
    assert!(killed.expect("kill runs").success());
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = relay.0.try_wait().expect("relay status") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the relay did not stop on SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(status.success(), "{status}: {}", relay.log());
    let log = relay.log();
    assert!(log.contains("inbox pruning started"), "{log}");
    store.remove().await;
}
