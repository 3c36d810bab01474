//! `run_task`: claim, run, commit, until nothing matches.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use qtask_pool::query::{Cond, Field, Op};
use qtask_pool::{Claim, FetchOptions, PoolError, Query, Status, TaskPool, default_owner};
use serde_json::Value;

use crate::error::{RunnerError, TaskError};
use crate::func::{TaskContext, TaskFunc};
use crate::heartbeat;
use crate::stop::StopFlag;

/// How a worker drains its pool.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Which tasks to take (its `status`, if any, is replaced by `before_status`).
    pub query: Query,
    /// Claim tasks in this status: `waiting` (the function gets `def`) or `part_done` (`res`).
    pub before_status: Status,
    /// Commit results with this status.
    pub after_status: Status,
    /// Lease length (`None`: Qlib's behaviour, no lease and no heartbeat).
    pub lease: Option<Duration>,
    /// Lease owner recorded on claims.
    pub owner: String,
    /// Number of task slots running at once.
    pub concurrency: usize,
    /// Stop after claiming this many tasks.
    pub max_tasks: Option<usize>,
    /// Wait this long after a failed attempt before recording it (the lease is kept meanwhile,
    /// so nobody retries the task sooner).
    pub retry_delay: Duration,
    /// Keep polling (with backoff) when nothing is left instead of returning.
    pub follow: bool,
    /// Passed to task functions (and external commands as `QTASK_EXPERIMENT`).
    pub experiment: Option<String>,
    /// How long to keep retrying when the store is unreachable before giving up.
    pub reconnect_for: Duration,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            query: Query::all(),
            before_status: Status::Waiting,
            after_status: Status::Done,
            lease: Some(qtask_pool::DEFAULT_LEASE),
            owner: default_owner(),
            concurrency: 1,
            max_tasks: None,
            retry_delay: Duration::ZERO,
            follow: false,
            experiment: None,
            reconnect_for: Duration::from_secs(120),
        }
    }
}

/// What happened to a task, reported as it happens (for progress bars and logs).
#[derive(Debug, Clone, PartialEq)]
pub enum RunEvent {
    /// A task was claimed.
    Claimed {
        /// Task id.
        id: String,
        /// Attempt number (1 for the first).
        attempt: u32,
    },
    /// A result was committed.
    Committed {
        /// Task id.
        id: String,
    },
    /// An attempt failed; `status` is where the task went (`failed` when exhausted).
    Failed {
        /// Task id.
        id: String,
        /// The error kept on the task.
        error: String,
        /// The task's new status.
        status: Status,
    },
    /// The task was handed back unfinished (stop requested, or the worker's environment
    /// failed), its attempt given back.
    Returned {
        /// Task id.
        id: String,
    },
    /// The lease was lost while working; the result (if any) was not stored.
    LeaseLost {
        /// Task id.
        id: String,
    },
    /// The store did not answer; retrying.
    StoreUnavailable {
        /// The store's error.
        error: String,
    },
}

/// Counts of what a run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunSummary {
    /// Results committed.
    pub committed: usize,
    /// Attempts that failed.
    pub failed: usize,
    /// Tasks handed back because of a stop request.
    pub returned: usize,
    /// Tasks whose lease was lost mid-work.
    pub lease_lost: usize,
}

impl RunSummary {
    /// Whether any task was run (Qlib's return value of `run_task`).
    pub fn ran_any(&self) -> bool {
        self.committed + self.failed + self.returned + self.lease_lost > 0
    }

    fn add(&mut self, other: RunSummary) {
        self.committed += other.committed;
        self.failed += other.failed;
        self.returned += other.returned;
        self.lease_lost += other.lease_lost;
    }
}

/// Retries `op` with exponential backoff while it fails transiently, up to `for_how_long`.
fn with_retry<T>(
    opts: &RunOptions,
    stop: &StopFlag,
    on_event: &(dyn Fn(&RunEvent) + Sync),
    mut op: impl FnMut() -> Result<T, PoolError>,
) -> Result<T, PoolError> {
    let started = Instant::now();
    let mut pause = Duration::from_millis(100);
    loop {
        match op() {
            Err(e)
                if e.is_transient()
                    && started.elapsed() < opts.reconnect_for
                    && !stop.is_stopped() =>
            {
                on_event(&RunEvent::StoreUnavailable {
                    error: e.to_string(),
                });
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_secs(5));
            }
            other => return other,
        }
    }
}

