//! The SQLite backend: one file shared by any number of processes on one machine.
//!
//! WAL mode lets readers run beside the single writer; every write that reads-then-writes
//! (claims, creates) runs inside `BEGIN IMMEDIATE`, which takes the write lock up front so
//! the busy timeout applies (a deferred transaction upgrading to a writer fails "busy"
//! without waiting). Times are Unix milliseconds from this machine's clock, which every
//! process sharing the file has in common.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, ErrorCode, OptionalExtension, Row, TransactionBehavior, params};
use serde_json::Value;

use crate::error::{PoolError, Result};
use crate::pool::{CreateOptions, DEFAULT_MAX_ATTEMPTS, FetchOptions, TaskPool, TaskStat};
use crate::query::Query;
use crate::sql::{Compiler, Dialect, Param, sqlite_path};
use crate::status::Status;
use crate::task::{ClaimedTask, Created, Task};
use crate::{SCHEMA_VERSION, check_defs};

const COLUMNS: &str = "id, def, status, priority, res, attempts, max_attempts, error, \
    lease_owner, lease_expires_at, created_at, started_at, finished_at";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS qtask_tasks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    pool TEXT NOT NULL,
    def TEXT NOT NULL,
    def_hash TEXT NOT NULL,
    status TEXT NOT NULL,
    priority INTEGER,
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
    finished_at INTEGER
);
CREATE UNIQUE INDEX IF NOT EXISTS qtask_tasks_def_hash ON qtask_tasks (pool, def_hash);
CREATE INDEX IF NOT EXISTS qtask_tasks_claim ON qtask_tasks (pool, status, priority DESC, id);
CREATE TABLE IF NOT EXISTS qtask_pools (name TEXT PRIMARY KEY, max_attempts INTEGER);
";

/// A pool in a SQLite file.
pub struct SqlitePool {
    conn: Mutex<Connection>,
    pool: String,
    /// `pool` as a SQL string literal (see `claim` for why it is not a parameter).
    pool_literal: String,
    path: PathBuf,
    /// A second handle on the database file, used only for `flock` (see [`WriteTurn`]).
    turn: Option<std::fs::File>,
}

/// The caller's turn to write, across processes: an exclusive `flock` on the database file,
/// held for one hot-path write transaction (claims and commits).
///
/// SQLite's own write lock cannot be waited on, only polled (see [`busy_wait`]), so with
/// several workers the lock sat idle between one holder's release and the next poll; the
/// kernel hands a `flock` straight to the next waiter (measured with `qtask bench pool`).
/// It is advisory and only orders qtask's hot-path writers among themselves: SQLite's
/// locking still guards the data, so other writers are merely not queued here. `flock`
/// and SQLite's `fcntl` locks are independent on local file systems (WAL mode, which qtask
/// uses, is unsupported on network file systems anyway).
struct WriteTurn<'a>(Option<&'a std::fs::File>);

