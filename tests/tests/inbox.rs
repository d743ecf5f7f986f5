//! The inbox (issue 16): transactional receivers deduplicated by `ce_id`, against real
//! PostgreSQL, SQLite and Apache Kafka.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use event_bus_core::dispatch::DeliveryContext;
use event_bus_examples::openedx::SessionLoginCompleted;
use event_bus_kafka::consumer::{EventConsumer, RetryPolicy, Shutdown, StatsSnapshot};
use event_bus_kafka::inbox::{
    database_failure, Inbox, InboxEntry, InboxStats, InboxStore, PostgresInbox, SqliteInbox,
};
use event_bus_kafka::outbox::{OutboxStore, PostgresOutbox, TransactionalOutbox};
use event_bus_kafka::prelude::*;
use event_bus_testkit::postgres::{admin_url, TestDatabase};
use event_bus_testkit::records::read_topic;
use event_bus_tests::stack::{login, Stack, WAIT};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

/// Runs a consumer of `bus` with `config` until `done` holds for its stats and the
/// inbox's (or [`WAIT`] passes), then shuts it down.
async fn run_until<S: InboxStore>(
    config: event_bus_kafka::consumer::ConsumerConfig,
    bus: EventBus,
    inbox: &Inbox<S>,
    done: impl Fn(&StatsSnapshot, &InboxStats) -> bool,
) -> StatsSnapshot {
    let consumer = EventConsumer::new(config, Arc::new(bus)).expect("consumer");
    let stats = consumer.stats();
    let (trigger, shutdown) = Shutdown::new();
    let task = tokio::spawn(consumer.run(shutdown));
    let started = Instant::now();
    while !done(&stats.snapshot(), &inbox.stats()) && started.elapsed() < WAIT {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    trigger.trigger();
    task.await.expect("task").expect("loop ends cleanly")
}

/// A migrated PostgreSQL inbox on `db` with a pool of `pool_size`, and the business
/// table `logins` (no unique key: a second write of an event would show).
async fn pg_inbox(db: &TestDatabase, pool_size: u32) -> PostgresInbox {
    let store = PostgresInbox::connect_with_pool_size(&db.url(), pool_size)
        .await
        .expect("connect");
    store.migrate().await.expect("migrate");
    sqlx::query("CREATE TABLE logins (ce_id UUID NOT NULL, user_id BIGINT NOT NULL)")
        .execute(store.pool())
        .await
        .expect("business table");
    store
}

/// A SQLite file of its own (deleted with the value) and its URL.
struct SqliteFile(PathBuf);

impl SqliteFile {
    fn new() -> Self {
        Self(std::env::temp_dir().join(format!("inbox-test-{}.db", Uuid::new_v4().simple())))
    }

    fn url(&self) -> String {
        format!("sqlite:{}", self.0.display())
    }
}

impl Drop for SqliteFile {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.0.display()));
        }
    }
}

/// A migrated SQLite inbox in `file`, with the business table `logins`.
async fn sqlite_inbox(file: &SqliteFile) -> SqliteInbox {
    let store = SqliteInbox::connect(&file.url()).await.expect("open");
    store.migrate().await.expect("migrate");
    sqlx::query("CREATE TABLE logins (ce_id TEXT NOT NULL, user_id INTEGER NOT NULL)")
        .execute(store.pool())
        .await
        .expect("business table");
    store
}

/// Connects `ledger` to `bus` through `inbox` (PostgreSQL): it writes one `logins` row
/// per event, and fails after writing on the attempts `fail_on` says.
fn pg_ledger(
    inbox: &Inbox<PostgresInbox>,
    bus: &mut EventBus,
    name: &str,
    fail_on: fn(&DeliveryContext) -> bool,
) {
    inbox
        .connect_fn(bus, name, move |event: &SessionLoginCompleted, ctx, tx| {
            Box::pin(async move {
                sqlx::query("INSERT INTO logins (ce_id, user_id) VALUES ($1, $2)")
                    .bind(ctx.metadata.id)
                    .bind(event.user.id)
                    .execute(&mut **tx)
                    .await
                    .map_err(database_failure)?;
                if fail_on(ctx) {
                    return Err(ReceiverError::new("fails after writing its row"));
                }
                Ok(())
            })
        })
        .expect("connect");
}

