//! Recorded training: every task becomes an experiment run (Qlib's `task_train`,
//! `begin_task_train`, `end_task_train`), whatever does the work.

use std::collections::BTreeMap;
use std::sync::Arc;

use qtask_record::{Experiment, RecordStore, Run, RunStatus};
use serde_json::{Value, json};

use crate::child_env::ChildEnv;
use crate::error::TaskError;
use crate::external::ExternalCommand;
use crate::func::{TaskContext, TaskFunc};

/// The tag Qlib's trainers use for the training phase.
pub const STATUS_KEY: &str = "train_status";
/// `train_status` after the run was recorded (and, for non-delay trainers, fitted).
pub const STATUS_BEGIN: &str = "begin_task_train";
/// `train_status` once the trainer's `end_train` ran.
pub const STATUS_END: &str = "end_task_train";
/// The tag holding the id of the process that recorded a run (with the `hostname` tag).
pub const PID_TAG: &str = "qtask.pid";
pub use qtask_record::names::{TASK_ARTIFACT, TM_ID};

/// The work of one task inside its run: fit a model and save what it produced, or anything else.
pub trait Executor: Send + Sync {
    /// Does the work of `task`, logging into `run`; returns a JSON result.
    fn execute(&self, task: &Value, run: &Run, ctx: &TaskContext) -> Result<Value, TaskError>;
}

/// Built-in executors by name (`echo`; the quant workflow registers `task_train`).
#[derive(Clone, Default)]
pub struct ExecRegistry {
    map: BTreeMap<String, Arc<dyn Executor>>,
}

impl ExecRegistry {
    /// A registry holding the built-in `echo`.
    pub fn with_builtins() -> Self {
        let mut r = Self::default();
        r.register("echo", Arc::new(Echo));
        r
    }

    /// Registers (or replaces) an executor.
    pub fn register(&mut self, name: &str, exec: Arc<dyn Executor>) {
        self.map.insert(name.to_string(), exec);
    }

    /// The executor called `name`.
    pub fn get(&self, name: &str) -> Result<Arc<dyn Executor>, TaskError> {
        self.map.get(name).cloned().ok_or_else(|| {
            TaskError::new(format!(
                "unknown task function `{name}` (built in: {})",
                self.map.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        })
    }
}

impl std::fmt::Debug for ExecRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.map.keys()).finish()
    }
}

/// The built-in `echo`: logs every numeric leaf of the task as a metric and returns the task,
/// so trainers, workers and the runs store can be exercised without models.
#[derive(Debug, Clone, Copy)]
pub struct Echo;

impl Executor for Echo {
    fn execute(&self, task: &Value, run: &Run, _: &TaskContext) -> Result<Value, TaskError> {
        log_numeric_leaves(run, task)?;
        Ok(task.clone())
    }
}

/// The most metrics logged from one value by [`log_numeric_leaves`]: a result is not a
/// metrics table, and logging every number of a large one would take minutes and a file each.
pub const MAX_LOGGED_METRICS: usize = 1000;

/// The tag recording how many numeric leaves were not logged because of
/// [`MAX_LOGGED_METRICS`].
pub const METRICS_SKIPPED_TAG: &str = "qtask.metrics_skipped";

/// Logs the numeric leaves (`a.b.0` paths) of `value` as metrics at step 0: the first
/// [`MAX_LOGGED_METRICS`] in document order; how many more there were is tagged
/// [`METRICS_SKIPPED_TAG`]. The walk is iterative and counts without collecting, so any
/// value is walked in bounded memory and time proportional to its size.
pub fn log_numeric_leaves(run: &Run, value: &Value) -> Result<(), TaskError> {
    let mut metrics = Vec::new();
    let mut skipped = 0usize;
    // (path, value); children are pushed in reverse so they pop in document order.
    let mut stack: Vec<(String, &Value)> = vec![(String::new(), value)];
    while let Some((path, v)) = stack.pop() {
        let child = |k: &str| {
            if path.is_empty() {
                k.to_string()
            } else {
                format!("{path}.{k}")
            }
        };
        match v {
            Value::Number(n) => {
                if metrics.len() < MAX_LOGGED_METRICS {
                    metrics.push((path, n.as_f64().unwrap_or(f64::NAN)));
                } else {
                    skipped += 1;
                }
            }
            Value::Object(m) => stack.extend(m.iter().rev().map(|(k, c)| (child(k), c))),
            Value::Array(a) => stack.extend(
                a.iter()
                    .enumerate()
                    .rev()
                    .map(|(i, c)| (child(&i.to_string()), c)),
            ),
            _ => {}
        }
    }
    if !metrics.is_empty() {
        run.log_metrics(&metrics, 0)?;
    }
    if skipped > 0 {
        run.set_tag(METRICS_SKIPPED_TAG, &skipped.to_string())?;
    }
    Ok(())
}

/// An external command as an executor: it gets the task on stdin and, in its environment, the
/// run it logs into (`QTASK_RUN_ID`, and `MLFLOW_RUN_ID`/`MLFLOW_TRACKING_URI` so a Python script
/// using mlflow logs into the same run). Its JSON result is saved as `result.json` and its
/// numeric leaves are logged as metrics.
impl Executor for ExternalCommand {
    fn execute(&self, task: &Value, run: &Run, ctx: &TaskContext) -> Result<Value, TaskError> {
        let env = ChildEnv::for_task(ctx).with_run(run.id());
        let res = self.run(&env, task, &ctx.cancel)?;
        run.save_json("result.json", &res)?;
        log_numeric_leaves(run, &res)?;
        Ok(res)
    }
}

