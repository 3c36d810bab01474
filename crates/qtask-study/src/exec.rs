//! What does the work of each task: a built-in task function (by default `task_train`, the
//! quant workflow) or an external command.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use qtask_model::{TASK_TRAIN, builtin_registry};
use qtask_runner::{Executor, ExternalCommand};

use crate::error::Result;

/// How each task is executed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExecSpec {
    /// Run this command for each task (task JSON on stdin, JSON result on stdout).
    pub command: Option<String>,
    /// Run this built-in task function (default `task_train`).
    pub func: Option<String>,
    /// Kill a task's command (and fail the attempt) after this long.
    pub task_timeout: Option<Duration>,
    /// Qlib data folder of `task_train` (`None`: `QTASK_PROVIDER_URI`, then Qlib's default).
    pub provider_uri: Option<PathBuf>,
}

impl ExecSpec {
    /// The executor this spec names; an unknown function or a command that does not parse
    /// is an error.
    pub fn executor(&self) -> Result<Arc<dyn Executor>> {
        if let Some(cmd) = &self.command {
            return Ok(Arc::new(
                ExternalCommand::parse(cmd)?.with_timeout(self.task_timeout),
            ));
        }
        let name = self.func.as_deref().unwrap_or(TASK_TRAIN);
        Ok(builtin_registry(self.provider_uri.as_deref()).get(name)?)
    }
}