/// [`pg_ledger`] for SQLite.
fn sqlite_ledger(
    inbox: &Inbox<SqliteInbox>,
    bus: &mut EventBus,
    name: &str,
    fail_on: fn(&DeliveryContext) -> bool,
) {
    inbox
        .connect_fn(bus, name, move |event: &SessionLoginCompleted, ctx, tx| {
            Box::pin(async move {
                sqlx::query("INSERT INTO logins (ce_id, user_id) VALUES (?1, ?2)")
                    .bind(ctx.metadata.id.to_string())
                    .bind(event.user.id)
                    .execute(&mut **tx)
                    .await
                    .map_err(database_failure)?;
                if fail_on(ctx) {
                    return Err(ReceiverError::new("fails after writing its row"));
                }
                Ok(())
            })
        })
        .expect("connect");
}

fn never(_: &DeliveryContext) -> bool {
    false
}

fn always(_: &DeliveryContext) -> bool {
    true
}

fn on_first_attempt(ctx: &DeliveryContext) -> bool {
    ctx.attempt == 1
}

async fn pg_count(store: &PostgresInbox, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(store.pool())
        .await
        .expect("count")
}

async fn sqlite_count(store: &SqliteInbox, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(store.pool())
        .await
        .expect("count")
}

/// Produces one login and runs a consumer whose `ledger` fails once after writing;
/// checks what the consumer and the inbox counted, and returns the inbox.
async fn fail_once_then_succeed<S: InboxStore>(
    stack: &Stack,
    inbox: &Inbox<S>,
    bus: EventBus,
) -> Uuid {
    let sent = stack.producer().send(&login(7)).await.expect("sent");
    let stats = run_until(stack.consumer_config(), bus, inbox, |s, _| {
        s.records_handled >= 1
    })
    .await;
    assert_eq!(stats.records_handled, 1);
    assert_eq!(stats.records_dead_lettered, 0);
    let ledger = inbox.stats().receiver("ledger");
    assert_eq!(
        (ledger.handled, ledger.failed, ledger.duplicates),
        (1, 1, 0),
        "the first try failed and rolled back, the retry committed"
    );
    assert_eq!(stack.committed(), Some(1));
    sent.event_id
}

#[tokio::test]
async fn postgres_a_receiver_failing_after_its_write_leaves_nothing_and_its_retry_writes_once() {
    let stack = Stack::start("inbox-fail", "inbox-fail").await;
    let db = TestDatabase::create().await.expect("database");
    let inbox = Inbox::new(pg_inbox(&db, 4).await);
    let mut bus = EventBus::new();
    pg_ledger(&inbox, &mut bus, "ledger", on_first_attempt);

    let ce_id = fail_once_then_succeed(&stack, &inbox, bus).await;
    let store = inbox.store();
    assert_eq!(pg_count(store, "SELECT count(*) FROM logins").await, 1);
    let status = store.status().await.expect("status");
    assert_eq!(status.rows, 1);
    assert_eq!(status.receivers[0].consumer_group, stack.group);
    assert_eq!(status.receivers[0].receiver, "ledger");
    let (topic, partition, offset): (String, i32, i64) = sqlx::query_as(
        "SELECT topic, \"partition\", \"offset\" FROM event_bus.inbox WHERE ce_id = $1",
    )
    .bind(ce_id)
    .fetch_one(store.pool())
    .await
    .expect("inbox row of the event");
    assert_eq!((topic, partition, offset), (stack.topic.clone(), 0, 0));
}

#[tokio::test]
async fn sqlite_a_receiver_failing_after_its_write_leaves_nothing_and_its_retry_writes_once() {
    let stack = Stack::start("inbox-fail-lite", "inbox-fail-lite").await;
    let file = SqliteFile::new();
    let inbox = Inbox::new(sqlite_inbox(&file).await);
    let mut bus = EventBus::new();
    sqlite_ledger(&inbox, &mut bus, "ledger", on_first_attempt);

    let ce_id = fail_once_then_succeed(&stack, &inbox, bus).await;
    let store = inbox.store();
    assert_eq!(sqlite_count(store, "SELECT count(*) FROM logins").await, 1);
    let status = store.status().await.expect("status");
    assert_eq!(status.rows, 1);
    assert_eq!(status.receivers[0].consumer_group, stack.group);
    let group: String =
        sqlx::query_scalar("SELECT consumer_group FROM event_bus_inbox WHERE ce_id = ?1")
            .bind(ce_id.to_string())
            .fetch_one(store.pool())
            .await
            .expect("inbox row of the event");
    assert_eq!(group, stack.group);
}

