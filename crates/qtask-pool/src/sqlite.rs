//! The SQLite backend: one file shared by any number of processes on one machine.
//!
//! WAL mode lets readers run beside the single writer; every write that reads-then-writes
//! (claims, creates) runs inside `BEGIN IMMEDIATE`, which takes the write lock up front so
//! the busy timeout applies (a deferred transaction upgrading to a writer fails "busy"
//! without waiting). Times are Unix milliseconds from this machine's clock, which every
//! process sharing the file has in common.
//!
//! Layout (schema 2): what a claim never changes (the definition, its hash, the priority)
//! lives in `qtask_defs` (rowid `task_id`, the task id); everything a claim or a commit
//! changes lives in `qtask_state`, a `WITHOUT ROWID` table clustered on the claim order
//! `(pool, status, prio_null, prio DESC, id)`, where `pool` is the pool's number from
//! `qtask_pool_ids`. A claim moves a row from `waiting` to `running` and a commit from
//! `running` to `done`: neighbouring key ranges, so one commit-and-claim usually rewrites a
//! single page. With schema 1 (one table plus an index on the claim order) it rewrote a
//! table page and an index page, and the WAL frames a transaction appends, with the
//! checkpoints that copy them back, are most of what a claim costs (`qtask bench pool`,
//! 4 workers: 1.5 frames per claim instead of 2.8). A row is found by id through its
//! definition, which gives the pool, priority and id of its state key (see [`locate`]); a
//! lease token also carries its task's priority key (see [`TokenKey`]), so a worker's
//! commit touches nothing but the state page it changes.
//!
//! Claims and commits hold SQLite's write lock only for statements on one page or two;
//! what needs no lock (serialising the result, decoding the task) is done outside it, and
//! the WAL is checkpointed outside it too (see [`Checkpoints`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, ErrorCode, OptionalExtension, Row, TransactionBehavior, params};
use serde_json::Value;

use crate::check_defs;
use crate::error::{PoolError, Result};
use crate::pool::{CreateOptions, DEFAULT_MAX_ATTEMPTS, FetchOptions, TaskPool, TaskStat};
use crate::query::Query;
use crate::sql::{Compiler, Dialect, Param, sqlite_path};
use crate::status::Status;
use crate::task::{ClaimedTask, Created, Task};

/// The schema version this build writes in SQLite stores (PostgreSQL and MongoDB stores have
/// their own, [`crate::SCHEMA_VERSION`]). Version 1 (one `qtask_tasks` table) is migrated on
/// open; a higher version is refused.
pub const SCHEMA_VERSION: i64 = 2;

/// The columns [`read_task`] reads, as they are named in [`TASKS`].
const COLUMNS: &str = "id, def, status, priority, res, attempts, max_attempts, error, \
    lease_owner, lease_expires_at, created_at, started_at, finished_at";

/// Every status, for seeks on the state key when the status is not known.
const ANY_STATUS: &str = "('waiting', 'running', 'part_done', 'done', 'failed')";

