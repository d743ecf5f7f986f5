//! Fresh PostgreSQL databases for tests, one per test, dropped afterwards.
//!
//! The server is the one at `postgres://postgres@127.0.0.1:5432/postgres`
//! (trust auth), or the one [`POSTGRES_URL_ENV`] names; that URL's user must
//! be allowed to create databases.
//!
//! # Example
//!
//! ```no_run
//! use event_bus_testkit::postgres::TestDatabase;
//!
//! # async fn demo() -> Result<(), event_bus_testkit::postgres::PostgresError> {
//! let db = TestDatabase::create().await?;
//! let one: i32 = sqlx::query_scalar("SELECT 1").fetch_one(db.pool()).await.expect("query");
//! assert_eq!(one, 1);
//! db.drop_database().await?;
//! # Ok(()) }
//! ```

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgConnection};

/// Environment variable holding the URL of an administrative connection
/// (any existing database, a user allowed to `CREATE DATABASE`).
///
/// # Example
///
/// ```
/// assert_eq!(event_bus_testkit::postgres::POSTGRES_URL_ENV, "EVENT_BUS_TEST_POSTGRES_URL");
/// ```
pub const POSTGRES_URL_ENV: &str = "EVENT_BUS_TEST_POSTGRES_URL";

/// The administrative URL used without [`POSTGRES_URL_ENV`].
///
/// # Example
///
/// ```
/// assert!(event_bus_testkit::postgres::DEFAULT_POSTGRES_URL.starts_with("postgres://"));
/// ```
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Errors from creating or dropping test databases. Messages name the server
/// (host and port) but never a password.
///
/// # Example
///
/// ```no_run
/// use event_bus_testkit::postgres::{PostgresError, TestDatabase};
///
/// # async fn demo() {
/// match TestDatabase::create().await {
///     Ok(db) => println!("created {}", db.name()),
///     Err(error @ PostgresError::Connect { .. }) => eprintln!("PostgreSQL is down: {error}"),
///     Err(error) => panic!("{error}"),
/// }
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
pub enum PostgresError {
    /// The administrative URL cannot be parsed.
    #[error("invalid PostgreSQL URL in {origin}: {source}")]
    InvalidUrl {
        /// Where the URL came from.
        origin: &'static str,
        /// The parse error.
        #[source]
        source: sqlx::Error,
    },
    /// The server cannot be reached.
    #[error(
        "cannot connect to PostgreSQL at {server}: {source} (is it running? scripts/test starts it; \
         set EVENT_BUS_TEST_POSTGRES_URL to use another server)"
    )]
    Connect {
        /// `host:port` of the server.
        server: String,
        /// The connection error.
        #[source]
        source: sqlx::Error,
    },
    /// `CREATE DATABASE` failed.
    #[error("cannot create database {database} on {server}: {source}")]
    Create {
        /// The database name.
        database: String,
        /// `host:port` of the server.
        server: String,
        /// The server's error.
        #[source]
        source: sqlx::Error,
    },
    /// `DROP DATABASE` failed.
    #[error("cannot drop database {database} on {server}: {source}")]
    Drop {
        /// The database name.
        database: String,
        /// `host:port` of the server.
        server: String,
        /// The server's error.
        #[source]
        source: sqlx::Error,
    },
}

/// A uniquely named database (`event_bus_test_{uuid}`), created empty and
/// dropped (`DROP DATABASE … WITH (FORCE)`) by [`drop_database`](Self::drop_database)
/// or, failing that, on drop.
///
/// Dropping without `drop_database` blocks the dropping thread briefly while a
/// helper thread removes the database; errors there are logged, not raised.
///
/// # Example
///
/// ```no_run
/// use event_bus_testkit::postgres::TestDatabase;
///
/// # async fn demo() -> Result<(), event_bus_testkit::postgres::PostgresError> {
/// let db = TestDatabase::create().await?;
/// sqlx::query("CREATE TABLE t (id BIGINT PRIMARY KEY)")
///     .execute(db.pool())
///     .await
///     .expect("create table");
/// # Ok(()) }
/// ```
pub struct TestDatabase {
    name: String,
    admin_options: PgConnectOptions,
    options: PgConnectOptions,
    pool: PgPool,
    dropped: bool,
}

