//! The four trainers of Qlib: TrainerR, DelayTrainerR, TrainerRM, DelayTrainerRM.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use qtask_pool::{CreateOptions, Query, Status, TaskPool};
use qtask_record::{RecordStore, RunStatus};
use serde_json::{Value, json};

use crate::error::{RunnerError, TaskError};
use crate::func::{TaskContext, TaskFunc};
use crate::run::{RunEvent, RunOptions, RunSummary, run_task};
use crate::stop::StopFlag;
use crate::train::{
    Executor, Phase, RecordedTask, STATUS_BEGIN, STATUS_END, STATUS_KEY, TM_ID, begin_task_train,
    end_task_train,
};

/// Which trainer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrainerKind {
    /// TrainerR: fit every task in this process.
    R,
    /// TrainerRM: put the tasks in a pool; local workers and other machines fit them.
    Rm,
    /// DelayTrainerR: `train` records, `end_train` fits.
    DelayR,
    /// DelayTrainerRM: `train` records through the pool (waiting -> part_done), `end_train` and
    /// `worker` fit (part_done -> done).
    DelayRm,
}

impl FromStr for TrainerKind {
    type Err = RunnerError;
    fn from_str(s: &str) -> Result<Self, RunnerError> {
        match s {
            "r" | "TrainerR" => Ok(Self::R),
            "rm" | "TrainerRM" => Ok(Self::Rm),
            "delay-r" | "DelayTrainerR" => Ok(Self::DelayR),
            "delay-rm" | "DelayTrainerRM" => Ok(Self::DelayRm),
            other => Err(RunnerError::Invalid(format!(
                "unknown trainer `{other}` (expected r, rm, delay-r or delay-rm)"
            ))),
        }
    }
}

impl TrainerKind {
    /// Whether fitting is deferred to `end_train`.
    pub fn is_delay(self) -> bool {
        matches!(self, Self::DelayR | Self::DelayRm)
    }

    /// Whether tasks go through a task pool.
    pub fn uses_pool(self) -> bool {
        matches!(self, Self::Rm | Self::DelayRm)
    }

    /// Qlib's class name (`TrainerR`, `TrainerRM`, `DelayTrainerR`, `DelayTrainerRM`).
    pub fn qlib_name(self) -> &'static str {
        match self {
            Self::R => "TrainerR",
            Self::Rm => "TrainerRM",
            Self::DelayR => "DelayTrainerR",
            Self::DelayRm => "DelayTrainerRM",
        }
    }
}

/// What a `train`/`end_train` call produced, in input order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrainOutcome {
    /// The run of each input (`None` where it failed).
    pub runs: Vec<Option<String>>,
    /// Inputs that failed: (position, error).
    pub failed: Vec<(usize, String)>,
}

impl TrainOutcome {
    /// The run ids of the inputs that succeeded, in input order.
    pub fn run_ids(&self) -> Vec<String> {
        self.runs.iter().flatten().cloned().collect()
    }
}

/// A trainer: where runs go, what does the work, and (for the RM kinds) the pool.
#[derive(Clone)]
pub struct Trainer {
    /// Which trainer.
    pub kind: TrainerKind,
    /// The runs store.
    pub store: RecordStore,
    /// The experiment runs are recorded in.
    pub experiment: String,
    /// What fits a task.
    pub exec: Arc<dyn Executor>,
    /// The pool (required by the RM kinds; its name defaults to the experiment's).
    pub pool: Option<Arc<dyn TaskPool>>,
    /// How local workers drain the pool (concurrency = number of local workers).
    pub run: RunOptions,
    /// How often waiting polls the pool.
    pub poll: Duration,
}

impl Trainer {
    fn pool(&self) -> Result<&dyn TaskPool, RunnerError> {
        self.pool.as_deref().ok_or_else(|| {
            RunnerError::Invalid(format!("trainer {:?} needs a task pool", self.kind))
        })
    }

    fn recorded(&self, phase: Phase) -> RecordedTask {
        RecordedTask {
            store: self.store.clone(),
            experiment: self.experiment.clone(),
            exec: Arc::clone(&self.exec),
            phase,
        }
    }

    fn local_ctx(&self, id: String) -> TaskContext {
        TaskContext {
            task_id: id,
            pool: String::new(),
            attempt: 1,
            experiment: Some(self.experiment.clone()),
            tracking_uri: Some(self.store.uri()),
            cancel: Arc::new(AtomicBool::new(false)),
        }
    }