/// The task documents: definitions joined to their state. The join terms name the whole
/// state key, so a lookup by id seeks (five probes, one per status) instead of scanning; the
/// column names are those of the query compiler (`id`, `def`, `status`, `priority`, ...).
const TASKS: &str = "qtask_defs JOIN qtask_state ON pool = task_pool \
    AND status IN ('waiting', 'running', 'part_done', 'done', 'failed') \
    AND prio_null = (priority IS NULL) AND prio = COALESCE(priority, 0) AND id = task_id";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS qtask_defs (
    task_id INTEGER PRIMARY KEY AUTOINCREMENT,
    task_pool INTEGER NOT NULL,
    def TEXT NOT NULL,
    def_hash TEXT NOT NULL,
    priority INTEGER
);
CREATE UNIQUE INDEX IF NOT EXISTS qtask_defs_hash ON qtask_defs (task_pool, def_hash);
CREATE TABLE IF NOT EXISTS qtask_state (
    pool INTEGER NOT NULL,
    status TEXT NOT NULL,
    prio_null INTEGER NOT NULL,
    prio INTEGER NOT NULL,
    id INTEGER NOT NULL,
    res TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER,
    claimed_from TEXT,
    lease_owner TEXT,
    lease_token TEXT,
    lease_expires_at INTEGER,
    error TEXT,
    created_at INTEGER NOT NULL,
    started_at INTEGER,
    finished_at INTEGER,
    PRIMARY KEY (pool, status, prio_null, prio DESC, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS qtask_pools (name TEXT PRIMARY KEY, max_attempts INTEGER);
CREATE TABLE IF NOT EXISTS qtask_pool_ids (pool_id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
";

/// Schema 1 to 2: the one task table split into definitions and state. Task ids are kept,
/// and so is the id counter (ids are never reused, even those of removed tasks).
const MIGRATE_1_TO_2: &str = "
INSERT OR IGNORE INTO qtask_pool_ids (name) SELECT DISTINCT pool FROM qtask_tasks;
INSERT INTO qtask_defs (task_id, task_pool, def, def_hash, priority)
    SELECT id, pool_id, def, def_hash, priority FROM qtask_tasks JOIN qtask_pool_ids ON name = pool;
INSERT INTO qtask_state (pool, status, prio_null, prio, id, res, attempts, max_attempts,
        claimed_from, lease_owner, lease_token, lease_expires_at, error, created_at,
        started_at, finished_at)
    SELECT pool_id, status, priority IS NULL, COALESCE(priority, 0), id, res, attempts,
        max_attempts, claimed_from, lease_owner, lease_token, lease_expires_at, error,
        created_at, started_at, finished_at FROM qtask_tasks JOIN qtask_pool_ids ON name = pool;
DELETE FROM sqlite_sequence WHERE name = 'qtask_defs';
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'qtask_defs', seq FROM sqlite_sequence WHERE name = 'qtask_tasks';
DROP TABLE qtask_tasks;
";

/// The state key of task `?{n}` given its status condition (`status = 'running'`, or
/// `status IN` [`ANY_STATUS`]): pool, priority and id come from its definition.
fn locate(pool: &str, status: &str, n: usize) -> String {
    format!(
        "pool = {pool} AND {status} \
         AND prio_null = (SELECT priority IS NULL FROM qtask_defs WHERE task_id = ?{n}) \
         AND prio = (SELECT COALESCE(priority, 0) FROM qtask_defs WHERE task_id = ?{n}) \
         AND id = ?{n}"
    )
}

/// Distinct claim queries kept per handle (beyond this many, the cache restarts).
const CLAIM_SQL_CACHE: usize = 32;

/// The priority key a lease token carries after its 32 unique hex digits: the running task's
/// state key is then known without reading its definition, so a fenced commit reads and
/// writes nothing but the state page it changes. A key gone stale (the task was prioritized
/// while running) or a token from schema 1 only sends the commit the slow way, through the
/// definition: the token itself is still compared in full.
struct TokenKey {
    prio_null: bool,
    prio: i64,
}

impl TokenKey {
    fn parse(token: &str) -> Option<Self> {
        let key = token.get(32..)?;
        if key == "n" {
            return Some(TokenKey {
                prio_null: true,
                prio: 0,
            });
        }
        Some(TokenKey {
            prio_null: false,
            prio: key.strip_prefix('p')?.parse().ok()?,
        })
    }
}

/// The statements of one kind of claim (a claimed-from status and a query condition).
///
/// A claim is a `SELECT` of the best candidate's state row followed by an `UPDATE` of that
/// one row by its full key: measured against one `UPDATE ... WHERE key = (SELECT ...)
/// RETURNING ...`, which SQLite runs through two temporary tables (the rows to change, as the
/// key itself changes, and the rows to return), it is less than half the time of a claim,
/// all of it inside the write lock.
///
/// The pool and status are SQL literals here, not parameters: this SQLite is built with
/// STAT4, which re-prepares a statement at every new binding of a parameter compared with
/// an indexed column, and that re-parse was most of a claim's cost. `quote` makes the pool
/// name a plain string literal; the status is one of five words.
struct ClaimSql {
    /// The best fresh task, provided no lease of the pool has expired (an expired lease must
    /// be dealt with first): the common case in one statement (`?1` now).
    fresh_unless_expired: String,
    /// The best fresh task.
    fresh: String,
    /// Whether any lease of the pool has expired (`?1` now).
    any_expired: String,
    /// Marks failed the expired leases that were on their last allowed attempt
    /// (`?1` now, `?2` the pool's attempt limit).
    fail_expired: String,
    /// The best task of this origin status whose lease expired (`?1` now).
    expired: String,
    /// Claims the fresh task picked (see [`CLAIM_SET`] and [`CLAIM_KEY`]).
    take_fresh: String,
    /// Claims the expired task picked, `?10` the error to record.
    take_expired: String,
}

/// What a pick reads: the columns of [`read_task`], then the rest of the state key.
const PICK_COLUMNS: &str = "id, (SELECT def FROM qtask_defs WHERE task_id = id), status, CASE WHEN prio_null THEN NULL ELSE prio END, \
    res, attempts, max_attempts, error, lease_owner, lease_expires_at, created_at, started_at, \
    finished_at, prio_null, prio";

/// The SET list of a claim: `?1` the status claimed from, `?2` now, `?3` owner, `?4` token,
/// `?5` lease expiry.
const CLAIM_SET: &str = "status = 'running', claimed_from = ?1, attempts = attempts + 1, \
    lease_owner = ?3, lease_token = ?4, lease_expires_at = ?5, started_at = ?2";

/// The rest of the picked row's key, after the pool and status literals: `?6` prio_null,
/// `?7` prio, `?8` id.
const CLAIM_KEY: &str = "prio_null = ?6 AND prio = ?7 AND id = ?8";

impl ClaimSql {
    fn new(pool: &str, status: Status, cond: &str) -> Self {
        let status = quote(status.as_str());
        // The state key in claim order: the first match is the best task. A condition on
        // the definition or the priority needs the definitions too; the common empty one
        // reads nothing but the state. The query's parameters start at ?2.
        let pick = |status_cond: &str| {
            let from = if cond == "1=1" {
                "qtask_state"
            } else {
                "qtask_state JOIN qtask_defs ON task_id = id"
            };
            format!(
                "SELECT {PICK_COLUMNS} FROM {from} \
                 WHERE pool = {pool} AND {status_cond} AND ({cond}) \
                 ORDER BY prio_null, prio DESC, id LIMIT 1"
            )
        };
        let expired_at = format!(
            "SELECT 1 FROM qtask_state WHERE pool = {pool} AND status = 'running' \
             AND lease_expires_at < ?1"
        );
        ClaimSql {
            fresh_unless_expired: pick(&format!("status = {status} AND NOT EXISTS ({expired_at})")),
            // `?1` (now) is bound to every pick; this one has no use for it.
            fresh: pick(&format!("status = {status} AND ?1 IS NOT NULL")),
            any_expired: format!("SELECT EXISTS ({expired_at})"),
            fail_expired: format!(
                "UPDATE qtask_state SET status = 'failed', finished_at = ?1, \
                 error = 'lease expired (held by ' || COALESCE(lease_owner, '?') || ') on attempt ' || attempts || ' of ' || COALESCE(max_attempts, ?2), \
                 lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, claimed_from = NULL \
                 WHERE pool = {pool} AND status = 'running' AND lease_expires_at < ?1 \
                 AND attempts >= COALESCE(max_attempts, ?2)"
            ),
            expired: pick(&format!(
                "status = 'running' AND claimed_from = {status} AND lease_expires_at < ?1"
            )),
            take_fresh: format!(
                "UPDATE qtask_state SET {CLAIM_SET} \
                 WHERE pool = {pool} AND status = {status} AND {CLAIM_KEY}"
            ),
            take_expired: format!(
                "UPDATE qtask_state SET {CLAIM_SET}, error = ?9 \
                 WHERE pool = {pool} AND status = 'running' AND {CLAIM_KEY}"
            ),
        }
    }
}

/// A write transaction begun with `BEGIN IMMEDIATE` through the statement cache (rusqlite's
/// `Transaction` parses `BEGIN` and `COMMIT` afresh each time, a measurable share of a
/// claim); rolled back when dropped uncommitted.
struct WriteTx<'c> {
    conn: &'c Connection,
    open: bool,
}

impl<'c> WriteTx<'c> {
    fn begin(conn: &'c Connection) -> rusqlite::Result<Self> {
        conn.exec("BEGIN IMMEDIATE", [])?;
        Ok(WriteTx { conn, open: true })
    }

    fn commit(mut self) -> rusqlite::Result<()> {
        self.conn.exec("COMMIT", [])?;
        self.open = false;
        Ok(())
    }
}

impl std::ops::Deref for WriteTx<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.conn
    }
}

