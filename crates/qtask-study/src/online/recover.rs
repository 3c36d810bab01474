//! Cleaning up after a process of this machine that died mid-routine (killed, out of memory,
//! power cut): its half-trained runs are deleted and the pool tasks it held are handed back,
//! so the next routine trains each task once and leaves one run per task.
//!
//! A process is known dead only on this machine (`/proc` on Linux); work held by other
//! machines is left to their leases, which expire on their own.

use qtask_pool::{Status, TaskPool};
use qtask_record::names::TM_ID;
use qtask_record::{RecordStore, RunStatus};
use qtask_runner::train::{PID_TAG, STATUS_KEY, run_ref};
use serde_json::Value;

use crate::error::Result;

/// What [`recover`] cleaned up.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Recovered {
    /// Runs of a dead process deleted (half-trained, never finished).
    pub deleted_runs: Vec<String>,
    /// Pool tasks a dead process held, handed back to the status they were claimed from.
    pub returned_tasks: Vec<String>,
    /// Pool tasks a dead process had finished but not committed: committed with their run.
    pub committed_tasks: Vec<String>,
}

impl Recovered {
    /// Whether anything was cleaned up.
    pub fn is_empty(&self) -> bool {
        self.deleted_runs.is_empty()
            && self.returned_tasks.is_empty()
            && self.committed_tasks.is_empty()
    }
}

/// This machine's name, as lease owners and run tags spell it.
fn this_host() -> String {
    let owner = qtask_pool::default_owner();
    match owner.rsplit_once(':') {
        Some((host, _)) => host.to_string(),
        None => owner,
    }
}

/// Whether process `pid` of this machine is gone (`None`: cannot tell on this system).
fn process_gone(pid: u32) -> Option<bool> {
    if !cfg!(target_os = "linux") {
        return None;
    }
    if pid == std::process::id() {
        return Some(false);
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // A zombie has exited; only its exit status waits to be read.
        Ok(stat) => Some(matches!(
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next()),
            Some('Z' | 'X')
        )),
        Err(_) => Some(true),
    }
}

/// Whether `host:pid` names a dead process of this machine.
fn owner_dead(owner: &str, host: &str) -> bool {
    match owner.rsplit_once(':') {
        Some((h, pid)) if h == host => pid
            .parse::<u32>()
            .ok()
            .and_then(process_gone)
            .unwrap_or(false),
        _ => false,
    }
}

/// Cleans up what dead processes of this machine left in `experiment` and its `pool`.
pub fn recover(
    records: &RecordStore,
    experiment: &str,
    pool: Option<&dyn TaskPool>,
) -> Result<Recovered> {
    let mut out = Recovered::default();
    let Some(exp) = records.find_experiment(experiment)? else {
        return Ok(out);
    };
    let host = this_host();
    let runs = exp.runs(None)?;

    if let Some(pool) = pool {
        let running = qtask_pool::Query::all().with_status(Status::Running);
        for task in pool.query(&running)? {
            let Some(owner) = &task.lease_owner else {
                continue;
            };
            if !owner_dead(owner, &host) {
                continue;
            }
            // A run that finished this task: its result only missed the commit.
            let mut finished = None;
            for info in runs.iter().filter(|r| r.status == RunStatus::Finished) {
                let run = records.run(&info.run_id)?;
                if run.tags()?.get(TM_ID) == Some(&task.id) {
                    finished = Some(run);
                    break;
                }
            }
            match finished {
                Some(run) => {
                    pool.commit_task_res(&task.id, None, &run_ref(&run, &exp), Some(Status::Done))?;
                    out.committed_tasks.push(task.id.clone());
                }
                None => {
                    pool.return_task(&task.id, None, None)?;
                    out.returned_tasks.push(task.id.clone());
                }
            }
        }
    }

    for info in runs.iter().filter(|r| r.status == RunStatus::Running) {
        let mut run = records.run(&info.run_id)?;
        let tags = run.tags()?;
        // A delay trainer's recorded run rests RUNNING on purpose, tagged by its trainer.
        if tags.contains_key(STATUS_KEY) {
            continue;
        }
        let owner = match (tags.get("hostname"), tags.get(PID_TAG)) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            _ => continue,
        };
        if !owner_dead(&owner, &host) {
            continue;
        }
        // Recorded through the pool and committed there (DelayTrainerRM's first phase): kept.
        if let (Some(pool), Some(tid)) = (pool, tags.get(TM_ID)) {
            let committed = match pool.re_query(tid) {
                Ok(t) => {
                    matches!(t.status, Status::PartDone | Status::Done)
                        && t.res
                            .as_ref()
                            .and_then(|r| r.get("run_id"))
                            .and_then(Value::as_str)
                            == Some(run.id())
                }
                Err(qtask_pool::PoolError::NotFound { .. }) => false,
                Err(e) => return Err(e.into()),
            };
            if committed {
                continue;
            }
        }
        // One write: a crash here leaves the run either as it was (found again next time)
        // or deleted, never ended and still listed.
        run.delete()?;
        out.deleted_runs.push(info.run_id.clone());
    }
    Ok(out)
}
