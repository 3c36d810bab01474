//! Errors of the runner: the worker's own ([`RunnerError`]) and a task attempt's
//! ([`TaskError`]), which says who is to blame ([`Blame`]).

use std::error::Error as StdError;

use qtask_pool::PoolError;
use qtask_record::RecordError;

/// Why a worker stopped with an error (a failing task is not one: it is recorded and skipped).
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    /// The pool failed (unreachable store, ...).
    #[error(transparent)]
    Pool(#[from] PoolError),
    /// The runs store failed.
    #[error("runs store: {0}")]
    Record(#[from] RecordError),
    /// The options make no sense (e.g. a `before_status` run_task cannot take).
    #[error("{0}")]
    Invalid(String),
    /// Installing signal handlers failed.
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
    /// The worker's environment failed while running a task (program not found, runs store
    /// unreadable or unwritable, disk full): the task was handed back without counting an
    /// attempt and the worker stopped.
    #[error("worker stopped: {message} (task {id} handed back to the pool, attempt not counted)")]
    Environment {
        /// The task that was in hand.
        id: String,
        /// What failed.
        message: String,
    },
}

/// Who is to blame for a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blame {
    /// The task itself (its command exited non-zero, its code raised, its data is invalid):
    /// the attempt counts and the error is kept on the task.
    Task,
    /// The worker's environment (program not found, runs store unreadable or unwritable, disk
    /// full): the task is handed back without counting an attempt and the worker stops, so a
    /// broken worker can never drain a pool into `failed`.
    Environment,
}

/// Why one attempt of a task failed, and who is to blame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TaskError {
    /// The error text (kept on the task when the task is to blame).
    pub message: String,
    /// Whether the task or the worker's environment failed.
    pub blame: Blame,
}

impl TaskError {
    /// A failure of the task itself (counts an attempt).
    pub fn new(msg: impl Into<String>) -> Self {
        Self {
            message: msg.into(),
            blame: Blame::Task,
        }
    }

    /// A failure of the worker's environment (hands the task back, stops the worker).
    pub fn environment(msg: impl Into<String>) -> Self {
        Self {
            message: msg.into(),
            blame: Blame::Environment,
        }
    }

    /// Whether the worker's environment is to blame.
    pub fn is_environment(&self) -> bool {
        self.blame == Blame::Environment
    }

    /// This error with `context: ` in front of its message, blame kept.
    pub fn context(self, context: &str) -> Self {
        Self {
            message: format!("{context}: {}", self.message),
            ..self
        }
    }

    /// Classifies any error by what its source chain holds: a runs store failure that is not
    /// about the task's own data (see [`record_blame`]), or an I/O error that no task can
    /// cause (no space left, quota exceeded, read-only file system) blames the environment;
    /// everything else blames the task. The message is the error's own text.
    pub fn from_error(e: &(dyn StdError + 'static)) -> Self {
        let blame = blame_of(e);
        Self {
            message: e.to_string(),
            blame,
        }
    }
}

impl From<RecordError> for TaskError {
    fn from(e: RecordError) -> Self {
        Self {
            blame: record_blame(&e),
            message: format!("runs store: {e}"),
        }
    }
}

/// Who is to blame for a runs store error met while recording a task: the store (missing,
/// unreadable, unwritable, damaged, unreachable, failing on the server side) is the
/// environment; what MLflow refuses about the task's own data (a key it rejects, a param
/// changed, a run or artifact the task names that does not exist, a result that is not
/// JSON) is the task.
pub fn record_blame(e: &RecordError) -> Blame {
    match e {
        RecordError::Io { .. }
        | RecordError::Corrupt { .. }
        | RecordError::BadUri { .. }
        | RecordError::NoExperiment(_)
        | RecordError::ExperimentDeleted { .. }
        | RecordError::Unreachable { .. }
        | RecordError::Protocol { .. } => Blame::Environment,
        RecordError::Server { status, .. } if *status >= 500 || *status == 429 => {
            Blame::Environment
        }
        _ => Blame::Task,
    }
}

/// I/O errors that say the machine, not the task, is in trouble.
fn io_blame(e: &std::io::Error) -> Blame {
    match e.raw_os_error() {
        Some(libc::ENOSPC | libc::EDQUOT | libc::EROFS) => Blame::Environment,
        _ => Blame::Task,
    }
}

fn blame_of(e: &(dyn StdError + 'static)) -> Blame {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<RecordError>() {
            return record_blame(r);
        }
        if let Some(t) = err.downcast_ref::<TaskError>() {
            return t.blame;
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && io_blame(io) == Blame::Environment
        {
            return Blame::Environment;
        }
        cur = err.source();
    }
    Blame::Task
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    enum Outer {
        #[error("runs store: {0}")]
        Record(#[from] RecordError),
        #[error("cache: {0}")]
        Io(#[from] std::io::Error),
        #[error("{0}")]
        Other(String),
    }

    #[test]
    fn blame_follows_the_source_chain() {
        let disk_full = Outer::Io(std::io::Error::from_raw_os_error(libc::ENOSPC));
        assert!(TaskError::from_error(&disk_full).is_environment());
        let not_found = Outer::Io(std::io::Error::from_raw_os_error(libc::ENOENT));
        assert!(!TaskError::from_error(&not_found).is_environment());
        let store = Outer::Record(RecordError::Io {
            action: "cannot write",
            path: "/x".into(),
            source: std::io::Error::from_raw_os_error(libc::EACCES),
        });
        assert!(TaskError::from_error(&store).is_environment());
        let bad_key = Outer::Record(RecordError::Invalid("param key `a*b`".into()));
        let e = TaskError::from_error(&bad_key);
        assert!(!e.is_environment());
        assert_eq!(e.message, "runs store: param key `a*b`");
        assert!(!TaskError::from_error(&Outer::Other("boom".into())).is_environment());
    }

    #[test]
    fn server_errors_blame_the_environment_client_errors_the_task() {
        let server = |status| RecordError::Server {
            url: "http://x".into(),
            status,
            code: String::new(),
            message: "m".into(),
        };
        assert_eq!(record_blame(&server(503)), Blame::Environment);
        assert_eq!(record_blame(&server(400)), Blame::Task);
    }
}
