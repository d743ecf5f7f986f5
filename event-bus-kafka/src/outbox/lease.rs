//! SQLite: one relay per database file, across processes.
//!
//! SQLite has no `SKIP LOCKED`, so two relays on one file would publish the same rows
//! side by side and break key order. A relay therefore holds a lease: one row of table
//! `event_bus_relay_lease` (created here if missing) naming the holding process and an
//! expiry [`LEASE_TTL`] ahead. It is taken and renewed under `BEGIN IMMEDIATE`, so two
//! processes never both see it free. The holder renews it every [`RENEW_EVERY`] from a
//! task of its own (a long batch does not let it lapse) and deletes it when the relay
//! stops, with or without an error; a relay that was killed leaves it to expire.
//!
//! The holder does not trust its lease longer than it knows it is valid: before each
//! claim the relay calls [`RelayLease::check`], which fails once the last successful
//! renewal is older than [`LEASE_TTL`] minus [`SAFETY_MARGIN`], measured on the monotonic
//! clock. A relay that was paused (SIGSTOP, a frozen VM) or could not renew therefore
//! stops before claiming, even before its renewer has run again and seen another holder.
//! Renewals give up on a locked database after [`RENEW_BUSY_TIMEOUT`] (a connection of
//! their own) and try again a second later, so an application's long write lock does not
//! hold a renewal past the lease's expiry.
//!
//! A long-running relay that finds the lease held waits for it, checking every second;
//! a draining relay (`event-bus outbox relay --drain`) does not wait: it fails with
//! [`OutboxError::RelayBusy`], since the holder is publishing those rows anyway. Relays
//! of one process (on clones of one store) share the lease and take turns through the
//! store's claim lock. PostgreSQL needs no lease (claims skip locked lanes); neither
//! does an in-memory SQLite database (no other process can open it).

use std::any::Any;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::sqlite::SqlitePoolOptions;
use sqlx::{Connection, Sqlite, SqliteConnection, SqlitePool};
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::error::OutboxError;
use super::relay::Wait;
use super::sqlite::SqliteOutbox;
use super::store::OutboxStore;

/// How long a lease lasts without renewal: after a holder is killed, another relay takes
/// over within this time.
pub(crate) const LEASE_TTL: Duration = Duration::from_secs(10);
/// How often the holder renews its lease.
pub(crate) const RENEW_EVERY: Duration = Duration::from_secs(2);
/// How often a waiting relay tries again; also how soon a failed renewal is retried.
const RETRY_EVERY: Duration = Duration::from_secs(1);
/// How long before the lease expires the holder stops trusting it: the time a claim and
/// the queueing of its batch may take after a successful [`RelayLease::check`].
pub(crate) const SAFETY_MARGIN: Duration = Duration::from_secs(3);
/// How long a renewal waits for a database locked by another connection.
pub(crate) const RENEW_BUSY_TIMEOUT: Duration = Duration::from_secs(1);

const CREATE_SQL: &str = "CREATE TABLE IF NOT EXISTS event_bus_relay_lease (\
    name TEXT PRIMARY KEY, holder TEXT NOT NULL, pid INTEGER NOT NULL, \
    expires_at_ms INTEGER NOT NULL)";
const CURRENT_SQL: &str =
    "SELECT holder, pid, expires_at_ms FROM event_bus_relay_lease WHERE name = 'relay'";
const TAKE_SQL: &str = "INSERT INTO event_bus_relay_lease (name, holder, pid, expires_at_ms) \
    VALUES ('relay', ?1, ?2, ?3) ON CONFLICT (name) DO UPDATE SET \
    holder = excluded.holder, pid = excluded.pid, expires_at_ms = excluded.expires_at_ms";
const RELEASE_SQL: &str = "DELETE FROM event_bus_relay_lease WHERE name = 'relay' AND holder = ?1";

/// This process's name in the lease table: relays of one process share the lease.
fn holder() -> &'static str {
    static HOLDER: OnceLock<String> = OnceLock::new();
    HOLDER.get_or_init(|| Uuid::new_v4().to_string())
}

/// Relays of this process holding each database file's lease.
fn holders() -> &'static Mutex<HashMap<PathBuf, usize>> {
    static HOLDERS: OnceLock<Mutex<HashMap<PathBuf, usize>>> = OnceLock::new();
    HOLDERS.get_or_init(Default::default)
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Who holds the lease when it is not ours.
struct Busy {
    pid: i64,
    expires_in: Duration,
}

