//! The crate's error type.

use std::path::PathBuf;

/// What can go wrong in a backtest.
#[derive(Debug, thiserror::Error)]
pub enum BacktestError {
    /// A configuration value is missing, unknown or out of range.
    #[error("{0}")]
    Config(String),
    /// The prediction or the market data cannot serve the backtest.
    #[error("{0}")]
    Input(String),
    /// Market data could not be read.
    #[error(transparent)]
    Data(#[from] qtask_data::DataError),
    /// A table could not be read or written.
    #[error(transparent)]
    Table(#[from] qtask_table::TableError),
    /// A file or folder could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl BacktestError {
    /// Wraps an I/O error with its path.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        BacktestError::Io {
            path: path.into(),
            source,
        }
    }
}

/// Result alias of the crate.
pub type Result<T, E = BacktestError> = std::result::Result<T, E>;
