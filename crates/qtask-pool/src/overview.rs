//! What a dashboard reads from a pool: per-status counts with the signs of trouble (expired
//! leases, the oldest waiting task), one sorted page of tasks, and recent task durations.
//!
//! Every [`crate::TaskPool`] has these through default methods built on `task_stat` and
//! `query` (correct everywhere, but they read whole statuses). The SQLite and PostgreSQL
//! backends override them with statements that count from the stores' keys and indexes and
//! never decode a task definition, so a pool of a million tasks answers in milliseconds
//! (figures in `docs/ui.md`); the claim path is not touched by any of it.

use chrono::{DateTime, Utc};

use crate::error::Result;
use crate::pool::{TaskPool, TaskStat};
use crate::query::Query;
use crate::status::Status;
use crate::task::Task;

/// A pool at a glance.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PoolOverview {
    /// Tasks per status, only statuses present: the same figures as `task_stat` of the
    /// whole pool.
    pub counts: TaskStat,
    /// Running tasks whose lease has expired (by the store's clock): their worker is gone or
    /// stalled, and the next claim will take them again.
    pub expired_leases: u64,
    /// The waiting task inserted first (its id and creation time), if any task waits.
    pub oldest_waiting: Option<(String, DateTime<Utc>)>,
}

/// The order of a task page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortKey {
    /// Claim order: highest priority first, no priority last, then insertion order.
    #[default]
    Priority,
    /// Insertion order (ids increase with insertion).
    Created,
    /// Attempts, then insertion order.
    Attempts,
}

impl SortKey {
    /// The name used in URLs (`priority`, `created`, `attempts`).
    pub fn as_str(self) -> &'static str {
        match self {
            SortKey::Priority => "priority",
            SortKey::Created => "created",
            SortKey::Attempts => "attempts",
        }
    }

    /// Parses [`SortKey::as_str`].
    pub fn parse(s: &str) -> Option<SortKey> {
        [SortKey::Priority, SortKey::Created, SortKey::Attempts]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// One page of a pool's tasks.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PageRequest {
    /// Only tasks with this status (`None`: every task).
    pub status: Option<Status>,
    /// The order.
    pub sort: SortKey,
    /// Reverse the order.
    pub descending: bool,
    /// Tasks to skip.
    pub offset: u64,
    /// Most tasks returned.
    pub limit: u64,
}

/// The sort key of `t` under `sort`, ascending (claim order is priority descending, no
/// priority last, then id).
fn key(t: &Task, sort: SortKey) -> (i64, i64, i64) {
    let id = t.id.parse::<i64>().unwrap_or(i64::MAX);
    match sort {
        SortKey::Priority => match t.priority {
            Some(p) => (0, p.saturating_neg(), id),
            None => (1, 0, id),
        },
        SortKey::Created => (0, 0, id),
        SortKey::Attempts => (i64::from(t.attempts), 0, id),
    }
}

/// [`TaskPool::overview`] for any backend, from `task_stat` and `query`.
pub fn overview_by_query<P: TaskPool + ?Sized>(pool: &P) -> Result<PoolOverview> {
    let counts = pool.task_stat(&Query::all())?;
    let now = Utc::now();
    let expired_leases = if counts.contains_key(&Status::Running) {
        pool.query(&Query::all().with_status(Status::Running))?
            .iter()
            .filter(|t| t.lease_expires_at.is_some_and(|e| e < now))
            .count() as u64
    } else {
        0
    };
    let oldest_waiting = if counts.contains_key(&Status::Waiting) {
        pool.query(&Query::all().with_status(Status::Waiting))?
            .into_iter()
            .min_by_key(|t| (t.created_at, t.id.parse::<i64>().unwrap_or(i64::MAX)))
            .map(|t| (t.id, t.created_at))
    } else {
        None
    };
    Ok(PoolOverview {
        counts,
        expired_leases,
        oldest_waiting,
    })
}

/// [`TaskPool::task_page`] for any backend: the matching tasks sorted in memory.
pub fn page_by_query<P: TaskPool + ?Sized>(pool: &P, page: &PageRequest) -> Result<Vec<Task>> {
    let q = match page.status {
        Some(s) => Query::all().with_status(s),
        None => Query::all(),
    };
    let mut tasks = pool.query(&q)?;
    tasks.sort_by_key(|t| key(t, page.sort));
    if page.descending {
        tasks.reverse();
    }
    Ok(tasks
        .into_iter()
        .skip(usize::try_from(page.offset).unwrap_or(usize::MAX))
        .take(usize::try_from(page.limit).unwrap_or(usize::MAX))
        .collect())
}

/// [`TaskPool::done_durations`] for any backend.
pub fn durations_by_query<P: TaskPool + ?Sized>(pool: &P, limit: usize) -> Result<Vec<f64>> {
    let mut done: Vec<(DateTime<Utc>, f64)> = pool
        .query(&Query::all().with_status(Status::Done))?
        .into_iter()
        .filter_map(|t| {
            let (s, f) = (t.started_at?, t.finished_at?);
            Some((f, (f - s).num_milliseconds().max(0) as f64 / 1000.0))
        })
        .collect();
    done.sort_by_key(|d| std::cmp::Reverse(d.0));
    Ok(done.into_iter().take(limit).map(|(_, d)| d).collect())
}

/// Loads the tasks of `ids` in that order (ids removed meanwhile are left out).
pub(crate) fn load_in_order<P: TaskPool + ?Sized>(pool: &P, ids: &[i64]) -> Result<Vec<Task>> {
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        match pool.re_query(&id.to_string()) {
            Ok(t) => out.push(t),
            Err(crate::PoolError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sort_names_round_trip() {
        for k in [SortKey::Priority, SortKey::Created, SortKey::Attempts] {
            assert_eq!(SortKey::parse(k.as_str()), Some(k));
        }
        assert_eq!(SortKey::parse("def"), None);
    }
}
