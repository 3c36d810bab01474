//! The one error type of the crate.

/// Result alias of this crate.
pub type Result<T, E = ModelError> = std::result::Result<T, E>;

/// What can go wrong building, fitting, saving or evaluating a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The task asks for something invalid or unsupported (unknown class, bad kwarg, ...).
    #[error("{0}")]
    Invalid(String),
    /// The data cannot train or evaluate a model (empty segment, all-NaN label, ...).
    #[error("{0}")]
    Data(String),
    /// LightGBM refused (its own message).
    #[error("LightGBM: {0}")]
    Lightgbm(String),
    /// XGBoost refused or could not be loaded (its own message).
    #[error("XGBoost: {0}")]
    Xgboost(String),
    /// The data layer failed (provider, expressions, handler).
    #[error(transparent)]
    Dataset(#[from] qtask_data::DataError),
    /// The runs store failed.
    #[error("runs store: {0}")]
    Record(#[from] qtask_record::RecordError),
    /// The portfolio analysis (backtest) failed.
    #[error("PortAnaRecord: {0}")]
    Backtest(#[from] qtask_backtest::BacktestError),
    /// A prediction table could not be written or read.
    #[error("table: {0}")]
    Table(#[from] qtask_table::TableError),
    /// A saved model could not be loaded back.
    #[error("model artifact `{artifact}` of run {run}: {msg}")]
    Artifact {
        /// The run.
        run: String,
        /// The artifact path.
        artifact: String,
        /// What is wrong with it.
        msg: String,
    },
}
