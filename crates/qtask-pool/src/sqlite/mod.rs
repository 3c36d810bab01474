//! The SQLite backend: one file shared by any number of processes on one machine.
//!
//! WAL mode lets readers run beside the single writer; every write that reads-then-writes
//! (claims, creates) runs inside `BEGIN IMMEDIATE`, which takes the write lock up front so
//! the busy timeout applies (a deferred transaction upgrading to a writer fails "busy"
//! without waiting). Times are Unix milliseconds from this machine's clock, which every
//! process sharing the file has in common.
//!
//! Layout (schema 3): what a claim never changes (the definition, its hash, the priority)
//! lives in `qtask_defs` (rowid `task_id`, the task id); everything a claim or a commit
//! changes lives in `qtask_state`, a `WITHOUT ROWID` table clustered on the claim order
//! `(pool, lane, prio_null, prio DESC, id)`, where `pool` is the pool's number from
//! `qtask_pool_ids` and the lane groups statuses by what claims them (see [`lane`]): 0
//! holds running and done tasks, 1 waiting ones, 2 part_done, 3 failed. A claim moves the
//! first row of lane 1 to the end of lane 0, its neighbour, and a commit to `done` rewrites
//! its row where it is, so one commit-and-claim usually changes a single page. (The WAL
//! frames a transaction appends, with the checkpoints that copy them back, are a large part
//! of what a claim costs; schema 1, one table plus an index on the claim order, wrote 2.8
//! frames per claim.) A row is found by id through its definition, which gives the pool,
//! priority and id of its state key (see [`locate`]); a lease token also carries its task's
//! priority key (see [`TokenKey`]), so a worker's commit touches nothing but the state page
//! it changes.
//!
//! Running tasks share lane 0 with done ones, so finding expired leases means reading the
//! pool's lane 0. A claim does not do that each time: `qtask_pool_ids.lease_check_at` is a
//! lower bound of the pool's lease expiries (every claim lowers it to its own expiry if
//! that is earlier; renewals and commits only raise the true minimum), and claims look for
//! expired leases only once it has passed, then set it to the true minimum again. With
//! renewals every third of a lease, that is a read of lane 0 about once per lease period.
//!
//! Claims and commits hold SQLite's write lock only for statements on one page or two;
//! what needs no lock (serialising the result, decoding the task) is done outside it, and
//! the WAL is checkpointed outside it too (see [`Checkpoints`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, ErrorCode, OptionalExtension, Row, TransactionBehavior, params};
use serde_json::Value;

mod checkpoint;
mod hot;
mod schema;

use hot::Hot;

pub(crate) use checkpoint::Checkpoints;
pub use schema::SCHEMA_VERSION;
use schema::{SCHEMA, STATE_COLUMNS, lane, lane_cond, lane_sql, migrate_1, migrate_2, quote};

use crate::check_defs;
use crate::error::{PoolError, Result};
use crate::pool::{CreateOptions, DEFAULT_MAX_ATTEMPTS, FetchOptions, TaskPool, TaskStat};
use crate::query::Query;
use crate::sql::{Compiler, Dialect, Param, sqlite_path};
use crate::status::Status;
use crate::task::{ClaimedTask, Created, Task};

/// The columns [`read_task`] reads, as they are named in [`TASKS`].
const COLUMNS: &str = "id, def, status, priority, res, attempts, max_attempts, error, \
    lease_owner, lease_expires_at, created_at, started_at, finished_at";

/// Every lane, for seeks on the state key when the status is not known.
const ANY_LANE: &str = "lane IN (0, 1, 2, 3)";

/// The task documents: definitions joined to their state. The join terms name the whole
/// state key, so a lookup by id seeks (four probes, one per lane) instead of scanning; the
/// column names are those of the query compiler (`id`, `def`, `status`, `priority`, ...).
const TASKS: &str = "qtask_defs JOIN qtask_state ON pool = task_pool \
    AND lane IN (0, 1, 2, 3) \
    AND prio_null = (priority IS NULL) AND prio = COALESCE(priority, 0) AND id = task_id";