/// Which part of the training a recorded task performs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Record and fit (Qlib's `task_train`).
    Full,
    /// Record only (Qlib's `begin_task_train`, delay trainers).
    Begin,
    /// Fit a run recorded earlier (Qlib's `end_task_train`); the parameter is the begin result.
    End,
}

/// The most params logged from one task by [`begin_task_train`]: each is a file in the runs
/// store, and a task holding a large table would otherwise take minutes to record. The whole
/// task is always saved as `task.json`.
pub const MAX_LOGGED_PARAMS: usize = 1000;

/// The tag recording how many flattened task entries were not logged as params because of
/// [`MAX_LOGGED_PARAMS`].
pub const PARAMS_SKIPPED_TAG: &str = "qtask.params_skipped";

/// Logs the flattened task as params (Qlib's `flatten_dict`), the first
/// [`MAX_LOGGED_PARAMS`] in document order; how many more there were is tagged
/// [`PARAMS_SKIPPED_TAG`].
fn log_task_params(run: &Run, task: &Value) -> qtask_record::Result<()> {
    if !task.is_object() {
        // log_params refuses it with its own message.
        return run.log_params(task);
    }
    let flat = qtask_core::path::flatten(task);
    let skipped = flat.len().saturating_sub(MAX_LOGGED_PARAMS);
    let params: Vec<(String, String)> = flat
        .into_iter()
        .take(MAX_LOGGED_PARAMS)
        .map(|(k, v)| (k, qtask_record::validate::python_str(&v)))
        .collect();
    run.log_param_strings(&params)?;
    if skipped > 0 {
        run.set_tag(PARAMS_SKIPPED_TAG, &skipped.to_string())?;
    }
    Ok(())
}

/// Qlib's `begin_task_train`: starts a run, logs the flattened task as params, saves the task as
/// `task.json`, tags the hostname (and the process id as `qtask.pid`).
pub fn begin_task_train(exp: &Experiment, task: &Value) -> Result<Run, TaskError> {
    // The owner tags come with the run: a run whose process died says which process that
    // was, so the next one can tell a crashed attempt from a live one.
    let owner = [
        (
            "hostname".to_string(),
            gethostname::gethostname().to_string_lossy().to_string(),
        ),
        // Which process did the work: distinguishes `--force-release` children.
        (PID_TAG.to_string(), std::process::id().to_string()),
    ];
    let run = exp.start_run_tagged(None, &owner)?;
    let setup = || -> qtask_record::Result<()> {
        log_task_params(&run, task)?;
        run.save_json(TASK_ARTIFACT, task)?;
        Ok(())
    };
    if let Err(e) = setup() {
        let mut run = run;
        let _ = run.end(RunStatus::Failed);
        return Err(e.into());
    }
    Ok(run)
}

/// Qlib's `end_task_train`: runs the executor on a recorded run and ends it FINISHED (FAILED with
/// the error as the `error` tag when the work fails).
pub fn end_task_train(
    mut run: Run,
    exec: &dyn Executor,
    ctx: &TaskContext,
) -> Result<Value, TaskError> {
    let task: Value = run.load_json(TASK_ARTIFACT)?;
    match exec.execute(&task, &run, ctx) {
        Ok(res) => {
            run.end(RunStatus::Finished)?;
            Ok(res)
        }
        Err(e) => {
            let _ = run.set_tag("error", &truncate(&e.message, 5000));
            // Not the task's failure: the run did not fail, it was interrupted.
            let status = if ctx.is_cancelled() || e.is_environment() {
                RunStatus::Killed
            } else {
                RunStatus::Failed
            };
            let _ = run.end(status);
            Err(e)
        }
    }
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// What a recorded task leaves in the pool as its result: where its run is.
pub fn run_ref(run: &Run, exp: &Experiment) -> Value {
    json!({"run_id": run.id(), "experiment": exp.name(), "experiment_id": exp.id()})
}

/// A task function for workers and trainers: records a run per task around an executor.
#[derive(Clone)]
pub struct RecordedTask {
    /// Where runs go.
    pub store: RecordStore,
    /// The experiment name.
    pub experiment: String,
    /// What does the work.
    pub exec: Arc<dyn Executor>,
    /// Which phase this performs.
    pub phase: Phase,
}

impl TaskFunc for RecordedTask {
    fn call(&self, ctx: &TaskContext, param: &Value) -> Result<Value, TaskError> {
        let exp = self.store.experiment(&self.experiment)?;
        let ctx = &TaskContext {
            tracking_uri: Some(self.store.uri()),
            experiment: Some(self.experiment.clone()),
            ..ctx.clone()
        };
        match self.phase {
            Phase::Full | Phase::Begin => {
                let run = begin_task_train(&exp, param)?;
                run.set_tag(TM_ID, &ctx.task_id)?;
                let reference = run_ref(&run, &exp);
                if self.phase == Phase::Full {
                    end_task_train(run, self.exec.as_ref(), ctx)?;
                }
                Ok(reference)
            }
            Phase::End => {
                let run_id = param.get("run_id").and_then(Value::as_str).ok_or_else(|| {
                    TaskError::new(format!(
                        "a part_done task's result must name its run (`run_id`), got {param}"
                    ))
                })?;
                let run = self.store.resume_run(run_id)?;
                end_task_train(run, self.exec.as_ref(), ctx)?;
                Ok(param.clone())
            }
        }
    }
}
