//! The PostgreSQL outbox store (production): table `event_bus.outbox`.
//!
//! # How two relays keep each key's order
//!
//! A lane (topic + key) is owned by whichever relay holds the row lock on its **head**,
//! the lane's oldest row. A claim, in one transaction:
//!
//! 1. locks due heads (no older row of the same lane, `next_attempt_at <= now()`),
//!    oldest first, `FOR UPDATE SKIP LOCKED`: a head another relay holds is skipped,
//!    and so is its whole lane, because every other row of the lane has an older row
//!    (the head) and so is never a head itself;
//! 2. reads the first rows of each locked lane in id order: a prefix of each lane.
//!
//! The locks last until the batch's transaction commits, after the broker has
//! acknowledged and the rows are deleted; then the next row becomes the head. Under
//! READ COMMITTED a head deleted by another relay's commit is not returned by `FOR
//! UPDATE`, so a lane is never claimed twice. A backing-off head is not due, so its
//! lane waits (per-key head-of-line blocking) while other lanes flow.
//!
//! Heads are looked for among the oldest rows first (a window of a few batches: there
//! the first row of each lane is its head), so a claim does not scan the table. Lanes
//! with a parked row are left out of the window: their rows wait for a person, and
//! would otherwise fill it. When the window gives fewer heads than the claim may take
//! and rows lie beyond it (the keys there busy or backing off, or a few deep keys
//! filling it), a loose index scan over the lanes (one index probe per key) finds the
//! others.
//!
//! One caveat: ids come from a sequence, so two transactions writing the same key
//! *concurrently* may commit out of id order, and a relay may claim the later one
//! before the earlier one is visible. Writes of a key that are ordered (one after the
//! other, or serialized by a lock on the business row) are published in that order.
//!
//! A parked head (see [`OutboxStore`](super::OutboxStore)) is never due: its lane is
//! skipped like a backing-off one, until `event-bus outbox retry` clears the mark or
//! `drop` deletes the row.
//!
//! Row locks are tuple flags, not lock-table entries, so a batch of thousands of lanes
//! needs no `max_locks_per_transaction` tuning (advisory locks per lane would).

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions, PgRow};
use sqlx::{Connection, Postgres, Transaction};
use uuid::Uuid;

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

/// The schema holding the outbox table and its migration history.
///
/// ```
/// assert_eq!(event_bus_kafka::outbox::POSTGRES_SCHEMA, "event_bus");
/// ```
pub const POSTGRES_SCHEMA: &str = "event_bus";
/// The NOTIFY channel the insert trigger signals.
///
/// ```
/// assert_eq!(event_bus_kafka::outbox::NOTIFY_CHANNEL, "event_bus_outbox");
/// ```
pub const NOTIFY_CHANNEL: &str = "event_bus_outbox";

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// Key of the advisory lock that serializes concurrent migrations (ASCII "evbusmig").
const MIGRATION_LOCK: i64 = 0x6576_6275_736d_6967;

const INSERT_SQL: &str = "INSERT INTO event_bus.outbox \
    (lane, topic, message_key, payload, headers, event_type, event_id, key_text) \
    VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8) RETURNING id";

const INSERT_MANY_SQL: &str = "INSERT INTO event_bus.outbox \
    (lane, topic, message_key, payload, headers, event_type, event_id, key_text) \
    SELECT lane, topic, message_key, payload, headers::jsonb, event_type, event_id, key_text \
    FROM UNNEST($1::bigint[], $2::text[], $3::bytea[], $4::bytea[], $5::text[], $6::text[], $7::uuid[], $8::text[]) \
        WITH ORDINALITY AS r(lane, topic, message_key, payload, headers, event_type, event_id, key_text, ord) \
    ORDER BY ord \
    RETURNING id";

