//! The PostgreSQL backend: many machines, one table.
//!
//! Claims are one `UPDATE ... FROM (SELECT ... FOR UPDATE SKIP LOCKED)` statement, so
//! concurrent workers never wait on each other's candidate row and never get the same task.
//! Lease times use the server's `now()`, so workers with skewed clocks agree on expiry.
//! The schema is created under a transaction-scoped advisory lock, so test binaries and
//! workers starting together do not race on `CREATE ... IF NOT EXISTS`.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use postgres::types::ToSql;
use postgres::{Client, NoTls, Row, Statement};
use serde_json::Value;

mod overview;

use crate::error::{PoolError, Result};
use crate::pool::{CreateOptions, DEFAULT_MAX_ATTEMPTS, FetchOptions, TaskPool, TaskStat};
use crate::query::Query;
use crate::sql::{Compiler, Dialect, Param};
use crate::status::Status;
use crate::store_url::StoreUrl;
use crate::task::{ClaimedTask, Created, Task};
use crate::{SCHEMA_VERSION, check_defs};

const COLUMNS: &str = "t.id, t.def, t.status, t.priority, t.res, t.attempts, t.max_attempts, \
    t.error, t.lease_owner, t.lease_expires_at, t.created_at, t.started_at, t.finished_at";

/// Arbitrary constant naming qtask's schema lock among the server's advisory locks.
const SCHEMA_LOCK: i64 = 0x7174_6173_6b00_0001;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS qtask_tasks (
    id bigserial PRIMARY KEY,
    pool text NOT NULL,
    def jsonb NOT NULL,
    def_hash text NOT NULL,
    status text NOT NULL,
    priority bigint,
    res jsonb,
    attempts bigint NOT NULL DEFAULT 0,
    max_attempts bigint,
    claimed_from text,
    lease_owner text,
    lease_token text,
    lease_expires_at timestamptz,
    error text,
    created_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    finished_at timestamptz
);
CREATE UNIQUE INDEX IF NOT EXISTS qtask_tasks_def_hash ON qtask_tasks (pool, def_hash);
CREATE INDEX IF NOT EXISTS qtask_tasks_claim
    ON qtask_tasks (pool, status, priority DESC NULLS LAST, id);
CREATE INDEX IF NOT EXISTS qtask_tasks_lease
    ON qtask_tasks (pool, lease_expires_at) WHERE status = 'running';
CREATE TABLE IF NOT EXISTS qtask_pools (name text PRIMARY KEY, max_attempts bigint);
";

/// How often a claim also looks for expired leases (always, too, when no fresh task is left).
const EXPIRY_CHECK_EVERY: Duration = Duration::from_millis(500);

/// Rows per INSERT when creating tasks (bounded so one statement stays a few MB).
const CREATE_CHUNK: usize = 5000;

/// Prepared hot-path statements kept per connection (beyond this many, the cache restarts).
const STATEMENT_CACHE: usize = 64;

/// A pool in a PostgreSQL database.
pub struct PgPool {
    client: Mutex<Client>,
    /// Hot-path statements prepared on the current connection (emptied when it is replaced):
    /// an unprepared query costs an extra round trip to parse it every time.
    statements: Mutex<HashMap<String, Statement>>,
    last_expiry_check: Mutex<Option<Instant>>,
    config: postgres::Config,
    shown: String,
    pool: String,
}

type Args = Vec<Box<dyn ToSql + Sync>>;

fn to_sql(p: &Param) -> Box<dyn ToSql + Sync> {
    match p {
        Param::Int(n) => Box::new(*n),
        Param::Text(s) => Box::new(s.clone()),
        Param::Json(v) => Box::new(v.clone()),
        Param::Path(segs) => Box::new(segs.clone()),
        Param::Ints(v) => Box::new(v.clone()),
        Param::Texts(v) => Box::new(v.clone()),
    }
}

fn refs(args: &Args) -> Vec<&(dyn ToSql + Sync)> {
    args.iter().map(|a| a.as_ref()).collect()
}

fn read_task(row: &Row) -> Result<Task> {
    read_task_at(row, 0)
}