impl std::fmt::Debug for TestDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestDatabase")
            .field("name", &self.name)
            .field("server", &server(&self.admin_options))
            .finish_non_exhaustive()
    }
}

impl TestDatabase {
    /// Creates a fresh database on the server [`admin_url`] names and connects
    /// a pool (up to 5 connections) to it.
    ///
    /// # Errors
    ///
    /// [`PostgresError::InvalidUrl`], [`PostgresError::Connect`] when the server
    /// is down, [`PostgresError::Create`] when the user may not create databases.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), event_bus_testkit::postgres::PostgresError> {
    /// let db = event_bus_testkit::postgres::TestDatabase::create().await?;
    /// println!("using {}", db.name());
    /// # Ok(()) }
    /// ```
    pub async fn create() -> Result<Self, PostgresError> {
        let (url, origin) = admin_url();
        let admin_options = PgConnectOptions::from_str(&url)
            .map_err(|source| PostgresError::InvalidUrl { origin, source })?;
        Self::create_with(admin_options).await
    }

    /// Like [`create`](Self::create), on the server and as the user of
    /// `admin_options`.
    ///
    /// # Errors
    ///
    /// As for [`create`](Self::create).
    ///
    /// # Example
    ///
    /// ```no_run
    /// use sqlx::postgres::PgConnectOptions;
    ///
    /// # async fn demo() -> Result<(), event_bus_testkit::postgres::PostgresError> {
    /// let admin = PgConnectOptions::new().host("127.0.0.1").username("postgres");
    /// let db = event_bus_testkit::postgres::TestDatabase::create_with(admin).await?;
    /// # Ok(()) }
    /// ```
    pub async fn create_with(admin_options: PgConnectOptions) -> Result<Self, PostgresError> {
        let name = format!("event_bus_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = connect_admin(&admin_options).await?;
        let created = sqlx::query(&format!(r#"CREATE DATABASE "{name}""#))
            .execute(&mut admin)
            .await;
        let _ = admin.close().await;
        created.map_err(|source| PostgresError::Create {
            database: name.clone(),
            server: server(&admin_options),
            source,
        })?;

        let options = admin_options.clone().database(&name);
        let pool = match PgPoolOptions::new()
            .max_connections(5)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options.clone())
            .await
        {
            Ok(pool) => pool,
            Err(source) => {
                let _ = drop_database_named(&admin_options, &name).await;
                return Err(PostgresError::Connect {
                    server: server(&admin_options),
                    source,
                });
            }
        };
        tracing::debug!(database = %name, server = %server(&admin_options), "created test database");
        Ok(TestDatabase {
            name,
            admin_options,
            options,
            pool,
            dropped: false,
        })
    }

    /// The database's name.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), event_bus_testkit::postgres::PostgresError> {
    /// let db = event_bus_testkit::postgres::TestDatabase::create().await?;
    /// assert!(db.name().starts_with("event_bus_test_"));
    /// # Ok(()) }
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A `postgres://` URL of the database, for code under test that takes a
    /// URL (it contains the password, if the administrative URL has one).
    ///
    /// # Example
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), event_bus_testkit::postgres::PostgresError> {
    /// let db = event_bus_testkit::postgres::TestDatabase::create().await?;
    /// assert!(db.url().ends_with(db.name()) || db.url().contains(&format!("/{}?", db.name())));
    /// # Ok(()) }
    /// ```
    pub fn url(&self) -> String {
        self.options.to_url_lossy().to_string()
    }

    /// Connection options for the database.
    ///
    /// # Example
    ///
    /// ```no_run
    /// use sqlx::Connection;
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// let db = event_bus_testkit::postgres::TestDatabase::create().await?;
    /// let conn = sqlx::PgConnection::connect_with(db.connect_options()).await?;
    /// # Ok(()) }
    /// ```
    pub fn connect_options(&self) -> &PgConnectOptions {
        &self.options
    }

    /// A pool connected to the database.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// let db = event_bus_testkit::postgres::TestDatabase::create().await?;
    /// sqlx::query("SELECT 1").execute(db.pool()).await?;
    /// # Ok(()) }
    /// ```
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Closes the pool and drops the database (`WITH (FORCE)`, so connections
    /// still open elsewhere do not block it).
    ///
    /// # Errors
    ///
    /// [`PostgresError::Connect`] or [`PostgresError::Drop`]; the database may
    /// then be left behind.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), event_bus_testkit::postgres::PostgresError> {
    /// let db = event_bus_testkit::postgres::TestDatabase::create().await?;
    /// db.drop_database().await?;
    /// # Ok(()) }
    /// ```
    pub async fn drop_database(mut self) -> Result<(), PostgresError> {
        self.dropped = true;
        self.pool.close().await;
        drop_database_named(&self.admin_options, &self.name).await
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        // Drop cannot await, and may run inside or outside a runtime: drop the
        // database from a thread with a runtime of its own, and wait for it.
        let admin_options = self.admin_options.clone();
        let name = self.name.clone();
        let worker = std::thread::Builder::new()
            .name("drop-test-database".to_owned())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                runtime
                    .block_on(drop_database_named(&admin_options, &name))
                    .map_err(std::io::Error::other)
            });
        let outcome = match worker {
            Ok(handle) => handle
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("drop thread panicked"))),
            Err(error) => Err(error),
        };
        if let Err(error) = outcome {
            tracing::warn!(database = %self.name, %error, "could not drop test database");
        }
    }
}