/// Due heads among the `$2` oldest rows of lanes without a parked row, oldest first,
/// locked, each with the number of rows the window held. Within those rows the first
/// row of a lane is its head (nothing older exists), so no per-row probe is needed. A
/// head another relay holds is skipped, and with it its lane.
///
/// A parked lane's rows stay until a person acts, so left in the window they would fill
/// it for good; they are left out instead (the parked rows are few and have an index of
/// their own, and `NOT IN` checks each row against a hash of their lanes).
const HEADS_SQL: &str =
    "WITH win AS MATERIALIZED (SELECT id, lane FROM event_bus.outbox \
             WHERE lane NOT IN (SELECT p.lane FROM event_bus.outbox p WHERE p.parked_at IS NOT NULL) \
             ORDER BY id LIMIT $2), \
         firsts AS (SELECT DISTINCT ON (lane) id FROM win ORDER BY lane, id) \
    SELECT h.id, h.lane, (SELECT count(*) FROM win) AS window_rows FROM event_bus.outbox h \
    WHERE h.id IN (SELECT id FROM firsts) \
      AND h.next_attempt_at <= now() AND h.parked_at IS NULL \
    ORDER BY h.id \
    LIMIT $1 \
    FOR UPDATE OF h SKIP LOCKED";

/// The same, found through the lanes instead of the rows: one index probe per lane
/// (a loose index scan), for when the window held fewer claimable heads than asked for
/// (the others busy or backing off, or a deep key filling the window).
const HEADS_BY_LANE_SQL: &str = "WITH RECURSIVE lanes(lane) AS ( \
        (SELECT lane FROM event_bus.outbox ORDER BY lane LIMIT 1) \
      UNION ALL \
        SELECT (SELECT o.lane FROM event_bus.outbox o WHERE o.lane > l.lane ORDER BY o.lane LIMIT 1) \
        FROM lanes l WHERE l.lane IS NOT NULL \
    ) \
    SELECT h.id, h.lane FROM event_bus.outbox h \
    WHERE h.id IN ( \
        SELECT (SELECT o.id FROM event_bus.outbox o WHERE o.lane = l.lane ORDER BY o.lane, o.id LIMIT 1) \
        FROM lanes l WHERE l.lane IS NOT NULL) \
      AND h.next_attempt_at <= now() AND h.parked_at IS NULL \
    ORDER BY h.id \
    LIMIT $1 \
    FOR UPDATE OF h SKIP LOCKED";

/// The first `$3` rows of each claimed lane from its locked head on (a prefix of the
/// lane; starting at the head skips the index entries of rows deleted before it), in
/// id order.
const LANE_ROWS_SQL: &str = "SELECT o.id, o.lane, o.topic, o.message_key, o.payload, o.headers::text AS headers, \
        o.event_type, o.event_id, o.key_text, o.created_at, o.attempts, o.last_error, o.next_attempt_at, \
        o.park_attempts, o.first_failed_at \
    FROM UNNEST($1::bigint[], $2::bigint[]) AS h(lane, head) \
    CROSS JOIN LATERAL ( \
        SELECT * FROM event_bus.outbox x WHERE x.lane = h.lane AND x.id >= h.head ORDER BY x.lane, x.id LIMIT $3 \
    ) o \
    ORDER BY o.id";

/// How many of the oldest rows a claim first looks for heads in, per row or lane asked.
const WINDOW_FACTOR: usize = 4;

const DELETE_SQL: &str = "DELETE FROM event_bus.outbox WHERE id = ANY($1)";

const FAIL_SQL: &str = "UPDATE event_bus.outbox o \
    SET attempts = o.attempts + 1, last_error = f.error, \
        next_attempt_at = clock_timestamp() + f.delay_ms * interval '1 millisecond', \
        parked_at = CASE WHEN f.park IS NULL THEN NULL ELSE clock_timestamp() END, \
        parked_reason = f.park, \
        park_attempts = o.park_attempts + CASE WHEN f.counted THEN 1 ELSE 0 END, \
        first_failed_at = CASE WHEN f.counted THEN coalesce(o.first_failed_at, clock_timestamp()) \
            ELSE o.first_failed_at END \
    FROM UNNEST($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::bool[]) \
        AS f(id, error, delay_ms, park, counted) \
    WHERE o.id = f.id";

/// Parked rows matching a [`ParkedFilter`]: `$1` ids (empty: any), `$2` topic, `$3` key
/// text (NULL: any).
const PARKED_WHERE: &str = "parked_at IS NOT NULL \
    AND (cardinality($1::bigint[]) = 0 OR id = ANY($1::bigint[])) \
    AND ($2::text IS NULL OR topic = $2::text) \
    AND ($3::text IS NULL OR key_text = $3::text)";

