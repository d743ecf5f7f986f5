//! The SQLite outbox store: the embedded default for a single instance (a file, or
//! `sqlite::memory:` in tests). Table `event_bus_outbox`.
//!
//! SQLite has no `SKIP LOCKED` and one writer at a time, so a claim is a plain read and
//! lanes are owned by the store's in-process claim lock: run **one relay per database**
//! (several in one process, on clones of one store, take turns). Claims do not hold a
//! write transaction while publishing, so inserts are never blocked by the relay.
//! A lane whose head is parked is not claimed until the row is retried or dropped (see
//! [`OutboxStore`](super::OutboxStore)).

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
};
use sqlx::{Sqlite, SqliteConnection, Transaction};
use tokio::sync::{watch, Mutex, OwnedMutexGuard};

use super::backlog::BacklogLimit;
use super::error::OutboxError;
use super::headers_column::{headers_from_json, headers_to_json};
use super::lane::Lane;
use super::row::{
    decode_claimed, BatchOutcome, OutboxId, OutboxRow, ParkedFilter, ParkedRow, StoredRow,
    UnreadableRow,
};
use super::status::{age, FailingKey, OutboxStatus};
use super::store::{ClaimLimits, ClaimedBatch, OutboxStore, OutboxWakeup, TransactionalStore};
use crate::producer::EncodedRecord;

const INSERT_SQL: &str = "INSERT INTO event_bus_outbox \
    (lane, topic, message_key, payload, headers, event_type, event_id, key_text, created_at_ms, next_attempt_at_ms) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9) RETURNING id";

const ROW_COLUMNS: &str =
    "o.id, o.lane, o.topic, o.message_key, o.payload, o.headers, o.event_type, o.event_id, \
    o.key_text, o.created_at_ms, o.attempts, o.last_error, o.next_attempt_at_ms, \
    o.park_attempts, o.first_failed_at_ms";

const FAILING_SQL: &str =
    "SELECT f.lane, f.topic, f.key_text, f.id, f.attempts, f.last_error, f.next_attempt_at_ms, \
        (SELECT count(*) FROM event_bus_outbox w WHERE w.lane = f.lane) AS waiting \
    FROM event_bus_outbox f \
    WHERE f.attempts > 0 AND f.parked_at_ms IS NULL \
      AND NOT EXISTS (SELECT 1 FROM event_bus_outbox e WHERE e.lane = f.lane AND e.id < f.id) \
    ORDER BY f.id \
    LIMIT ?1";

/// Parked rows matching a [`ParkedFilter`]: `?1` ids as a JSON array (empty: any),
/// `?2` topic, `?3` key text (NULL: any).
const PARKED_WHERE: &str = "parked_at_ms IS NOT NULL \
    AND (?1 = '[]' OR id IN (SELECT value FROM json_each(?1))) \
    AND (?2 IS NULL OR topic = ?2) \
    AND (?3 IS NULL OR key_text = ?3)";

/// The SQLite outbox. Cheap to clone; clones share the pool, the backlog estimate, the
/// claim lock and the wake-up signal.
///
/// ```no_run
/// use event_bus_kafka::outbox::{OutboxStore, SqliteOutbox};
/// # async fn demo() -> Result<(), event_bus_kafka::outbox::OutboxError> {
/// let outbox = SqliteOutbox::connect("sqlite:outbox.db").await?;
/// outbox.migrate().await?;
/// println!("{} waiting", outbox.status(10).await?.pending);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct SqliteOutbox {
    pool: SqlitePool,
    backlog: Arc<BacklogLimit>,
    claim_lock: Arc<Mutex<()>>,
    inserted: Arc<watch::Sender<u64>>,
}