impl Drop for WriteTx<'_> {
    fn drop(&mut self) {
        if self.open && !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}

/// A pool in a SQLite file.
pub struct SqlitePool {
    conn: Mutex<Connection>,
    pool: String,
    /// The pool's number in this store (`qtask_pool_ids`): state keys start with it, and
    /// comparing a number is much cheaper than comparing a name (key comparisons were the
    /// biggest part of a claim's own CPU time).
    pool_id: i64,
    /// `pool_id` as SQL text (see [`ClaimSql`] for why it is not a parameter).
    pool_literal: String,
    /// Hot-path statement texts, built once: the pool literal never changes.
    sql: HotSql,
    /// Claim statements by claimed-from status and compiled query condition, so the hot
    /// path neither formats SQL nor re-plans it.
    claim_sql: Mutex<HashMap<(Status, String), Arc<ClaimSql>>>,
    /// Lease tokens: a random per-handle prefix and a counter (see [`SqlitePool::token`]).
    token_salt: u64,
    token_count: AtomicU64,
    path: PathBuf,
    /// The checkpoint policy of `conn` (see [`Checkpoints`]). Declared after `conn`, so it
    /// outlives the connection whose WAL hook writes into it.
    checkpoints: Checkpoints,
}

/// WAL frames after which the writer that saw them checkpoints (SQLite's default).
const CHECKPOINT_FRAMES: i32 = 1000;

/// The WAL hook that replaces SQLite's autocheckpoint: it only records the WAL's length
/// (`arg` is a [`Checkpoints::frames`]).
unsafe extern "C" fn record_wal_frames(
    arg: *mut std::ffi::c_void,
    _db: *mut rusqlite::ffi::sqlite3,
    _name: *const std::ffi::c_char,
    frames: std::ffi::c_int,
) -> std::ffi::c_int {
    // SAFETY: `arg` points at the boxed `AtomicI32` of the `Checkpoints` installed on this
    // connection, which its owner keeps alive for as long as the connection.
    unsafe { &*(arg as *const AtomicI32) }.store(frames, Ordering::Relaxed);
    rusqlite::ffi::SQLITE_OK
}

/// When and how a qtask connection checkpoints the WAL, in place of SQLite's autocheckpoint
/// (the raw-rate baseline of `qtask bench pool` uses the same, see [`crate::bench`]).
///
/// The autocheckpoint is replaced because of what it does with several processes writing
/// without pause (measured with `qtask bench pool`, 4 workers): a passive checkpoint never
/// catches up with writers that keep appending, so the WAL is never restarted, keeps
/// growing, and every later commit starts another checkpoint with its two `fsync`s
/// (hundreds per second, most of a claim's time). Here a checkpoint is due only once the WAL
/// grew by [`CHECKPOINT_FRAMES`] since this connection's last one, and it runs in two steps:
/// a passive one that does the bulk (the `fsync`s included) while the others go on writing,
/// then a `RESTART` one with at most a few milliseconds of waiting, which copies the few
/// frames written meanwhile (writers wait that long) and lets the next writer restart the
/// WAL from its beginning. If a reader stays in the way, it is tried again at the next due
/// point. SQLite's own checkpoint when the last connection closes remains the backstop.
pub(crate) struct Checkpoints {
    /// The WAL's length after the connection's last commit, written by its WAL hook.
    frames: Box<AtomicI32>,
    /// `frames` at the last checkpoint.
    done_at: AtomicI32,
}

impl Checkpoints {
    /// Installs the policy on `conn`. The caller must keep the result alive as long as
    /// `conn` (the connection's WAL hook writes into it).
    pub(crate) fn install(conn: &Connection) -> Self {
        let frames = Box::new(AtomicI32::new(0));
        // SAFETY: a valid handle; the hook only stores into `frames`, which the caller keeps
        // alive as long as the connection.
        unsafe {
            rusqlite::ffi::sqlite3_wal_hook(
                conn.handle(),
                Some(record_wal_frames),
                &*frames as *const AtomicI32 as *mut std::ffi::c_void,
            );
        }
        Checkpoints {
            frames,
            done_at: AtomicI32::new(0),
        }
    }

    /// Checkpoints if due; call after a write, outside any transaction.
    pub(crate) fn after_write(&self, conn: &mut Connection) {
        let frames = self.frames.load(Ordering::Relaxed);
        let mut last = self.done_at.load(Ordering::Relaxed);
        if frames < last {
            // A WAL shorter than at the last checkpoint was restarted since. (A restart by
            // another process that this one only notices later just delays its next turn.)
            last = 0;
            self.done_at.store(0, Ordering::Relaxed);
        }
        if frames < last + CHECKPOINT_FRAMES || !conn.is_autocommit() {
            return;
        }
        self.done_at.store(frames, Ordering::Relaxed);
        if checkpoint(conn, rusqlite::ffi::SQLITE_CHECKPOINT_PASSIVE) {
            let _ = conn.busy_handler(Some(restart_wait));
            checkpoint(conn, rusqlite::ffi::SQLITE_CHECKPOINT_RESTART);
            let _ = conn.busy_handler(Some(busy_wait));
        }
    }
}

/// The connection, locked; on release it checkpoints if due (see [`Checkpoints`]).
struct ConnGuard<'a> {
    conn: MutexGuard<'a, Connection>,
    pool: &'a SqlitePool,
}

impl std::ops::Deref for ConnGuard<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        &self.conn
    }
}

impl std::ops::DerefMut for ConnGuard<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }
}

impl Drop for ConnGuard<'_> {
    fn drop(&mut self) {
        self.pool.checkpoints.after_write(&mut self.conn);
    }
}