const FAILING_SQL: &str =
    "SELECT f.lane, f.topic, f.key_text, f.id, f.attempts, f.last_error, f.next_attempt_at, \
        (SELECT count(*) FROM event_bus.outbox w WHERE w.lane = f.lane) AS waiting \
    FROM event_bus.outbox f \
    WHERE f.attempts > 0 AND f.parked_at IS NULL \
      AND NOT EXISTS (SELECT 1 FROM event_bus.outbox e WHERE e.lane = f.lane AND e.id < f.id) \
    ORDER BY f.id \
    LIMIT $1";

/// The PostgreSQL outbox: production store, shared by any number of producers and
/// relays. Cheap to clone (one pool, one backlog estimate).
///
/// Run [`migrate`](Self::migrate) once at start-up (or `event-bus outbox migrate`): it
/// creates schema `event_bus` and the table, tracked in `event_bus._sqlx_migrations`,
/// apart from the application's own sqlx migrations.
///
/// ```no_run
/// use event_bus_kafka::outbox::PostgresOutbox;
/// # async fn demo() -> Result<(), event_bus_kafka::outbox::OutboxError> {
/// let outbox = PostgresOutbox::connect("postgres://app@localhost/app").await?.with_max_backlog(50_000);
/// outbox.migrate().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct PostgresOutbox {
    pool: PgPool,
    backlog: Arc<BacklogLimit>,
}

impl PostgresOutbox {
    /// A store on `pool` with the default backlog limit (100 000). The relay holds two
    /// of the pool's connections (its batch and its LISTEN).
    ///
    /// ```no_run
    /// # async fn demo(pool: sqlx::PgPool) {
    /// let outbox = event_bus_kafka::outbox::PostgresOutbox::new(pool);
    /// # }
    /// ```
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            backlog: Arc::new(BacklogLimit::new(100_000)),
        }
    }

    /// Connects a pool of 10 to `url`.
    ///
    /// See the type's example.
    pub async fn connect(url: &str) -> Result<Self, OutboxError> {
        Self::connect_with_pool_size(url, 10).await
    }

    /// Connects a pool of `max_connections` to `url`.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), event_bus_kafka::outbox::OutboxError> {
    /// let outbox = event_bus_kafka::outbox::PostgresOutbox::connect_with_pool_size("postgres://localhost/app", 4).await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect_with_pool_size(
        url: &str,
        max_connections: u32,
    ) -> Result<Self, OutboxError> {
        // sqlx would log an unknown parameter with its value (`sslpassword=…`).
        let url = super::pg_url::without_unknown_parameters(url);
        let options = PgConnectOptions::from_str(&url)
            .map_err(OutboxError::db("parsing the PostgreSQL URL"))?;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(2))
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(OutboxError::db("connecting to PostgreSQL"))?;
        Ok(Self::new(pool))
    }

    /// Sets the backlog limit: beyond it inserts fail with [`OutboxError::Full`].
    ///
    /// See the type's example.
    pub fn with_max_backlog(mut self, max_backlog: u64) -> Self {
        self.backlog = Arc::new(BacklogLimit::new(max_backlog));
        self
    }

    /// The backlog limit.
    ///
    /// ```no_run
    /// # fn demo(outbox: event_bus_kafka::outbox::PostgresOutbox) {
    /// assert_eq!(outbox.max_backlog(), 100_000);
    /// # }
    /// ```
    pub fn max_backlog(&self) -> u64 {
        self.backlog.max()
    }

    /// The pool (begin transactions for [`insert_in`](TransactionalStore::insert_in) on it).
    ///
    /// ```no_run
    /// # async fn demo(outbox: event_bus_kafka::outbox::PostgresOutbox) -> Result<(), sqlx::Error> {
    /// let tx = outbox.pool().begin().await?;
    /// # Ok(()) }
    /// ```
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The embedded migrations (for applications that run them their own way; they
    /// expect `search_path = event_bus` and the schema to exist).
    ///
    /// ```
    /// let migrator = event_bus_kafka::outbox::PostgresOutbox::migrator();
    /// assert!(migrator.iter().count() >= 1);
    /// ```
    pub fn migrator() -> &'static Migrator {
        &MIGRATOR
    }

    /// Creates schema `event_bus` and runs the outbox migrations (idempotent, safe to
    /// run from several processes at once).
    ///
    /// See the type's example.
    pub async fn migrate(&self) -> Result<(), OutboxError> {
        // A connection of its own: the migration changes its search_path, so it is
        // closed afterwards rather than returned to the pool.
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(OutboxError::db("connecting to migrate"))?
            .detach();
        let result = async {
            sqlx::query("SELECT pg_advisory_lock($1)")
                .bind(MIGRATION_LOCK)
                .execute(&mut conn)
                .await
                .map_err(OutboxError::db("locking the migrations"))?;
            sqlx::query("CREATE SCHEMA IF NOT EXISTS event_bus")
                .execute(&mut conn)
                .await
                .map_err(OutboxError::db("creating schema event_bus"))?;
            sqlx::query("SET search_path TO event_bus")
                .execute(&mut conn)
                .await
                .map_err(OutboxError::db("selecting schema event_bus"))?;
            MIGRATOR.run(&mut conn).await.map_err(OutboxError::Migrate)
        }
        .await;
        // Closing the connection releases the advisory lock.
        let _ = conn.close().await;
        if result.is_ok() {
            tracing::info!(schema = POSTGRES_SCHEMA, "outbox migrations applied");
        }
        result
    }

    async fn count(&self) -> Result<u64, OutboxError> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(OutboxError::db("connecting to count waiting events"))?;
        count_on(&mut conn).await
    }

    async fn admit(&self, n: usize) -> Result<(), OutboxError> {
        self.backlog.admit(n as u64, || self.count()).await
    }

    /// [`admit`](Self::admit) for a caller inside its own transaction, which holds one
    /// of the pool's connections. The count runs neither on the caller's transaction (a
    /// `count(*)` there makes two SERIALIZABLE enqueues conflict, and the second commit
    /// fail with 40001) nor on a connection it would wait for (once every connection is
    /// such a transaction, none would come): on an idle connection if one is free now,
    /// otherwise in the background, the estimate deciding meanwhile.
    ///
    /// Precision: the estimate is the last count plus this process's inserts minus its
    /// deletes. Until the background count lands (when a connection frees), other
    /// processes' inserts since the last count are missing from it, so the outbox may
    /// pass the limit by what they insert in that time; it cannot grow without bound,
    /// since every second (every 200 ms while full) a new count is due.
    async fn admit_in_transaction(&self, n: u64) -> Result<(), OutboxError> {
        if self.backlog.needs_count(n) {
            match self.pool.try_acquire() {
                Some(mut conn) => self.backlog.counted(count_on(&mut conn).await?),
                None => self.recount_in_background(),
            }
        }
        self.backlog.check(n)
    }

    /// Counts the table on a pool connection in a task of its own (one at a time): it
    /// waits for a connection without holding anyone's.
    fn recount_in_background(&self) {
        if !self.backlog.begin_recount() {
            return;
        }
        let (pool, backlog) = (self.pool.clone(), self.backlog.clone());
        tokio::spawn(async move {
            let counted = async {
                let mut conn = pool
                    .acquire()
                    .await
                    .map_err(OutboxError::db("connecting to count waiting events"))?;
                count_on(&mut conn).await
            }
            .await;
            match counted {
                Ok(exact) => backlog.counted(exact),
                Err(error) => {
                    tracing::warn!(%error, "could not recount the outbox backlog; deciding on the estimate")
                }
            }
            backlog.end_recount();
        });
    }
}

