//! Typed errors of the study: each crate's own error, plus what the study itself checks.

use std::path::PathBuf;

/// Everything that can stop a study.
#[derive(Debug, thiserror::Error)]
pub enum StudyError {
    /// Reading the template, the calendar, or generating tasks.
    #[error(transparent)]
    Core(#[from] qtask_core::CoreError),
    /// The task pool.
    #[error(transparent)]
    Pool(#[from] qtask_pool::PoolError),
    /// Training (the runner and trainers).
    #[error(transparent)]
    Runner(#[from] qtask_runner::RunnerError),
    /// A task function could not be set up.
    #[error(transparent)]
    Task(#[from] qtask_runner::TaskError),
    /// The runs store.
    #[error(transparent)]
    Record(#[from] qtask_record::RecordError),
    /// Collecting runs back.
    #[error(transparent)]
    Collect(#[from] qtask_collect::CollectError),
    /// A prediction table.
    #[error(transparent)]
    Table(#[from] qtask_table::TableError),
    /// Market data.
    #[error(transparent)]
    Data(#[from] qtask_data::DataError),
    /// Signal analysis and records.
    #[error(transparent)]
    Model(#[from] qtask_model::ModelError),
    /// The backtest of the ensembled prediction.
    #[error(transparent)]
    Backtest(#[from] qtask_backtest::BacktestError),
    /// A file or folder could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Some tasks failed: how many, of how many, and the first failure.
    #[error("{failed} of {total} tasks failed; task {first}: {error}")]
    TasksFailed {
        /// Tasks that failed.
        failed: usize,
        /// Tasks trained.
        total: usize,
        /// Position of the first failed task.
        first: usize,
        /// Its error.
        error: String,
    },
    /// The study's inputs do not make a study (no tasks, no prediction, an unknown run...).
    #[error("{0}")]
    Invalid(String),
}

/// Result alias of the crate.
pub type Result<T, E = StudyError> = std::result::Result<T, E>;

impl StudyError {
    /// A write error on `path`.
    pub fn write(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StudyError::Write {
            path: path.into(),
            source,
        }
    }
}