/// The state key of task `?{n}` given its lane condition ([`lane_cond`] or [`ANY_LANE`]):
/// pool, priority and id come from its definition.
fn locate(pool: &str, lane: &str, n: usize) -> String {
    format!(
        "pool = {pool} AND {lane} \
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
/// A claim is a `SELECT` of the best candidate's state row, then the change of that one row
/// by its full key: measured against one `UPDATE ... WHERE key = (SELECT ...) RETURNING ...`,
/// which SQLite runs through two temporary tables (the rows to change, as the key itself
/// changes, and the rows to return), it is less than half the time of a claim, all of it
/// inside the write lock. A claim that moves the row to lane 0 deletes it and inserts it
/// again from the values the pick read (see [`HotSql`]): two B-tree seeks, where an `UPDATE`
/// of the key takes four (find the row, check the new key is free, find the row again,
/// find the new key's place).
///
/// The pool and lane are SQL literals here, not parameters: this SQLite is built with
/// STAT4, which re-prepares a statement at every new binding of a parameter compared with
/// an indexed column, and that re-parse was most of a claim's cost.
struct ClaimSql {
    /// The best task of the origin status, provided the pool's lease check is not due (an
    /// expired lease must be dealt with first): the common case in one statement (`?1` now).
    fresh_unless_due: String,
    /// The best task of the origin status.
    fresh: String,
    /// Whether the pool's lease check is due (`?1` now): see the module documentation.
    check_due: String,
    /// Marks failed the expired leases that were on their last allowed attempt
    /// (`?1` now, `?2` the pool's attempt limit).
    fail_expired: String,
    /// The best task of this origin status whose lease expired (`?1` now).
    expired: String,
    /// Claims the fresh task picked where it is, for origins in lane 0 (see [`CLAIM_SET`]
    /// and [`CLAIM_KEY`]).
    take_in_place: String,
    /// Claims the expired task picked, `?9` the error to record.
    take_expired: String,
}

/// What a pick reads: the columns of [`read_task`] (with the times as stored), then the rest
/// of the state key; [`ClaimSql::new`] adds the pool's lease hint (see [`read_picked`]).
const PICK_COLUMNS: &str = "id, (SELECT def FROM qtask_defs WHERE task_id = id), status, CASE WHEN prio_null THEN NULL ELSE prio END, \
    res, attempts, max_attempts, error, lease_owner, lease_expires_at, created_at, started_at, \
    finished_at, prio_null, prio";

/// The SET list of a claim: `?1` the status claimed from, `?2` now, `?3` owner, `?4` token,
/// `?5` lease expiry.
const CLAIM_SET: &str = "status = 'running', claimed_from = ?1, attempts = attempts + 1, \
    lease_owner = ?3, lease_token = ?4, lease_expires_at = ?5, started_at = ?2";

/// The rest of the picked row's key, after the pool and lane literals: `?6` prio_null,
/// `?7` prio, `?8` id.
const CLAIM_KEY: &str = "prio_null = ?6 AND prio = ?7 AND id = ?8";

impl ClaimSql {
    fn new(pool: &str, status: Status, cond: &str) -> Self {
        let origin = lane_cond(status);
        let from_status = quote(status.as_str());
        let hint = format!("(SELECT lease_check_at FROM qtask_pool_ids WHERE pool_id = {pool})");
        // The state key in claim order: the first match is the best task. A condition on
        // the definition or the priority needs the definitions too; the common empty one
        // reads nothing but the state. The query's parameters start at ?2.
        let pick = |lane_cond: &str| {
            let from = if cond == "1=1" {
                "qtask_state"
            } else {
                "qtask_state JOIN qtask_defs ON task_id = id"
            };
            format!(
                "SELECT {PICK_COLUMNS}, {hint} FROM {from} \
                 WHERE pool = {pool} AND {lane_cond} AND ({cond}) \
                 ORDER BY prio_null, prio DESC, id LIMIT 1"
            )
        };
        let due = format!("{hint} < ?1");
        let running = lane_cond(Status::Running);
        ClaimSql {
            fresh_unless_due: pick(&format!("{origin} AND NOT COALESCE({due}, 0)")),
            // `?1` (now) is bound to every pick; this one has no use for it.
            fresh: pick(&format!("{origin} AND ?1 IS NOT NULL")),
            check_due: format!("SELECT COALESCE({due}, 0)"),
            fail_expired: format!(
                "UPDATE qtask_state SET lane = {failed}, status = 'failed', finished_at = ?1, \
                 error = 'lease expired (held by ' || COALESCE(lease_owner, '?') || ') on attempt ' || attempts || ' of ' || COALESCE(max_attempts, ?2), \
                 lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, claimed_from = NULL \
                 WHERE pool = {pool} AND {running} AND lease_expires_at < ?1 \
                 AND attempts >= COALESCE(max_attempts, ?2)",
                failed = lane(Status::Failed)
            ),
            expired: pick(&format!(
                "{running} AND claimed_from = {from_status} AND lease_expires_at < ?1"
            )),
            take_in_place: format!(
                "UPDATE qtask_state SET {CLAIM_SET} WHERE pool = {pool} AND {origin} AND {CLAIM_KEY}"
            ),
            take_expired: format!(
                "UPDATE qtask_state SET {CLAIM_SET}, error = ?9 \
                 WHERE pool = {pool} AND {running} AND {CLAIM_KEY}"
            ),
        }
    }
}

/// A task a claim picked, before it is taken.
struct Picked {
    raw: RawTask,
    prio_null: bool,
    prio: i64,
    /// `created_at` and `finished_at` as stored, for moving the row.
    created_ms: i64,
    finished_ms: Option<i64>,
    /// The pool's lease hint when the task was picked.
    hint: Option<i64>,
}

fn read_picked(r: &Row<'_>) -> rusqlite::Result<Picked> {
    Ok(Picked {
        raw: read_task(r)?,
        prio_null: r.get(13)?,
        prio: r.get(14)?,
        created_ms: r.get(10)?,
        finished_ms: r.get(12)?,
        hint: r.get(15)?,
    })
}

/// A write transaction begun with `BEGIN IMMEDIATE` through the kept statements (rusqlite's
/// `Transaction` parses `BEGIN` and `COMMIT` afresh each time, a measurable share of a
/// claim); rolled back when dropped uncommitted.
struct WriteTx<'c> {
    conn: &'c Connection,
    hot: &'c mut Hot,
    open: bool,
}

impl<'c> WriteTx<'c> {
    fn begin(db: &'c mut Db) -> rusqlite::Result<Self> {
        db.hot.begin.execute(&[])?;
        Ok(WriteTx {
            conn: &db.conn,
            hot: &mut db.hot,
            open: true,
        })
    }

    fn commit(mut self) -> rusqlite::Result<()> {
        self.hot.commit.execute(&[])?;
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

/// A connection and the statements kept on it.
struct Db {
    /// Declared before `conn`, so the statements are finalized before it closes.
    hot: Hot,
    conn: Connection,
}

/// A pool in a SQLite file.
pub struct SqlitePool {
    db: Mutex<Db>,
    pool: String,
    /// The pool's number in this store (`qtask_pool_ids`): state keys start with it, and
    /// comparing a number is much cheaper than comparing a name (key comparisons were the
    /// biggest part of a claim's own CPU time).
    pool_id: i64,
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

/// The connection, locked; on release it checkpoints if due (see [`Checkpoints`]).
struct ConnGuard<'a> {
    db: MutexGuard<'a, Db>,
    pool: &'a SqlitePool,
}

impl ConnGuard<'_> {
    /// Begins a write transaction.
    fn write(&mut self) -> rusqlite::Result<WriteTx<'_>> {
        WriteTx::begin(&mut self.db)
    }

    /// The connection and its kept statements.
    fn split(&mut self) -> (&Connection, &mut Hot) {
        let db = &mut *self.db;
        (&db.conn, &mut db.hot)
    }
}

impl std::ops::Deref for ConnGuard<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        &self.db.conn
    }
}