impl Drop for WriteTurn<'_> {
    fn drop(&mut self) {
        if let Some(f) = self.0 {
            let _ = f.unlock();
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
        {
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
            tx.execute_batch(SCHEMA)?;
            if found < SCHEMA_VERSION {
                tx.execute(
                    "INSERT OR REPLACE INTO qtask_meta (key, value) VALUES ('schema_version', ?1)",
                    [SCHEMA_VERSION.to_string()],
                )?;
            }
            tx.commit()?;
        }
        Ok(SqlitePool {
            conn: Mutex::new(conn),
            pool: pool.to_string(),
            pool_literal: quote(pool),
            path: path.to_path_buf(),
            turn: std::fs::File::open(path).ok(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves the connection usable (SQLite rolls back).
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for this process's turn to write (taken after the connection mutex, so threads
    /// of one process queue on the mutex first). A file system without `flock` only loses
    /// the queueing, never correctness: SQLite's busy handler still applies.
    fn write_turn(&self) -> WriteTurn<'_> {
        WriteTurn(self.turn.as_ref().filter(|f| f.lock().is_ok()))
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
        let sql =
            format!("SELECT {COLUMNS} FROM qtask_tasks WHERE pool = ?1 AND ({cond}) ORDER BY id");
        let mut args = vec![SqlValue::Text(self.pool.clone())];
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
                    "SELECT 1 FROM qtask_tasks WHERE pool = ?1 AND id = ?2",
                    params![self.pool, n],
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

    /// The claim of [`TaskPool::fetch_task`] inside the caller's write transaction: the task
    /// as read and its new lease token.
    fn claim(&self, tx: &Connection, opts: &FetchOptions) -> Result<Option<(RawTask, String)>> {
        // The pool and status are SQL literals here, not parameters: this SQLite is built
        // with STAT4, which re-prepares a statement at every new binding of a parameter
        // compared with an indexed column, and that re-parse was most of a claim's cost.
        // `quote` makes the pool name a plain string literal; the status is one of five words.
        let pool = &self.pool_literal;
        let status = quote(opts.status.as_str());
        let now = now_ms();
        let token = uuid::Uuid::new_v4().simple().to_string();
        let expires = opts
            .lease
            .map(|l| now.saturating_add(l.as_millis().min(i64::MAX as u128) as i64));
        // ?1..?6 are fixed; the query's own parameters follow.
        let mut c = Compiler::new(Dialect::Sqlite, 7);
        let cond = c.query(&opts.query.without_status());
        let mut args = vec![
            SqlValue::Text(self.pool.clone()),
            SqlValue::Text(opts.status.as_str().to_string()),
            SqlValue::Integer(now),
            SqlValue::Text(opts.owner.clone()),
            SqlValue::Text(token.clone()),
            expires.map_or(SqlValue::Null, SqlValue::Integer),
        ];
        args.extend(c.params.iter().map(to_sql));
        let set = "status = 'running', claimed_from = ?2, attempts = attempts + 1, \
                   lease_owner = ?4, lease_token = ?5, lease_expires_at = ?6, started_at = ?3";
        let claim = |sql: &str| -> Result<Option<RawTask>> {
            Ok(tx
                .prepare_cached(sql)?
                .query_row(rusqlite::params_from_iter(args.iter()), read_task)
                .optional()?)
        };

        // Most claims find no expired lease; one probe spares them the reclaim statements.
        let any_expired: bool = tx
            .prepare_cached(&format!(
                "SELECT EXISTS (SELECT 1 FROM qtask_tasks WHERE pool = {pool} \
                 AND status = 'running' AND lease_expires_at < ?1)"
            ))?
            .query_row(params![now], |r| r.get(0))?;
        let mut raw = None;
        if any_expired {
            let pool_max = Self::pool_max_attempts(tx, &self.pool)?;
            // Leases that ran out on their last allowed attempt: the task has failed.
            tx.prepare_cached(&format!(
                "UPDATE qtask_tasks SET status = 'failed', finished_at = ?1, \
                 error = 'lease expired (held by ' || COALESCE(lease_owner, '?') || ') on attempt ' || attempts || ' of ' || COALESCE(max_attempts, ?2), \
                 lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, claimed_from = NULL \
                 WHERE pool = {pool} AND status = 'running' AND lease_expires_at < ?1 \
                 AND attempts >= COALESCE(max_attempts, ?2)"
            ))?
            .execute(params![now, pool_max])?;
            raw = claim(&format!(
                "UPDATE qtask_tasks SET {set}, \
                 error = 'lease expired (held by ' || COALESCE(lease_owner, '?') || ')' \
                 WHERE id = (SELECT id FROM qtask_tasks WHERE pool = {pool} AND status = 'running' \
                 AND claimed_from = {status} AND lease_expires_at < ?3 AND ({cond}) \
                 ORDER BY priority DESC, id LIMIT 1) RETURNING {COLUMNS}"
            ))?;
        }
        if raw.is_none() {
            raw = claim(&format!(
                "UPDATE qtask_tasks SET {set} \
                 WHERE id = (SELECT id FROM qtask_tasks WHERE pool = {pool} AND status = {status} AND ({cond}) \
                 ORDER BY priority DESC, id LIMIT 1) RETURNING {COLUMNS}"
            ))?;
        }
        Ok(raw.map(|raw| (raw, token)))
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
        res: &Value,
        status: Option<Status>,
    ) -> Result<usize> {
        let status = status.unwrap_or(Status::Done);
        let finished = matches!(status, Status::Done | Status::Failed | Status::PartDone);
        // The pool is a literal for the reason given in `claim`.
        let sql = format!(
            "UPDATE qtask_tasks SET res = ?1, status = ?2, \
             finished_at = CASE WHEN ?3 THEN ?4 ELSE finished_at END, \
             lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, claimed_from = NULL \
             WHERE pool = {} AND id = ?5 AND (?6 IS NULL OR (status = 'running' AND lease_token = ?6))",
            self.pool_literal
        );
        Ok(conn.exec(
            &sql,
            params![
                serde_json::to_string(res)?,
                status.as_str(),
                finished,
                now_ms(),
                n,
                token
            ],
        )?)
    }

    fn update_where(&self, q: &Query, set: &str, set_params: Vec<SqlValue>) -> Result<u64> {
        let conn = self.conn();
        let first = 2 + set_params.len();
        let mut c = Compiler::new(Dialect::Sqlite, first);
        let cond = c.query(q);
        let sql = format!("UPDATE qtask_tasks SET {set} WHERE pool = ?1 AND ({cond})");
        let mut args = vec![SqlValue::Text(self.pool.clone())];
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
            let mut find =
                tx.prepare_cached("SELECT id FROM qtask_tasks WHERE pool = ?1 AND def_hash = ?2")?;
            let mut insert = tx.prepare_cached(
                "INSERT INTO qtask_tasks (pool, def, def_hash, status, max_attempts, created_at) \
                 VALUES (?1, ?2, ?3, 'waiting', ?4, ?5) ON CONFLICT (pool, def_hash) DO NOTHING",
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
                    .query_row(params![self.pool, hash], |r| r.get(0))
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
                        insert.execute(params![self.pool, text, hash, max, now])?;
                        Created {
                            id: Some(tx.last_insert_rowid().to_string()),
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
        let _turn = self.write_turn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
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
        let mut conn = self.conn();
        let _turn = self.write_turn();
        // One write transaction for both: half the commits (and lock hand-overs) per task.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if self.commit_in(&tx, n, Some(token), res, status)? == 0 {
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
            "UPDATE qtask_tasks SET lease_expires_at = ?1 WHERE pool = ?2 AND id = ?3 \
             AND status = 'running' AND lease_token = ?4",
            params![expires, self.pool, n, token],
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
        let conn = self.conn();
        let n = self.id_num(id)?;
        let _turn = self.write_turn();
        if self.commit_in(&conn, n, token, res, status)? == 0 {
            return Err(self.miss(&conn, id));
        }
        Ok(())
    }

    fn return_task(&self, id: &str, token: Option<&str>, status: Option<Status>) -> Result<()> {
        let conn = self.conn();
        let n = self.id_num(id)?;
        let changed = conn.exec(
            "UPDATE qtask_tasks SET \
             status = COALESCE(?1, CASE WHEN status = 'running' THEN claimed_from END, 'waiting'), \
             attempts = CASE WHEN ?4 IS NULL THEN attempts ELSE max(attempts - 1, 0) END, \
             lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, claimed_from = NULL \
             WHERE pool = ?2 AND id = ?3 AND (?4 IS NULL OR (status = 'running' AND lease_token = ?4))",
            params![status.map(Status::as_str), self.pool, n, token],
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
                "UPDATE qtask_tasks SET \
                 status = CASE WHEN attempts >= COALESCE(max_attempts, ?1) THEN 'failed' ELSE claimed_from END, \
                 finished_at = CASE WHEN attempts >= COALESCE(max_attempts, ?1) THEN ?2 ELSE finished_at END, \
                 error = ?3, lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, claimed_from = NULL \
                 WHERE pool = ?4 AND id = ?5 AND status = 'running' AND lease_token = ?6 RETURNING status",
                params![pool_max, now_ms(), error, self.pool, n, token],
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
        let sql = format!(
            "SELECT status, count(*) FROM qtask_tasks WHERE pool = ?1 AND ({cond}) GROUP BY status"
        );
        let mut args = vec![SqlValue::Text(self.pool.clone())];
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
        let conn = self.conn();
        let n = self.id_num(id)?;
        let changed = conn.exec(
            "UPDATE qtask_tasks SET priority = ?1 WHERE pool = ?2 AND id = ?3",
            params![priority, self.pool, n],
        )?;
        if changed == 0 {
            return Err(self.not_found(id));
        }
        Ok(())
    }

    fn remove(&self, query: &Query) -> Result<u64> {
        let conn = self.conn();
        let mut c = Compiler::new(Dialect::Sqlite, 2);
        let cond = c.query(query);
        let mut args = vec![SqlValue::Text(self.pool.clone())];
        args.extend(c.params.iter().map(to_sql));
        let sql = format!("DELETE FROM qtask_tasks WHERE pool = ?1 AND ({cond})");
        Ok(conn.exec(&sql, rusqlite::params_from_iter(args))? as u64)
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
                "SELECT id FROM qtask_tasks WHERE pool = ?1 AND def_hash = ?2 AND id <> ?3",
                params![self.pool, hash, n],
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
            "UPDATE qtask_tasks SET def = ?1, def_hash = ?2 WHERE pool = ?3 AND id = ?4",
            params![serde_json::to_string(def)?, hash, self.pool, n],
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
        let mut stmt =
            conn.prepare_cached("SELECT DISTINCT pool FROM qtask_tasks ORDER BY pool")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