/// Reads the [`COLUMNS`] that start at column `at`.
fn read_task_at(row: &Row, at: usize) -> Result<Task> {
    let status: String = row.try_get(at + 2)?;
    // jsonb prints numbers in its own form (`1e-5` comes back `0.00001`): normalised as
    // everywhere in qtask, so a task reads back equal to what was stored.
    let normal = |mut v: Value| {
        let _ = qtask_core::json::normalize(&mut v);
        v
    };
    Ok(Task {
        id: row.try_get::<_, i64>(at)?.to_string(),
        def: normal(row.try_get(at + 1)?),
        status: status.parse()?,
        priority: row.try_get(at + 3)?,
        res: row.try_get::<_, Option<Value>>(at + 4)?.map(normal),
        attempts: row.try_get::<_, i64>(at + 5)?.max(0) as u32,
        max_attempts: row
            .try_get::<_, Option<i64>>(at + 6)?
            .map(|n| n.max(0) as u32),
        error: row.try_get(at + 7)?,
        lease_owner: row.try_get(at + 8)?,
        lease_expires_at: row.try_get::<_, Option<DateTime<Utc>>>(at + 9)?,
        created_at: row.try_get(at + 10)?,
        started_at: row.try_get(at + 11)?,
        finished_at: row.try_get(at + 12)?,
    })
}

/// The SET list of a claim; `$2` status, `$3` owner, `$4` token, `$5` lease seconds.
const CLAIM_SET: &str = "status = 'running', claimed_from = $2, attempts = t.attempts + 1, \
    lease_owner = $3, lease_token = $4, \
    lease_expires_at = now() + $5::float8 * interval '1 second', started_at = now()";

fn secs(d: Option<Duration>) -> Option<f64> {
    d.map(|d| d.as_secs_f64())
}

