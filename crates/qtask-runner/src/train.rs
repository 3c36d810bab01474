//! Recorded training: every task becomes an experiment run (Qlib's `task_train`,
//! `begin_task_train`, `end_task_train`), whatever does the work.

use std::collections::BTreeMap;
use std::sync::Arc;

use qtask_record::{Experiment, RecordStore, Run, RunStatus};
use serde_json::{Value, json};

use crate::error::TaskError;
use crate::external::ExternalCommand;
use crate::func::{TaskContext, TaskFunc};

/// The tag Qlib's trainers use for the training phase.
pub const STATUS_KEY: &str = "train_status";
/// `train_status` after the run was recorded (and, for non-delay trainers, fitted).
pub const STATUS_BEGIN: &str = "begin_task_train";
/// `train_status` once the trainer's `end_train` ran.
pub const STATUS_END: &str = "end_task_train";
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
            TaskError(format!(
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

/// Logs each numeric leaf (`a.b.0` paths) of `value` as a metric at step 0.
pub fn log_numeric_leaves(run: &Run, value: &Value) -> Result<(), TaskError> {
    fn walk(prefix: &str, v: &Value, out: &mut Vec<(String, f64)>) {
        let key = |k: &str| {
            if prefix.is_empty() {
                k.to_string()
            } else {
                format!("{prefix}.{k}")
            }
        };
        match v {
            Value::Number(n) => out.push((prefix.to_string(), n.as_f64().unwrap_or(f64::NAN))),
            Value::Object(m) => m.iter().for_each(|(k, c)| walk(&key(k), c, out)),
            Value::Array(a) => a
                .iter()
                .enumerate()
                .for_each(|(i, c)| walk(&key(&i.to_string()), c, out)),
            _ => {}
        }
    }
    let mut metrics = Vec::new();
    walk("", value, &mut metrics);
    if metrics.is_empty() {
        return Ok(());
    }
    run.log_metrics(&metrics, 0).map_err(record_err)
}

fn record_err(e: qtask_record::RecordError) -> TaskError {
    TaskError(format!("runs store: {e}"))
}

/// An external command as an executor: it gets the task on stdin and, in its environment, the
/// run it logs into (`QTASK_RUN_ID`, and `MLFLOW_RUN_ID`/`MLFLOW_TRACKING_URI` so a Python script
/// using mlflow logs into the same run). Its JSON result is saved as `result.json` and its
/// numeric leaves are logged as metrics.
impl Executor for ExternalCommand {
    fn execute(&self, task: &Value, run: &Run, ctx: &TaskContext) -> Result<Value, TaskError> {
        let env = vec![
            ("QTASK_RUN_ID".to_string(), run.id().to_string()),
            ("MLFLOW_RUN_ID".to_string(), run.id().to_string()),
        ];
        let mut env = env;
        if let Some(uri) = &ctx.tracking_uri {
            env.push(("MLFLOW_TRACKING_URI".to_string(), uri.clone()));
        }
        let res = self.call_with_env(ctx, task, &env)?;
        run.save_json("result.json", &res).map_err(record_err)?;
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

/// Qlib's `begin_task_train`: starts a run, logs the flattened task as params, saves the task as
/// `task.json`, tags the hostname (and the process id as `qtask.pid`).
pub fn begin_task_train(exp: &Experiment, task: &Value) -> Result<Run, TaskError> {
    let run = exp.start_run(None).map_err(record_err)?;
    let setup = || -> qtask_record::Result<()> {
        run.log_params(task)?;
        run.save_json(TASK_ARTIFACT, task)?;
        run.set_tags(&[
            (
                "hostname".to_string(),
                gethostname::gethostname().to_string_lossy().to_string(),
            ),
            // Which process did the work: distinguishes `--force-release` children.
            ("qtask.pid".to_string(), std::process::id().to_string()),
        ])?;
        Ok(())
    };
    if let Err(e) = setup() {
        let mut run = run;
        let _ = run.end(RunStatus::Failed);
        return Err(record_err(e));
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
    let task: Value = run.load_json(TASK_ARTIFACT).map_err(record_err)?;
    match exec.execute(&task, &run, ctx) {
        Ok(res) => {
            run.end(RunStatus::Finished).map_err(record_err)?;
            Ok(res)
        }
        Err(e) => {
            let _ = run.set_tag("error", &truncate(&e.0, 5000));
            let status = if ctx.is_cancelled() {
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
        let exp = self
            .store
            .experiment(&self.experiment)
            .map_err(record_err)?;
        let ctx = &TaskContext {
            tracking_uri: Some(self.store.uri()),
            experiment: Some(self.experiment.clone()),
            ..ctx.clone()
        };
        match self.phase {
            Phase::Full | Phase::Begin => {
                let run = begin_task_train(&exp, param)?;
                run.set_tag(TM_ID, &ctx.task_id).map_err(record_err)?;
                let reference = run_ref(&run, &exp);
                if self.phase == Phase::Full {
                    end_task_train(run, self.exec.as_ref(), ctx)?;
                }
                Ok(reference)
            }
            Phase::End => {
                let run_id = param.get("run_id").and_then(Value::as_str).ok_or_else(|| {
                    TaskError(format!(
                        "a part_done task's result must name its run (`run_id`), got {param}"
                    ))
                })?;
                let run = self.store.resume_run(run_id).map_err(record_err)?;
                end_task_train(run, self.exec.as_ref(), ctx)?;
                Ok(param.clone())
            }
        }
    }
}
