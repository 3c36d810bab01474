//! Typed errors of the core crate.

use std::path::PathBuf;

/// Everything that can go wrong while reading templates, calendars or generating tasks.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// A file could not be read.
    #[error("cannot read {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A YAML or JSON document could not be parsed.
    #[error("{path}:{line}:{column}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line (0 when unknown).
        line: u64,
        /// 1-based column (0 when unknown).
        column: u64,
        /// What the parser said.
        message: String,
    },
    /// The document parsed but does not have the shape a task template needs.
    #[error("{0}")]
    Template(String),
    /// A dotted path names nothing in the task.
    #[error("task has no `{path}`{context}")]
    MissingPath {
        /// The dotted path.
        path: String,
        /// Extra context (e.g. " (needed by the rolling generator)").
        context: String,
    },
    /// A calendar file is missing, empty or malformed.
    #[error("calendar {path}: {message}")]
    Calendar {
        /// The calendar file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A value that should be a date is not one.
    #[error("`{value}` is not a date (expected YYYY-MM-DD){context}")]
    BadDate {
        /// The offending text.
        value: String,
        /// Where it was found.
        context: String,
    },
    /// A date falls outside the trading calendar where that is not allowed.
    #[error("{0}")]
    OutOfCalendar(String),
    /// A generator was configured wrongly.
    #[error("{0}")]
    Generator(String),
}

/// Result alias for the core crate.
pub type Result<T, E = CoreError> = std::result::Result<T, E>;
