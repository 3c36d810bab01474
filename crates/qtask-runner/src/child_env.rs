//! The protocol between a worker and the command it runs for a task: which environment
//! variables the command gets, and what its exit status means beyond success and failure.
//!
//! Both sides use this module: [`crate::ExternalCommand`] sets the variables with
//! [`ChildEnv::apply`], and `qtask worker-task` (the child of `worker --force-release`) reads
//! them back with [`ChildEnv::from_env`]. Variables the worker has no value for are removed
//! from the child's environment, so a value inherited from the worker's own environment (say
//! an `MLFLOW_RUN_ID` of an outer run) never reaches a task by accident.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use crate::func::TaskContext;

/// The task's id in its pool.
pub const TASK_ID: &str = "QTASK_TASK_ID";
/// The pool's name.
pub const POOL: &str = "QTASK_POOL";
/// Which attempt this is (1 for the first).
pub const ATTEMPT: &str = "QTASK_ATTEMPT";
/// The experiment the task's run is recorded in.
pub const EXPERIMENT: &str = "QTASK_EXPERIMENT";
/// The run the command logs into (set when the worker records a run per task).
pub const RUN_ID: &str = "QTASK_RUN_ID";
/// The same run, under the name the `mlflow` Python package reads.
pub const MLFLOW_RUN_ID: &str = "MLFLOW_RUN_ID";
/// The runs store, under the name the `mlflow` Python package reads.
pub const MLFLOW_TRACKING_URI: &str = "MLFLOW_TRACKING_URI";

/// Every variable of the protocol, in the order they are documented.
pub const ALL: [&str; 7] = [
    TASK_ID,
    POOL,
    ATTEMPT,
    EXPERIMENT,
    RUN_ID,
    MLFLOW_RUN_ID,
    MLFLOW_TRACKING_URI,
];

/// The exit status with which a command says "my environment failed, not the task" (BSD's
/// `EX_TEMPFAIL`): the worker hands the task back without counting an attempt and stops, as
/// when the command cannot be started at all. `qtask worker-task` exits with it when the runs
/// store fails; any other command may use it too (a GPU that is gone, a mount that is missing).
pub const ENVIRONMENT_EXIT: i32 = 75;

/// The values a command gets for one task attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildEnv {
    /// [`TASK_ID`].
    pub task_id: String,
    /// [`POOL`].
    pub pool: String,
    /// [`ATTEMPT`].
    pub attempt: u32,
    /// [`EXPERIMENT`], when runs are recorded in one.
    pub experiment: Option<String>,
    /// [`RUN_ID`] and [`MLFLOW_RUN_ID`], when the worker recorded a run for the attempt.
    pub run_id: Option<String>,
    /// [`MLFLOW_TRACKING_URI`], when the task is recorded in a runs store.
    pub tracking_uri: Option<String>,
}

impl ChildEnv {
    /// The values for a task attempt as the worker sees it (no run yet).
    pub fn for_task(ctx: &TaskContext) -> Self {
        ChildEnv {
            task_id: ctx.task_id.clone(),
            pool: ctx.pool.clone(),
            attempt: ctx.attempt,
            experiment: ctx.experiment.clone(),
            run_id: None,
            tracking_uri: ctx.tracking_uri.clone(),
        }
    }

    /// The same with the run the command logs into.
    pub fn with_run(mut self, run_id: &str) -> Self {
        self.run_id = Some(run_id.to_string());
        self
    }

    /// `(name, value)` of every variable that has a value.
    pub fn vars(&self) -> Vec<(&'static str, String)> {
        let mut out = vec![
            (TASK_ID, self.task_id.clone()),
            (POOL, self.pool.clone()),
            (ATTEMPT, self.attempt.to_string()),
        ];
        if let Some(e) = &self.experiment {
            out.push((EXPERIMENT, e.clone()));
        }
        if let Some(r) = &self.run_id {
            out.push((RUN_ID, r.clone()));
            out.push((MLFLOW_RUN_ID, r.clone()));
        }
        if let Some(u) = &self.tracking_uri {
            out.push((MLFLOW_TRACKING_URI, u.clone()));
        }
        out
    }

    /// Sets the variables on `cmd`, removing those without a value.
    pub fn apply(&self, cmd: &mut Command) {
        for name in ALL {
            cmd.env_remove(name);
        }
        for (name, value) in self.vars() {
            cmd.env(name, value);
        }
    }

    /// Reads the values back inside the command (`qtask worker-task`); a missing or malformed
    /// variable is an error naming it.
    pub fn from_env() -> Result<Self, String> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`ChildEnv::from_env`] over any lookup (tests, or a recorded environment).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let required = |name: &str| {
            get(name)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| format!("{name} is not set: this command is run by a qtask worker"))
        };
        let attempt = required(ATTEMPT)?;
        let attempt = attempt
            .parse()
            .map_err(|_| format!("{ATTEMPT} is `{attempt}`, not a whole number"))?;
        Ok(ChildEnv {
            task_id: required(TASK_ID)?,
            pool: required(POOL)?,
            attempt,
            experiment: get(EXPERIMENT).filter(|v| !v.is_empty()),
            run_id: get(RUN_ID).filter(|v| !v.is_empty()),
            tracking_uri: get(MLFLOW_TRACKING_URI).filter(|v| !v.is_empty()),
        })
    }

    /// A task context with these values (for running the task inside the command).
    pub fn context(&self, cancel: Arc<AtomicBool>) -> TaskContext {
        TaskContext {
            task_id: self.task_id.clone(),
            pool: self.pool.clone(),
            attempt: self.attempt,
            experiment: self.experiment.clone(),
            tracking_uri: self.tracking_uri.clone(),
            cancel,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn what_one_side_writes_the_other_reads() {
        let env = ChildEnv {
            task_id: "7".into(),
            pool: "p".into(),
            attempt: 2,
            experiment: Some("e".into()),
            run_id: Some("abc".into()),
            tracking_uri: Some("file:///tmp/mlruns".into()),
        };
        let vars: BTreeMap<&str, String> = env.vars().into_iter().collect();
        assert_eq!(vars[MLFLOW_RUN_ID], "abc");
        assert_eq!(vars[RUN_ID], "abc");
        let back = ChildEnv::from_lookup(|k| vars.get(k).cloned()).unwrap();
        assert_eq!(back, env);
    }

    #[test]
    fn missing_or_malformed_values_are_named() {
        let err = ChildEnv::from_lookup(|_| None).unwrap_err();
        assert!(err.contains(ATTEMPT), "{err}");
        let err = ChildEnv::from_lookup(|k| Some(if k == ATTEMPT { "x" } else { "1" }.into()))
            .unwrap_err();
        assert_eq!(err, "QTASK_ATTEMPT is `x`, not a whole number");
    }

    #[test]
    fn apply_removes_what_has_no_value() {
        let env = ChildEnv {
            task_id: "1".into(),
            pool: "p".into(),
            attempt: 1,
            experiment: None,
            run_id: None,
            tracking_uri: None,
        };
        let mut cmd = Command::new("env");
        env.apply(&mut cmd);
        let set: BTreeMap<_, _> = cmd
            .get_envs()
            .map(|(k, v)| (k.to_string_lossy().to_string(), v.is_some()))
            .collect();
        assert_eq!(set.get(MLFLOW_RUN_ID), Some(&false));
        assert_eq!(set.get(TASK_ID), Some(&true));
    }
}