impl SqliteOutbox {
    /// A store on `pool` with the default backlog limit (100 000).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), sqlx::Error> {
    /// let pool = sqlx::SqlitePool::connect("sqlite:outbox.db?mode=rwc").await?;
    /// let outbox = event_bus_kafka::outbox::SqliteOutbox::new(pool);
    /// # Ok(()) }
    /// ```
    pub fn new(pool: SqlitePool) -> Self {
        Self {
            pool,
            backlog: Arc::new(BacklogLimit::new(100_000)),
            claim_lock: Arc::new(Mutex::new(())),
            inserted: Arc::new(watch::Sender::new(0)),
        }
    }

    /// Opens (creating it if missing) the database at `url`: `sqlite:path/outbox.db`, or
    /// `sqlite::memory:` (one connection, gone when the store is dropped). Files use
    /// WAL journaling and a 10 s busy timeout.
    ///
    /// See the type's example.
    pub async fn connect(url: &str) -> Result<Self, OutboxError> {
        let memory = url.contains(":memory:") || url.contains("mode=memory");
        let mut options = SqliteConnectOptions::from_str(url)
            .map_err(OutboxError::db("parsing the SQLite URL"))?
            .create_if_missing(true)
            .busy_timeout(Duration::from_secs(10));
        if !memory {
            options = options.journal_mode(SqliteJournalMode::Wal);
        }
        let pool_options = if memory {
            // Every connection to `:memory:` is a database of its own: keep exactly one.
            SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            SqlitePoolOptions::new().max_connections(4)
        };
        let pool = pool_options
            .connect_with(options)
            .await
            .map_err(OutboxError::db("opening the SQLite database"))?;
        Ok(Self::new(pool))
    }

    /// Sets the backlog limit: beyond it inserts fail with [`OutboxError::Full`].
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), event_bus_kafka::outbox::OutboxError> {
    /// let outbox = event_bus_kafka::outbox::SqliteOutbox::connect("sqlite::memory:").await?.with_max_backlog(10);
    /// assert_eq!(outbox.max_backlog(), 10);
    /// # Ok(()) }
    /// ```
    pub fn with_max_backlog(mut self, max_backlog: u64) -> Self {
        self.backlog = Arc::new(BacklogLimit::new(max_backlog));
        self
    }

    /// The backlog limit.
    ///
    /// See [`with_max_backlog`](Self::with_max_backlog).
    pub fn max_backlog(&self) -> u64 {
        self.backlog.max()
    }

    /// The pool (begin transactions for [`insert_in`](TransactionalStore::insert_in) on it).
    ///
    /// ```no_run
    /// # async fn demo(outbox: event_bus_kafka::outbox::SqliteOutbox) -> Result<(), sqlx::Error> {
    /// let tx = outbox.pool().begin().await?;
    /// # Ok(()) }
    /// ```
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Creates the outbox table (idempotent). The migration is tracked in the
    /// database's `_sqlx_migrations`; if your application runs its own sqlx migrations on
    /// the same database, call `set_ignore_missing(true)` on your migrator (or copy
    /// `migrations/sqlite` into yours and skip this).
    ///
    /// See the type's example.
    pub async fn migrate(&self) -> Result<(), OutboxError> {
        let mut migrator: Migrator = sqlx::migrate!("./migrations/sqlite");
        migrator.set_ignore_missing(true);
        migrator
            .run(&self.pool)
            .await
            .map_err(OutboxError::Migrate)?;
        tracing::info!("outbox migrations applied (SQLite)");
        Ok(())
    }

    fn signal_inserted(&self) {
        self.inserted.send_modify(|n| *n = n.wrapping_add(1));
    }
}

async fn count_on(conn: &mut SqliteConnection) -> Result<u64, OutboxError> {
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM event_bus_outbox")
        .fetch_one(conn)
        .await
        .map_err(OutboxError::db("counting waiting events"))?;
    Ok(u64::try_from(count).unwrap_or(0))
}

