//! Names that Qlib's recorders and `TaskManager` give to a run's artifacts and tags, shared by
//! everything that writes runs (the runner, the quant records) and reads them back (collectors,
//! the study): defined here once so the two sides cannot drift apart.

/// The artifact holding the task definition a run trained (Qlib's `task` object).
pub const TASK_ARTIFACT: &str = "task.json";
/// The predictions of the test segment (`SignalRecord`'s `pred.pkl`), column `score`.
pub const PRED_ARTIFACT: &str = "pred.parquet";
/// The labels of the test segment (`SignalRecord`'s `label.pkl`), column `label`.
pub const LABEL_ARTIFACT: &str = "label.parquet";
/// The tag linking a run to its task in the pool (Qlib's `TaskManager` id).
pub const TM_ID: &str = "_id in TaskManager";