/// Counts the pending rows in a READ COMMITTED read-only transaction of its own, so the
/// count takes no part in the serializable transactions of other sessions even where
/// `default_transaction_isolation` is `serializable`.
async fn count_on(conn: &mut sqlx::PgConnection) -> Result<u64, OutboxError> {
    let mut tx = conn
        .begin()
        .await
        .map_err(OutboxError::db("counting waiting events"))?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL READ COMMITTED, READ ONLY")
        .execute(&mut *tx)
        .await
        .map_err(OutboxError::db("counting waiting events"))?;
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM event_bus.outbox")
        .fetch_one(&mut *tx)
        .await
        .map_err(OutboxError::db("counting waiting events"))?;
    tx.commit()
        .await
        .map_err(OutboxError::db("counting waiting events"))?;
    Ok(u64::try_from(count).unwrap_or(0))
}

async fn insert_on(
    conn: &mut sqlx::PgConnection,
    record: &EncodedRecord,
) -> Result<OutboxId, OutboxError> {
    let id: i64 = sqlx::query_scalar(INSERT_SQL)
        .bind(Lane::of(record).0)
        .bind(&record.topic)
        .bind(record.key.as_deref())
        .bind(record.value.as_slice())
        .bind(headers_to_json(&record.headers))
        .bind(&record.event_type)
        .bind(record.event_id)
        .bind(record.key_text.as_deref())
        .fetch_one(conn)
        .await
        .map_err(OutboxError::db("storing an event"))?;
    Ok(OutboxId(id))
}

