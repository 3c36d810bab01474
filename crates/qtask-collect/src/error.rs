//! Typed errors of the collect crate.

/// Result alias of this crate.
pub type Result<T, E = CollectError> = std::result::Result<T, E>;

/// An error from wherever runs come from (the runs store, a test double, ...).
pub type SourceError = Box<dyn std::error::Error + Send + Sync>;

/// What can go wrong collecting, grouping or ensembling.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    /// Reading or writing a table failed.
    #[error(transparent)]
    Table(#[from] qtask_table::TableError),
    /// An ensemble was given nothing.
    #[error("nothing to ensemble")]
    Empty,
    /// Pieces of a rolling ensemble have different value columns.
    #[error("{piece} has columns [{}] but {first} has [{}]", .found.join(", "), .expected.join(", "))]
    MismatchedColumns {
        /// The first piece (the reference).
        first: String,
        /// Its columns.
        expected: Vec<String>,
        /// The piece that differs.
        piece: String,
        /// Its columns.
        found: Vec<String>,
    },
    /// A piece of an average ensemble has the same (datetime, instrument) twice, which
    /// pandas refuses to join side by side.
    #[error(
        "{piece} has ({datetime}, {instrument}) more than once; an average ensemble needs unique keys"
    )]
    DuplicateRow {
        /// The piece.
        piece: String,
        /// The repeated datetime.
        datetime: String,
        /// The repeated instrument.
        instrument: String,
    },
    /// A rolling group met a key that is not a tuple.
    #[error("RollingGroup needs tuple keys (model, segment, ...), got {0}")]
    NotTuple(String),
    /// A step expected a map of values and got a table (or the other way round).
    #[error("{0}")]
    Shape(String),
    /// A run has no value at a key/filter path.
    #[error("run {run}: no `{path}` in its {place}")]
    UnknownPath {
        /// The run id.
        run: String,
        /// The dotted path.
        path: String,
        /// Where it was looked up: `task (task.json)`, `tags`, `params`.
        place: String,
    },
    /// An artifact is missing and missing artifacts were not to be skipped.
    #[error("run {run} has no artifact `{path}`")]
    MissingArtifact {
        /// The run id.
        run: String,
        /// The artifact path.
        path: String,
    },
    /// An artifact exists but is not a readable table.
    #[error("run {run}, artifact `{path}`: {error}")]
    BadArtifact {
        /// The run id.
        run: String,
        /// The artifact path.
        path: String,
        /// Why it could not be read.
        error: qtask_table::TableError,
    },
    /// The run source failed (store unreachable, experiment missing, ...).
    #[error("{0}")]
    Source(SourceError),
}