/// Busy handler of the `RESTART` step: a few short waits (at most about 2 ms) for the
/// current writer and readers to finish, then it gives up until the next due point.
fn restart_wait(count: i32) -> bool {
    if count >= 20 {
        return false;
    }
    std::thread::sleep(Duration::from_micros(100));
    true
}

/// Runs a checkpoint of `mode`; false if another one was running (or it failed: checkpoints
/// are an optimisation here, SQLite's own on close is the backstop).
fn checkpoint(conn: &Connection, mode: std::ffi::c_int) -> bool {
    // SAFETY: a valid connection handle, the main database, no out-pointers.
    let rc = unsafe {
        rusqlite::ffi::sqlite3_wal_checkpoint_v2(
            conn.handle(),
            std::ptr::null(),
            mode,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    };
    rc == rusqlite::ffi::SQLITE_OK
}

/// Statements on one task by id, with the pool literal spliced in.
struct HotSql {
    /// A fenced commit by the state key in the token (`?1` res, `?2` status, `?3` finished?,
    /// `?4` now, `?5` id, `?6` token, `?7` prio_null, `?8` prio).
    commit_keyed: String,
    /// A fenced commit, the task found through its definition (`?1`..`?6` as above).
    commit_fenced: String,
    /// The same without a token (`?6` unused but bound).
    commit_any: String,
}

impl HotSql {
    fn new(pool: &str) -> Self {
        let commit = |key: &str, fence: &str| {
            format!(
                "UPDATE qtask_state SET res = ?1, status = ?2, \
                 finished_at = CASE WHEN ?3 THEN ?4 ELSE finished_at END, \
                 lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, claimed_from = NULL \
                 WHERE {key} AND {fence}"
            )
        };
        HotSql {
            commit_keyed: commit(
                &format!(
                    "pool = {pool} AND status = 'running' AND prio_null = ?7 AND prio = ?8 AND id = ?5"
                ),
                "lease_token = ?6",
            ),
            commit_fenced: commit(&locate(pool, "status = 'running'", 5), "lease_token = ?6"),
            commit_any: commit(
                &locate(pool, &format!("status IN {ANY_STATUS}"), 5),
                "?6 IS NULL",
            ),
        }
    }
}

/// Busy handler: retries a locked database every 400 µs for the first few seconds, then
/// every 2 ms, for about a minute in all. SQLite's own `busy_timeout` backs off to sleeps of
/// up to 100 ms, which leaves the write lock idle most of the time when several processes
/// claim tasks, each holding it for tens of microseconds; much shorter sleeps burn the CPU
/// the lock holder needs (measured with `qtask bench pool`: 50 µs gave 8k claims/s, 400 µs
/// 13k on two cores).
pub(crate) fn busy_wait(count: i32) -> bool {
    const FAST: i32 = 10_000;
    if count < FAST {
        std::thread::sleep(Duration::from_micros(400));
        return true;
    }
    if count - FAST > 28_000 {
        return false;
    }
    std::thread::sleep(Duration::from_millis(2));
    true
}

/// Applies the settings every qtask SQLite connection uses.
pub(crate) fn configure(conn: &mut Connection) -> rusqlite::Result<()> {
    conn.busy_handler(Some(busy_wait))?;
    conn.set_prepared_statement_cache_capacity(64);
    // Reading the header first: a file that is not a database fails here, before any write.
    conn.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()))?;
    conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
    conn.execute_batch("PRAGMA synchronous = NORMAL")
}

/// `execute` and `query_row` through the statement cache, so hot paths skip SQL parsing.
trait Cached {
    fn exec<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize>;
    fn row<T, P: rusqlite::Params>(
        &self,
        sql: &str,
        params: P,
        f: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T>;
}

impl Cached for Connection {
    fn exec<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }

    fn row<T, P: rusqlite::Params>(
        &self,
        sql: &str,
        params: P,
        f: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        self.prepare_cached(sql)?.query_row(params, f)
    }
}

/// A SQL string literal (quotes doubled): safe for any text without NUL, which pool names
/// cannot contain.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

fn to_time(ms: Option<i64>) -> Option<DateTime<Utc>> {
    ms.and_then(|ms| Utc.timestamp_millis_opt(ms).single())
}

fn to_sql(p: &Param) -> SqlValue {
    match p {
        Param::Int(n) => SqlValue::Integer(*n),
        Param::Text(s) => SqlValue::Text(s.clone()),
        Param::Path(segs) => SqlValue::Text(sqlite_path(segs)),
        Param::Json(v) => match v {
            Value::Null => SqlValue::Null,
            Value::Bool(b) => SqlValue::Integer(i64::from(*b)),
            Value::Number(n) => match n.as_i64() {
                Some(i) => SqlValue::Integer(i),
                None => SqlValue::Real(n.as_f64().unwrap_or(f64::NAN)),
            },
            Value::String(s) => SqlValue::Text(s.clone()),
            other => SqlValue::Text(other.to_string()),
        },
    }
}

/// A row as read, JSON still text: decoding happens in [`finish`] so its errors keep their type.
struct RawTask {
    task: Task,
    status: String,
    def: String,
    res: Option<String>,
}

fn read_task(row: &Row<'_>) -> rusqlite::Result<RawTask> {
    let id: i64 = row.get(0)?;
    Ok(RawTask {
        task: Task {
            id: id.to_string(),
            def: Value::Null,
            status: Status::Waiting,
            priority: row.get(3)?,
            res: None,
            attempts: row.get::<_, i64>(5)?.max(0) as u32,
            max_attempts: row.get::<_, Option<i64>>(6)?.map(|n| n.max(0) as u32),
            error: row.get(7)?,
            lease_owner: row.get(8)?,
            lease_expires_at: to_time(row.get(9)?),
            created_at: to_time(Some(row.get(10)?)).unwrap_or_default(),
            started_at: to_time(row.get(11)?),
            finished_at: to_time(row.get(12)?),
        },
        status: row.get(2)?,
        def: row.get(1)?,
        res: row.get(4)?,
    })
}