/// A pooled connection that is closed, not returned to the pool, unless the work on it
/// finished.
///
/// sqlx 0.8 starts a transaction with a custom statement (`BEGIN IMMEDIATE`) and then
/// awaits once more before it builds the guard that rolls the transaction back. A task
/// aborted at that await (a relay stopped while it takes its lease) would hand the
/// connection back to the pool inside an open transaction: it would keep the file's
/// write lock, and whatever ran on it later (an outbox insert, say) would never commit.
/// Closing the connection rolls the transaction back.
struct CloseUnlessFinished {
    conn: PoolConnection<Sqlite>,
    finished: bool,
}

impl Drop for CloseUnlessFinished {
    fn drop(&mut self) {
        if !self.finished {
            self.conn.close_on_drop();
        }
    }
}

/// Takes or renews the lease if it is free, expired or already ours.
async fn try_take(pool: &SqlitePool) -> Result<Result<(), Busy>, OutboxError> {
    let mut conn = CloseUnlessFinished {
        conn: pool
            .acquire()
            .await
            .map_err(OutboxError::db("locking the relay lease"))?,
        finished: false,
    };
    let taken = take_on(&mut conn.conn).await;
    conn.finished = true;
    taken
}

/// [`try_take`] on one connection.
async fn take_on(conn: &mut SqliteConnection) -> Result<Result<(), Busy>, OutboxError> {
    let mut tx = conn
        .begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(OutboxError::db("locking the relay lease"))?;
    sqlx::query(CREATE_SQL)
        .execute(&mut *tx)
        .await
        .map_err(OutboxError::db("creating the relay lease table"))?;
    let current: Option<(String, i64, i64)> = sqlx::query_as(CURRENT_SQL)
        .fetch_optional(&mut *tx)
        .await
        .map_err(OutboxError::db("reading the relay lease"))?;
    let now = now_ms();
    if let Some((other, pid, expires_at_ms)) = current {
        if other != holder() && expires_at_ms > now {
            let expires_in = Duration::from_millis(u64::try_from(expires_at_ms - now).unwrap_or(0));
            return Ok(Err(Busy { pid, expires_in }));
        }
    }
    let expires = now.saturating_add(i64::try_from(LEASE_TTL.as_millis()).unwrap_or(i64::MAX));
    sqlx::query(TAKE_SQL)
        .bind(holder())
        .bind(i64::from(std::process::id()))
        .bind(expires)
        .execute(&mut *tx)
        .await
        .map_err(OutboxError::db("taking the relay lease"))?;
    tx.commit()
        .await
        .map_err(OutboxError::db("taking the relay lease"))?;
    Ok(Ok(()))
}

/// The lease of one relay on one SQLite database file; renewed until released or
/// dropped.
#[derive(Debug)]
pub(crate) struct RelayLease {
    pool: SqlitePool,
    file: PathBuf,
    lost: Arc<AtomicBool>,
    /// When the last successful take or renewal started (its expiry is later than this
    /// plus [`LEASE_TTL`]).
    renewed_at: Arc<Mutex<Instant>>,
    renewer: JoinHandle<()>,
    released: bool,
}

impl RelayLease {
    /// For a relay on `store`: the lease of its SQLite file, taken (waiting for it if
    /// `wait` says so); `None` for stores that need none.
    pub(crate) async fn acquire<S: OutboxStore>(
        store: &S,
        wait: Wait,
    ) -> Result<Option<Self>, OutboxError> {
        let Some(sqlite) = (store as &dyn Any).downcast_ref::<SqliteOutbox>() else {
            return Ok(None);
        };
        let pool = sqlite.pool().clone();
        let file = pool.connect_options().get_filename().to_path_buf();
        if !file.is_file() {
            return Ok(None); // in memory: no other process can open it
        }
        let file = file.canonicalize().unwrap_or(file);
        let mut waiting_logged = false;
        let taken_at = loop {
            let attempt = Instant::now();
            match try_take(&pool).await? {
                Ok(()) => break attempt,
                Err(busy) if wait == Wait::No => {
                    return Err(OutboxError::RelayBusy {
                        file: file.display().to_string(),
                        pid: busy.pid,
                        expires_in_s: busy.expires_in.as_secs().max(1),
                    });
                }
                Err(busy) => {
                    if !waiting_logged {
                        waiting_logged = true;
                        tracing::warn!(
                            file = %file.display(),
                            holder_pid = busy.pid,
                            expires_in_ms = busy.expires_in.as_millis() as u64,
                            "another relay (pid {}) publishes this SQLite outbox; waiting for its lease \
                             (one relay per database file)",
                            busy.pid
                        );
                    }
                    tokio::time::sleep(RETRY_EVERY).await;
                }
            }
        };
        if let Ok(mut holders) = holders().lock() {
            *holders.entry(file.clone()).or_default() += 1;
        }
        tracing::info!(file = %file.display(), pid = std::process::id(), "outbox relay lease taken");
        let lost = Arc::new(AtomicBool::new(false));
        let renewed_at = Arc::new(Mutex::new(taken_at));
        let renewer = tokio::spawn(renew(
            pool.clone(),
            file.clone(),
            lost.clone(),
            renewed_at.clone(),
        ));
        Ok(Some(Self {
            pool,
            file,
            lost,
            renewed_at,
            renewer,
            released: false,
        }))
    }

