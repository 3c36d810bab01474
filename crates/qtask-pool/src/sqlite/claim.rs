//! The claim path: picking the best task, taking it (with its lease), and fenced commits.

use std::sync::Arc;

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::SqlitePool;
use super::conn::{Cached, WriteTx};
use super::hot::Hot;
use super::rows::{RawTask, finish, now_ms, read_task, to_sql, to_time};
use super::schema::lane;
use super::statements::{CLAIM_SQL_CACHE, ClaimSql, TokenKey};
use crate::error::{PoolError, Result};
use crate::pool::FetchOptions;
use crate::sql::{Compiler, Dialect};
use crate::status::Status;
use crate::task::ClaimedTask;

/// A task a claim picked, before it is taken.
pub(super) struct Picked {
    pub(super) raw: RawTask,
    pub(super) prio_null: bool,
    pub(super) prio: i64,
    /// `created_at` and `finished_at` as stored, for moving the row.
    pub(super) created_ms: i64,
    pub(super) finished_ms: Option<i64>,
    /// The pool's lease hint when the task was picked.
    pub(super) hint: Option<i64>,
}

pub(super) fn read_picked(r: &Row<'_>) -> rusqlite::Result<Picked> {
    Ok(Picked {
        raw: read_task(r)?,
        prio_null: r.get(13)?,
        prio: r.get(14)?,
        created_ms: r.get(10)?,
        finished_ms: r.get(12)?,
        hint: r.get(15)?,
    })
}

impl SqlitePool {
    /// The claim statements for claims from `status` matching `cond`, built on first use.
    pub(super) fn claim_sql(&self, status: Status, cond: String) -> Arc<ClaimSql> {
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
    pub(super) fn claim(
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
    pub(super) fn take(
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

    pub(super) fn claimed(
        &self,
        raw: RawTask,
        token: String,
        opts: &FetchOptions,
    ) -> Result<ClaimedTask> {
        Ok(ClaimedTask {
            task: finish(raw)?,
            token,
            from: opts.status,
        })
    }

    /// The commit of [`TaskPool::commit_task_res`]; returns the rows changed (0: refused).
    pub(super) fn commit_in(
        &self,
        conn: &Connection,
        hot: &mut Hot,
        n: i64,
        token: Option<&str>,
        res: &str,
        status: Option<Status>,
    ) -> Result<usize> {
        let status = status.unwrap_or(Status::Done);
        let finished = status.is_finished();
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
}