fn finish(raw: RawTask) -> Result<Task> {
    let mut task = raw.task;
    task.status = raw.status.parse()?;
    task.def = serde_json::from_str(&raw.def)?;
    task.res = raw.res.as_deref().map(serde_json::from_str).transpose()?;
    Ok(task)
}

impl SqlitePool {
    /// Opens (creating if needed) the store at `path` and binds to pool `pool`.
    pub fn open(path: &Path, pool: &str) -> Result<Self> {
        crate::check_pool_name(pool)?;
        let shown = path.display().to_string();
        let map_open = |e: rusqlite::Error| -> PoolError {
            match e.sqlite_error_code() {
                Some(ErrorCode::NotADatabase) => PoolError::NotADatabase {
                    path: shown.clone(),
                },
                _ => PoolError::Connect {
                    url: format!("sqlite:{shown}"),
                    reason: e.to_string(),
                },
            }
        };
        let mut conn = Connection::open(path).map_err(map_open)?;
        configure(&mut conn).map_err(map_open)?;
        let pool_id = {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(map_open)?;
            tx.execute_batch(
                "CREATE TABLE IF NOT EXISTS qtask_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
            )?;
            let found: Option<String> = tx
                .query_row(
                    "SELECT value FROM qtask_meta WHERE key = 'schema_version'",
                    [],
                    |r| r.get(0),
                )
                .optional()?;
            let found: i64 = found.and_then(|v| v.parse().ok()).unwrap_or(0);
            if found > SCHEMA_VERSION {
                return Err(PoolError::SchemaTooNew {
                    url: format!("sqlite:{shown}"),
                    found,
                    supported: SCHEMA_VERSION,
                });
            }
            let old_table: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'qtask_tasks')",
                [],
                |r| r.get(0),
            )?;
            tx.execute_batch(SCHEMA)?;
            if old_table {
                // Only schema 1 had this table; the migration is one transaction with the
                // version update, so a crash leaves the old layout intact.
                tx.execute_batch(MIGRATE_1_TO_2)?;
            }
            if found < SCHEMA_VERSION {
                tx.execute(
                    "INSERT OR REPLACE INTO qtask_meta (key, value) VALUES ('schema_version', ?1)",
                    [SCHEMA_VERSION.to_string()],
                )?;
            }
            tx.execute(
                "INSERT OR IGNORE INTO qtask_pool_ids (name) VALUES (?1)",
                [pool],
            )?;
            let pool_id: i64 = tx.query_row(
                "SELECT pool_id FROM qtask_pool_ids WHERE name = ?1",
                [pool],
                |r| r.get(0),
            )?;
            tx.commit()?;
            pool_id
        };
        let checkpoints = Checkpoints::install(&conn);
        let pool_literal = pool_id.to_string();
        Ok(SqlitePool {
            conn: Mutex::new(conn),
            pool: pool.to_string(),
            pool_id,
            sql: HotSql::new(&pool_literal),
            pool_literal,
            claim_sql: Mutex::new(HashMap::new()),
            token_salt: uuid::Uuid::new_v4().as_u64_pair().0,
            token_count: AtomicU64::new(0),
            path: path.to_path_buf(),
            checkpoints,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn conn(&self) -> ConnGuard<'_> {
        // A panic while holding the lock leaves the connection usable (SQLite rolls back).
        ConnGuard {
            conn: self.conn.lock().unwrap_or_else(|e| e.into_inner()),
            pool: self,
        }
    }

    fn pool_max_attempts(conn: &Connection, pool: &str) -> Result<i64> {
        let n: Option<Option<i64>> = conn
            .row(
                "SELECT max_attempts FROM qtask_pools WHERE name = ?1",
                [pool],
                |r| r.get(0),
            )
            .optional()?;
        Ok(n.flatten().unwrap_or(i64::from(DEFAULT_MAX_ATTEMPTS)))
    }

    fn select(&self, conn: &Connection, q: &Query) -> Result<Vec<Task>> {
        let mut c = Compiler::new(Dialect::Sqlite, 2);
        let cond = c.query(q);
        let sql = format!("SELECT {COLUMNS} FROM {TASKS} WHERE pool = ?1 AND ({cond}) ORDER BY id");
        let mut args = vec![SqlValue::Integer(self.pool_id)];
        args.extend(c.params.iter().map(to_sql));
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(args), read_task)?;
        rows.map(|r| finish(r?)).collect()
    }

    /// Why a fenced write matched no row: the task is gone, or the lease is not ours.
    fn miss(&self, conn: &Connection, id: &str) -> PoolError {
        let exists = id
            .parse::<i64>()
            .ok()
            .and_then(|n| {
                conn.row(
                    "SELECT 1 FROM qtask_defs WHERE task_pool = ?1 AND task_id = ?2",
                    params![self.pool_id, n],
                    |_| Ok(()),
                )
                .optional()
                .ok()
                .flatten()
            })
            .is_some();
        if exists {
            PoolError::LeaseLost { id: id.to_string() }
        } else {
            self.not_found(id)
        }
    }

    fn not_found(&self, id: &str) -> PoolError {
        PoolError::NotFound {
            pool: self.pool.clone(),
            id: id.to_string(),
        }
    }

    fn id_num(&self, id: &str) -> Result<i64> {
        id.parse().map_err(|_| self.not_found(id))
    }

    /// The state key of task `?{n}` in this pool, whatever its status.
    fn locate_any(&self, n: usize) -> String {
        locate(&self.pool_literal, &format!("status IN {ANY_STATUS}"), n)
    }

    /// The state key of task `?{n}` in this pool, if it is running.
    fn locate_running(&self, n: usize) -> String {
        locate(&self.pool_literal, "status = 'running'", n)
    }

    /// A fresh lease token: unique across handles (random prefix) and claims (counter).
    /// Fencing needs uniqueness, not secrecy, and this spares a `getrandom` per claim.
    fn token(&self) -> String {
        let n = self.token_count.fetch_add(1, Ordering::Relaxed);
        let mut out = String::with_capacity(32);
        for word in [self.token_salt, n] {
            for shift in (0..16).rev() {
                let digit = ((word >> (shift * 4)) & 0xf) as u32;
                out.push(char::from_digit(digit, 16).unwrap_or('0'));
            }
        }
        out
    }

    /// The claim statements for claims from `status` matching `cond`, built on first use.
    fn claim_sql(&self, status: Status, cond: String) -> Arc<ClaimSql> {
        let mut cache = self.claim_sql.lock().unwrap_or_else(|e| e.into_inner());
        let key = (status, cond);
        if let Some(sql) = cache.get(&key) {
            return sql.clone();
        }
        if cache.len() >= CLAIM_SQL_CACHE {
            cache.clear();
        }
        let sql = Arc::new(ClaimSql::new(&self.pool_literal, status, &key.1));
        cache.insert(key, sql.clone());
        sql
    }

    /// The claim of [`TaskPool::fetch_task`] inside the caller's write transaction: the task
    /// as read and its new lease token.
    fn claim(&self, tx: &Connection, opts: &FetchOptions) -> Result<Option<(RawTask, String)>> {
        let now = now_ms();
        // ?1 is now; the query's own parameters follow.
        let mut c = Compiler::new(Dialect::Sqlite, 2);
        let cond = c.query(&opts.query.without_status());
        let sql = self.claim_sql(opts.status, cond);
        let mut args = vec![SqlValue::Integer(now)];
        args.extend(c.params.iter().map(to_sql));
        let pick = |sql: &str| -> Result<Option<(RawTask, bool, i64)>> {
            Ok(tx
                .prepare_cached(sql)?
                .query_row(rusqlite::params_from_iter(args.iter()), |r| {
                    Ok((read_task(r)?, r.get(13)?, r.get(14)?))
                })
                .optional()?)
        };

        // Most claims find a fresh task and no expired lease: one statement checks both.
        if let Some(picked) = pick(&sql.fresh_unless_expired)? {
            return self
                .take(tx, &sql.take_fresh, picked, None, now, opts)
                .map(Some);
        }
        let any_expired: bool = tx
            .prepare_cached(&sql.any_expired)?
            .query_row(params![now], |r| r.get(0))?;
        if !any_expired {
            // Then the first statement found no fresh task either.
            return Ok(None);
        }
        let pool_max = Self::pool_max_attempts(tx, &self.pool)?;
        // Leases that ran out on their last allowed attempt: the task has failed.
        tx.prepare_cached(&sql.fail_expired)?
            .execute(params![now, pool_max])?;
        if let Some(picked) = pick(&sql.expired)? {
            let error = format!(
                "lease expired (held by {})",
                picked.0.task.lease_owner.as_deref().unwrap_or("?")
            );
            return self
                .take(tx, &sql.take_expired, picked, Some(error), now, opts)
                .map(Some);
        }
        match pick(&sql.fresh)? {
            Some(picked) => self
                .take(tx, &sql.take_fresh, picked, None, now, opts)
                .map(Some),
            None => Ok(None),
        }
    }

    /// Claims the task a pick found: updates its row by key and returns it as it now is,
    /// with its lease token (which carries the task's priority key, see [`TokenKey`]).
    fn take(
        &self,
        tx: &Connection,
        sql: &str,
        (mut raw, prio_null, prio): (RawTask, bool, i64),
        error: Option<String>,
        now: i64,
        opts: &FetchOptions,
    ) -> Result<(RawTask, String)> {
        let mut token = self.token();
        if prio_null {
            token.push('n');
        } else {
            token.push_str(&format!("p{prio}"));
        }
        let expires = opts
            .lease
            .map(|l| now.saturating_add(l.as_millis().min(i64::MAX as u128) as i64));
        let id: i64 = raw.task.id.parse().unwrap_or(-1);
        let from = opts.status.as_str();
        let changed = match &error {
            Some(e) => tx.exec(
                sql,
                params![
                    from, now, opts.owner, token, expires, prio_null, prio, id, e
                ],
            )?,
            None => tx.exec(
                sql,
                params![from, now, opts.owner, token, expires, prio_null, prio, id],
            )?,
        };
        if changed != 1 {
            // Inside the same write transaction as the pick: cannot happen.
            return Err(PoolError::Invalid(format!(
                "task {id} changed while claimed"
            )));
        }
        raw.status = Status::Running.as_str().to_string();
        let task = &mut raw.task;
        task.attempts += 1;
        task.lease_owner = Some(opts.owner.clone());
        task.lease_expires_at = to_time(expires);
        task.started_at = to_time(Some(now));
        if error.is_some() {
            task.error = error;
        }
        Ok((raw, token))
    }

    fn claimed(&self, raw: RawTask, token: String, opts: &FetchOptions) -> Result<ClaimedTask> {
        Ok(ClaimedTask {
            task: finish(raw)?,
            token,
            from: opts.status,
        })
    }

    /// The commit of [`TaskPool::commit_task_res`]; returns the rows changed (0: refused).
    fn commit_in(
        &self,
        conn: &Connection,
        n: i64,
        token: Option<&str>,
        res: &str,
        status: Option<Status>,
    ) -> Result<usize> {
        let status = status.unwrap_or(Status::Done);
        let finished = matches!(status, Status::Done | Status::Failed | Status::PartDone);
        let now = now_ms();
        let base = params![res, status.as_str(), finished, now, n, token];
        if let Some(key) = token.and_then(TokenKey::parse) {
            let keyed = params![
                res,
                status.as_str(),
                finished,
                now,
                n,
                token,
                key.prio_null,
                key.prio
            ];
            let changed = conn.exec(&self.sql.commit_keyed, keyed)?;
            if changed > 0 {
                return Ok(changed);
            }
        }
        let sql = match token {
            Some(_) => &self.sql.commit_fenced,
            None => &self.sql.commit_any,
        };
        Ok(conn.exec(sql, base)?)
    }

    /// Updates the state of every task matching `q`; `set` uses `?2..` for `set_params`.
    fn update_where(&self, q: &Query, set: &str, set_params: Vec<SqlValue>) -> Result<u64> {
        let conn = self.conn();
        let first = 2 + set_params.len();
        let mut c = Compiler::new(Dialect::Sqlite, first);
        let cond = c.query(q);
        let sql = format!(
            "UPDATE qtask_state SET {set} WHERE pool = ?1 \
             AND id IN (SELECT id FROM {TASKS} WHERE pool = ?1 AND ({cond}))"
        );
        let mut args = vec![SqlValue::Integer(self.pool_id)];
        args.extend(set_params);
        args.extend(c.params.iter().map(to_sql));
        Ok(conn.exec(&sql, rusqlite::params_from_iter(args))? as u64)
    }
}

