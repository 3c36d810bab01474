//! Errors of the runner: the worker's own ([`RunnerError`]) and a task function's ([`TaskError`]).

use qtask_pool::PoolError;

/// Why a worker stopped with an error (a failing task is not one: it is recorded and skipped).
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    /// The pool failed (unreachable store, ...).
    #[error(transparent)]
    Pool(#[from] PoolError),
    /// The runs store failed.
    #[error("runs store: {0}")]
    Record(#[from] qtask_record::RecordError),
    /// The options make no sense (e.g. a `before_status` run_task cannot take).
    #[error("{0}")]
    Invalid(String),
    /// Installing signal handlers failed.
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
}

/// Why one attempt of a task failed; the text is kept on the task.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TaskError(pub String);

impl TaskError {
    /// Builds an error from anything printable.
    pub fn new(msg: impl Into<String>) -> Self {
        Self(msg.into())
    }
}