impl std::ops::DerefMut for ConnGuard<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        &mut self.db.conn
    }
}

impl Drop for ConnGuard<'_> {
    fn drop(&mut self) {
        self.pool.checkpoints.after_write(&mut self.db.conn);
    }
}

/// Statements on one task by id, and the pool's lease hint, with the pool literal spliced in.
struct HotSql {
    /// A fenced commit by the state key in the token (`?1` res, `?2` status, `?3` finished?,
    /// `?4` now, `?5` id, `?6` token, `?7` prio_null, `?8` prio): `[0]` for a status that
    /// stays in lane 0 (the row is rewritten where it is), `[1]` for one that moves it.
    commit_keyed: [String; 2],
    /// A fenced commit, the task found through its definition (`?1`..`?6` as above).
    commit_fenced: [String; 2],
    /// The same without a token (`?6` unused but bound), from any lane.
    commit_any: String,
    /// The first half of moving a claimed task to lane 0 (`?1` lane, `?2` prio_null,
    /// `?3` prio, `?4` id).
    take_delete: String,
    /// The second half: the running task's row (`?1` prio_null, `?2` prio, `?3` id, `?4` res,
    /// `?5` attempts, `?6` max_attempts, `?7` claimed from, `?8` owner, `?9` token,
    /// `?10` lease expiry, `?11` error, `?12` created, `?13` started, `?14` finished).
    take_insert: String,
    /// Lowers the pool's lease hint to `?1`.
    lower_hint: String,
    /// Sets the pool's lease hint to its earliest lease expiry.
    reset_hint: String,
}

