//! The dashboard reads of [`crate::overview`] on PostgreSQL.
//!
//! Counts come from the claim index `(pool, status, priority DESC NULLS LAST, id)`: an
//! index-only scan of the pool's entries (the planner's choice; PostgreSQL keeps no counts),
//! never decoding the rows, which also hold the definitions and results. Expired leases are
//! found among the running entries of that index, and the oldest waiting task with one
//! index seek per distinct priority.

use chrono::{DateTime, Utc};
use postgres::IsolationLevel;

use super::PgPool;
use crate::error::Result;
use crate::overview::{PageRequest, PoolOverview, SortKey, load_in_order};
use crate::status::Status;
use crate::task::Task;

/// Priority groups visited one seek at a time before one scan of the waiting entries.
const MAX_PRIORITY_GROUPS: usize = 64;

const HEAD: &str =
    "SELECT priority, id, created_at FROM qtask_tasks WHERE pool = $1 AND status = 'waiting'";

/// The first task of a priority group: `(priority, id, created_at)`.
type GroupHead = (Option<i64>, i64, DateTime<Utc>);

fn head(row: Option<postgres::Row>) -> Result<Option<GroupHead>> {
    row.map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
        .transpose()
}

impl PgPool {
    pub(super) fn overview_fast(&self) -> Result<PoolOverview> {
        let mut client = self.client()?;
        // One snapshot, so the figures are of one moment.
        let mut tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()?;
        // One pass over the pool's entries of the claim index: with a current visibility
        // map an index-only scan, split between parallel workers (a count per status in
        // subqueries would be five serial scans).
        let rows = tx.query(
            "SELECT status, count(*) FROM qtask_tasks WHERE pool = $1 GROUP BY status",
            &[&self.pool],
        )?;
        let mut counts = crate::pool::TaskStat::new();
        for r in rows {
            let (s, n): (String, i64) = (r.try_get(0)?, r.try_get(1)?);
            counts.insert(s.parse()?, n as u64);
        }
        let expired: i64 = tx
            .query_one(
                "SELECT count(*) FROM qtask_tasks WHERE pool = $1 AND status = 'running' \
                 AND lease_expires_at < now()",
                &[&self.pool],
            )?
            .try_get(0)?;
        let mut oldest_waiting = None;
        if counts.contains_key(&Status::Waiting) {
            let mut best: Option<(i64, DateTime<Utc>)> = None;
            let mut cur = head(tx.query_opt(
                &format!("{HEAD} ORDER BY priority DESC NULLS LAST, id LIMIT 1"),
                &[&self.pool],
            )?)?;
            let mut groups = 0;
            while let Some((prio, id, created)) = cur {
                if best.is_none_or(|(b, _)| id < b) {
                    best = Some((id, created));
                }
                groups += 1;
                if groups == MAX_PRIORITY_GROUPS {
                    best =
                        head(tx.query_opt(&format!("{HEAD} ORDER BY id LIMIT 1"), &[&self.pool])?)?
                            .map(|(_, id, created)| (id, created));
                    break;
                }
                cur = match prio {
                    Some(p) => {
                        let lower = head(tx.query_opt(
                            &format!(
                                "{HEAD} AND priority < $2 ORDER BY priority DESC NULLS LAST, id LIMIT 1"
                            ),
                            &[&self.pool, &p],
                        )?)?;
                        match lower {
                            Some(h) => Some(h),
                            None => head(tx.query_opt(
                                &format!("{HEAD} AND priority IS NULL ORDER BY id LIMIT 1"),
                                &[&self.pool],
                            )?)?,
                        }
                    }
                    None => None,
                };
            }
            oldest_waiting = best.map(|(id, created)| (id.to_string(), created));
        }
        tx.commit()?;
        Ok(PoolOverview {
            counts,
            expired_leases: expired as u64,
            oldest_waiting,
        })
    }

    pub(super) fn page_fast(&self, page: &PageRequest) -> Result<Vec<Task>> {
        let (fwd, rev) = if page.descending {
            ("DESC", "ASC")
        } else {
            ("ASC", "DESC")
        };
        let nulls = if page.descending { "FIRST" } else { "LAST" };
        let order = match page.sort {
            SortKey::Priority => format!("priority {rev} NULLS {nulls}, id {fwd}"),
            SortKey::Created => format!("id {fwd}"),
            SortKey::Attempts => format!("attempts {fwd}, id {fwd}"),
        };
        let limit = i64::try_from(page.limit).unwrap_or(i64::MAX);
        let offset = i64::try_from(page.offset).unwrap_or(i64::MAX);
        let rows = {
            let mut client = self.client()?;
            match page.status {
                Some(s) => client.query(
                    &format!(
                        "SELECT id FROM qtask_tasks WHERE pool = $1 AND status = $2 \
                         ORDER BY {order} LIMIT $3 OFFSET $4"
                    ),
                    &[&self.pool, &s.as_str(), &limit, &offset],
                )?,
                None => client.query(
                    &format!(
                        "SELECT id FROM qtask_tasks WHERE pool = $1 ORDER BY {order} LIMIT $2 OFFSET $3"
                    ),
                    &[&self.pool, &limit, &offset],
                )?,
            }
        };
        let ids: Vec<i64> = rows
            .iter()
            .map(|r| r.try_get(0))
            .collect::<std::result::Result<_, _>>()?;
        load_in_order(self, &ids)
    }

    pub(super) fn durations_fast(&self, limit: usize) -> Result<Vec<f64>> {
        let rows = self.client()?.query(
            "SELECT extract(epoch FROM finished_at - started_at)::float8 FROM qtask_tasks \
             WHERE pool = $1 AND status = 'done' AND started_at IS NOT NULL \
             AND finished_at IS NOT NULL ORDER BY finished_at DESC LIMIT $2",
            &[&self.pool, &i64::try_from(limit).unwrap_or(i64::MAX)],
        )?;
        rows.iter()
            .map(|r| Ok(r.try_get::<_, f64>(0)?.max(0.0)))
            .collect()
    }
}
