//! The claim handle and the safe-fetch guard: a claimed task goes back where it came from
//! unless it is committed, whatever happens to the worker code.

use std::fmt::Display;
use std::time::Duration;

use serde_json::Value;

use crate::error::{PoolError, Result};
use crate::pool::{FetchOptions, TaskPool};
use crate::status::Status;
use crate::task::{ClaimedTask, Task};

/// A task claimed from a pool, with its lease.
///
/// Dropped without [`Claim::commit`], [`Claim::return_task`] or [`Claim::fail`], it returns the
/// task to the status it was claimed from; dropped while panicking, it records a failed
/// attempt instead (so a task that always panics ends `failed`).
pub struct Claim<'a> {
    pool: &'a dyn TaskPool,
    claimed: ClaimedTask,
    lease: Option<Duration>,
    settled: bool,
}

impl<'a> Claim<'a> {
    /// Claims one task (see [`TaskPool::fetch_task`]).
    pub fn fetch(pool: &'a dyn TaskPool, opts: &FetchOptions) -> Result<Option<Claim<'a>>> {
        Ok(pool.fetch_task(opts)?.map(|claimed| Claim {
            pool,
            claimed,
            lease: opts.lease,
            settled: false,
        }))
    }

    /// The task as claimed.
    pub fn task(&self) -> &Task {
        &self.claimed.task
    }

    /// The task id.
    pub fn id(&self) -> &str {
        &self.claimed.task.id
    }

    /// The lease token (for heartbeats from another thread via [`TaskPool::heartbeat`]).
    pub fn token(&self) -> &str {
        &self.claimed.token
    }

    /// The status the task was claimed from.
    pub fn from_status(&self) -> Status {
        self.claimed.from
    }

    /// The lease length (`None`: no lease).
    pub fn lease(&self) -> Option<Duration> {
        self.lease
    }

    /// Renews the lease; does nothing without a lease.
    pub fn heartbeat(&self) -> Result<()> {
        match self.lease {
            Some(lease) => self.pool.heartbeat(self.id(), self.token(), lease),
            None => Ok(()),
        }
    }

    /// Stores the result (status `None`: `done`).
    pub fn commit(mut self, res: &Value, status: Option<Status>) -> Result<()> {
        self.settled = true;
        self.pool.commit_task_res(
            &self.claimed.task.id,
            Some(&self.claimed.token),
            res,
            status,
        )
    }

    /// Stores the result (status `None`: `done`) and claims the next task in one step (see
    /// [`TaskPool::commit_and_fetch`]); the new claim's lease is `opts.lease`.
    pub fn commit_and_fetch(
        mut self,
        res: &Value,
        status: Option<Status>,
        opts: &FetchOptions,
    ) -> Result<Option<Claim<'a>>> {
        self.settled = true;
        let pool = self.pool;
        let next = pool.commit_and_fetch(
            &self.claimed.task.id,
            &self.claimed.token,
            res,
            status,
            opts,
        )?;
        Ok(next.map(|claimed| Claim {
            pool,
            claimed,
            lease: opts.lease,
            settled: false,
        }))
    }

    /// Gives the task back (status `None`: the status it was claimed from).
    pub fn return_task(mut self, status: Option<Status>) -> Result<()> {
        self.settled = true;
        self.pool
            .return_task(&self.claimed.task.id, Some(&self.claimed.token), status)
    }

    /// Marks the claim settled without writing anything: the caller already wrote through the
    /// pool with this claim's token (e.g. a commit retried across a store outage), or the lease
    /// was lost and the task belongs to someone else.
    pub fn settle(mut self) {
        self.settled = true;
    }

    /// Records a failed attempt; returns the task's new status (`failed` when exhausted).
    pub fn fail(mut self, error: &str) -> Result<Status> {
        self.settled = true;
        self.pool
            .fail_task(&self.claimed.task.id, &self.claimed.token, error)
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        // Errors cannot propagate from drop; a lost lease means someone else owns it anyway.
        if std::thread::panicking() {
            let _ = self.pool.fail_task(
                &self.claimed.task.id,
                &self.claimed.token,
                "worker panicked",
            );
        } else {
            let _ = self
                .pool
                .return_task(&self.claimed.task.id, Some(&self.claimed.token), None);
        }
    }
}

/// Why [`safe_fetch`] failed.
#[derive(Debug, thiserror::Error)]
pub enum SafeFetchError<E> {
    /// The pool failed (claiming, committing or recording the failure).
    #[error(transparent)]
    Pool(#[from] PoolError),
    /// The work failed; the failure was recorded on the task.
    #[error("task {id}: {error}")]
    Work {
        /// The task id.
        id: String,
        /// The status the task was left in (`failed` when attempts are exhausted).
        status: Status,
        /// The work's error.
        error: E,
    },
}

/// Qlib's `safe_fetch_task` around one unit of work: claims one task, runs `work` on it and
/// commits what it returns with status `after` (`None`: `done`). If `work` returns an error,
/// the failed attempt is recorded (the task goes back to the status it came from, or to
/// `failed` when its attempts are used up); if it panics, the guard records the failure while
/// unwinding. Returns the committed task's id, or `Ok(None)` when no task matched.
pub fn safe_fetch<E: Display>(
    pool: &dyn TaskPool,
    opts: &FetchOptions,
    after: Option<Status>,
    work: impl FnOnce(&Claim<'_>) -> std::result::Result<Value, E>,
) -> std::result::Result<Option<String>, SafeFetchError<E>> {
    let Some(claim) = Claim::fetch(pool, opts)? else {
        return Ok(None);
    };
    let id = claim.id().to_string();
    match work(&claim) {
        Ok(res) => {
            claim.commit(&res, after)?;
            Ok(Some(id))
        }
        Err(error) => {
            let status = claim.fail(&error.to_string())?;
            Err(SafeFetchError::Work { id, status, error })
        }
    }
}
