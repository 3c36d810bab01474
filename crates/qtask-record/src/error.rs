//! Typed errors of the runs store.

use std::path::PathBuf;

/// Everything that can go wrong while reading or writing experiments and runs.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// A file or directory of the file store could not be read or written.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done (`cannot read`, `cannot write`, ...).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A `meta.yaml` (or another store file) exists but cannot be understood.
    #[error("{path}: corrupt {what}: {message}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What the file should hold (`experiment metadata`, `run metadata`, `metric file`).
        what: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// The tracking URI is not one qtask can use.
    #[error("tracking URI `{uri}`: {message}")]
    BadUri {
        /// The URI as given.
        uri: String,
        /// Why it is refused.
        message: String,
    },
    /// No experiment has this name (or id).
    #[error("no experiment `{0}`")]
    NoExperiment(String),
    /// The experiment exists but was deleted (MLflow keeps its name reserved).
    #[error(
        "experiment `{name}` (id {id}) is deleted; MLflow keeps the name reserved until it is purged{hint}"
    )]
    ExperimentDeleted {
        /// Its name.
        name: String,
        /// Its id.
        id: String,
        /// How to purge or restore it, when known.
        hint: String,
    },
    /// No run has this id.
    #[error("no run `{0}`")]
    NoRun(String),
    /// A run has no artifact at this path.
    #[error("run {run_id} has no artifact `{path}`")]
    NoArtifact {
        /// The run.
        run_id: String,
        /// The artifact path, relative to the run's artifact root.
        path: String,
    },
    /// A param, metric or tag key, an artifact path or a value that MLflow would reject.
    #[error("{0}")]
    Invalid(String),
    /// A param was logged again with a different value (MLflow forbids changing params).
    #[error(
        "param `{key}` of run {run_id} is already `{old}`; changing it to `{new}` is not allowed"
    )]
    ParamChanged {
        /// The run.
        run_id: String,
        /// The param key.
        key: String,
        /// The stored value.
        old: String,
        /// The refused value.
        new: String,
    },
    /// The tracking server could not be reached at all.
    #[error("cannot reach MLflow tracking server at {url}: {message}")]
    Unreachable {
        /// The request URL.
        url: String,
        /// What the HTTP client said.
        message: String,
    },
    /// The tracking server answered with an error.
    #[error("MLflow tracking server {url}: HTTP {status} {code}: {message}")]
    Server {
        /// The request URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// MLflow's `error_code` (empty when the body was not MLflow's JSON error).
        code: String,
        /// MLflow's `message`, or the start of the body.
        message: String,
    },
    /// The tracking server answered with something that is not the expected JSON.
    #[error("MLflow tracking server {url}: unexpected answer: {message}")]
    Protocol {
        /// The request URL.
        url: String,
        /// What was wrong.
        message: String,
    },
    /// An artifact could not be encoded or decoded as JSON.
    #[error("artifact `{path}`: {source}")]
    Json {
        /// The artifact path.
        path: String,
        /// The serde error.
        source: serde_json::Error,
    },
}

/// Result with [`RecordError`].
pub type Result<T, E = RecordError> = std::result::Result<T, E>;

impl RecordError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        RecordError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