/// Qlib's `run_task`: claims tasks in `before_status` matching the query, passes `def`
/// (waiting) or `res` (part_done) to `func`, commits the result with `after_status`, until
/// nothing matches (or forever with `follow`). A failing task is recorded and the worker goes
/// on. Returns what it did; [`RunSummary::ran_any`] is Qlib's return value.
pub fn run_task(
    pool: &dyn TaskPool,
    func: &dyn TaskFunc,
    opts: &RunOptions,
    stop: &StopFlag,
    on_event: &(dyn Fn(&RunEvent) + Sync),
) -> Result<RunSummary, RunnerError> {
    if !matches!(opts.before_status, Status::Waiting | Status::PartDone) {
        return Err(RunnerError::Invalid(format!(
            "run_task takes tasks that are waiting or part_done, not {}",
            opts.before_status
        )));
    }
    let claimed = AtomicUsize::new(0);
    let committed_ids = Mutex::new(Vec::new());
    let total = Mutex::new(RunSummary::default());
    let first_error: Mutex<Option<RunnerError>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..opts.concurrency.max(1) {
            scope.spawn(|| {
                match slot(pool, func, opts, stop, on_event, &claimed, &committed_ids) {
                    Ok(s) => total.lock().expect("not poisoned").add(s),
                    Err(e) => {
                        // One slot failing (store gone for good) stops the others from claiming.
                        stop.stop();
                        first_error.lock().expect("not poisoned").get_or_insert(e);
                    }
                }
            });
        }
    });
    match first_error.into_inner().expect("not poisoned") {
        Some(e) => Err(e),
        None => Ok(total.into_inner().expect("not poisoned")),
    }
}

/// One task slot: the claim/run/commit loop.
fn slot(
    pool: &dyn TaskPool,
    func: &dyn TaskFunc,
    opts: &RunOptions,
    stop: &StopFlag,
    on_event: &(dyn Fn(&RunEvent) + Sync),
    claimed: &AtomicUsize,
    committed_ids: &Mutex<Vec<String>>,
) -> Result<RunSummary, RunnerError> {
    let mut fetch = FetchOptions {
        query: opts.query.clone(),
        status: opts.before_status,
        lease: opts.lease,
        owner: opts.owner.clone(),
    };
    let mut summary = RunSummary::default();
    let mut idle_pause = Duration::from_millis(200);
    // Reserves a place under max_tasks before claiming (the caller gives it back if nothing
    // came); false when the limit is reached.
    let reserve = || {
        let n = claimed.fetch_add(1, Ordering::SeqCst);
        if opts.max_tasks.is_some_and(|m| n >= m) {
            claimed.fetch_sub(1, Ordering::SeqCst);
            return false;
        }
        true
    };
    // The fetch options for the next claim; `also_done` is a task being committed with it.
    let next_fetch = |fetch: &mut FetchOptions, also_done: Option<&str>| {
        if opts.before_status == opts.after_status {
            // part_done -> part_done: a committed task matches again; take each once per call.
            let mut done = committed_ids.lock().expect("not poisoned").clone();
            done.extend(also_done.map(str::to_string));
            fetch.query = opts.query.clone();
            if !done.is_empty() {
                let done = done.into_iter().map(Value::String).collect();
                fetch.query.conds.push(Cond {
                    field: Field::Id,
                    op: Op::Nin(done),
                });
            }
        }
    };
    // A task claimed together with the previous commit (see `run_one`), already reserved.
    let mut next: Option<Claim<'_>> = None;
    loop {
        if stop.is_stopped() {
            // A task claimed with the last commit goes back as the guard drops.
            return Ok(summary);
        }
        let claim = match next.take() {
            Some(claim) => claim,
            None => {
                if !reserve() {
                    return Ok(summary);
                }
                next_fetch(&mut fetch, None);
                let claim = with_retry(opts, stop, on_event, || Claim::fetch(pool, &fetch))?;
                let Some(claim) = claim else {
                    claimed.fetch_sub(1, Ordering::SeqCst);
                    if !opts.follow {
                        return Ok(summary);
                    }
                    sleep_unless_stopped(idle_pause, stop);
                    idle_pause = (idle_pause * 2).min(Duration::from_secs(10));
                    continue;
                };
                claim
            }
        };
        idle_pause = Duration::from_millis(200);
        let id = claim.id().to_string();
        // With a lease, the commit also claims the next task, in one transaction where the
        // store can: only safe with a lease, since a commit whose reply is lost would orphan
        // the task claimed with it until its lease runs out. Never past max_tasks or a stop.
        let chain = opts.lease.is_some() && !stop.is_stopped() && reserve();
        if chain {
            next_fetch(&mut fetch, Some(&id));
        }
        let (one, claimed_next) = run_one(
            pool,
            func,
            opts,
            stop,
            on_event,
            claim,
            chain.then_some(&fetch),
        )?;
        if chain && claimed_next.is_none() {
            claimed.fetch_sub(1, Ordering::SeqCst);
        }
        if one.committed > 0 {
            committed_ids.lock().expect("not poisoned").push(id);
        }
        summary.add(one);
        next = claimed_next;
    }
}

fn sleep_unless_stopped(d: Duration, stop: &StopFlag) {
    let until = Instant::now() + d;
    while Instant::now() < until && !stop.is_stopped() {
        std::thread::sleep(Duration::from_millis(50).min(until - Instant::now()));
    }
}