async fn insert_on(
    conn: &mut SqliteConnection,
    record: &EncodedRecord,
) -> Result<OutboxId, OutboxError> {
    let id: i64 = sqlx::query_scalar(INSERT_SQL)
        .bind(Lane::of(record).0)
        .bind(&record.topic)
        .bind(record.key.as_deref())
        .bind(record.value.as_slice())
        .bind(headers_to_json(&record.headers))
        .bind(&record.event_type)
        .bind(record.event_id.to_string())
        .bind(record.key_text.as_deref())
        .bind(Utc::now().timestamp_millis())
        .fetch_one(conn)
        .await
        .map_err(OutboxError::db("storing an event"))?;
    Ok(OutboxId(id))
}

#[async_trait]
impl OutboxStore for SqliteOutbox {
    type Batch = SqliteBatch;
    type Wakeup = SqliteWakeup;

    async fn insert(&self, record: &EncodedRecord) -> Result<OutboxId, OutboxError> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(OutboxError::db("connecting to store an event"))?;
        self.backlog.admit(1, || count_on(&mut conn)).await?;
        let id = insert_on(&mut conn, record).await?;
        self.backlog.added(1);
        drop(conn);
        self.signal_inserted();
        Ok(id)
    }

    async fn insert_many(&self, records: &[EncodedRecord]) -> Result<Vec<OutboxId>, OutboxError> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(OutboxError::db("starting to store events"))?;
        self.backlog
            .admit(records.len() as u64, || count_on(&mut tx))
            .await?;
        let mut ids = Vec::with_capacity(records.len());
        for record in records {
            ids.push(insert_on(&mut tx, record).await?);
        }
        tx.commit()
            .await
            .map_err(OutboxError::db("committing stored events"))?;
        self.backlog.added(ids.len() as u64);
        self.signal_inserted();
        Ok(ids)
    }

    async fn lane_waiting(&self, lane: Lane) -> Result<bool, OutboxError> {
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM event_bus_outbox WHERE lane = ?1)")
            .bind(lane.0)
            .fetch_one(&self.pool)
            .await
            .map_err(OutboxError::db("checking for waiting events of a key"))
    }

    async fn claim(&self, limits: ClaimLimits) -> Result<SqliteBatch, OutboxError> {
        let guard = self.claim_lock.clone().lock_owned().await;
        let sql = format!(
            "SELECT {ROW_COLUMNS} FROM event_bus_outbox o \
             WHERE o.lane IN ( \
                SELECT h.lane FROM event_bus_outbox h \
                WHERE h.next_attempt_at_ms <= ?1 AND h.parked_at_ms IS NULL \
                  AND NOT EXISTS (SELECT 1 FROM event_bus_outbox e WHERE e.lane = h.lane AND e.id < h.id) \
                ORDER BY h.id LIMIT ?2) \
             ORDER BY o.id LIMIT ?3"
        );
        let fetched: Vec<SqliteRow> = sqlx::query(&sql)
            .bind(Utc::now().timestamp_millis())
            .bind(i64::try_from(limits.max_lanes).unwrap_or(i64::MAX))
            .bind(i64::try_from(limits.max_rows).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await
            .map_err(OutboxError::db("claiming due events"))?;
        let (rows, unreadable) = decode_claimed::<_, SqliteOutboxRow>(&fetched)?;
        Ok(SqliteBatch {
            pool: self.pool.clone(),
            rows,
            unreadable,
            backlog: self.backlog.clone(),
            _lanes: guard,
        })
    }

    async fn next_retry_in(&self) -> Result<Option<Duration>, OutboxError> {
        let at: Option<i64> = sqlx::query_scalar(
            "SELECT min(next_attempt_at_ms) FROM event_bus_outbox WHERE attempts > 0 AND parked_at_ms IS NULL",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(OutboxError::db("finding the next retry"))?;
        Ok(at.map(|at| {
            let ms = at.saturating_sub(Utc::now().timestamp_millis()).max(0);
            Duration::from_millis(u64::try_from(ms).unwrap_or(0))
        }))
    }

    async fn wakeup(&self) -> Result<SqliteWakeup, OutboxError> {
        Ok(SqliteWakeup {
            inserted: self.inserted.subscribe(),
        })
    }

    async fn status(&self, failing_keys_limit: usize) -> Result<OutboxStatus, OutboxError> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(OutboxError::db("connecting for the status"))?;
        let pending = count_on(&mut conn).await?;
        let oldest: Option<i64> =
            sqlx::query_scalar("SELECT created_at_ms FROM event_bus_outbox ORDER BY id LIMIT 1")
                .fetch_optional(&mut *conn)
                .await
                .map_err(OutboxError::db("finding the oldest event"))?;
        let failing_keys_total: i64 = sqlx::query_scalar(
            "SELECT count(DISTINCT lane) FROM event_bus_outbox WHERE attempts > 0 AND parked_at_ms IS NULL",
        )
        .fetch_one(&mut *conn)
        .await
        .map_err(OutboxError::db("counting failing keys"))?;
        let failing: Vec<SqliteFailingKey> = sqlx::query_as(FAILING_SQL)
            .bind(i64::try_from(failing_keys_limit).unwrap_or(i64::MAX))
            .fetch_all(&mut *conn)
            .await
            .map_err(OutboxError::db("listing failing keys"))?;
        let (parked, oldest_parked): (i64, Option<i64>) = sqlx::query_as(
            "SELECT count(*), min(parked_at_ms) FROM event_bus_outbox WHERE parked_at_ms IS NOT NULL",
        )
        .fetch_one(&mut *conn)
        .await
        .map_err(OutboxError::db("counting parked events"))?;
        let oldest = oldest.map(from_millis);
        Ok(OutboxStatus {
            parked: u64::try_from(parked).unwrap_or(0),
            oldest_parked_at: oldest_parked.map(from_millis),
            pending,
            oldest_created_at: oldest,
            oldest_age: oldest.map(age),
            failing_keys_total: u64::try_from(failing_keys_total).unwrap_or(0),
            failing_keys: failing
                .into_iter()
                .map(SqliteFailingKey::into_key)
                .collect(),
        })
    }

    async fn parked(
        &self,
        filter: &ParkedFilter,
        limit: usize,
    ) -> Result<Vec<ParkedRow>, OutboxError> {
        let sql = format!(
            "SELECT id, topic, key_text, event_type, CAST(event_id AS TEXT) AS event_id, attempts, \
                parked_at_ms, parked_reason, created_at_ms, \
                (SELECT count(*) FROM event_bus_outbox w WHERE w.lane = o.lane AND w.id > o.id) AS waiting \
             FROM event_bus_outbox o WHERE {PARKED_WHERE} ORDER BY id LIMIT ?4"
        );
        let rows: Vec<SqliteParkedRow> = sqlx::query_as(&sql)
            .bind(filter.ids_json())
            .bind(filter.topic.as_deref())
            .bind(filter.key.as_deref())
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await
            .map_err(OutboxError::db("listing parked events"))?;
        Ok(rows.into_iter().map(SqliteParkedRow::into_parked).collect())
    }

    async fn retry_parked(&self, filter: &ParkedFilter) -> Result<u64, OutboxError> {
        let sql = format!(
            "UPDATE event_bus_outbox SET parked_at_ms = NULL, parked_reason = NULL, attempts = 0, \
                park_attempts = 0, first_failed_at_ms = NULL, next_attempt_at_ms = ?4 \
             WHERE {PARKED_WHERE}"
        );
        let done = sqlx::query(&sql)
            .bind(filter.ids_json())
            .bind(filter.topic.as_deref())
            .bind(filter.key.as_deref())
            .bind(Utc::now().timestamp_millis())
            .execute(&self.pool)
            .await
            .map_err(OutboxError::db("unparking events"))?;
        self.signal_inserted();
        Ok(done.rows_affected())
    }

    async fn drop_parked(&self, filter: &ParkedFilter) -> Result<u64, OutboxError> {
        let sql = format!("DELETE FROM event_bus_outbox WHERE {PARKED_WHERE}");
        let done = sqlx::query(&sql)
            .bind(filter.ids_json())
            .bind(filter.topic.as_deref())
            .bind(filter.key.as_deref())
            .execute(&self.pool)
            .await
            .map_err(OutboxError::db("deleting parked events"))?;
        self.backlog.removed(done.rows_affected());
        self.signal_inserted();
        Ok(done.rows_affected())
    }
}

