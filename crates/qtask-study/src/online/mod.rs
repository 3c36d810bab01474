//! Online serving (Qlib's `qlib.workflow.online`): every trading day a routine adds the
//! rolling windows that have come due, trains them through the trainer (and its task pool),
//! switches the online models, extends their predictions to the day and prepares one signal.
//!
//! - [`OnlineTool`]: which runs serve online (`online_status` tags), Qlib's `OnlineToolR`.
//! - [`RollingStrategy`]: the latest rolling windows are the online models.
//! - [`OnlineManager`]: `first_train`, `routine`, `prepare_signals`, `simulate` and the delay
//!   trainers' `delay_prepare`, its state in the runs store ([`state`]) so that a routine
//!   runs from cron on any machine and an interrupted one is resumed by the next call.
//! - [`write_outputs`]: a simulation's `signals.parquet`, `history.json`, `tasks.json` and
//!   `report.html` (with the signal's backtest when a `PortAnaRecord` is configured).

pub mod manager;
pub mod recover;
pub mod report;
pub mod state;
pub mod strategy;
pub mod tool;

pub use manager::{OnlineConfig, OnlineManager, SignalUpdate, StepReport, TrainedModel};
pub use recover::{Recovered, recover};
pub use report::{OnlineOutputs, segment_json, status_json, summary_json, write_outputs};
pub use state::{HistoryEntry, ManagerState, ManagerStatus, Step, TrainedEntry};
pub use strategy::{RollingSpec, RollingStrategy, TestSegment};
pub use tool::{OFFLINE_TAG, ONLINE_KEY, ONLINE_TAG, OnlineTool, PredUpdateOutcome};
