//! The dashboard reads of [`crate::overview`] on the SQLite layout.
//!
//! Everything is read from the state table's key `(pool, lane, prio_null, prio, id)`:
//! waiting, part_done and failed tasks are counted as key ranges (lanes 1 to 3), which
//! SQLite steps through without decoding a row; lane 0 (running and done together) is read
//! once for its status and lease columns, the definitions never. The oldest waiting task is
//! the first of its priority group in lane 1, so it is found with one seek per distinct
//! priority rather than a pass over the lane.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::SqlitePool;
use super::rows::{now_ms, to_time};
use super::schema::lane_cond;
use crate::error::Result;
use crate::overview::{PageRequest, PoolOverview, SortKey, load_in_order};
use crate::status::Status;
use crate::task::Task;

/// Priority groups of lane 1 visited one seek at a time before the oldest waiting task is
/// searched for with one pass over the lane instead.
const MAX_PRIORITY_GROUPS: usize = 64;

/// The first row of a priority group of lane 1: `(prio_null, prio, id, created_at)`.
type GroupHead = (bool, i64, i64, i64);

const HEAD: &str =
    "SELECT prio_null, prio, id, created_at FROM qtask_state WHERE pool = ?1 AND lane = 1";

impl SqlitePool {
    pub(super) fn overview_fast(&self) -> Result<PoolOverview> {
        let conn = self.conn();
        // One read transaction, so the figures are of one moment.
        conn.execute_batch("BEGIN")?;
        let result = (|| -> Result<PoolOverview> {
            let mut counts = crate::pool::TaskStat::new();
            {
                let mut stmt = conn.prepare_cached(
                    "SELECT lane, count(*) FROM qtask_state WHERE pool = ?1 AND lane IN (1, 2, 3) GROUP BY lane",
                )?;
                let rows = stmt.query_map([self.pool_id], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
                })?;
                for row in rows {
                    let (lane, n) = row?;
                    let status = match lane {
                        1 => Status::Waiting,
                        2 => Status::PartDone,
                        _ => Status::Failed,
                    };
                    counts.insert(status, n as u64);
                }
            }
            // Lane 0 holds running and done tasks: its size is a key count, and only the
            // status of each row is read to find the running ones (the lease expiry, stored
            // after the result, is read for those alone).
            let lane0: i64 = conn
                .prepare_cached("SELECT count(*) FROM qtask_state WHERE pool = ?1 AND lane = 0")?
                .query_row([self.pool_id], |r| r.get(0))?;
            let leases: Vec<Option<i64>> = {
                let mut stmt = conn.prepare_cached(
                    "SELECT lease_expires_at FROM qtask_state \
                     WHERE pool = ?1 AND lane = 0 AND status = 'running'",
                )?;
                let rows = stmt.query_map([self.pool_id], |r| r.get(0))?;
                rows.collect::<rusqlite::Result<_>>()?
            };
            let now = now_ms();
            let running = leases.len() as i64;
            let expired = leases.iter().filter(|e| e.is_some_and(|e| e < now)).count();
            for (status, n) in [(Status::Running, running), (Status::Done, lane0 - running)] {
                if n > 0 {
                    counts.insert(status, n as u64);
                }
            }
            let oldest_waiting = if counts.contains_key(&Status::Waiting) {
                self.oldest_waiting(&conn)?
            } else {
                None
            };
            Ok(PoolOverview {
                counts,
                expired_leases: expired as u64,
                oldest_waiting,
            })
        })();
        conn.execute_batch("COMMIT")?;
        result
    }

    /// The waiting task with the smallest id: the head of one of lane 1's priority groups.
    fn oldest_waiting(
        &self,
        conn: &rusqlite::Connection,
    ) -> Result<Option<(String, DateTime<Utc>)>> {
        let read = |r: &rusqlite::Row<'_>| -> rusqlite::Result<GroupHead> {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        };
        let mut head: Option<GroupHead> = conn
            .prepare_cached(&format!("{HEAD} ORDER BY prio_null, prio DESC, id LIMIT 1"))?
            .query_row([self.pool_id], read)
            .optional()?;
        let mut best: Option<(i64, i64)> = None;
        let mut groups = 0;
        while let Some((prio_null, prio, id, created)) = head {
            if best.is_none_or(|(b, _)| id < b) {
                best = Some((id, created));
            }
            groups += 1;
            if groups == MAX_PRIORITY_GROUPS {
                // Many distinct priorities: one pass over the lane is cheaper than a seek each.
                best = conn
                    .prepare_cached(&format!("{HEAD} ORDER BY id LIMIT 1"))?
                    .query_row([self.pool_id], read)
                    .optional()?
                    .map(|(_, _, id, created)| (id, created));
                break;
            }
            // The next group: a lower priority, else the tasks without one.
            head = conn
                .prepare_cached(&format!(
                    "{HEAD} AND prio_null = ?2 AND prio < ?3 ORDER BY prio DESC, id LIMIT 1"
                ))?
                .query_row(params![self.pool_id, prio_null, prio], read)
                .optional()?;
            if head.is_none() && !prio_null {
                head = conn
                    .prepare_cached(&format!(
                        "{HEAD} AND prio_null = 1 ORDER BY prio DESC, id LIMIT 1"
                    ))?
                    .query_row([self.pool_id], read)
                    .optional()?;
            }
        }
        Ok(best.and_then(|(id, created)| Some((id.to_string(), to_time(Some(created))?))))
    }

    pub(super) fn page_fast(&self, page: &PageRequest) -> Result<Vec<Task>> {
        let lanes = match page.status {
            Some(s) => lane_cond(s),
            None => "lane IN (0, 1, 2, 3)".to_string(),
        };
        let (asc, desc) = ("", " DESC");
        let (fwd, rev) = if page.descending {
            (desc, asc)
        } else {
            (asc, desc)
        };
        // Within one lane, claim order is the key order, so SQLite reads the page off the key.
        let order = match page.sort {
            SortKey::Priority => format!("prio_null{fwd}, prio{rev}, id{fwd}"),
            SortKey::Created => format!("id{fwd}"),
            SortKey::Attempts => format!("attempts{fwd}, id{fwd}"),
        };
        let ids: Vec<i64> = {
            let conn = self.conn();
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT id FROM qtask_state WHERE pool = ?1 AND {lanes} ORDER BY {order} LIMIT ?2 OFFSET ?3"
            ))?;
            let rows = stmt.query_map(
                params![
                    self.pool_id,
                    i64::try_from(page.limit).unwrap_or(i64::MAX),
                    i64::try_from(page.offset).unwrap_or(i64::MAX)
                ],
                |r| r.get(0),
            )?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        load_in_order(self, &ids)
    }

    pub(super) fn durations_fast(&self, limit: usize) -> Result<Vec<f64>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT finished_at - started_at FROM qtask_state \
             WHERE pool = ?1 AND lane = 0 AND status = 'done' \
             AND started_at IS NOT NULL AND finished_at IS NOT NULL \
             ORDER BY finished_at DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(
            params![self.pool_id, i64::try_from(limit).unwrap_or(i64::MAX)],
            |r| r.get::<_, i64>(0),
        )?;
        rows.map(|ms| Ok(ms?.max(0) as f64 / 1000.0)).collect()
    }
}