#[async_trait]
impl TransactionalStore for SqliteOutbox {
    type Database = Sqlite;

    async fn insert_in(
        &self,
        tx: &mut Transaction<'_, Sqlite>,
        record: &EncodedRecord,
    ) -> Result<OutboxId, OutboxError> {
        // Counted on the caller's connection: a one-connection pool is busy with `tx`.
        self.backlog.admit(1, || count_on(tx)).await?;
        let id = insert_on(tx, record).await?;
        self.backlog.added(1);
        // Wakes the relay early; it finds the row once `tx` commits (or polls).
        self.signal_inserted();
        Ok(id)
    }
}

/// Rows claimed from SQLite; holds the store's claim lock until completed or dropped.
///
/// ```no_run
/// # use event_bus_kafka::outbox::*;
/// # async fn demo(store: SqliteOutbox) -> Result<(), OutboxError> {
/// let batch: SqliteBatch = store.claim(ClaimLimits { max_rows: 10, max_lanes: 10 }).await?;
/// batch.complete(BatchOutcome::default()).await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct SqliteBatch {
    pool: SqlitePool,
    rows: Vec<OutboxRow>,
    unreadable: Vec<UnreadableRow>,
    backlog: Arc<BacklogLimit>,
    _lanes: OwnedMutexGuard<()>,
}

