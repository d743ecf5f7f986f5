//! Database errors (PostgreSQL and SQLite, through sqlx).

use super::Failure;

/// Classifies a database error.
///
/// Lost or refused connections, an exhausted or closed pool, and the server's
/// "try again" answers (PostgreSQL serialization failures, deadlocks, lock timeouts,
/// statement timeouts, shutdowns, lack of resources; SQLite's busy and locked) are
/// retryable. Everything else (a constraint violated, a row or column that does not
/// decode, a configuration error) is permanent.
///
/// ```
/// use event_bus_kafka::failure::{of_database, Failure};
/// assert_eq!(of_database(&sqlx::Error::PoolTimedOut), Failure::Unavailable);
/// assert_eq!(of_database(&sqlx::Error::RowNotFound), Failure::Permanent);
/// ```
pub fn of_database(error: &sqlx::Error) -> Failure {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => Failure::Unavailable,
        sqlx::Error::Database(error) => {
            #[cfg(feature = "sqlite")]
            let sqlite = error
                .try_downcast_ref::<sqlx::sqlite::SqliteError>()
                .is_some();
            #[cfg(not(feature = "sqlite"))]
            let sqlite = false;
            match error.code() {
                Some(code) if sqlite => of_sqlite_code(&code),
                Some(code) => of_postgres_code(&code),
                None => Failure::Permanent,
            }
        }
        _ => Failure::Permanent,
    }
}

/// Whether `error` says a column the query names does not exist (PostgreSQL 42703,
/// SQLite "no such column"): the tables are older than the SDK's migrations.
pub(crate) fn is_missing_column(error: &sqlx::Error) -> bool {
    error.as_database_error().is_some_and(|e| {
        e.code().as_deref() == Some("42703") || e.message().starts_with("no such column")
    })
}

/// Whether `error` says a table (or its PostgreSQL schema) does not exist (PostgreSQL
/// 42P01 or 3F000, SQLite "no such table"): the migrations were not run there.
pub(crate) fn is_missing_table(error: &sqlx::Error) -> bool {
    error.as_database_error().is_some_and(|e| {
        matches!(e.code().as_deref(), Some("42P01" | "3F000"))
            || e.message().starts_with("no such table")
    })
}

/// Classifies a SQLite result code (sqlx gives it as a decimal number, often an
/// extended code whose low byte is the primary one).
fn of_sqlite_code(code: &str) -> Failure {
    match code.parse::<u32>().map(|extended| extended & 0xff) {
        Ok(5 | 6) => Failure::Transient,     // SQLITE_BUSY, SQLITE_LOCKED
        Ok(10 | 13) => Failure::Unavailable, // SQLITE_IOERR, SQLITE_FULL
        _ => Failure::Permanent,
    }
}

/// Classifies a PostgreSQL SQLSTATE.
fn of_postgres_code(code: &str) -> Failure {
    match code {
        // Serialization failure, deadlock, lock not available, statement timeout.
        "40001" | "40P01" | "55P03" | "57014" => Failure::Transient,
        // Admin or crash shutdown, cannot connect now; a read-only transaction (a
        // pooled connection to a primary that failed over and is now a standby).
        "57P01" | "57P02" | "57P03" | "25006" => Failure::Unavailable,
        // Connection exceptions and insufficient resources, by class.
        _ if code.starts_with("08") || code.starts_with("53") => Failure::Unavailable,
        _ => Failure::Permanent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_and_sqlite_codes() {
        assert_eq!(of_postgres_code("40P01"), Failure::Transient);
        assert_eq!(of_postgres_code("08006"), Failure::Unavailable);
        assert_eq!(of_postgres_code("53300"), Failure::Unavailable);
        assert_eq!(of_postgres_code("25006"), Failure::Unavailable);
        assert_eq!(of_postgres_code("23505"), Failure::Permanent);
        assert_eq!(of_sqlite_code("5"), Failure::Transient);
        assert_eq!(of_sqlite_code("517"), Failure::Transient);
        assert_eq!(of_sqlite_code("19"), Failure::Permanent);
        assert_eq!(of_sqlite_code("2067"), Failure::Permanent);
    }
}