impl TaskPool for SqlitePool {
    fn name(&self) -> &str {
        &self.pool
    }

    fn create_tasks(&self, defs: &[Value], opts: &CreateOptions) -> Result<Vec<Created>> {
        let hashes = check_defs(defs)?;
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(if opts.dry_run {
            TransactionBehavior::Deferred
        } else {
            TransactionBehavior::Immediate
        })?;
        let mut out = Vec::with_capacity(defs.len());
        let mut seen: HashMap<&str, usize> = HashMap::new();
        {
            let mut find = tx.prepare_cached(
                "SELECT task_id FROM qtask_defs WHERE task_pool = ?1 AND def_hash = ?2",
            )?;
            let mut insert_def = tx.prepare_cached(
                "INSERT INTO qtask_defs (task_pool, def, def_hash) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (task_pool, def_hash) DO NOTHING",
            )?;
            let mut insert_state = tx.prepare_cached(
                "INSERT INTO qtask_state (pool, status, prio_null, prio, id, max_attempts, created_at) \
                 VALUES (?1, 'waiting', 1, 0, ?2, ?3, ?4)",
            )?;
            let now = now_ms();
            let max = opts.max_attempts.map(i64::from);
            for (def, hash) in defs.iter().zip(&hashes) {
                if let Some(&first) = seen.get(hash.as_str()) {
                    let earlier: &Created = &out[first];
                    out.push(Created {
                        id: earlier.id.clone(),
                        new: false,
                    });
                    continue;
                }
                seen.insert(hash, out.len());
                let existing: Option<i64> = find
                    .query_row(params![self.pool_id, hash], |r| r.get(0))
                    .optional()?;
                let created = match existing {
                    Some(id) => Created {
                        id: Some(id.to_string()),
                        new: false,
                    },
                    None if opts.dry_run => Created {
                        id: None,
                        new: true,
                    },
                    None => {
                        let text = serde_json::to_string(def)?;
                        if insert_def.execute(params![self.pool_id, text, hash])? == 0 {
                            return Err(PoolError::Invalid(format!(
                                "definition {hash} of pool {:?} appeared while being created",
                                self.pool
                            )));
                        }
                        let id = tx.last_insert_rowid();
                        insert_state.execute(params![self.pool_id, id, max, now])?;
                        Created {
                            id: Some(id.to_string()),
                            new: true,
                        }
                    }
                };
                out.push(created);
            }
        }
        tx.commit()?;
        Ok(out)
    }