#[async_trait]
impl ClaimedBatch for SqliteBatch {
    fn rows(&self) -> &[OutboxRow] {
        &self.rows
    }

    fn unreadable(&self) -> &[UnreadableRow] {
        &self.unreadable
    }

    async fn complete(self, outcome: BatchOutcome) -> Result<(), OutboxError> {
        if outcome.is_empty() {
            return Ok(());
        }
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(OutboxError::db("starting to complete a batch"))?;
        if !outcome.delivered.is_empty() {
            let ids = serde_json::Value::from(
                outcome.delivered.iter().map(|id| id.0).collect::<Vec<_>>(),
            )
            .to_string();
            sqlx::query(
                "DELETE FROM event_bus_outbox WHERE id IN (SELECT value FROM json_each(?1))",
            )
            .bind(ids)
            .execute(&mut *tx)
            .await
            .map_err(OutboxError::db("deleting delivered events"))?;
        }
        let now = Utc::now().timestamp_millis();
        for failure in &outcome.failed {
            let delay = i64::try_from(failure.retry_in.as_millis()).unwrap_or(i64::MAX);
            sqlx::query(
                "UPDATE event_bus_outbox SET attempts = attempts + 1, last_error = ?2, next_attempt_at_ms = ?3, \
                    parked_at_ms = ?4, parked_reason = ?5, \
                    park_attempts = park_attempts + ?6, \
                    first_failed_at_ms = CASE WHEN ?6 = 1 THEN coalesce(first_failed_at_ms, ?7) \
                        ELSE first_failed_at_ms END \
                 WHERE id = ?1",
            )
            .bind(failure.id.0)
            .bind(&failure.error)
            .bind(now.saturating_add(delay))
            .bind(failure.park.as_ref().map(|_| now))
            .bind(failure.park.as_deref())
            .bind(i32::from(failure.counted))
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(OutboxError::db("recording failed attempts"))?;
        }
        tx.commit()
            .await
            .map_err(OutboxError::db("committing a batch"))?;
        self.backlog.removed(outcome.delivered.len() as u64);
        Ok(())
    }
}