impl PgPool {
    /// Connects to `url`, creates or checks the schema, and binds to pool `pool`.
    pub fn open(url: &str, pool: &str) -> Result<Self> {
        crate::check_pool_name(pool)?;
        let shown = StoreUrl::redacted(url);
        let connect_err = |e: postgres::Error| PoolError::Connect {
            url: shown.clone(),
            reason: match PoolError::from(e) {
                PoolError::Postgres(m) => m,
                other => other.to_string(),
            },
        };
        let mut config: postgres::Config =
            url.parse()
                .map_err(|e: postgres::Error| PoolError::BadUrl {
                    url: shown.clone(),
                    reason: e.to_string(),
                })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        let mut client = config.connect(NoTls).map_err(connect_err)?;
        {
            let mut tx = client.transaction()?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])?;
            tx.batch_execute(
                "CREATE TABLE IF NOT EXISTS qtask_meta (key text PRIMARY KEY, value text NOT NULL)",
            )?;
            let found: Option<String> = tx
                .query_opt(
                    "SELECT value FROM qtask_meta WHERE key = 'schema_version'",
                    &[],
                )?
                .map(|r| r.get(0));
            let found: i64 = found.and_then(|v| v.parse().ok()).unwrap_or(0);
            if found > SCHEMA_VERSION {
                return Err(PoolError::SchemaTooNew {
                    url: shown,
                    found,
                    supported: SCHEMA_VERSION,
                });
            }
            tx.batch_execute(SCHEMA)?;
            if found < SCHEMA_VERSION {
                tx.execute(
                    "INSERT INTO qtask_meta (key, value) VALUES ('schema_version', $1) \
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    &[&SCHEMA_VERSION.to_string()],
                )?;
            }
            tx.commit()?;
        }
        Ok(PgPool {
            client: Mutex::new(client),
            statements: Mutex::new(HashMap::new()),
            last_expiry_check: Mutex::new(None),
            config,
            shown,
            pool: pool.to_string(),
        })
    }

    /// The connection, re-established first if the server dropped it (a restart, a
    /// failover), so a long-running worker survives an outage it outlives.
    fn client(&self) -> Result<MutexGuard<'_, Client>> {
        let mut guard = self.client.lock().unwrap_or_else(|e| e.into_inner());
        if guard.is_closed() {
            self.statements
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clear();
            *guard = self.config.connect(NoTls).map_err(|e| PoolError::Connect {
                url: self.shown.clone(),
                reason: match PoolError::from(e) {
                    PoolError::Postgres(m) => m,
                    other => other.to_string(),
                },
            })?;
        }
        Ok(guard)
    }

    /// `sql` prepared on `client` (the caller's locked connection), from the cache if it
    /// was prepared before.
    fn prepared(&self, client: &mut Client, sql: &str) -> Result<Statement> {
        let mut cache = self.statements.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(st) = cache.get(sql) {
            return Ok(st.clone());
        }
        let st = client.prepare(sql)?;
        if cache.len() >= STATEMENT_CACHE {
            cache.clear();
        }
        cache.insert(sql.to_string(), st.clone());
        Ok(st)
    }

    /// Whether a claim should look for expired leases first (see `fetch_task`); marks the
    /// look as done when it is due.
    fn expiry_due(&self) -> bool {
        let mut last = self
            .last_expiry_check
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let due = last.is_none_or(|t| t.elapsed() >= EXPIRY_CHECK_EVERY);
        if due {
            *last = Some(Instant::now());
        }
        due
    }

    /// `fetch_task` with the expiry look decided by the caller.
    fn fetch(&self, opts: &FetchOptions, due: bool) -> Result<Option<ClaimedTask>> {
        if due && let Some(c) = self.claim(opts, true)? {
            return Ok(Some(c));
        }
        if let Some(c) = self.claim(opts, false)? {
            return Ok(Some(c));
        }
        if due {
            return Ok(None);
        }
        self.claim(opts, true)
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

    fn miss(&self, client: &mut Client, id: &str) -> PoolError {
        let Ok(n) = id.parse::<i64>() else {
            return self.not_found(id);
        };
        match client.query_opt(
            "SELECT 1 FROM qtask_tasks WHERE pool = $1 AND id = $2",
            &[&self.pool, &n],
        ) {
            Ok(Some(_)) => PoolError::LeaseLost { id: id.to_string() },
            Ok(None) => self.not_found(id),
            Err(e) => e.into(),
        }
    }

    fn pool_max_attempts(client: &mut Client, pool: &str) -> Result<i64> {
        let row = client.query_opt(
            "SELECT max_attempts FROM qtask_pools WHERE name = $1",
            &[&pool],
        )?;
        Ok(row
            .and_then(|r| r.get::<_, Option<i64>>(0))
            .unwrap_or(i64::from(DEFAULT_MAX_ATTEMPTS)))
    }

    /// Runs `sql` whose `$1` is the pool and whose query condition starts at `$first`.
    fn with_query(&self, sql: impl Fn(&str) -> String, head: Args, q: &Query) -> (String, Args) {
        let mut c = Compiler::new(Dialect::Postgres, head.len() + 1);
        let cond = c.query(q);
        let mut args = head;
        args.extend(c.params.iter().map(to_sql));
        (sql(&cond), args)
    }

    /// One claim statement: `reclaim` fails the leases that ran out on their last attempt and
    /// takes an expired one (the two sets are disjoint, so no row is updated twice);
    /// otherwise it takes a fresh task. `SKIP LOCKED` lets concurrent claimers pass each other.
    fn claim(&self, opts: &FetchOptions, reclaim: bool) -> Result<Option<ClaimedTask>> {
        let token = uuid::Uuid::new_v4().simple().to_string();
        let head: Args = vec![
            Box::new(self.pool.clone()),
            Box::new(opts.status.as_str().to_string()),
            Box::new(opts.owner.clone()),
            Box::new(token.clone()),
            Box::new(secs(opts.lease)),
            Box::new(i64::from(DEFAULT_MAX_ATTEMPTS)),
        ];
        let (sql, args) = self.with_query(
            |cond| {
                // $6 (the default attempt limit) appears in both forms so the parameter count
                // is the same whichever runs.
                let set = CLAIM_SET;
                if reclaim {
                    format!(
                        "WITH pm AS (SELECT COALESCE((SELECT max_attempts FROM qtask_pools WHERE name = $1), $6) AS m), \
                         exhausted AS (UPDATE qtask_tasks SET status = 'failed', finished_at = now(), \
                            error = 'lease expired (held by ' || COALESCE(lease_owner, '?') || ') on attempt ' || attempts || ' of ' || COALESCE(max_attempts, (SELECT m FROM pm)), \
                            lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, claimed_from = NULL \
                            WHERE pool = $1 AND status = 'running' AND lease_expires_at < now() \
                            AND attempts >= COALESCE(max_attempts, (SELECT m FROM pm)) RETURNING id), \
                         pick AS (SELECT id, lease_owner FROM qtask_tasks WHERE pool = $1 AND status = 'running' \
                            AND claimed_from = $2 AND lease_expires_at < now() \
                            AND attempts < COALESCE(max_attempts, (SELECT m FROM pm)) AND ({cond}) \
                            ORDER BY priority DESC NULLS LAST, id LIMIT 1 FOR UPDATE SKIP LOCKED) \
                         UPDATE qtask_tasks AS t SET {set}, \
                            error = 'lease expired (held by ' || COALESCE(pick.lease_owner, '?') || ')' \
                         FROM pick WHERE t.id = pick.id AND $6::bigint IS NOT NULL RETURNING {COLUMNS}"
                    )
                } else {
                    format!(
                        "UPDATE qtask_tasks AS t SET {set} \
                         FROM (SELECT id FROM qtask_tasks WHERE pool = $1 AND status = $2 AND ({cond}) \
                            ORDER BY priority DESC NULLS LAST, id LIMIT 1 FOR UPDATE SKIP LOCKED) AS pick \
                         WHERE t.id = pick.id AND $6::bigint IS NOT NULL RETURNING {COLUMNS}"
                    )
                }
            },
            head,
            &opts.query.without_status(),
        );
        let mut client = self.client()?;
        let st = self.prepared(&mut client, &sql)?;
        let row = client.query_opt(&st, &refs(&args))?;
        row.map(|row| {
            Ok(ClaimedTask {
                task: read_task(&row)?,
                token,
                from: opts.status,
            })
        })
        .transpose()
    }

    fn pool_arg(&self) -> Args {
        vec![Box::new(self.pool.clone())]
    }
}