/// Sends `count` logins of users `first..first + count`, each with its own username
/// (key), each twice with the same `ce_id`.
async fn send_each_twice(producer: &Producer, first: i64, count: i64) {
    let sends = (first..first + count).map(|n| async move {
        let mut event = login(n);
        event.user.pii.username = format!("user-{n}");
        let metadata = EventMetadata::for_event::<SessionLoginCompleted>();
        producer
            .send_with_metadata(&event, metadata.clone())
            .await
            .expect("sent");
        producer
            .send_with_metadata(&event, metadata)
            .await
            .expect("sent again");
    });
    futures::future::join_all(sends).await;
}

#[tokio::test]
async fn a_plain_receiver_sees_a_duplicate_the_transactional_one_beside_it_does_not() {
    let stack = Stack::start("inbox-dup", "inbox-dup").await;
    let db = TestDatabase::create().await.expect("database");
    let inbox = Inbox::new(pg_inbox(&db, 4).await);
    let mut bus = EventBus::new();
    let plain = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&plain);
    bus.connect_fn("plain", move |_: &SessionLoginCompleted, _| {
        seen.fetch_add(1, Ordering::SeqCst);
        Ok(())
    })
    .expect("connect");
    pg_ledger(&inbox, &mut bus, "ledger", never);

    send_each_twice(&stack.producer(), 1, 1).await;
    let stats = run_until(stack.consumer_config(), bus, &inbox, |s, _| {
        s.records_handled >= 2
    })
    .await;
    assert_eq!(stats.records_handled, 2);
    assert_eq!(
        plain.load(Ordering::SeqCst),
        2,
        "the plain receiver saw both"
    );
    let ledger = inbox.stats().receiver("ledger");
    assert_eq!((ledger.handled, ledger.duplicates), (1, 1));
    assert_eq!(
        pg_count(inbox.store(), "SELECT count(*) FROM logins").await,
        1
    );
    assert_eq!(stack.committed(), Some(2));
}

/// Events of [`many_keys_in_flight`].
const MANY: i64 = 150;

/// Sends [`MANY`] logins of as many keys, each twice, and consumes them with 8 in
/// flight; checks what the consumer and the inbox counted.
async fn many_keys_in_flight<S: InboxStore>(stack: &Stack, inbox: &Inbox<S>, bus: EventBus) {
    send_each_twice(&stack.producer(), 1, MANY).await;
    let mut config = stack.consumer_config();
    config.max_in_flight = 8;
    let events = u64::try_from(MANY).expect("small");
    let stats = run_until(config, bus, inbox, |s, _| s.records_handled >= 2 * events).await;
    assert_eq!(stats.records_handled, 2 * events);
    assert_eq!(stats.records_dead_lettered, 0);
    let ledger = inbox.stats().receiver("ledger");
    assert_eq!((ledger.handled, ledger.duplicates), (events, events));
    assert_eq!(inbox.store().status().await.expect("status").rows, events);
}

#[tokio::test]
async fn postgres_many_keys_in_flight_at_once_get_exactly_one_business_row_per_event() {
    let stack = Stack::start("inbox-many", "inbox-many").await;
    let db = TestDatabase::create().await.expect("database");
    let inbox = Inbox::new(pg_inbox(&db, 10).await);
    let mut bus = EventBus::new();
    pg_ledger(&inbox, &mut bus, "ledger", never);
    many_keys_in_flight(&stack, &inbox, bus).await;
    let store = inbox.store();
    assert_eq!(pg_count(store, "SELECT count(*) FROM logins").await, MANY);
    let distinct = pg_count(store, "SELECT count(DISTINCT ce_id) FROM logins").await;
    assert_eq!(distinct, MANY);
}