#[async_trait]
impl OutboxStore for PostgresOutbox {
    type Batch = PostgresBatch;
    type Wakeup = PostgresWakeup;

    async fn insert(&self, record: &EncodedRecord) -> Result<OutboxId, OutboxError> {
        self.admit(1).await?;
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(OutboxError::db("connecting to store an event"))?;
        let id = insert_on(&mut conn, record).await?;
        self.backlog.added(1);
        Ok(id)
    }

    async fn insert_many(&self, records: &[EncodedRecord]) -> Result<Vec<OutboxId>, OutboxError> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        self.admit(records.len()).await?;
        let mut ids: Vec<i64> = sqlx::query_scalar(INSERT_MANY_SQL)
            .bind(records.iter().map(|r| Lane::of(r).0).collect::<Vec<_>>())
            .bind(records.iter().map(|r| r.topic.as_str()).collect::<Vec<_>>())
            .bind(records.iter().map(|r| r.key.as_deref()).collect::<Vec<_>>())
            .bind(
                records
                    .iter()
                    .map(|r| r.value.as_slice())
                    .collect::<Vec<_>>(),
            )
            .bind(
                records
                    .iter()
                    .map(|r| headers_to_json(&r.headers))
                    .collect::<Vec<_>>(),
            )
            .bind(
                records
                    .iter()
                    .map(|r| r.event_type.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(records.iter().map(|r| r.event_id).collect::<Vec<_>>())
            .bind(
                records
                    .iter()
                    .map(|r| r.key_text.as_deref())
                    .collect::<Vec<_>>(),
            )
            .fetch_all(&self.pool)
            .await
            .map_err(OutboxError::db("storing events"))?;
        ids.sort_unstable();
        self.backlog.added(ids.len() as u64);
        Ok(ids.into_iter().map(OutboxId).collect())
    }

    async fn lane_waiting(&self, lane: Lane) -> Result<bool, OutboxError> {
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM event_bus.outbox WHERE lane = $1)")
            .bind(lane.0)
            .fetch_one(&self.pool)
            .await
            .map_err(OutboxError::db("checking for waiting events of a key"))
    }

    async fn claim(&self, limits: ClaimLimits) -> Result<PostgresBatch, OutboxError> {
        let max_lanes = i64::try_from(limits.max_lanes.max(1)).unwrap_or(i64::MAX);
        let window = limits
            .max_rows
            .max(limits.max_lanes)
            .saturating_mul(WINDOW_FACTOR);
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(OutboxError::db("starting a claim"))?;
        // Heads are usually among the oldest rows: look there first, so a claim costs
        // about the same with ten rows waiting or ten million.
        let found: Vec<(i64, i64, i64)> = sqlx::query_as(HEADS_SQL)
            .bind(max_lanes)
            .bind(i64::try_from(window).unwrap_or(i64::MAX))
            .fetch_all(&mut *tx)
            .await
            .map_err(OutboxError::db("claiming due events"))?;
        let window_full = found
            .first()
            .is_some_and(|&(_, _, rows)| u64::try_from(rows).unwrap_or(0) >= window as u64);
        let mut heads: Vec<(i64, i64)> =
            found.into_iter().map(|(id, lane, _)| (id, lane)).collect();
        // Too few heads: every key among the oldest rows is busy or backing off (or
        // nothing waits), or a few deep keys fill the window. A key that cannot be
        // claimed must not hold back the keys behind it. (A window that held every
        // claimable row has nothing behind it.)
        let too_few = usize::try_from(max_lanes).map_or(true, |max| heads.len() < max);
        if heads.is_empty() || (too_few && window_full) {
            let more: Vec<(i64, i64)> = sqlx::query_as(HEADS_BY_LANE_SQL)
                .bind(max_lanes)
                .fetch_all(&mut *tx)
                .await
                .map_err(OutboxError::db("claiming due events"))?;
            // The window's heads are older than any head beyond it, so the loose scan
            // finds them again (this transaction holds their locks): keep each once.
            heads.extend(more);
            heads.sort_unstable();
            heads.dedup();
            heads.truncate(usize::try_from(max_lanes).unwrap_or(usize::MAX));
        }
        if heads.is_empty() {
            let _ = tx.rollback().await;
            return Ok(PostgresBatch {
                tx: None,
                rows: Vec::new(),
                unreadable: Vec::new(),
                backlog: self.backlog.clone(),
            });
        }
        let (head_ids, lanes): (Vec<i64>, Vec<i64>) = heads.into_iter().unzip();
        let per_lane = (limits.max_rows / lanes.len()).max(1);
        let fetched: Vec<PgRow> = sqlx::query(LANE_ROWS_SQL)
            .bind(&lanes)
            .bind(&head_ids)
            .bind(i64::try_from(per_lane).unwrap_or(i64::MAX))
            .fetch_all(&mut *tx)
            .await
            .map_err(OutboxError::db("reading claimed events"))?;
        let (rows, unreadable) = decode_claimed::<_, PgOutboxRow>(&fetched)?;
        Ok(PostgresBatch {
            tx: Some(tx),
            rows,
            unreadable,
            backlog: self.backlog.clone(),
        })
    }