/// Runs one claimed task to a commit, a recorded failure, or a return. With `next`, a
/// successful commit also claims the next task (see [`TaskPool::commit_and_fetch`]),
/// returned beside the summary.
fn run_one<'p>(
    pool: &'p dyn TaskPool,
    func: &dyn TaskFunc,
    opts: &RunOptions,
    stop: &StopFlag,
    on_event: &(dyn Fn(&RunEvent) + Sync),
    claim: Claim<'p>,
    next: Option<&FetchOptions>,
) -> Result<(RunSummary, Option<Claim<'p>>), RunnerError> {
    let task = claim.task().clone();
    let id = task.id.clone();
    on_event(&RunEvent::Claimed {
        id: id.clone(),
        attempt: task.attempts,
    });
    let param = match opts.before_status {
        Status::PartDone => task.res.clone().unwrap_or(Value::Null),
        _ => task.def.clone(),
    };
    let cancel = Arc::new(AtomicBool::new(false));
    let lost = Arc::new(AtomicBool::new(false));
    let ctx = TaskContext {
        task_id: id.clone(),
        pool: pool.name().to_string(),
        attempt: task.attempts,
        experiment: opts.experiment.clone(),
        tracking_uri: None,
        cancel: Arc::clone(&cancel),
    };
    let done = AtomicBool::new(false);
    let outcome: Result<Value, TaskError> = std::thread::scope(|scope| {
        let beat = opts.lease.map(|lease| {
            heartbeat::start(
                scope,
                pool,
                id.clone(),
                claim.token().to_string(),
                lease,
                Arc::clone(&cancel),
                Arc::clone(&lost),
            )
        });
        // A watcher turns a stop request into a cancel of the work in hand.
        scope.spawn(|| {
            while !done.load(Ordering::SeqCst) {
                if stop.is_stopped() {
                    cancel.store(true, Ordering::SeqCst);
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        let result = func.call(&ctx, &param);
        done.store(true, Ordering::SeqCst);
        drop(beat);
        result
    });

    let mut summary = RunSummary::default();
    if lost.load(Ordering::SeqCst) {
        on_event(&RunEvent::LeaseLost { id });
        summary.lease_lost = 1;
        // Someone else owns the task now: nothing of ours may be written to it.
        claim.settle();
        return Ok((summary, None));
    }
    // A stop that came while the task ran claims nothing more.
    let next = next.filter(|_| !stop.is_stopped());
    match (outcome, next) {
        (Ok(res), Some(next)) => {
            let token = claim.token().to_string();
            match claim.commit_and_fetch(&res, Some(opts.after_status), next) {
                Ok(claimed_next) => {
                    on_event(&RunEvent::Committed { id });
                    summary.committed = 1;
                    return Ok((summary, claimed_next));
                }
                Err(PoolError::LeaseLost { .. }) => {
                    on_event(&RunEvent::LeaseLost { id });
                    summary.lease_lost = 1;
                }
                // Nothing is known to be written: commit alone, retrying as usual (if the
                // lost reply had in fact committed, the retry finds the lease gone).
                Err(e) if e.is_transient() => {
                    commit(pool, opts, stop, on_event, &id, &token, &res, &mut summary)?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        (Ok(res), None) => {
            let token = claim.token().to_string();
            // Unsettled until the store answered: an error hands the task back as it drops.
            commit(pool, opts, stop, on_event, &id, &token, &res, &mut summary)?;
            claim.settle();
        }
        (Err(err), _) if err.is_environment() => {
            // Not the task's failure: the attempt is given back (the error the task had is
            // kept), and this worker stops before it fails every other task the same way.
            claim.return_task(None)?;
            on_event(&RunEvent::Returned { id: id.clone() });
            return Err(RunnerError::Environment {
                id,
                message: err.message,
            });
        }
        (Err(_), _) if stop.is_stopped() => {
            claim.return_task(None)?;
            on_event(&RunEvent::Returned { id });
            summary.returned = 1;
        }
        (Err(err), _) => {
            if !opts.retry_delay.is_zero() {
                sleep_unless_stopped(opts.retry_delay, stop);
            }
            let status = claim.fail(&err.message)?;
            on_event(&RunEvent::Failed {
                id,
                error: err.message,
                status,
            });
            summary.failed = 1;
        }
    }
    Ok((summary, None))
}

/// Commits `res` for the task `id` under lease `token`, retrying while the store is away.
#[allow(clippy::too_many_arguments)]
fn commit(
    pool: &dyn TaskPool,
    opts: &RunOptions,
    stop: &StopFlag,
    on_event: &(dyn Fn(&RunEvent) + Sync),
    id: &str,
    token: &str,
    res: &Value,
    summary: &mut RunSummary,
) -> Result<(), RunnerError> {
    match with_retry(opts, stop, on_event, || {
        pool.commit_task_res(id, Some(token), res, Some(opts.after_status))
    }) {
        Ok(()) => {
            on_event(&RunEvent::Committed { id: id.to_string() });
            summary.committed = 1;
        }
        Err(PoolError::LeaseLost { .. }) => {
            on_event(&RunEvent::LeaseLost { id: id.to_string() });
            summary.lease_lost = 1;
        }
        Err(e) => return Err(e.into()),
    }
    Ok(())
}