impl HotSql {
    fn new(pool: &str) -> Self {
        let commit = |key: &str, fence: &str, moves: bool| {
            let lane = if moves {
                format!("lane = {}, ", lane_sql("?2"))
            } else {
                String::new()
            };
            format!(
                "UPDATE qtask_state SET {lane}res = ?1, status = ?2, \
                 finished_at = CASE WHEN ?3 THEN ?4 ELSE finished_at END, \
                 lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, claimed_from = NULL \
                 WHERE {key} AND {fence}"
            )
        };
        let running = lane_cond(Status::Running);
        let keyed =
            format!("pool = {pool} AND {running} AND prio_null = ?7 AND prio = ?8 AND id = ?5");
        let fenced = locate(pool, &running, 5);
        HotSql {
            commit_keyed: [false, true].map(|m| commit(&keyed, "lease_token = ?6", m)),
            commit_fenced: [false, true].map(|m| commit(&fenced, "lease_token = ?6", m)),
            commit_any: commit(&locate(pool, ANY_LANE, 5), "?6 IS NULL", true),
            take_delete: format!(
                "DELETE FROM qtask_state WHERE pool = {pool} AND lane = ?1 \
                 AND prio_null = ?2 AND prio = ?3 AND id = ?4"
            ),
            take_insert: format!(
                "INSERT INTO qtask_state (pool, lane, prio_null, prio, id, status, {STATE_COLUMNS}) \
                 VALUES ({pool}, {lane}, ?1, ?2, ?3, 'running', ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                lane = lane(Status::Running)
            ),
            lower_hint: format!(
                "UPDATE qtask_pool_ids SET lease_check_at = ?1 WHERE pool_id = {pool}"
            ),
            reset_hint: format!(
                "UPDATE qtask_pool_ids SET lease_check_at = (SELECT min(lease_expires_at) \
                 FROM qtask_state WHERE pool = {pool} AND {running}) WHERE pool_id = {pool}"
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
    enable_wal(conn)?;
    conn.execute_batch("PRAGMA synchronous = NORMAL")
}

/// How long opening a store keeps starting over while the file is busy.
const OPEN_PATIENCE: Duration = Duration::from_secs(60);

/// Switches the file to WAL mode. When several processes open a new file at once, each can
/// hold a read lock while asking for the write lock the switch needs; SQLite then fails one
/// of them at once ("database is locked") instead of calling the busy handler, as they would
/// wait on each other. That one lets go of its lock and tries again.
fn enable_wal(conn: &Connection) -> rusqlite::Result<()> {
    let start = std::time::Instant::now();
    loop {
        match conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(())) {
            Err(e)
                if e.sqlite_error_code() == Some(ErrorCode::DatabaseBusy)
                    && start.elapsed() < OPEN_PATIENCE =>
            {
                std::thread::sleep(Duration::from_millis(1));
            }
            other => return other,
        }
    }
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
        // Setting up is idempotent, in one transaction. Processes opening a new file at once
        // can get "database is locked" where SQLite would not let them wait on each other
        // (seen from the journal-mode switch, see [`enable_wal`]): they start over.
        let start = std::time::Instant::now();
        loop {
            match Self::open_once(path, pool) {
                Err(PoolError::Sqlite(e))
                    if e.sqlite_error_code() == Some(ErrorCode::DatabaseBusy)
                        && start.elapsed() < OPEN_PATIENCE =>
                {
                    std::thread::sleep(Duration::from_millis(5));
                }
                other => return other,
            }
        }
    }

    fn open_once(path: &Path, pool: &str) -> Result<Self> {
        let shown = path.display().to_string();
        let map_open = |e: rusqlite::Error| -> PoolError {
            match e.sqlite_error_code() {
                Some(ErrorCode::NotADatabase) => PoolError::NotADatabase {
                    path: shown.clone(),
                },
                Some(ErrorCode::DatabaseBusy) => PoolError::Sqlite(e),
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
            // Each migration is one transaction with the version update, so a crash leaves
            // the old layout intact.
            if found == 2 {
                tx.execute_batch(&migrate_2())?;
            }
            tx.execute_batch(SCHEMA)?;
            if old_table {
                // Only schema 1 had this table.
                tx.execute_batch(&migrate_1())?;
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
        let sql = HotSql::new(&pool_id.to_string());
        let hot = Hot::prepare(&conn, &sql)?;
        Ok(SqlitePool {
            db: Mutex::new(Db { hot, conn }),
            pool: pool.to_string(),
            pool_id,
            sql,
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
            db: self.db.lock().unwrap_or_else(|e| e.into_inner()),
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
        locate(&self.pool_id.to_string(), ANY_LANE, n)
    }

    /// The state key of task `?{n}` in this pool, if it is running.
    fn locate_running(&self, n: usize) -> String {
        locate(&self.pool_id.to_string(), &lane_cond(Status::Running), n)
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
        let sql = Arc::new(ClaimSql::new(&self.pool_id.to_string(), status, &key.1));
        cache.insert(key, sql.clone());
        sql
    }

    /// The claim of [`TaskPool::fetch_task`] inside the caller's write transaction: the task
    /// as read and its new lease token.
    fn claim(
        &self,
        tx: &mut WriteTx<'_>,
        opts: &FetchOptions,
    ) -> Result<Option<(RawTask, String)>> {
        let now = now_ms();
        // ?1 is now; the query's own parameters follow.
        let mut c = Compiler::new(Dialect::Sqlite, 2);
        let cond = c.query(&opts.query.without_status());
        let sql = self.claim_sql(opts.status, cond);
        let mut args = vec![SqlValue::Integer(now)];
        args.extend(c.params.iter().map(to_sql));
        let pick = |tx: &WriteTx<'_>, sql: &str| -> Result<Option<Picked>> {
            Ok(tx
                .prepare_cached(sql)?
                .query_row(rusqlite::params_from_iter(args.iter()), read_picked)
                .optional()?)
        };

        // Most claims find a fresh task and no lease check due: one statement checks both.
        if let Some(picked) = pick(tx, &sql.fresh_unless_due)? {
            return self.take(tx, &sql, picked, None, now, opts).map(Some);
        }
        let due: bool = tx
            .prepare_cached(&sql.check_due)?
            .query_row(params![now], |r| r.get(0))?;
        if !due {
            // Then the first statement found no fresh task either.
            return Ok(None);
        }
        let pool_max = Self::pool_max_attempts(tx, &self.pool)?;
        // Leases that ran out on their last allowed attempt: the task has failed.
        tx.prepare_cached(&sql.fail_expired)?
            .execute(params![now, pool_max])?;
        let claimed = if let Some(picked) = pick(tx, &sql.expired)? {
            let error = format!(
                "lease expired (held by {})",
                picked.raw.task.lease_owner.as_deref().unwrap_or("?")
            );
            Some(self.take(tx, &sql, picked, Some(error), now, opts)?)
        } else {
            match pick(tx, &sql.fresh)? {
                Some(picked) => Some(self.take(tx, &sql, picked, None, now, opts)?),
                None => None,
            }
        };
        // After the take, so that its own lease counts.
        tx.exec(&self.sql.reset_hint, [])?;
        Ok(claimed)
    }

    /// Claims the task a pick found and returns it as it now is, with its lease token (which
    /// carries the task's priority key, see [`TokenKey`]). `expired` is the error to record
    /// when the task is taken over from an expired lease.
    fn take(
        &self,
        tx: &mut WriteTx<'_>,
        sql: &ClaimSql,
        picked: Picked,
        expired: Option<String>,
        now: i64,
        opts: &FetchOptions,
    ) -> Result<(RawTask, String)> {
        let Picked {
            mut raw,
            prio_null,
            prio,
            created_ms,
            finished_ms,
            hint,
        } = picked;
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
        let claim = params![from, now, opts.owner, token, expires, prio_null, prio, id];
        let owner = opts.owner.as_str();
        let changed = match &expired {
            Some(e) => tx.exec(
                &sql.take_expired,
                params![
                    from, now, opts.owner, token, expires, prio_null, prio, id, e
                ],
            )?,
            None if lane(opts.status) == lane(Status::Running) => {
                tx.exec(&sql.take_in_place, claim)?
            }
            None => {
                let deleted = tx.hot.take_delete.execute(&[
                    lane(opts.status).into(),
                    prio_null.into(),
                    prio.into(),
                    id.into(),
                ])?;
                let task = &raw.task;
                deleted.min(tx.hot.take_insert.execute(&[
                    prio_null.into(),
                    prio.into(),
                    id.into(),
                    raw.res.as_deref().into(),
                    (i64::from(task.attempts) + 1).into(),
                    task.max_attempts.map(i64::from).into(),
                    from.into(),
                    owner.into(),
                    token.as_str().into(),
                    expires.into(),
                    task.error.as_deref().into(),
                    created_ms.into(),
                    now.into(),
                    finished_ms.into(),
                ])?)
            }
        };
        if changed != 1 {
            // Inside the same write transaction as the pick: cannot happen.
            return Err(PoolError::Invalid(format!(
                "task {id} changed while claimed"
            )));
        }
        if let Some(e) = expires
            && hint.is_none_or(|h| e < h)
        {
            tx.hot.lower_hint.execute(&[e.into()])?;
        }
        raw.status = Status::Running.as_str().to_string();
        let task = &mut raw.task;
        task.attempts += 1;
        task.lease_owner = Some(opts.owner.clone());
        task.lease_expires_at = to_time(expires);
        task.started_at = to_time(Some(now));
        if expired.is_some() {
            task.error = expired;
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
        hot: &mut Hot,
        n: i64,
        token: Option<&str>,
        res: &str,
        status: Option<Status>,
    ) -> Result<usize> {
        let status = status.unwrap_or(Status::Done);
        let finished = matches!(status, Status::Done | Status::Failed | Status::PartDone);
        // A running task that stays in lane 0 is rewritten where it is.
        let moves = usize::from(lane(status) != lane(Status::Running));
        let now = now_ms();
        let base = params![res, status.as_str(), finished, now, n, token];
        if let Some((token, key)) = token.and_then(|t| Some((t, TokenKey::parse(t)?))) {
            let changed = hot.commit_keyed[moves].execute(&[
                res.into(),
                status.as_str().into(),
                finished.into(),
                now.into(),
                n.into(),
                token.into(),
                key.prio_null.into(),
                key.prio.into(),
            ])?;
            if changed > 0 {
                return Ok(changed);
            }
        }
        let sql = match token {
            Some(_) => &self.sql.commit_fenced[moves],
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
                "INSERT INTO qtask_state (pool, lane, prio_null, prio, id, status, max_attempts, created_at) \
                 VALUES (?1, 1, 1, 0, ?2, 'waiting', ?3, ?4)",
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
        let mut conn = self.conn();
        let mut tx = conn.write()?;
        let claimed = self.claim(&mut tx, opts)?;
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
        let mut conn = self.conn();
        // One write transaction for both: half the commits (and lock hand-overs) per task.
        let mut tx = conn.write()?;
        if self.commit_in(tx.conn, tx.hot, n, Some(token), &res, status)? == 0 {
            let miss = self.miss(&tx, id);
            drop(tx);
            return Err(miss);
        }
        let claimed = self.claim(&mut tx, opts)?;
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
        let mut conn = self.conn();
        let (db, hot) = conn.split();
        if self.commit_in(db, hot, n, token, &res, status)? == 0 {
            return Err(self.miss(db, id));
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
        let back = "COALESCE(?1, CASE WHEN status = 'running' THEN claimed_from END, 'waiting')";
        let changed = conn.exec(
            &format!(
                "UPDATE qtask_state SET status = {back}, lane = {}, \
                 attempts = CASE WHEN ?4 IS NULL THEN attempts ELSE max(attempts - 1, 0) END, \
                 lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, claimed_from = NULL \
                 WHERE {key} AND (?4 IS NULL OR lease_token = ?4)",
                lane_sql(back)
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
        let next =
            "CASE WHEN attempts >= COALESCE(max_attempts, ?1) THEN 'failed' ELSE claimed_from END";
        let status: Option<String> = conn
            .row(
                &format!(
                    "UPDATE qtask_state SET status = {next}, lane = {}, \
                     finished_at = CASE WHEN attempts >= COALESCE(max_attempts, ?1) THEN ?2 ELSE finished_at END, \
                     error = ?3, lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, claimed_from = NULL \
                     WHERE {} AND lease_token = ?6 RETURNING status",
                    lane_sql(next),
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
            "status = ?2, lane = ?3, lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, claimed_from = NULL",
            vec![
                SqlValue::Text(status.as_str().to_string()),
                SqlValue::Integer(lane(status)),
            ],
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
            "status = 'waiting', lane = 1, attempts = 0, finished_at = NULL",
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
