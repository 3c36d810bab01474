//! The one error type of the crate.

use std::path::PathBuf;

/// Everything that can go wrong while reading, computing or writing market data.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file or folder could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A file exists but its content is not what the layout requires.
    #[error("{path}: {msg}")]
    Format {
        /// The file concerned.
        path: PathBuf,
        /// What is wrong, with a line number when there is one.
        msg: String,
    },
    /// An expression could not be parsed or refers to something unknown.
    #[error("expression `{expr}`: {msg} at position {pos}")]
    Parse {
        /// The expression text.
        expr: String,
        /// 0-based character position of the problem.
        pos: usize,
        /// What is wrong.
        msg: String,
    },
    /// A request that cannot be served (unknown market, empty range, bad config...).
    #[error("{0}")]
    Invalid(String),
    /// A name that would become a file or folder name breaks qtask's one rule for them
    /// ([`qtask_core::name::check_name`]).
    #[error(transparent)]
    Name(#[from] qtask_core::name::NameError),
}

impl DataError {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DataError::Io {
            path: path.into(),
            source,
        }
    }

    /// A format error in `path`.
    pub fn format(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        DataError::Format {
            path: path.into(),
            msg: msg.into(),
        }
    }
}

/// Result alias of the crate.
pub type Result<T, E = DataError> = std::result::Result<T, E>;