/// The administrative URL: [`POSTGRES_URL_ENV`] if set, else
/// [`DEFAULT_POSTGRES_URL`]; with a description of where it came from.
///
/// # Example
///
/// ```
/// let (url, _origin) = event_bus_testkit::postgres::admin_url();
/// assert!(url.starts_with("postgres"));
/// ```
pub fn admin_url() -> (String, &'static str) {
    match std::env::var(POSTGRES_URL_ENV) {
        Ok(url) if !url.is_empty() => (url, POSTGRES_URL_ENV),
        _ => (DEFAULT_POSTGRES_URL.to_owned(), "the default URL"),
    }
}

/// Whether a database named `name` exists on the server of `admin_options`.
///
/// # Errors
///
/// [`PostgresError::Connect`] when the server cannot be reached.
///
/// # Example
///
/// ```no_run
/// use std::str::FromStr;
/// use sqlx::postgres::PgConnectOptions;
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let admin = PgConnectOptions::from_str(event_bus_testkit::postgres::DEFAULT_POSTGRES_URL)?;
/// assert!(event_bus_testkit::postgres::database_exists(&admin, "postgres").await?);
/// # Ok(()) }
/// ```
pub async fn database_exists(
    admin_options: &PgConnectOptions,
    name: &str,
) -> Result<bool, PostgresError> {
    let mut admin = connect_admin(admin_options).await?;
    let exists = sqlx::query_scalar::<_, bool>(
        "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)",
    )
    .bind(name)
    .fetch_one(&mut admin)
    .await
    .map_err(|source| PostgresError::Connect {
        server: server(admin_options),
        source,
    });
    let _ = admin.close().await;
    exists
}

async fn connect_admin(admin_options: &PgConnectOptions) -> Result<PgConnection, PostgresError> {
    PgConnection::connect_with(admin_options)
        .await
        .map_err(|source| PostgresError::Connect {
            server: server(admin_options),
            source,
        })
}

async fn drop_database_named(
    admin_options: &PgConnectOptions,
    name: &str,
) -> Result<(), PostgresError> {
    let mut admin = connect_admin(admin_options).await?;
    let dropped = sqlx::query(&format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#))
        .execute(&mut admin)
        .await;
    let _ = admin.close().await;
    dropped.map_err(|source| PostgresError::Drop {
        database: name.to_owned(),
        server: server(admin_options),
        source,
    })?;
    tracing::debug!(database = %name, "dropped test database");
    Ok(())
}

/// `host:port` of the server, for messages (never the password).
fn server(options: &PgConnectOptions) -> String {
    format!("{}:{}", options.get_host(), options.get_port())
}
