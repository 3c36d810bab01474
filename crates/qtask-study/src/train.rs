//! Training a list of tasks with one of Qlib's four trainers, the pool's ones through a store
//! that other machines' workers may join.

use std::sync::Arc;
use std::time::Duration;

use qtask_record::RecordStore;
use qtask_runner::{RunOptions, StopFlag, TrainOutcome, Trainer, TrainerKind};
use serde_json::Value;

use crate::error::{Result, StudyError};
use crate::exec::ExecSpec;
use crate::observe::{Observer, StudyPhase};

/// What a trainer needs besides the tasks.
#[derive(Debug, Clone)]
pub struct TrainSetup<'a> {
    /// How tasks are executed.
    pub exec: &'a ExecSpec,
    /// Which trainer.
    pub kind: TrainerKind,
    /// Experiment of the runs.
    pub experiment: &'a str,
    /// The pool the RM trainers train through (the others need none).
    pub pool: Option<PoolTarget<'a>>,
    /// Local workers draining the pool (RM trainers).
    pub workers: usize,
    /// Also run `end_train` (the delay trainers fit there).
    pub end_train: bool,
}

/// A task pool: the store's URL and the pool's name.
#[derive(Debug, Clone, Copy)]
pub struct PoolTarget<'a> {
    /// Store URL: `sqlite:PATH`, `postgres://...`, `mongodb://...`.
    pub store: &'a str,
    /// Pool name.
    pub name: &'a str,
}

/// Trains `tasks` into `records`; `end_train` runs only when every task trained. Failed tasks
/// are in the outcome, not an error: the caller decides what a failure means.
pub fn train_tasks(
    records: &RecordStore,
    tasks: &[Value],
    setup: &TrainSetup,
    stop: &StopFlag,
    observer: &dyn Observer,
) -> Result<TrainOutcome> {
    let pool = match (setup.kind.uses_pool(), setup.pool) {
        (true, Some(p)) => Some(Arc::from(qtask_pool::open(p.store, p.name)?)),
        (true, None) => {
            return Err(StudyError::Invalid(format!(
                "{} trains through a task pool: give it a store and a pool",
                setup.kind.qlib_name()
            )));
        }
        (false, _) => None,
    };
    let trainer = Trainer {
        kind: setup.kind,
        store: records.clone(),
        experiment: setup.experiment.to_string(),
        exec: setup.exec.executor()?,
        pool,
        run: RunOptions {
            concurrency: setup.workers.max(1),
            ..RunOptions::default()
        },
        poll: Duration::from_millis(500),
    };
    let on_event = |e: &qtask_runner::RunEvent| observer.event(e);
    observer.begin(StudyPhase::Train, tasks.len() as u64);
    let outcome = trainer.train(tasks, stop, &on_event);
    observer.end();
    let mut outcome = outcome?;
    if setup.end_train && outcome.failed.is_empty() {
        observer.begin(StudyPhase::EndTrain, tasks.len() as u64);
        let ended = trainer.end_train(&outcome.run_ids(), stop, &on_event);
        observer.end();
        outcome = TrainOutcome {
            runs: outcome.runs,
            failed: ended?.failed,
        };
    }
    Ok(outcome)
}
