//! qtask-study: the workflows above the crates, as a library testable without the binary.
//!
//! - [`Study`]: Qlib's rolling study — generate a template's tasks ([`qtask_core::GenSettings`]
//!   through `task_generator`), train them with one of the four trainers ([`train_tasks`]),
//!   read the runs back ([`load_windows`], on `RecorderCollector`), ensemble them once
//!   ([`ensemble`]) and write the prediction, `summary.json` and the HTML report.
//! - [`report_experiment`]: the same report for any experiment already in a runs store.
//! - [`Example`]: the README's main job on a synthetic market.
//! - [`online`]: online serving, Qlib's `OnlineManager` with a `RollingStrategy`.
//!
//! Progress is reported to an [`Observer`]; the CLI draws bars, tests stay [`Quiet`].

#![warn(missing_docs)]

pub mod analysis;
pub mod ensemble;
pub mod error;
pub mod example;
pub mod exec;
pub mod observe;
pub mod online;
pub mod report;
pub mod study;
pub mod train;
pub mod windows;

pub use analysis::{StudyAnalysis, port_analysis};
pub use ensemble::{Ensembled, IC_METRICS, ensemble, json_num, window_json};
pub use error::{Result, StudyError};
pub use example::Example;
pub use exec::ExecSpec;
pub use observe::{Observer, Quiet, StudyPhase};
pub use report::{analysed_report_data, report_data, write_report};
pub use study::{
    PhaseTimings, Study, StudyConfig, StudyPaths, StudyResult, experiment_report, report_experiment,
};
pub use train::{PoolTarget, TrainSetup, train_tasks};
pub use windows::{Window, load_windows};
