//! Typed errors of the table crate.

use std::path::PathBuf;

/// Result alias of this crate.
pub type Result<T, E = TableError> = std::result::Result<T, E>;

/// What can go wrong building, reading or writing a prediction table.
///
/// Messages are complete on their own (no `source()` chain), so printing the error, or an
/// `anyhow` chain around it, says everything once.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// A file could not be read or written.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        error: std::io::Error,
    },
    /// The Parquet library refused the data (corrupt file, not Parquet, ...).
    #[error("not a readable Parquet file: {0}")]
    Parquet(parquet::errors::ParquetError),
    /// Arrow refused to assemble a batch (a bug if it ever happens on write).
    #[error("arrow: {0}")]
    Arrow(arrow_schema::ArrowError),
    /// A key column is missing from a file.
    #[error("no `{column}` column (columns: {})", .found.join(", "))]
    MissingColumn {
        /// The missing key column.
        column: &'static str,
        /// The columns the file has.
        found: Vec<String>,
    },
    /// A column has a type that cannot be read as what it should hold.
    #[error("column `{column}` has type {found}, expected {expected}")]
    ColumnType {
        /// The column.
        column: String,
        /// Its Arrow type.
        found: String,
        /// What qtask can read there.
        expected: &'static str,
    },
    /// A key column has a null.
    #[error("column `{column}` has a null at row {row}")]
    NullKey {
        /// The key column.
        column: &'static str,
        /// 0-based row in the file.
        row: usize,
    },
    /// A datetime outside what nanoseconds since 1970 in an i64 can hold (1677..2262).
    #[error("datetime {0} is outside the range 1677-09-21..2262-04-11")]
    DatetimeRange(String),
    /// Inconsistent lengths, unknown ids, a wrong number of values in a row, ...
    #[error("{0}")]
    Shape(String),
    /// An error while handling a given file; the message names the file.
    #[error("{}: {error}", .path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong in it.
        error: Box<TableError>,
    },
}

impl TableError {
    /// Wraps `self` with the file it happened in (no double wrapping).
    pub(crate) fn in_file(self, path: &std::path::Path) -> TableError {
        match self {
            e @ (TableError::Io { .. } | TableError::File { .. }) => e,
            e => TableError::File {
                path: path.to_path_buf(),
                error: Box::new(e),
            },
        }
    }
}

impl From<parquet::errors::ParquetError> for TableError {
    fn from(e: parquet::errors::ParquetError) -> Self {
        TableError::Parquet(e)
    }
}

impl From<arrow_schema::ArrowError> for TableError {
    fn from(e: arrow_schema::ArrowError) -> Self {
        TableError::Arrow(e)
    }
}