    fn fetch_task(&self, opts: &FetchOptions) -> Result<Option<ClaimedTask>> {
        let conn = self.conn();
        let tx = WriteTx::begin(&conn)?;
        let claimed = self.claim(&tx, opts)?;
        // Committed even when nothing was claimed: it keeps the leases just marked failed.
        tx.commit()?;
        claimed
            .map(|(raw, token)| self.claimed(raw, token, opts))
            .transpose()
    }

    fn commit_and_fetch(
        &self,
        id: &str,
        token: &str,
        res: &Value,
        status: Option<Status>,
        opts: &FetchOptions,
    ) -> Result<Option<ClaimedTask>> {
        let n = self.id_num(id)?;
        // Everything that needs no lock is done before taking it.
        let res = serde_json::to_string(res)?;
        let conn = self.conn();
        // One write transaction for both: half the commits (and lock hand-overs) per task.
        let tx = WriteTx::begin(&conn)?;
        if self.commit_in(&tx, n, Some(token), &res, status)? == 0 {
            let miss = self.miss(&tx, id);
            drop(tx);
            return Err(miss);
        }
        let claimed = self.claim(&tx, opts)?;
        tx.commit()?;
        claimed
            .map(|(raw, token)| self.claimed(raw, token, opts))
            .transpose()
    }

    fn heartbeat(&self, id: &str, token: &str, lease: Duration) -> Result<()> {
        let conn = self.conn();
        let n = self.id_num(id)?;
        let expires = now_ms().saturating_add(lease.as_millis().min(i64::MAX as u128) as i64);
        let changed = conn.exec(
            &format!(
                "UPDATE qtask_state SET lease_expires_at = ?1 WHERE {} AND lease_token = ?4",
                self.locate_running(3)
            ),
            params![expires, self.pool_id, n, token],
        )?;
        if changed == 0 {
            return Err(self.miss(&conn, id));
        }
        Ok(())
    }

    fn commit_task_res(
        &self,
        id: &str,
        token: Option<&str>,
        res: &Value,
        status: Option<Status>,
    ) -> Result<()> {
        let n = self.id_num(id)?;
        let res = serde_json::to_string(res)?;
        let conn = self.conn();
        if self.commit_in(&conn, n, token, &res, status)? == 0 {
            return Err(self.miss(&conn, id));
        }
        Ok(())
    }

    fn return_task(&self, id: &str, token: Option<&str>, status: Option<Status>) -> Result<()> {
        let conn = self.conn();
        let n = self.id_num(id)?;
        let key = match token {
            Some(_) => self.locate_running(3),
            None => self.locate_any(3),
        };
        let changed = conn.exec(
            &format!(
                "UPDATE qtask_state SET \
                 status = COALESCE(?1, CASE WHEN status = 'running' THEN claimed_from END, 'waiting'), \
                 attempts = CASE WHEN ?4 IS NULL THEN attempts ELSE max(attempts - 1, 0) END, \
                 lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, claimed_from = NULL \
                 WHERE {key} AND (?4 IS NULL OR lease_token = ?4)"
            ),
            params![status.map(Status::as_str), self.pool_id, n, token],
        )?;
        if changed == 0 {
            return Err(self.miss(&conn, id));
        }
        Ok(())
    }