impl TaskPool for PgPool {
    fn name(&self) -> &str {
        &self.pool
    }

    fn create_tasks(&self, defs: &[Value], opts: &CreateOptions) -> Result<Vec<Created>> {
        let hashes = check_defs(defs)?;
        let mut client = self.client()?;
        // First occurrence of each hash, in input order: what would be inserted.
        let mut first: HashMap<&str, usize> = HashMap::new();
        let mut unique: Vec<usize> = Vec::new();
        for (i, h) in hashes.iter().enumerate() {
            if !first.contains_key(h.as_str()) {
                first.insert(h, i);
                unique.push(i);
            }
        }
        let all_hashes: Vec<String> = unique.iter().map(|&i| hashes[i].clone()).collect();
        let lookup = |client: &mut Client| -> Result<HashMap<String, i64>> {
            let mut ids = HashMap::new();
            for chunk in all_hashes.chunks(CREATE_CHUNK) {
                let rows = client.query(
                    "SELECT def_hash, id FROM qtask_tasks WHERE pool = $1 AND def_hash = ANY($2)",
                    &[&self.pool, &chunk],
                )?;
                for r in rows {
                    ids.insert(r.get::<_, String>(0), r.get::<_, i64>(1));
                }
            }
            Ok(ids)
        };
        let before = lookup(&mut client)?;
        if !opts.dry_run {
            let max = opts.max_attempts.map(i64::from);
            let todo: Vec<usize> = unique
                .iter()
                .copied()
                .filter(|&i| !before.contains_key(&hashes[i]))
                .collect();
            for chunk in todo.chunks(CREATE_CHUNK) {
                let chunk_defs: Vec<Value> = chunk.iter().map(|&i| defs[i].clone()).collect();
                let chunk_hashes: Vec<&str> = chunk.iter().map(|&i| hashes[i].as_str()).collect();
                // Inserting is idempotent, so a deadlock with another creator is simply retried.
                let mut tries = 0;
                loop {
                    let r = client.execute(
                        "INSERT INTO qtask_tasks (pool, def, def_hash, status, max_attempts) \
                         SELECT $1, d, h, 'waiting', $4 FROM unnest($2::jsonb[], $3::text[]) \
                         WITH ORDINALITY AS x(d, h, n) ORDER BY n \
                         ON CONFLICT (pool, def_hash) DO NOTHING",
                        &[&self.pool, &chunk_defs, &chunk_hashes, &max],
                    );
                    match r {
                        Ok(_) => break,
                        Err(e)
                            if tries < 5
                                && e.code()
                                    == Some(&postgres::error::SqlState::T_R_DEADLOCK_DETECTED) =>
                        {
                            tries += 1;
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
        let after = if opts.dry_run {
            before.clone()
        } else {
            lookup(&mut client)?
        };
        Ok(hashes
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let is_first = first.get(h.as_str()) == Some(&i);
                Created {
                    id: after.get(h).map(|n| n.to_string()),
                    new: is_first && !before.contains_key(h),
                }
            })
            .collect())
    }

    fn fetch_task(&self, opts: &FetchOptions) -> Result<Option<ClaimedTask>> {
        // Expired leases are looked for at most every EXPIRY_CHECK_EVERY (and whenever no
        // fresh task is left), through `qtask_tasks_lease`, a partial index of running tasks
        // by lease expiry. Through the claim index, that look walked the entries of every
        // task that was ever running until vacuum removed them (half a second per look in a
        // pool of 1,000,000 done tasks: `qtask bench scale`); through this one it reads only
        // leases already past, and an index scan marks the dead entries it meets, so the next
        // look skips them.
        self.fetch(opts, self.expiry_due())
    }

    fn commit_and_fetch(
        &self,
        id: &str,
        token: &str,
        res: &Value,
        status: Option<Status>,
        opts: &FetchOptions,
    ) -> Result<Option<ClaimedTask>> {
        let status = status.unwrap_or(Status::Done);
        // One statement does both, so the claim cannot see the commit: when the committed
        // task could be claimed again, two steps keep the sequential outcome; so does a due
        // expiry look, which must come before any fresh claim.
        let due = self.expiry_due();
        if status == opts.status || due {
            self.commit_task_res(id, Some(token), res, Some(status))?;
            return self.fetch(opts, due);
        }
        let n = self.id_num(id)?;
        let new_token = uuid::Uuid::new_v4().simple().to_string();
        let finished = status.is_finished();
        let head: Args = vec![
            Box::new(self.pool.clone()),
            Box::new(opts.status.as_str().to_string()),
            Box::new(opts.owner.clone()),
            Box::new(new_token.clone()),
            Box::new(secs(opts.lease)),
            Box::new(res.clone()),
            Box::new(status.as_str().to_string()),
            Box::new(finished),
            Box::new(n),
            Box::new(token.to_string()),
        ];
        let (sql, args) = self.with_query(
            |cond| {
                // `pick` waits for `done`: nothing is claimed when the commit is refused.
                format!(
                    "WITH done AS (UPDATE qtask_tasks SET res = $6, status = $7, \
                        finished_at = CASE WHEN $8 THEN now() ELSE finished_at END, \
                        lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, claimed_from = NULL \
                        WHERE pool = $1 AND id = $9 AND status = 'running' AND lease_token = $10 RETURNING id), \
                     pick AS (SELECT id FROM qtask_tasks WHERE pool = $1 AND status = $2 AND ({cond}) \
                        AND EXISTS (SELECT 1 FROM done) \
                        ORDER BY priority DESC NULLS LAST, id LIMIT 1 FOR UPDATE SKIP LOCKED), \
                     claimed AS (UPDATE qtask_tasks AS t SET {CLAIM_SET} FROM pick \
                        WHERE t.id = pick.id RETURNING {COLUMNS}) \
                     SELECT (SELECT count(*) FROM done), claimed.* \
                     FROM (VALUES (1)) AS one LEFT JOIN claimed ON true"
                )
            },
            head,
            &opts.query.without_status(),
        );
        let row = {
            let mut client = self.client()?;
            let st = self.prepared(&mut client, &sql)?;
            let row = client.query_one(&st, &refs(&args))?;
            if row.try_get::<_, i64>(0)? == 0 {
                return Err(self.miss(&mut client, id));
            }
            row
        };
        if row.try_get::<_, Option<i64>>(1)?.is_none() {
            // No fresh task: an expired lease may still be claimable (as in `fetch_task`).
            return self.claim(opts, true);
        }
        Ok(Some(ClaimedTask {
            task: read_task_at(&row, 1)?,
            token: new_token,
            from: opts.status,
        }))
    }

    fn heartbeat(&self, id: &str, token: &str, lease: Duration) -> Result<()> {
        let mut client = self.client()?;
        let n = self.id_num(id)?;
        let changed = client.execute(
            "UPDATE qtask_tasks SET lease_expires_at = now() + $1::float8 * interval '1 second' \
             WHERE pool = $2 AND id = $3 AND status = 'running' AND lease_token = $4",
            &[&lease.as_secs_f64(), &self.pool, &n, &token],
        )?;
        if changed == 0 {
            return Err(self.miss(&mut client, id));
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
        let mut client = self.client()?;
        let n = self.id_num(id)?;
        let status = status.unwrap_or(Status::Done);
        let finished = status.is_finished();
        let st = self.prepared(
            &mut client,
            "UPDATE qtask_tasks SET res = $1, status = $2, \
             finished_at = CASE WHEN $3 THEN now() ELSE finished_at END, \
             lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, claimed_from = NULL \
             WHERE pool = $4 AND id = $5 AND ($6::text IS NULL OR (status = 'running' AND lease_token = $6))",
        )?;
        let changed = client.execute(
            &st,
            &[res, &status.as_str(), &finished, &self.pool, &n, &token],
        )?;
        if changed == 0 {
            return Err(self.miss(&mut client, id));
        }
        Ok(())
    }

    fn return_task(&self, id: &str, token: Option<&str>, status: Option<Status>) -> Result<()> {
        let mut client = self.client()?;
        let n = self.id_num(id)?;
        let changed = client.execute(
            "UPDATE qtask_tasks SET \
             status = COALESCE($1::text, CASE WHEN status = 'running' THEN claimed_from END, 'waiting'), \
             attempts = CASE WHEN $4::text IS NULL THEN attempts ELSE GREATEST(attempts - 1, 0) END, \
             lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, claimed_from = NULL \
             WHERE pool = $2 AND id = $3 AND ($4::text IS NULL OR (status = 'running' AND lease_token = $4))",
            &[&status.map(Status::as_str), &self.pool, &n, &token],
        )?;
        if changed == 0 {
            return Err(self.miss(&mut client, id));
        }
        Ok(())
    }

    fn fail_task(&self, id: &str, token: &str, error: &str) -> Result<Status> {
        let mut client = self.client()?;
        let n = self.id_num(id)?;
        let pool_max = Self::pool_max_attempts(&mut client, &self.pool)?;
        let row = client.query_opt(
            "UPDATE qtask_tasks SET \
             status = CASE WHEN attempts >= COALESCE(max_attempts, $1) THEN 'failed' ELSE claimed_from END, \
             finished_at = CASE WHEN attempts >= COALESCE(max_attempts, $1) THEN now() ELSE finished_at END, \
             error = $2, lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, claimed_from = NULL \
             WHERE pool = $3 AND id = $4 AND status = 'running' AND lease_token = $5 RETURNING status",
            &[&pool_max, &error, &self.pool, &n, &token],
        )?;
        match row {
            Some(r) => r.get::<_, String>(0).parse(),
            None => Err(self.miss(&mut client, id)),
        }
    }

    fn query(&self, query: &Query) -> Result<Vec<Task>> {
        let (sql, args) = self.with_query(
            |cond| format!("SELECT {COLUMNS} FROM qtask_tasks AS t WHERE pool = $1 AND ({cond}) ORDER BY id"),
            self.pool_arg(),
            query,
        );
        let rows = self.client()?.query(&sql, &refs(&args))?;
        rows.iter().map(read_task).collect()
    }

    fn re_query(&self, id: &str) -> Result<Task> {
        self.query(&Query::by_id(id))?
            .into_iter()
            .next()
            .ok_or_else(|| self.not_found(id))
    }

    fn task_stat(&self, query: &Query) -> Result<TaskStat> {
        let (sql, args) = self.with_query(
            |cond| {
                format!(
                    "SELECT status, count(*) FROM qtask_tasks WHERE pool = $1 AND ({cond}) GROUP BY status"
                )
            },
            self.pool_arg(),
            query,
        );
        let rows = self.client()?.query(&sql, &refs(&args))?;
        let mut stat = TaskStat::new();
        for r in rows {
            stat.insert(r.get::<_, String>(0).parse()?, r.get::<_, i64>(1) as u64);
        }
        Ok(stat)
    }

    fn reset_status(&self, query: &Query, status: Status) -> Result<u64> {
        let mut head = self.pool_arg();
        head.push(Box::new(status.as_str().to_string()));
        let (sql, args) = self.with_query(
            |cond| {
                format!(
                    "UPDATE qtask_tasks SET status = $2, lease_owner = NULL, lease_token = NULL, \
                     lease_expires_at = NULL, claimed_from = NULL WHERE pool = $1 AND ({cond})"
                )
            },
            head,
            query,
        );
        Ok(self.client()?.execute(&sql, &refs(&args))?)
    }

    fn prioritize(&self, id: &str, priority: Option<i64>) -> Result<()> {
        let n = self.id_num(id)?;
        let changed = self.client()?.execute(
            "UPDATE qtask_tasks SET priority = $1 WHERE pool = $2 AND id = $3",
            &[&priority, &self.pool, &n],
        )?;
        if changed == 0 {
            return Err(self.not_found(id));
        }
        Ok(())
    }

    fn remove(&self, query: &Query) -> Result<u64> {
        let (sql, args) = self.with_query(
            |cond| format!("DELETE FROM qtask_tasks WHERE pool = $1 AND ({cond})"),
            self.pool_arg(),
            query,
        );
        Ok(self.client()?.execute(&sql, &refs(&args))?)
    }

    fn retry(&self, query: &Query) -> Result<u64> {
        let (sql, args) = self.with_query(
            |cond| {
                format!(
                    "UPDATE qtask_tasks SET status = 'waiting', attempts = 0, finished_at = NULL \
                     WHERE pool = $1 AND ({cond})"
                )
            },
            self.pool_arg(),
            &query.with_status(Status::Failed),
        );
        Ok(self.client()?.execute(&sql, &refs(&args))?)
    }

    fn replace_task(&self, id: &str, def: &Value) -> Result<()> {
        let hash = check_defs(std::slice::from_ref(def))?.remove(0);
        let n = self.id_num(id)?;
        let mut client = self.client()?;
        let other = client.query_opt(
            "SELECT id FROM qtask_tasks WHERE pool = $1 AND def_hash = $2 AND id <> $3",
            &[&self.pool, &hash, &n],
        )?;
        if let Some(other) = other {
            return Err(PoolError::Invalid(format!(
                "task {} of pool {:?} already has this definition",
                other.get::<_, i64>(0),
                self.pool
            )));
        }
        let changed = client.execute(
            "UPDATE qtask_tasks SET def = $1, def_hash = $2 WHERE pool = $3 AND id = $4",
            &[def, &hash, &self.pool, &n],
        )?;
        if changed == 0 {
            return Err(self.not_found(id));
        }
        Ok(())
    }

    fn set_max_attempts(&self, max_attempts: Option<u32>) -> Result<()> {
        let max = max_attempts.map(i64::from);
        self.client()?.execute(
            "INSERT INTO qtask_pools (name, max_attempts) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET max_attempts = excluded.max_attempts",
            &[&self.pool, &max],
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
        // One index seek per pool (a loose index scan), not a pass over every task.
        let rows = self.client()?.query(
            "WITH RECURSIVE p(pool) AS ( \
                 (SELECT pool FROM qtask_tasks ORDER BY pool LIMIT 1) \
                 UNION ALL \
                 SELECT (SELECT t.pool FROM qtask_tasks t WHERE t.pool > p.pool ORDER BY t.pool LIMIT 1) \
                 FROM p WHERE p.pool IS NOT NULL) \
             SELECT pool FROM p WHERE pool IS NOT NULL",
            &[],
        )?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }
}
