//! Fresh PostgreSQL databases: created, usable, dropped.

use std::str::FromStr;

use event_bus_testkit::postgres::{admin_url, database_exists, TestDatabase};
use sqlx::postgres::PgConnectOptions;

fn admin_options() -> PgConnectOptions {
    PgConnectOptions::from_str(&admin_url().0).expect("admin URL")
}

#[tokio::test]
async fn a_test_database_is_created_usable_and_dropped() {
    let db = TestDatabase::create().await.expect("create test database");
    let name = db.name().to_owned();
    assert!(
        database_exists(&admin_options(), &name)
            .await
            .expect("check"),
        "{name} should exist"
    );

    sqlx::query("CREATE TABLE notes (id BIGINT PRIMARY KEY, body TEXT NOT NULL)")
        .execute(db.pool())
        .await
        .expect("create table");
    sqlx::query("INSERT INTO notes (id, body) VALUES (1, 'hello'), (2, 'world')")
        .execute(db.pool())
        .await
        .expect("insert");
    let bodies: Vec<String> = sqlx::query_scalar("SELECT body FROM notes ORDER BY id")
        .fetch_all(db.pool())
        .await
        .expect("select");
    assert_eq!(bodies, ["hello", "world"]);
    let current: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(db.pool())
        .await
        .expect("current_database");
    assert_eq!(current, name);

    db.drop_database().await.expect("drop");
    assert!(
        !database_exists(&admin_options(), &name)
            .await
            .expect("check"),
        "{name} should be gone"
    );
}

#[tokio::test]
async fn the_url_reaches_the_same_database() {
    let db = TestDatabase::create().await.expect("create test database");
    let pool = sqlx::PgPool::connect(&db.url())
        .await
        .expect("connect by URL");
    let current: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&pool)
        .await
        .expect("current_database");
    assert_eq!(current, db.name());
    // Left open on purpose: drop_database uses WITH (FORCE).
    db.drop_database()
        .await
        .expect("drop with a connection still open");
}

#[tokio::test]
async fn two_databases_are_isolated() {
    let a = TestDatabase::create().await.expect("create a");
    let b = TestDatabase::create().await.expect("create b");
    assert_ne!(a.name(), b.name());
    sqlx::query("CREATE TABLE only_in_a (id INT)")
        .execute(a.pool())
        .await
        .expect("create table in a");
    let in_b: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM information_schema.tables WHERE table_name = 'only_in_a')",
    )
    .fetch_one(b.pool())
    .await
    .expect("query b");
    assert!(!in_b);
    a.drop_database().await.expect("drop a");
    b.drop_database().await.expect("drop b");
}

#[tokio::test]
async fn dropping_without_drop_database_still_removes_it() {
    let db = TestDatabase::create().await.expect("create test database");
    let name = db.name().to_owned();
    drop(db);
    assert!(
        !database_exists(&admin_options(), &name)
            .await
            .expect("check"),
        "{name} should be gone after Drop"
    );
}

#[tokio::test]
async fn an_unreachable_server_gives_a_connect_error() {
    let free_port = event_bus_testkit::ports::free_loopback_port().expect("port");
    let admin = PgConnectOptions::new()
        .host("127.0.0.1")
        .port(free_port)
        .username("postgres");
    let error = TestDatabase::create_with(admin)
        .await
        .expect_err("nothing listens there");
    assert!(
        matches!(
            error,
            event_bus_testkit::postgres::PostgresError::Connect { .. }
        ),
        "{error:?}"
    );
    assert!(
        error.to_string().contains(&free_port.to_string()),
        "{error}"
    );
}