    async fn next_retry_in(&self) -> Result<Option<Duration>, OutboxError> {
        let seconds: Option<f64> = sqlx::query_scalar(
            "SELECT EXTRACT(EPOCH FROM (min(next_attempt_at) - now()))::float8 FROM event_bus.outbox WHERE attempts > 0 AND parked_at IS NULL",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(OutboxError::db("finding the next retry"))?;
        Ok(seconds.map(|s| Duration::from_secs_f64(s.max(0.0))))
    }

    async fn wakeup(&self) -> Result<PostgresWakeup, OutboxError> {
        let mut listener = PgListener::connect_with(&self.pool)
            .await
            .map_err(OutboxError::db("connecting the LISTEN connection"))?;
        listener
            .listen(NOTIFY_CHANNEL)
            .await
            .map_err(OutboxError::db("listening for new events"))?;
        Ok(PostgresWakeup { listener })
    }

    async fn status(&self, failing_keys_limit: usize) -> Result<OutboxStatus, OutboxError> {
        let pending = self.count().await?;
        let oldest: Option<DateTime<Utc>> =
            sqlx::query_scalar("SELECT created_at FROM event_bus.outbox ORDER BY id LIMIT 1")
                .fetch_optional(&self.pool)
                .await
                .map_err(OutboxError::db("finding the oldest event"))?;
        let failing_keys_total: i64 = sqlx::query_scalar(
            "SELECT count(DISTINCT lane) FROM event_bus.outbox WHERE attempts > 0 AND parked_at IS NULL",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(OutboxError::db("counting failing keys"))?;
        let failing: Vec<PgFailingKey> = sqlx::query_as(FAILING_SQL)
            .bind(i64::try_from(failing_keys_limit).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await
            .map_err(OutboxError::db("listing failing keys"))?;
        let (parked, oldest_parked_at): (i64, Option<DateTime<Utc>>) = sqlx::query_as(
            "SELECT count(*), min(parked_at) FROM event_bus.outbox WHERE parked_at IS NOT NULL",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(OutboxError::db("counting parked events"))?;
        Ok(OutboxStatus {
            parked: u64::try_from(parked).unwrap_or(0),
            oldest_parked_at,
            pending,
            oldest_created_at: oldest,
            oldest_age: oldest.map(age),
            failing_keys_total: u64::try_from(failing_keys_total).unwrap_or(0),
            failing_keys: failing.into_iter().map(PgFailingKey::into_key).collect(),
        })
    }

    async fn parked(
        &self,
        filter: &ParkedFilter,
        limit: usize,
    ) -> Result<Vec<ParkedRow>, OutboxError> {
        let sql = format!(
            "SELECT id, topic, key_text, event_type, event_id::text AS event_id, attempts, \
                parked_at, parked_reason, created_at, \
                (SELECT count(*) FROM event_bus.outbox w WHERE w.lane = o.lane AND w.id > o.id) AS waiting \
             FROM event_bus.outbox o WHERE {PARKED_WHERE} ORDER BY id LIMIT $4"
        );
        let rows: Vec<PgParkedRow> = sqlx::query_as(&sql)
            .bind(filter.ids.iter().map(|id| id.0).collect::<Vec<_>>())
            .bind(filter.topic.as_deref())
            .bind(filter.key.as_deref())
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await
            .map_err(OutboxError::db("listing parked events"))?;
        Ok(rows.into_iter().map(PgParkedRow::into_parked).collect())
    }

    async fn retry_parked(&self, filter: &ParkedFilter) -> Result<u64, OutboxError> {
        let sql = format!(
            "UPDATE event_bus.outbox SET parked_at = NULL, parked_reason = NULL, attempts = 0, \
                park_attempts = 0, first_failed_at = NULL, next_attempt_at = now() \
             WHERE {PARKED_WHERE}"
        );
        self.change_parked(&sql, filter, "unparking events").await
    }

    async fn drop_parked(&self, filter: &ParkedFilter) -> Result<u64, OutboxError> {
        let sql = format!("DELETE FROM event_bus.outbox WHERE {PARKED_WHERE}");
        let dropped = self
            .change_parked(&sql, filter, "deleting parked events")
            .await?;
        self.backlog.removed(dropped);
        Ok(dropped)
    }
}

impl PostgresOutbox {
    /// Runs `sql` (an UPDATE or DELETE of the parked rows matching `filter`) and wakes
    /// the relays in the same transaction; returns the rows changed.
    async fn change_parked(
        &self,
        sql: &str,
        filter: &ParkedFilter,
        operation: &'static str,
    ) -> Result<u64, OutboxError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(OutboxError::db(operation))?;
        let done = sqlx::query(sql)
            .bind(filter.ids.iter().map(|id| id.0).collect::<Vec<_>>())
            .bind(filter.topic.as_deref())
            .bind(filter.key.as_deref())
            .execute(&mut *tx)
            .await
            .map_err(OutboxError::db(operation))?;
        // Wakes the relays now rather than at their next poll.
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(NOTIFY_CHANNEL)
            .execute(&mut *tx)
            .await
            .map_err(OutboxError::db("waking the relays"))?;
        tx.commit().await.map_err(OutboxError::db(operation))?;
        Ok(done.rows_affected())
    }
}

#[async_trait]
impl TransactionalStore for PostgresOutbox {
    type Database = Postgres;

    async fn insert_in(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        record: &EncodedRecord,
    ) -> Result<OutboxId, OutboxError> {
        // Never counted on `tx` (SERIALIZABLE callers would conflict) nor on a
        // connection it must wait for (a pool full of callers would deadlock).
        self.admit_in_transaction(1).await?;
        let id = insert_on(tx, record).await?;
        // Counted now; a rollback is corrected by the next recount (within a second).
        self.backlog.added(1);
        Ok(id)
    }
}

/// Rows claimed from PostgreSQL: holds the transaction whose row locks own the lanes.
///
/// ```no_run
/// # use event_bus_kafka::outbox::*;
/// # async fn demo(store: PostgresOutbox) -> Result<(), OutboxError> {
/// let batch: PostgresBatch = store.claim(ClaimLimits { max_rows: 10, max_lanes: 10 }).await?;
/// batch.complete(BatchOutcome::default()).await?; // releases the lanes, changes nothing
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct PostgresBatch {
    tx: Option<Transaction<'static, Postgres>>,
    rows: Vec<OutboxRow>,
    unreadable: Vec<UnreadableRow>,
    backlog: Arc<BacklogLimit>,
}

#[async_trait]
impl ClaimedBatch for PostgresBatch {
    fn rows(&self) -> &[OutboxRow] {
        &self.rows
    }

    fn unreadable(&self) -> &[UnreadableRow] {
        &self.unreadable
    }

    async fn complete(mut self, outcome: BatchOutcome) -> Result<(), OutboxError> {
        let Some(mut tx) = self.tx.take() else {
            return Ok(());
        };
        if !outcome.delivered.is_empty() {
            let ids: Vec<i64> = outcome.delivered.iter().map(|id| id.0).collect();
            sqlx::query(DELETE_SQL)
                .bind(&ids)
                .execute(&mut *tx)
                .await
                .map_err(OutboxError::db("deleting delivered events"))?;
        }
        if !outcome.failed.is_empty() {
            let ids: Vec<i64> = outcome.failed.iter().map(|f| f.id.0).collect();
            let errors: Vec<&str> = outcome.failed.iter().map(|f| f.error.as_str()).collect();
            let delays: Vec<i64> = outcome
                .failed
                .iter()
                .map(|f| i64::try_from(f.retry_in.as_millis()).unwrap_or(i64::MAX))
                .collect();
            let parks: Vec<Option<&str>> =
                outcome.failed.iter().map(|f| f.park.as_deref()).collect();
            let counted: Vec<bool> = outcome.failed.iter().map(|f| f.counted).collect();
            sqlx::query(FAIL_SQL)
                .bind(&ids)
                .bind(&errors)
                .bind(&delays)
                .bind(&parks)
                .bind(&counted)
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

/// Wakes the relay on `NOTIFY event_bus_outbox` (sent by the insert trigger at commit).
///
/// ```no_run
/// # use event_bus_kafka::outbox::*;
/// # async fn demo(store: PostgresOutbox) -> Result<(), OutboxError> {
/// let mut wakeup: PostgresWakeup = store.wakeup().await?;
/// wakeup.wait(std::time::Duration::from_secs(1)).await; // a commit, or a second
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct PostgresWakeup {
    listener: PgListener,
}

#[async_trait]
impl OutboxWakeup for PostgresWakeup {
    async fn wait(&mut self, timeout: Duration) {
        match tokio::time::timeout(timeout, self.listener.recv()).await {
            Ok(Ok(_)) => {
                // Coalesce a burst of notifications into one wake-up.
                while self.listener.next_buffered().is_some() {}
            }
            Ok(Err(error)) => {
                // The listener reconnects on the next call; poll meanwhile.
                tracing::warn!(%error, "outbox LISTEN connection failed; polling until it reconnects");
                tokio::time::sleep(timeout).await;
            }
            Err(_elapsed) => {}
        }
    }
}

#[derive(sqlx::FromRow)]
struct PgOutboxRow {
    id: i64,
    lane: i64,
    topic: String,
    message_key: Option<Vec<u8>>,
    payload: Vec<u8>,
    headers: String,
    event_type: String,
    event_id: Uuid,
    key_text: Option<String>,
    created_at: DateTime<Utc>,
    attempts: i32,
    last_error: Option<String>,
    next_attempt_at: DateTime<Utc>,
    park_attempts: i32,
    first_failed_at: Option<DateTime<Utc>>,
}

impl StoredRow for PgOutboxRow {
    fn into_row(self) -> Result<OutboxRow, OutboxError> {
        Ok(OutboxRow {
            id: OutboxId(self.id),
            lane: Lane(self.lane),
            record: EncodedRecord {
                headers: headers_from_json(self.id, &self.headers)?,
                topic: self.topic,
                key: self.message_key,
                value: self.payload,
                event_type: self.event_type,
                event_id: self.event_id,
                key_text: self.key_text,
            },
            created_at: self.created_at,
            attempts: self.attempts,
            last_error: self.last_error,
            next_attempt_at: self.next_attempt_at,
            park_attempts: self.park_attempts,
            first_failed_at: self.first_failed_at,
        })
    }
}

#[derive(sqlx::FromRow)]
struct PgFailingKey {
    lane: i64,
    topic: String,
    key_text: Option<String>,
    id: i64,
    attempts: i32,
    last_error: Option<String>,
    next_attempt_at: DateTime<Utc>,
    waiting: i64,
}

impl PgFailingKey {
    fn into_key(self) -> FailingKey {
        FailingKey {
            lane: Lane(self.lane),
            topic: self.topic,
            key_text: self.key_text,
            head_id: OutboxId(self.id),
            attempts: self.attempts,
            last_error: self.last_error,
            next_attempt_at: self.next_attempt_at,
            waiting: u64::try_from(self.waiting).unwrap_or(0),
        }
    }
}

#[derive(sqlx::FromRow)]
struct PgParkedRow {
    id: i64,
    topic: String,
    key_text: Option<String>,
    event_type: String,
    event_id: String,
    attempts: i32,
    parked_at: DateTime<Utc>,
    parked_reason: Option<String>,
    created_at: DateTime<Utc>,
    waiting: i64,
}

impl PgParkedRow {
    fn into_parked(self) -> ParkedRow {
        ParkedRow {
            id: OutboxId(self.id),
            topic: self.topic,
            key_text: self.key_text,
            event_type: self.event_type,
            event_id: self.event_id,
            attempts: self.attempts,
            parked_at: self.parked_at,
            reason: self.parked_reason.unwrap_or_default(),
            created_at: self.created_at,
            waiting_behind: u64::try_from(self.waiting).unwrap_or(0),
        }
    }
}