    fn tag(&self, run_id: &str, tags: &[(&str, &str)]) -> Result<(), RunnerError> {
        let run = self.store.run(run_id)?;
        let tags: Vec<(String, String)> = tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Ok(run.set_tags(&tags)?)
    }

    /// Trains (or, for delay trainers, records) `tasks`; runs are tagged `begin_task_train`.
    pub fn train(
        &self,
        tasks: &[Value],
        stop: &StopFlag,
        on_event: &(dyn Fn(&RunEvent) + Sync),
    ) -> Result<TrainOutcome, RunnerError> {
        if self.kind.uses_pool() {
            return self.train_through_pool(tasks, stop, on_event);
        }
        let exp = self.store.experiment(&self.experiment)?;
        let mut out = TrainOutcome::default();
        for (i, task) in tasks.iter().enumerate() {
            if stop.is_stopped() {
                break;
            }
            let id = i.to_string();
            on_event(&RunEvent::Claimed {
                id: id.clone(),
                attempt: 1,
            });
            let ctx = self.local_ctx(id.clone());
            let result = begin_task_train(&exp, task).and_then(|run| {
                let run_id = run.id().to_string();
                if self.kind.is_delay() {
                    Ok(run_id)
                } else {
                    end_task_train(run, self.exec.as_ref(), &ctx).map(|_| run_id)
                }
            });
            match result {
                Ok(run_id) => {
                    self.tag(&run_id, &[(STATUS_KEY, STATUS_BEGIN)])?;
                    on_event(&RunEvent::Committed { id });
                    out.runs.push(Some(run_id));
                }
                Err(e) if e.is_environment() => {
                    return Err(RunnerError::Environment {
                        id,
                        message: e.message,
                    });
                }
                Err(e) => {
                    on_event(&RunEvent::Failed {
                        id,
                        error: e.message.clone(),
                        status: Status::Failed,
                    });
                    out.failed.push((i, e.message));
                    out.runs.push(None);
                }
            }
        }
        Ok(out)
    }

    fn ids_query(ids: &[String]) -> Query {
        Query::parse(&json!({"_id": {"$in": ids}})).expect("a valid query")
    }

    /// Polls until no task of `query` is in one of `statuses`.
    fn wait_until_none(
        &self,
        query: &Query,
        statuses: &[Status],
        stop: &StopFlag,
    ) -> Result<(), RunnerError> {
        loop {
            let stat = self.pool()?.task_stat(query)?;
            if statuses
                .iter()
                .all(|s| stat.get(s).copied().unwrap_or(0) == 0)
                || stop.is_stopped()
            {
                return Ok(());
            }
            std::thread::sleep(self.poll);
        }
    }

    fn train_through_pool(
        &self,
        tasks: &[Value],
        stop: &StopFlag,
        on_event: &(dyn Fn(&RunEvent) + Sync),
    ) -> Result<TrainOutcome, RunnerError> {
        let pool = self.pool()?;
        let ids: Vec<String> = pool
            .create_tasks(tasks, &CreateOptions::default())?
            .into_iter()
            .map(|c| c.id.expect("not a dry run"))
            .collect();
        let query = Self::ids_query(&ids);
        let (phase, after) = if self.kind.is_delay() {
            (Phase::Begin, Status::PartDone)
        } else {
            (Phase::Full, Status::Done)
        };
        let opts = RunOptions {
            query: query.clone(),
            before_status: Status::Waiting,
            after_status: after,
            experiment: Some(self.experiment.clone()),
            ..self.run.clone()
        };
        run_task(pool, &self.recorded(phase), &opts, stop, on_event)?;
        // Other processes or machines may still hold some of these tasks; a delay trainer's
        // tasks rest in part_done, so only waiting and running ones are waited for.
        let unfinished: &[Status] = if self.kind.is_delay() {
            &[Status::Waiting, Status::Running]
        } else {
            &[Status::Waiting, Status::Running, Status::PartDone]
        };
        self.wait_until_none(&query, unfinished, stop)?;
        self.collect_runs(&ids, true)
    }

