//! The [`TaskPool`] trait: Qlib's TaskManager operations plus leases and bounded attempts.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::error::Result;
use crate::query::Query;
use crate::status::Status;
use crate::task::{ClaimedTask, Created, Task};

/// The lease a claim gets unless told otherwise; workers renew it every third of it.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(300);

/// How many times a task may be started before it becomes `failed`, unless the task or the
/// pool says otherwise.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;

/// Options of [`TaskPool::create_tasks`].
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// Insert nothing; only report which definitions are new.
    pub dry_run: bool,
    /// Attempt limit stored on each new task (`None`: the pool's limit).
    pub max_attempts: Option<u32>,
}

/// Options of [`TaskPool::fetch_task`].
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// Which tasks may be claimed (any `status` in it is replaced by `status`).
    pub query: Query,
    /// The status to claim from (Qlib's `status` argument, default `waiting`).
    pub status: Status,
    /// Lease length; `None` is Qlib's behaviour: running until someone resets it.
    pub lease: Option<Duration>,
    /// Recorded as the lease owner (`host:pid` by default).
    pub owner: String,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            query: Query::all(),
            status: Status::Waiting,
            lease: Some(DEFAULT_LEASE),
            owner: default_owner(),
        }
    }
}

/// `hostname:pid`, the default lease owner.
pub fn default_owner() -> String {
    format!(
        "{}:{}",
        gethostname::gethostname().to_string_lossy(),
        std::process::id()
    )
}

/// Counts per status, only for statuses present (Qlib's `task_stat`).
pub type TaskStat = BTreeMap<Status, u64>;

/// One named pool of tasks in a store.
///
/// Every backend implements this; the conformance suite in `tests/` holds them to the same
/// behaviour. Writes that come from a claim carry its lease token and are refused once the
/// lease was lost (fencing); writes without a token are administrative (the CLI's).
pub trait TaskPool: Send + Sync {
    /// The pool name.
    fn name(&self) -> &str;

    /// Inserts the definitions that are new (by canonical-JSON hash, enforced by the store),
    /// reusing the ids of existing ones whatever their status. Results are in input order.
    fn create_tasks(&self, defs: &[Value], opts: &CreateOptions) -> Result<Vec<Created>>;

    /// Atomically claims the best matching task (highest priority, no priority last, then
    /// insertion order) and sets it `running` with a lease. A `running` task of the same
    /// origin status whose lease expired is claimed first, counting one more attempt; one
    /// that has used all its attempts becomes `failed` instead.
    fn fetch_task(&self, opts: &FetchOptions) -> Result<Option<ClaimedTask>>;

    /// Renews a lease for `lease` from now (database clock); returns the task's new state.
    /// Refused with [`crate::PoolError::LeaseLost`] when `token` is no longer current.
    fn heartbeat(&self, id: &str, token: &str, lease: Duration) -> Result<()>;

    /// Stores `res` and sets the status (`None`: `done`). With a token, refused unless the
    /// token is the task's current lease.
    fn commit_task_res(
        &self,
        id: &str,
        token: Option<&str>,
        res: &Value,
        status: Option<Status>,
    ) -> Result<()>;

    /// A worker's hot path: commits the task it holds (as [`TaskPool::commit_task_res`] with
    /// `token`) and then claims the next one (as [`TaskPool::fetch_task`]), returning it.
    ///
    /// Backends may do both in one transaction; the outcome is the same as the two calls in
    /// sequence. When the commit is refused (lease lost, task gone) nothing is claimed and
    /// the commit's error is returned.
    fn commit_and_fetch(
        &self,
        id: &str,
        token: &str,
        res: &Value,
        status: Option<Status>,
        opts: &FetchOptions,
    ) -> Result<Option<ClaimedTask>> {
        self.commit_task_res(id, Some(token), res, status)?;
        self.fetch_task(opts)
    }

    /// Sets the status (`None`: the status it was claimed from, else `waiting`), keeping any
    /// `res`; a return by the lease holder gives the attempt back.
    fn return_task(&self, id: &str, token: Option<&str>, status: Option<Status>) -> Result<()>;

