//! qtask-collect: turn many runs into one answer (Qlib's `Collector`, `Group`, `Ensemble`).
//!
//! - Collectors return maps (insertion-ordered like Python dicts) whose leaves are
//!   [`PredTable`]s: [`RecorderCollector`] reads runs from any [`RunSource`],
//!   [`MergeCollector`] merges named collectors under `(name, key)` keys.
//! - [`process_collect`] pipes each collected value through processes: groups
//!   ([`Group`], [`RollingGroup`]) and ensembles ([`RollingEnsemble`], [`AverageEnsemble`],
//!   [`SingleKeyEnsemble`]).
//! - [`rolling_ensemble`] and [`average_ensemble`] work on plain lists of tables too.
//!
//! Semantics follow Qlib exactly (see the spec's section 7): ordering, tie-breaks, sample
//! standard deviation, NaN rules; averages match pandas bit for bit.

#![warn(missing_docs)]

mod collected;
mod collector;
mod ensemble;
mod error;
mod group;
mod key;
mod merge;
mod recorder;
mod stats;
mod store_source;

pub use collected::{CollectMap, Collected};
pub use collector::{Collector, MapCollector, MergeCollector, MergeFn};
pub use ensemble::{
    AverageEnsemble, Ensemble, RollingEnsemble, SCORE, SingleKeyEnsemble, average_ensemble,
    rolling_ensemble,
};
pub use error::{CollectError, Result, SourceError};
pub use group::{Group, GroupFn, Process, RollingGroup, process_collect, rolling_group};
pub use key::Key;
pub use qtask_table::PredTable;
pub use recorder::{
    FilterFn, KeyFn, RecorderCollector, RunContext, RunRecord, RunSource, TASK_ARTIFACT,
    path_filter, path_key,
};
