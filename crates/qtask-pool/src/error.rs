//! The pool's error type.

use crate::query::QueryError;

/// Everything that can go wrong in a task pool operation.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// The store URL could not be understood.
    #[error("bad store URL {url:?}: {reason}")]
    BadUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The store could not be reached or opened.
    #[error("cannot open store {url}: {reason}")]
    Connect {
        /// The store URL (password removed).
        url: String,
        /// The driver's explanation.
        reason: String,
    },
    /// A SQLite store path names a file that is not a SQLite database.
    #[error("{path} is not a SQLite database (it was left untouched)")]
    NotADatabase {
        /// The file path.
        path: String,
    },
    /// The store was written by a newer qtask whose schema this one does not know.
    #[error(
        "store {url} has schema version {found}, newer than the {supported} this qtask understands; upgrade qtask"
    )]
    SchemaTooNew {
        /// The store URL.
        url: String,
        /// The version found in the store.
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },
    /// A query could not be parsed or compiled.
    #[error(transparent)]
    Query(#[from] QueryError),
    /// A status name is not one of the known statuses.
    #[error("unknown status {0:?} (expected waiting, running, part_done, done or failed)")]
    BadStatus(String),
    /// No task has this id in the pool.
    #[error("no task with _id {id:?} in pool {pool:?}")]
    NotFound {
        /// The pool searched.
        pool: String,
        /// The id asked for.
        id: String,
    },
    /// A commit, return or heartbeat carried a lease token that is no longer current.
    #[error(
        "task {id} is no longer leased to this worker (its lease expired and it was claimed again, or it was reset); the result was not stored"
    )]
    LeaseLost {
        /// The task id.
        id: String,
    },
    /// A task definition is not acceptable.
    #[error("task {index}: {reason}")]
    BadTask {
        /// Position of the definition in the input (0-based).
        index: usize,
        /// What is wrong.
        reason: String,
    },
    /// An argument is out of range.
    #[error("{0}")]
    Invalid(String),
    /// An error from SQLite.
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// An error from PostgreSQL.
    #[error("PostgreSQL: {0}")]
    Postgres(String),
    /// An error from MongoDB.
    #[error("MongoDB: {0}")]
    Mongo(String),
    /// Stored JSON could not be decoded.
    #[error("corrupt JSON in the store: {0}")]
    Json(#[from] serde_json::Error),
}

impl From<postgres::Error> for PoolError {
    fn from(e: postgres::Error) -> Self {
        // The Display of postgres::Error is often just "db error"; the source has the detail.
        let detail = match e.as_db_error() {
            Some(db) => db.message().to_string(),
            None => {
                let mut msg = e.to_string();
                let mut src = std::error::Error::source(&e);
                while let Some(s) = src {
                    msg = format!("{msg}: {s}");
                    src = s.source();
                }
                msg
            }
        };
        PoolError::Postgres(detail)
    }
}

impl PoolError {
    /// Whether waiting may help: the server went away or is restarting, or a SQLite file is
    /// busy or locked by another process. Workers retry these with backoff.
    pub fn is_transient(&self) -> bool {
        match self {
            PoolError::Connect { .. } | PoolError::Postgres(_) | PoolError::Mongo(_) => true,
            PoolError::Sqlite(e) => matches!(
                e.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
            ),
            _ => false,
        }
    }
}

/// Result with [`PoolError`].
pub type Result<T, E = PoolError> = std::result::Result<T, E>;
