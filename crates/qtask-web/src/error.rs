//! Errors: [`WebError`] for starting the server, [`Fail`] for one request.

use axum::http::StatusCode;
use qtask_pool::PoolError;
use qtask_record::RecordError;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// The settings are not acceptable.
    #[error("{0}")]
    Config(String),
    /// The store URL is malformed.
    #[error(transparent)]
    Store(#[from] PoolError),
    /// The address could not be bound, or the runtime not started.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// The system's reason.
        source: std::io::Error,
    },
}

/// Why one request failed; pages render it as HTML, the API as JSON.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Fail {
    /// A pool, task, experiment, run or artifact that does not exist (404).
    NotFound(String),
    /// A store that cannot be reached or does not answer (503).
    Unreachable(String),
    /// A malformed request (400).
    BadRequest(String),
    /// The action does not apply to the task as it is (409).
    Conflict(String),
    /// No token, or a wrong one (401).
    Unauthorized,
    /// Refused: read-only mode, another origin, an unexpected host (403).
    Forbidden(String),
    /// Anything else (500).
    Internal(String),
}

impl Fail {
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Fail::NotFound(_) => StatusCode::NOT_FOUND,
            Fail::Unreachable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Fail::BadRequest(_) => StatusCode::BAD_REQUEST,
            Fail::Conflict(_) => StatusCode::CONFLICT,
            Fail::Unauthorized => StatusCode::UNAUTHORIZED,
            Fail::Forbidden(_) => StatusCode::FORBIDDEN,
            Fail::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub(crate) fn message(&self) -> String {
        match self {
            Fail::NotFound(m)
            | Fail::Unreachable(m)
            | Fail::BadRequest(m)
            | Fail::Conflict(m)
            | Fail::Forbidden(m)
            | Fail::Internal(m) => m.clone(),
            Fail::Unauthorized => {
                "this action needs the dashboard's token (Authorization: Bearer TOKEN)".into()
            }
        }
    }

    /// The task store failed: unreachable unless the error is about the request.
    pub(crate) fn pool(e: PoolError) -> Fail {
        match e {
            PoolError::NotFound { .. } => Fail::NotFound(e.to_string()),
            PoolError::Query(_)
            | PoolError::BadStatus(_)
            | PoolError::BadTask { .. }
            | PoolError::Invalid(_) => Fail::BadRequest(e.to_string()),
            PoolError::LeaseLost { .. } => Fail::Conflict(e.to_string()),
            other => Fail::Unreachable(format!("the task store is unreachable: {other}")),
        }
    }

    /// The runs store failed.
    pub(crate) fn record(e: RecordError) -> Fail {
        match e {
            RecordError::NoExperiment(_)
            | RecordError::NoRun(_)
            | RecordError::NoArtifact { .. }
            | RecordError::ExperimentDeleted { .. }
            | RecordError::Invalid(_) => Fail::NotFound(e.to_string()),
            other => Fail::Unreachable(format!("the runs store is unreachable: {other}")),
        }
    }
}