    /// Err([`OutboxError::LeaseLost`]) once another relay took the lease, or once the
    /// last successful renewal is older than [`LEASE_TTL`] minus [`SAFETY_MARGIN`] (the
    /// process was paused, or the database refused renewals): the relay must stop
    /// before it claims anything.
    pub(crate) fn check(&self) -> Result<(), OutboxError> {
        if self.lost.load(Ordering::Relaxed) || !still_valid(&self.renewed_at) {
            lost_lease(&self.file, &self.lost, None);
            return Err(OutboxError::LeaseLost {
                file: self.file.display().to_string(),
            });
        }
        Ok(())
    }

    /// Stops renewing and frees the lease (unless other relays of this process still
    /// use it), so another relay takes over at once.
    pub(crate) async fn release(mut self) {
        self.released = true;
        self.renewer.abort();
        if !self.leave() {
            return;
        }
        match sqlx::query(RELEASE_SQL)
            .bind(holder())
            .execute(&self.pool)
            .await
        {
            Ok(_) => tracing::info!(file = %self.file.display(), "outbox relay lease released"),
            Err(error) => tracing::warn!(
                file = %self.file.display(),
                %error,
                "cannot release the outbox relay lease; it expires by itself"
            ),
        }
    }

    /// Leaves this process's count of relays on the file: true if it was the last one.
    fn leave(&self) -> bool {
        let Ok(mut holders) = holders().lock() else {
            return false;
        };
        let count = holders.entry(self.file.clone()).or_default();
        *count = count.saturating_sub(1);
        if *count == 0 {
            holders.remove(&self.file);
            return true;
        }
        false
    }
}

impl Drop for RelayLease {
    fn drop(&mut self) {
        if !self.released {
            // An error exit: stop renewing and let the lease expire.
            self.renewer.abort();
            self.leave();
        }
    }
}

/// Whether the lease, last renewed at `renewed_at`, is still safely ours.
fn still_valid(renewed_at: &Mutex<Instant>) -> bool {
    let Ok(renewed_at) = renewed_at.lock() else {
        return false;
    };
    renewed_at.elapsed() < LEASE_TTL.saturating_sub(SAFETY_MARGIN)
}

/// A connection of the lease's own to the store's file, giving up on a locked database
/// after [`RENEW_BUSY_TIMEOUT`]; the store's pool itself when it cannot be opened.
async fn renewal_pool(pool: &SqlitePool) -> SqlitePool {
    let options = pool
        .connect_options()
        .as_ref()
        .clone()
        .busy_timeout(RENEW_BUSY_TIMEOUT);
    match SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
    {
        Ok(own) => own,
        Err(error) => {
            tracing::warn!(%error, "cannot open a connection for renewing the outbox relay lease");
            pool.clone()
        }
    }
}

/// Renews the lease until aborted; marks it lost if another relay took it, or if it
/// could not be renewed before it stopped being safely ours.
async fn renew(
    pool: SqlitePool,
    file: PathBuf,
    lost: Arc<AtomicBool>,
    renewed_at: Arc<Mutex<Instant>>,
) {
    let pool = renewal_pool(&pool).await;
    let mut pause = RENEW_EVERY;
    loop {
        tokio::time::sleep(pause).await;
        if !still_valid(&renewed_at) {
            // Paused or refused too long: renewing now could extend a lease another
            // relay already took and gave back; the relay stops instead.
            lost_lease(&file, &lost, None);
            break;
        }
        let attempt = Instant::now();
        match try_take(&pool).await {
            Ok(Ok(())) => {
                if let Ok(mut at) = renewed_at.lock() {
                    *at = attempt;
                }
                pause = RENEW_EVERY;
            }
            Ok(Err(busy)) => {
                lost_lease(&file, &lost, Some(busy.pid));
                break;
            }
            Err(error) => {
                tracing::warn!(file = %file.display(), %error, "cannot renew the outbox relay lease; trying again");
                pause = RETRY_EVERY;
            }
        }
    }
    pool.close().await;
}

/// Marks the lease lost and says so (once).
fn lost_lease(file: &Path, lost: &AtomicBool, taken_by: Option<i64>) {
    if lost.swap(true, Ordering::Relaxed) {
        return;
    }
    tracing::error!(
        file = %file.display(),
        taken_by_pid = taken_by,
        "the outbox relay lost its lease (not renewed within {} s); stopping before it claims more",
        LEASE_TTL.saturating_sub(SAFETY_MARGIN).as_secs()
    );
}