    /// Records a failed attempt: the task goes back to the status it was claimed from, or to
    /// `failed` when its attempts are used up. Returns the new status.
    fn fail_task(&self, id: &str, token: &str, error: &str) -> Result<Status>;

    /// The matching tasks, in insertion order.
    fn query(&self, query: &Query) -> Result<Vec<Task>>;

    /// One task by id (an unknown id is [`crate::PoolError::NotFound`]).
    fn re_query(&self, id: &str) -> Result<Task>;

    /// Counts of matching tasks per status present.
    fn task_stat(&self, query: &Query) -> Result<TaskStat>;

    /// Sets matching `running` tasks back to `waiting` (the query defaults to
    /// `status: running`), dropping their leases. Returns how many changed.
    fn reset_waiting(&self, query: &Query) -> Result<u64> {
        let q = if query.mentions_status() {
            query.clone()
        } else {
            query.with_status(Status::Running)
        };
        self.reset_status(&q, Status::Waiting)
    }

    /// Sets the status of every matching task, dropping leases. Returns how many changed.
    fn reset_status(&self, query: &Query, status: Status) -> Result<u64>;

    /// Sets (or with `None` clears) a task's priority.
    fn prioritize(&self, id: &str, priority: Option<i64>) -> Result<()>;

    /// Deletes matching tasks (the empty query: the whole pool). Returns how many.
    fn remove(&self, query: &Query) -> Result<u64>;

    /// Puts matching `failed` tasks back to `waiting` with their attempts reset.
    fn retry(&self, query: &Query) -> Result<u64>;

    /// Replaces a task's definition (its hash too: refused if another task has it),
    /// keeping id, status and result.
    fn replace_task(&self, id: &str, def: &Value) -> Result<()>;

    /// Sets the pool's attempt limit (`None`: back to the default of 3).
    fn set_max_attempts(&self, max_attempts: Option<u32>) -> Result<()>;

    /// The pool names in this store.
    fn list(&self) -> Result<Vec<String>>;

    /// The pool at a glance: counts per status, expired leases, the oldest waiting task.
    /// SQLite and PostgreSQL count from their keys and indexes (see [`crate::overview`]).
    fn overview(&self) -> Result<crate::overview::PoolOverview> {
        crate::overview::overview_by_query(self)
    }

    /// One page of the pool's tasks, filtered by status and sorted (see
    /// [`crate::overview::PageRequest`]).
    fn task_page(&self, page: &crate::overview::PageRequest) -> Result<Vec<Task>> {
        crate::overview::page_by_query(self, page)
    }

    /// Durations in seconds (`finished_at - started_at`) of the `limit` done tasks that
    /// finished last, latest first.
    fn done_durations(&self, limit: usize) -> Result<Vec<f64>> {
        crate::overview::durations_by_query(self, limit)
    }

    /// Blocks until no matching task is `waiting`, `running` or `part_done`, polling every
    /// `poll` and reporting each count to `progress`. Returns `false` on timeout.
    fn wait(
        &self,
        query: &Query,
        poll: Duration,
        timeout: Option<Duration>,
        progress: &mut dyn FnMut(&TaskStat),
    ) -> Result<bool> {
        let start = Instant::now();
        loop {
            let stat = self.task_stat(query)?;
            progress(&stat);
            if unfinished(&stat) == 0 {
                return Ok(true);
            }
            let pause = match timeout {
                Some(t) => {
                    let left = t.saturating_sub(start.elapsed());
                    if left.is_zero() {
                        return Ok(false);
                    }
                    left.min(poll)
                }
                None => poll,
            };
            std::thread::sleep(pause);
        }
    }
}

/// Tasks that `wait` waits for: waiting, running or part_done.
pub fn unfinished(stat: &TaskStat) -> u64 {
    [Status::Waiting, Status::Running, Status::PartDone]
        .iter()
        .map(|s| stat.get(s).copied().unwrap_or(0))
        .sum()
}