#[tokio::test]
async fn sqlite_many_keys_in_flight_at_once_get_exactly_one_business_row_per_event() {
    let stack = Stack::start("inbox-many-lite", "inbox-many-lite").await;
    let file = SqliteFile::new();
    let inbox = Inbox::new(sqlite_inbox(&file).await);
    let mut bus = EventBus::new();
    sqlite_ledger(&inbox, &mut bus, "ledger", never);
    many_keys_in_flight(&stack, &inbox, bus).await;
    let store = inbox.store();
    assert_eq!(
        sqlite_count(store, "SELECT count(*) FROM logins").await,
        MANY
    );
    let distinct = sqlite_count(store, "SELECT count(DISTINCT ce_id) FROM logins").await;
    assert_eq!(distinct, MANY);
}

/// Runs `sql` on the PostgreSQL server as its administrator.
async fn as_admin(sql: &str) {
    let (url, _) = admin_url();
    let options = PgConnectOptions::from_str(&url).expect("admin URL");
    let mut admin = PgConnection::connect_with(&options)
        .await
        .expect("admin connection");
    sqlx::query(sql).execute(&mut admin).await.expect(sql);
    let _ = admin.close().await;
}

#[tokio::test]
async fn a_database_gone_and_back_keeps_the_record_waiting_then_handles_it_once() {
    let stack = Stack::start("inbox-down", "inbox-down")
        .await
        .with_retry(RetryPolicy {
            // One attempt and one second: an outage that counted as attempts or time
            // would dead-letter the record at once. It waits instead
            // (ReceiverError::unavailable), however long the database is gone.
            max_attempts: 1,
            initial_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(200),
            max_elapsed: Duration::from_secs(1),
        });
    let db = TestDatabase::create().await.expect("database");
    let inbox = Inbox::new(pg_inbox(&db, 4).await);
    let mut bus = EventBus::new();
    pg_ledger(&inbox, &mut bus, "ledger", never);
    as_admin(&format!(r#"DROP DATABASE "{}" WITH (FORCE)"#, db.name())).await;

    let consumer = EventConsumer::new(stack.consumer_config(), Arc::new(bus)).expect("consumer");
    let consumer_stats = consumer.stats();
    let (trigger, shutdown) = Shutdown::new();
    let task = tokio::spawn(consumer.run(shutdown));
    stack.producer().send(&login(3)).await.expect("sent");
    let deadline = Instant::now() + WAIT;
    while inbox.stats().receiver("ledger").failed < 10 {
        assert!(Instant::now() < deadline, "no retries: {:?}", inbox.stats());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let waiting = consumer_stats.snapshot();
    assert_eq!(waiting.records_handled, 0, "the record waits");
    assert_eq!(waiting.records_dead_lettered, 0, "and is not dead-lettered");
    assert_eq!(stack.committed(), None, "nor committed past");

    // The database comes back: business table first, then the migrations (meanwhile
    // the missing inbox table is retried too).
    as_admin(&format!(r#"CREATE DATABASE "{}""#, db.name())).await;
    let fresh = PostgresInbox::connect(&db.url()).await.expect("connect");
    sqlx::query("CREATE TABLE logins (ce_id UUID NOT NULL, user_id BIGINT NOT NULL)")
        .execute(fresh.pool())
        .await
        .expect("business table");
    fresh.migrate().await.expect("migrate");
    let deadline = Instant::now() + WAIT;
    while consumer_stats.snapshot().records_handled < 1 {
        assert!(
            Instant::now() < deadline,
            "not handled: {:?}",
            inbox.stats()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    trigger.trigger();
    let stats = task.await.expect("task").expect("loop ends cleanly");
    assert_eq!(stats.records_dead_lettered, 0);
    assert_eq!(pg_count(&fresh, "SELECT count(*) FROM logins").await, 1);
    assert_eq!(inbox.stats().receiver("ledger").handled, 1);
    assert_eq!(stack.committed(), Some(1));
}

/// Dispatches one local login to `bus`; the failure of `ledger`, if any.
async fn dispatch_once(bus: &EventBus) -> Option<ReceiverError> {
    let ctx = DeliveryContext::local(EventMetadata::for_event::<SessionLoginCompleted>());
    let report = bus.dispatch(login(1), ctx).await;
    let failure = report.failures().next().map(|(_, error)| error.clone());
    failure
}

fn assert_names_the_migration(error: Option<ReceiverError>) {
    let error = error.expect("the inbox table is missing");
    assert!(error.is_retryable(), "retryable: {error}");
    assert!(
        error.message().contains("event-bus outbox migrate"),
        "names the migration: {error}"
    );
}

#[tokio::test]
async fn a_missing_inbox_table_is_a_retryable_failure_naming_the_migration() {
    // PostgreSQL without schema `event_bus`, then with the schema but no table.
    let db = TestDatabase::create().await.expect("database");
    let inbox = Inbox::new(PostgresInbox::connect(&db.url()).await.expect("connect"));
    let mut bus = EventBus::new();
    pg_ledger(&inbox, &mut bus, "ledger", never);
    assert_names_the_migration(dispatch_once(&bus).await);
    sqlx::query("CREATE SCHEMA event_bus")
        .execute(inbox.store().pool())
        .await
        .expect("schema");
    assert_names_the_migration(dispatch_once(&bus).await);
    let status = inbox.store().status().await.expect_err("no table");
    assert!(
        status.to_string().contains("event-bus outbox migrate"),
        "{status}"
    );

    // SQLite.
    let file = SqliteFile::new();
    let inbox = Inbox::new(SqliteInbox::connect(&file.url()).await.expect("open"));
    let mut bus = EventBus::new();
    sqlite_ledger(&inbox, &mut bus, "ledger", never);
    assert_names_the_migration(dispatch_once(&bus).await);

    // Migrated, the same dispatch goes through (local dispatch: group "").
    inbox.store().migrate().await.expect("migrate");
    sqlx::query("CREATE TABLE logins (ce_id TEXT NOT NULL, user_id INTEGER NOT NULL)")
        .execute(inbox.store().pool())
        .await
        .expect("business table");
    assert!(dispatch_once(&bus).await.is_none());
    let status = inbox.store().status().await.expect("status");
    assert_eq!(status.rows, 1);
    assert_eq!(status.receivers[0].consumer_group, "");
}

#[tokio::test]
async fn a_transaction_that_cannot_begin_is_a_retryable_failure() {
    // A pool towards a port where nothing listens.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
    let port = closed.local_addr().expect("address").port();
    drop(closed);
    let pool = sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(Duration::from_secs(2))
        .connect_lazy_with(
            PgConnectOptions::new()
                .host("127.0.0.1")
                .port(port)
                .username("postgres"),
        );
    let inbox = Inbox::new(PostgresInbox::new(pool));
    let mut bus = EventBus::new();
    pg_ledger(&inbox, &mut bus, "ledger", never);
    let error = dispatch_once(&bus).await.expect("no database");
    assert!(error.is_retryable(), "{error}");
    assert!(
        error.message().contains("cannot begin a transaction"),
        "{error}"
    );
    assert_eq!(inbox.stats().receiver("ledger").failed, 1);
}

/// Marks `n` events handled by `receiver` in group `g`, one transaction each.
async fn mark<S: InboxStore>(store: &S, receiver: &str, n: usize) -> Vec<Uuid> {
    let mut ids = Vec::new();
    for _ in 0..n {
        let ctx = DeliveryContext::from_record(
            EventMetadata::for_event::<SessionLoginCompleted>(),
            "t",
            0,
            1,
        )
        .with_consumer_group("g");
        let entry = InboxEntry::for_delivery(receiver, &ctx);
        let mut tx = store.pool().begin().await.expect("begin");
        assert!(store.mark_handled(&mut tx, &entry).await.expect("mark"));
        assert!(
            !store
                .mark_handled(&mut tx, &entry)
                .await
                .expect("mark again"),
            "a second mark is a duplicate"
        );
        tx.commit().await.expect("commit");
        ids.push(ctx.metadata.id);
    }
    ids
}

/// With 5 rows of `a` aged by `age_old` and 3 of `b` fresh: status counts them,
/// `prune` deletes the 5 in batches of 2, and a second prune nothing.
async fn check_status_and_prune<S: InboxStore>(store: &S, age_old: impl AsyncFnOnce(&[Uuid])) {
    let old = mark(store, "a", 5).await;
    mark(store, "b", 3).await;
    age_old(&old).await;
    let status = store.status().await.expect("status");
    assert_eq!(status.rows, 8);
    let per_receiver: Vec<_> = status
        .receivers
        .iter()
        .map(|r| (r.consumer_group.as_str(), r.receiver.as_str(), r.rows))
        .collect();
    assert_eq!(per_receiver, vec![("g", "a", 5), ("g", "b", 3)]);
    assert!(status.oldest_age.expect("rows") >= Duration::from_secs(2 * 3600));
    let hour = Duration::from_secs(3600);
    assert_eq!(store.prune(hour, 2).await.expect("prune"), 5);
    assert_eq!(store.prune(hour, 2).await.expect("prune again"), 0);
    let status = store.status().await.expect("status");
    assert_eq!(status.rows, 3);
    assert_eq!(status.receivers[0].receiver, "b");
}

#[tokio::test]
async fn status_counts_rows_and_prune_deletes_old_ones_in_batches() {
    let db = TestDatabase::create().await.expect("database");
    let store = pg_inbox(&db, 2).await;
    let pg = store.clone();
    check_status_and_prune(&store, async move |old: &[Uuid]| {
        sqlx::query("UPDATE event_bus.inbox SET handled_at = now() - interval '2 hours' WHERE ce_id = ANY($1)")
            .bind(old)
            .execute(pg.pool())
            .await
            .expect("age rows");
    })
    .await;

    let file = SqliteFile::new();
    let store = sqlite_inbox(&file).await;
    let lite = store.clone();
    check_status_and_prune(&store, async move |old: &[Uuid]| {
        for id in old {
            sqlx::query("UPDATE event_bus_inbox SET handled_at_ms = handled_at_ms - 7200000 WHERE ce_id = ?1")
                .bind(id.to_string())
                .execute(lite.pool())
                .await
                .expect("age row");
        }
    })
    .await;
}

#[tokio::test]
async fn a_redriven_event_runs_the_receiver_that_rolled_back_and_skips_the_one_that_committed() {
    let stack = Stack::start("inbox-redrive", "inbox-redrive")
        .await
        .with_retry(RetryPolicy {
            max_attempts: 2,
            initial_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(20),
            max_elapsed: Duration::from_secs(10),
        });
    let db = TestDatabase::create().await.expect("database");
    let store = pg_inbox(&db, 4).await;
    sqlx::query("CREATE TABLE audit (ce_id UUID NOT NULL)")
        .execute(store.pool())
        .await
        .expect("audit table");
    let inbox = Inbox::new(store);
    let connect = |ledger_works: bool| {
        let mut bus = EventBus::new();
        let fail_on: fn(&DeliveryContext) -> bool = if ledger_works { never } else { always };
        pg_ledger(&inbox, &mut bus, "ledger", fail_on);
        inbox
            .connect_fn(&mut bus, "audit", |_: &SessionLoginCompleted, ctx, tx| {
                Box::pin(async move {
                    sqlx::query("INSERT INTO audit (ce_id) VALUES ($1)")
                        .bind(ctx.metadata.id)
                        .execute(&mut **tx)
                        .await
                        .map_err(database_failure)?;
                    Ok(())
                })
            })
            .expect("connect audit");
        bus
    };
    stack.producer().send(&login(9)).await.expect("sent");
    run_until(stack.consumer_config(), connect(false), &inbox, |s, _| {
        s.records_dead_lettered >= 1
    })
    .await;
    assert_eq!(
        pg_count(inbox.store(), "SELECT count(*) FROM logins").await,
        0
    );
    assert_eq!(
        pg_count(inbox.store(), "SELECT count(*) FROM audit").await,
        1
    );

    // The whole event is redriven (to every receiver): audit has its inbox row and is
    // skipped; ledger rolled back every time, has none, and runs.
    let (result, out) = stack
        .cli(&["dlq", "redrive", "--topic", &stack.dlq_topic, "--execute"])
        .await;
    result.unwrap_or_else(|e| panic!("redrive: {e}\n{out}"));
    let before = inbox.stats();
    run_until(
        stack.consumer_config(),
        connect(true),
        &inbox,
        |_, inbox| inbox.receiver("ledger").handled >= 1,
    )
    .await;
    let after = inbox.stats();
    assert_eq!(after.receiver("ledger").handled, 1);
    assert_eq!(
        after.receiver("audit").duplicates - before.receiver("audit").duplicates,
        1,
        "audit skipped the redriven copy"
    );
    assert_eq!(
        pg_count(inbox.store(), "SELECT count(*) FROM logins").await,
        1
    );
    assert_eq!(
        pg_count(inbox.store(), "SELECT count(*) FROM audit").await,
        1
    );
    let letters = read_topic(
        stack.broker.bootstrap_servers(),
        &stack.dlq_topic,
        2,
        Duration::from_secs(2),
    )
    .expect("read");
    assert_eq!(letters.len(), 1, "nothing dead-lettered again");
}

#[tokio::test]
async fn an_event_enqueued_in_the_inbox_transaction_is_stored_once_despite_a_retry() {
    let stack = Stack::start("inbox-outbox", "inbox-outbox").await;
    let db = TestDatabase::create().await.expect("database");
    let outbox_store = PostgresOutbox::connect_with_pool_size(&db.url(), 4)
        .await
        .expect("connect");
    outbox_store.migrate().await.expect("migrate");
    let inbox = Inbox::new(PostgresInbox::from_outbox(&outbox_store));
    let outbox = TransactionalOutbox::new(
        stack.producer().encoder().clone(),
        Arc::new(outbox_store.clone()),
    );
    let mut bus = EventBus::new();
    inbox
        .connect_fn(
            &mut bus,
            "ledger",
            move |event: &SessionLoginCompleted, ctx, tx| {
                let outbox = outbox.clone();
                Box::pin(async move {
                    let mut derived = event.clone();
                    derived.user.id += 1_000;
                    outbox
                        .enqueue(tx, &derived)
                        .await
                        .map_err(ReceiverError::from_error)?;
                    if on_first_attempt(ctx) {
                        return Err(ReceiverError::new("fails after enqueueing"));
                    }
                    Ok(())
                })
            },
        )
        .expect("connect");

    fail_once_then_succeed(&stack, &inbox, bus).await;
    let status = outbox_store.status(10).await.expect("outbox status");
    assert_eq!(
        status.pending, 1,
        "one derived event, from the committed try"
    );
}

#[tokio::test]
async fn a_receiver_that_swallows_a_failed_statement_is_not_counted_as_handled() {
    // PostgreSQL aborts the transaction at the failed statement and answers the later
    // COMMIT with a rollback and no error: without the check before the commit, the
    // event counted as handled while its row and the inbox row were gone.
    let db = TestDatabase::create().await.expect("database");
    let inbox = Inbox::new(pg_inbox(&db, 2).await);
    let mut bus = EventBus::new();
    inbox
        .connect_fn(
            &mut bus,
            "ledger",
            |event: &SessionLoginCompleted, ctx, tx| {
                Box::pin(async move {
                    sqlx::query("INSERT INTO logins (ce_id, user_id) VALUES ($1, $2)")
                        .bind(ctx.metadata.id)
                        .bind(event.user.id)
                        .execute(&mut **tx)
                        .await
                        .map_err(database_failure)?;
                    // The receiver's bug: an error it does not return.
                    let _ = sqlx::query("INSERT INTO no_such_table VALUES (1)")
                        .execute(&mut **tx)
                        .await;
                    Ok(())
                })
            },
        )
        .expect("connect");

    let error = dispatch_once(&bus).await.expect("the dispatch fails");
    assert!(error.is_retryable(), "retryable: {error}");
    assert!(
        error.message().contains("did not return"),
        "says what went wrong: {error}"
    );
    let stats = inbox.stats().receiver("ledger");
    assert_eq!((stats.handled, stats.failed), (0, 1), "{stats:?}");
    let store = inbox.store();
    assert_eq!(pg_count(store, "SELECT count(*) FROM logins").await, 0);
    assert_eq!(
        pg_count(store, "SELECT count(*) FROM event_bus.inbox").await,
        0
    );
}