/// Wakes the relay when this process stores rows (SQLite has no NOTIFY).
///
/// ```no_run
/// # use event_bus_kafka::outbox::*;
/// # async fn demo(store: SqliteOutbox) -> Result<(), OutboxError> {
/// let mut wakeup: SqliteWakeup = store.wakeup().await?;
/// wakeup.wait(std::time::Duration::from_secs(1)).await;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct SqliteWakeup {
    inserted: watch::Receiver<u64>,
}

#[async_trait]
impl OutboxWakeup for SqliteWakeup {
    async fn wait(&mut self, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, self.inserted.changed()).await;
    }
}

fn from_millis(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

#[derive(sqlx::FromRow)]
struct SqliteOutboxRow {
    id: i64,
    lane: i64,
    topic: String,
    message_key: Option<Vec<u8>>,
    payload: Vec<u8>,
    headers: String,
    event_type: String,
    event_id: String,
    key_text: Option<String>,
    created_at_ms: i64,
    attempts: i32,
    last_error: Option<String>,
    next_attempt_at_ms: i64,
    park_attempts: i32,
    first_failed_at_ms: Option<i64>,
}

impl StoredRow for SqliteOutboxRow {
    fn into_row(self) -> Result<OutboxRow, OutboxError> {
        let event_id = self.event_id.parse().map_err(|e| OutboxError::CorruptRow {
            id: self.id,
            reason: format!("event_id `{}` is not a UUID: {e}", self.event_id),
        })?;
        Ok(OutboxRow {
            id: OutboxId(self.id),
            lane: Lane(self.lane),
            record: EncodedRecord {
                headers: headers_from_json(self.id, &self.headers)?,
                topic: self.topic,
                key: self.message_key,
                value: self.payload,
                event_type: self.event_type,
                event_id,
                key_text: self.key_text,
            },
            created_at: from_millis(self.created_at_ms),
            attempts: self.attempts,
            last_error: self.last_error,
            next_attempt_at: from_millis(self.next_attempt_at_ms),
            park_attempts: self.park_attempts,
            first_failed_at: self.first_failed_at_ms.map(from_millis),
        })
    }
}

#[derive(sqlx::FromRow)]
struct SqliteFailingKey {
    lane: i64,
    topic: String,
    key_text: Option<String>,
    id: i64,
    attempts: i32,
    last_error: Option<String>,
    next_attempt_at_ms: i64,
    waiting: i64,
}

impl SqliteFailingKey {
    fn into_key(self) -> FailingKey {
        FailingKey {
            lane: Lane(self.lane),
            topic: self.topic,
            key_text: self.key_text,
            head_id: OutboxId(self.id),
            attempts: self.attempts,
            last_error: self.last_error,
            next_attempt_at: from_millis(self.next_attempt_at_ms),
            waiting: u64::try_from(self.waiting).unwrap_or(0),
        }
    }
}

#[derive(sqlx::FromRow)]
struct SqliteParkedRow {
    id: i64,
    topic: String,
    key_text: Option<String>,
    event_type: String,
    event_id: Option<String>,
    attempts: i32,
    parked_at_ms: i64,
    parked_reason: Option<String>,
    created_at_ms: i64,
    waiting: i64,
}

impl SqliteParkedRow {
    fn into_parked(self) -> ParkedRow {
        ParkedRow {
            id: OutboxId(self.id),
            topic: self.topic,
            key_text: self.key_text,
            event_type: self.event_type,
            event_id: self.event_id.unwrap_or_default(),
            attempts: self.attempts,
            parked_at: from_millis(self.parked_at_ms),
            reason: self.parked_reason.unwrap_or_default(),
            created_at: from_millis(self.created_at_ms),
            waiting_behind: u64::try_from(self.waiting).unwrap_or(0),
        }
    }
}
