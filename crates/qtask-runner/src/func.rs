//! Task functions: what a worker calls with a task's definition (or partial result).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::Value;

use crate::error::TaskError;

/// What a task function knows about the task it runs.
#[derive(Debug, Clone)]
pub struct TaskContext {
    /// The task id in its pool.
    pub task_id: String,
    /// The pool name.
    pub pool: String,
    /// Which attempt this is (1 for the first).
    pub attempt: u32,
    /// The experiment runs should be recorded in, if any.
    pub experiment: Option<String>,
    /// The runs store's URI, when the task is recorded in one.
    pub tracking_uri: Option<String>,
    /// Raised when the work should be abandoned (stop requested, or the lease was lost).
    pub cancel: Arc<AtomicBool>,
}

impl TaskContext {
    /// Whether the work should be abandoned; long functions check it between steps.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.load(Ordering::SeqCst)
    }
}

/// A task function: `def` (or `res` for part_done tasks) in, result out.
pub trait TaskFunc: Send + Sync {
    /// Runs one attempt.
    fn call(&self, ctx: &TaskContext, param: &Value) -> Result<Value, TaskError>;
}

impl<F> TaskFunc for F
where
    F: Fn(&TaskContext, &Value) -> Result<Value, TaskError> + Send + Sync,
{
    fn call(&self, ctx: &TaskContext, param: &Value) -> Result<Value, TaskError> {
        self(ctx, param)
    }
}
