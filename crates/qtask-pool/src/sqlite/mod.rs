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
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, ErrorCode, OptionalExtension, TransactionBehavior, params};
use serde_json::Value;

mod checkpoint;
mod claim;
mod conn;
mod hot;
mod overview;
mod rows;
mod schema;
mod statements;

use hot::Hot;

pub(crate) use checkpoint::Checkpoints;
use conn::{Cached, ConnGuard, Db, OPEN_PATIENCE};
pub(crate) use conn::{busy_wait, configure};
use rows::{ANY_LANE, COLUMNS, TASKS, finish, locate, now_ms, read_task, to_sql};
pub use schema::SCHEMA_VERSION;
use schema::{SCHEMA, lane, lane_cond, lane_sql, migrate_1, migrate_2};
use statements::{ClaimSql, HotSql};

use crate::check_defs;
use crate::error::{PoolError, Result};
use crate::pool::{CreateOptions, DEFAULT_MAX_ATTEMPTS, FetchOptions, TaskPool, TaskStat};
use crate::query::Query;
use crate::sql::{Compiler, Dialect};
use crate::status::Status;
use crate::task::{ClaimedTask, Created, Task};

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

    fn overview(&self) -> Result<crate::overview::PoolOverview> {
        self.overview_fast()
    }

    fn task_page(&self, page: &crate::overview::PageRequest) -> Result<Vec<Task>> {
        self.page_fast(page)
    }

    fn done_durations(&self, limit: usize) -> Result<Vec<f64>> {
        self.durations_fast(limit)
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