    fn fail_task(&self, id: &str, token: &str, error: &str) -> Result<Status> {
        let conn = self.conn();
        let n = self.id_num(id)?;
        let pool_max = Self::pool_max_attempts(&conn, &self.pool)?;
        let status: Option<String> = conn
            .row(
                &format!(
                    "UPDATE qtask_state SET \
                     status = CASE WHEN attempts >= COALESCE(max_attempts, ?1) THEN 'failed' ELSE claimed_from END, \
                     finished_at = CASE WHEN attempts >= COALESCE(max_attempts, ?1) THEN ?2 ELSE finished_at END, \
                     error = ?3, lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, claimed_from = NULL \
                     WHERE {} AND lease_token = ?6 RETURNING status",
                    self.locate_running(5)
                ),
                params![pool_max, now_ms(), error, self.pool_id, n, token],
                |r| r.get(0),
            )
            .optional()?;
        match status {
            Some(s) => s.parse(),
            None => Err(self.miss(&conn, id)),
        }
    }

    fn query(&self, query: &Query) -> Result<Vec<Task>> {
        let conn = self.conn();
        self.select(&conn, query)
    }

    fn re_query(&self, id: &str) -> Result<Task> {
        let conn = self.conn();
        self.select(&conn, &Query::by_id(id))?
            .into_iter()
            .next()
            .ok_or_else(|| self.not_found(id))
    }

    fn task_stat(&self, query: &Query) -> Result<TaskStat> {
        let conn = self.conn();
        let mut c = Compiler::new(Dialect::Sqlite, 2);
        let cond = c.query(query);
        // Counting a whole pool needs no definitions: the state key alone answers it.
        let from = if query.conds.is_empty() {
            "qtask_state"
        } else {
            TASKS
        };
        let sql = format!(
            "SELECT status, count(*) FROM {from} WHERE pool = ?1 AND ({cond}) GROUP BY status"
        );
        let mut args = vec![SqlValue::Integer(self.pool_id)];
        args.extend(c.params.iter().map(to_sql));
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(args), |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })?;
        let mut stat = TaskStat::new();
        for row in rows {
            let (s, n) = row?;
            stat.insert(s.parse()?, n as u64);
        }
        Ok(stat)
    }

    fn reset_status(&self, query: &Query, status: Status) -> Result<u64> {
        self.update_where(
            query,
            "status = ?2, lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, claimed_from = NULL",
            vec![SqlValue::Text(status.as_str().to_string())],
        )
    }

    fn prioritize(&self, id: &str, priority: Option<i64>) -> Result<()> {
        let mut conn = self.conn();
        let n = self.id_num(id)?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // The state key first: it is found through the priority the definition still has.
        tx.exec(
            &format!(
                "UPDATE qtask_state SET prio_null = (?1 IS NULL), prio = COALESCE(?1, 0) \
                 WHERE {}",
                self.locate_any(3)
            ),
            params![priority, self.pool_id, n],
        )?;
        let changed = tx.exec(
            "UPDATE qtask_defs SET priority = ?1 WHERE task_pool = ?2 AND task_id = ?3",
            params![priority, self.pool_id, n],
        )?;
        if changed == 0 {
            return Err(self.not_found(id));
        }
        tx.commit()?;
        Ok(())
    }

    fn remove(&self, query: &Query) -> Result<u64> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let removed = if query.conds.is_empty() {
            tx.execute("DELETE FROM qtask_state WHERE pool = ?1", [self.pool_id])?;
            tx.execute(
                "DELETE FROM qtask_defs WHERE task_pool = ?1",
                [self.pool_id],
            )?
        } else {
            let mut c = Compiler::new(Dialect::Sqlite, 2);
            let cond = c.query(query);
            let mut args = vec![SqlValue::Integer(self.pool_id)];
            args.extend(c.params.iter().map(to_sql));
            let n = tx.execute(
                &format!(
                    "DELETE FROM qtask_defs WHERE task_pool = ?1 \
                     AND task_id IN (SELECT id FROM {TASKS} WHERE pool = ?1 AND ({cond}))"
                ),
                rusqlite::params_from_iter(args),
            )?;
            if n > 0 {
                // The states left without a definition are those just removed.
                tx.execute(
                    "DELETE FROM qtask_state WHERE pool = ?1 \
                     AND NOT EXISTS (SELECT 1 FROM qtask_defs WHERE task_id = id)",
                    [self.pool_id],
                )?;
            }
            n
        };
        tx.commit()?;
        Ok(removed as u64)
    }

    fn retry(&self, query: &Query) -> Result<u64> {
        self.update_where(
            &query.with_status(Status::Failed),
            "status = 'waiting', attempts = 0, finished_at = NULL",
            vec![],
        )
    }

    fn replace_task(&self, id: &str, def: &Value) -> Result<()> {
        let hash = check_defs(std::slice::from_ref(def))?.remove(0);
        let conn = self.conn();
        let n = self.id_num(id)?;
        let other: Option<i64> = conn
            .query_row(
                "SELECT task_id FROM qtask_defs WHERE task_pool = ?1 AND def_hash = ?2 AND task_id <> ?3",
                params![self.pool_id, hash, n],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(other) = other {
            return Err(PoolError::Invalid(format!(
                "task {other} of pool {:?} already has this definition",
                self.pool
            )));
        }
        let changed = conn.exec(
            "UPDATE qtask_defs SET def = ?1, def_hash = ?2 WHERE task_pool = ?3 AND task_id = ?4",
            params![serde_json::to_string(def)?, hash, self.pool_id, n],
        )?;
        if changed == 0 {
            return Err(self.not_found(id));
        }
        Ok(())
    }

    fn set_max_attempts(&self, max_attempts: Option<u32>) -> Result<()> {
        let conn = self.conn();
        conn.exec(
            "INSERT INTO qtask_pools (name, max_attempts) VALUES (?1, ?2) \
             ON CONFLICT (name) DO UPDATE SET max_attempts = excluded.max_attempts",
            params![self.pool, max_attempts],
        )?;
        Ok(())
    }

    fn list(&self) -> Result<Vec<String>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT name FROM qtask_pool_ids \
                 WHERE EXISTS (SELECT 1 FROM qtask_defs WHERE task_pool = pool_id) ORDER BY name",
        )?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