    /// Reads each task's run from its result and tags it (`begin_task_train` and the task id).
    fn collect_runs(&self, ids: &[String], begin: bool) -> Result<TrainOutcome, RunnerError> {
        let pool = self.pool()?;
        let mut out = TrainOutcome::default();
        for (i, id) in ids.iter().enumerate() {
            let task = pool.re_query(id)?;
            let run_id = task
                .res
                .as_ref()
                .and_then(|r| r.get("run_id"))
                .and_then(Value::as_str);
            match (task.status, run_id) {
                (Status::Done | Status::PartDone, Some(run_id)) => {
                    if begin {
                        self.tag(run_id, &[(STATUS_KEY, STATUS_BEGIN), (TM_ID, id)])?;
                    }
                    out.runs.push(Some(run_id.to_string()));
                }
                (status, _) => {
                    let why = task
                        .error
                        .unwrap_or_else(|| format!("task {id} is {status}"));
                    out.failed.push((i, why));
                    out.runs.push(None);
                }
            }
        }
        Ok(out)
    }

    /// Finishes training: fits the runs a delay trainer only recorded, then tags every run
    /// `end_task_train`.
    pub fn end_train(
        &self,
        run_ids: &[String],
        stop: &StopFlag,
        on_event: &(dyn Fn(&RunEvent) + Sync),
    ) -> Result<TrainOutcome, RunnerError> {
        let mut out = TrainOutcome {
            runs: run_ids.iter().cloned().map(Some).collect(),
            failed: vec![],
        };
        match self.kind {
            TrainerKind::R | TrainerKind::Rm => {}
            TrainerKind::DelayR => {
                for (i, run_id) in run_ids.iter().enumerate() {
                    let run = self.store.run(run_id)?;
                    let tags = run.tags()?;
                    if tags.get(STATUS_KEY).map(String::as_str) == Some(STATUS_END)
                        || run.info().status == RunStatus::Finished
                    {
                        continue;
                    }
                    on_event(&RunEvent::Claimed {
                        id: run_id.clone(),
                        attempt: 1,
                    });
                    let resumed = self.store.resume_run(run_id)?;
                    match end_task_train(
                        resumed,
                        self.exec.as_ref(),
                        &self.local_ctx(run_id.clone()),
                    ) {
                        Ok(_) => on_event(&RunEvent::Committed { id: run_id.clone() }),
                        Err(e) if e.is_environment() => {
                            return Err(RunnerError::Environment {
                                id: run_id.clone(),
                                message: e.message,
                            });
                        }
                        Err(TaskError { message: e, .. }) => {
                            on_event(&RunEvent::Failed {
                                id: run_id.clone(),
                                error: e.clone(),
                                status: Status::Failed,
                            });
                            out.failed.push((i, e));
                            out.runs[i] = None;
                        }
                    }
                }
            }
            TrainerKind::DelayRm => {
                let pool = self.pool()?;
                let mut ids = Vec::with_capacity(run_ids.len());
                for run_id in run_ids {
                    let run = self.store.run(run_id)?;
                    let tags = run.tags()?;
                    ids.push(tags.get(TM_ID).cloned().ok_or_else(|| {
                        RunnerError::Invalid(format!(
                            "run {run_id} has no `{TM_ID}` tag: it was not trained through a pool"
                        ))
                    })?);
                }
                let query = Self::ids_query(&ids);
                let opts = RunOptions {
                    query: query.clone(),
                    before_status: Status::PartDone,
                    after_status: Status::Done,
                    experiment: Some(self.experiment.clone()),
                    ..self.run.clone()
                };
                run_task(pool, &self.recorded(Phase::End), &opts, stop, on_event)?;
                self.wait_until_none(
                    &query,
                    &[Status::Waiting, Status::Running, Status::PartDone],
                    stop,
                )?;
                out = self.collect_runs(&ids, false)?;
            }
        }
        for run_id in out.runs.iter().flatten() {
            self.tag(run_id, &[(STATUS_KEY, STATUS_END)])?;
        }
        Ok(out)
    }

    /// Qlib's `worker()`: drains the pool (part_done tasks for DelayTrainerRM) until none is left.
    pub fn worker(
        &self,
        stop: &StopFlag,
        on_event: &(dyn Fn(&RunEvent) + Sync),
    ) -> Result<RunSummary, RunnerError> {
        let pool = self.pool()?;
        let (phase, before) = match self.kind {
            TrainerKind::DelayRm => (Phase::End, Status::PartDone),
            _ => (Phase::Full, Status::Waiting),
        };
        let opts = RunOptions {
            before_status: before,
            after_status: Status::Done,
            experiment: Some(self.experiment.clone()),
            ..self.run.clone()
        };
        let func: &dyn TaskFunc = &self.recorded(phase);
        run_task(pool, func, &opts, stop, on_event)
    }
}
