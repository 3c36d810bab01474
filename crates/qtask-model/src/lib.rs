//! qtask's quant workflow: Qlib's `LGBModel` (LightGBM), `XGBModel` (XGBoost),
//! `DEnsembleModel` (DoubleEnsemble over LightGBM) and `LinearModel`, the `SignalRecord`
//! and `SigAnaRecord` records, and `task_train`, the built-in executor that trains one task
//! into an experiment run.
#![warn(missing_docs)]

pub mod check;
pub mod dens;
pub mod error;
pub mod exec_only;
pub mod lgb;
pub mod linear;
pub mod memory;
pub mod model;
pub mod predict;
pub mod records;
pub mod signal;
pub mod workflow;
pub mod xgb;

pub use check::check_task;
pub use error::{ModelError, Result};
pub use model::{Fitted, ModelSpec};
pub use predict::{PredUpdate, RunPredictor, predict_run, update_pred};
pub use records::RecordSpec;
pub use workflow::{TASK_TRAIN, TaskTrain, builtin_registry};
