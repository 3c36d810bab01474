//! qtask-record: experiments and runs (Qlib's recorders) in MLflow's layout.
//!
//! Two backends behind one [`Backend`] trait: the MLflow file store (`file:mlruns`, readable
//! by `mlflow ui` and `mlflow.search_runs`) and an MLflow tracking server over its REST API
//! (`http://host:port`, artifacts through the server's artifact proxy). Callers use
//! [`RecordStore`], [`Experiment`] and [`Run`].
//!
//! ```no_run
//! use qtask_record::{RecordStore, RunStatus};
//! let store = RecordStore::from_env(None, true)?;
//! let mut run = store.experiment("rolling")?.start_run(Some("task 1"))?;
//! run.log_params(&serde_json::json!({"model": {"kwargs": {"lr": 0.1}}}))?;
//! run.log_metric("IC", 0.05, 0)?;
//! run.set_tag("train_status", "end_task_train")?;
//! run.save_json("task.json", &serde_json::json!({"a": 1}))?;
//! run.end(RunStatus::Finished)?;
//! # Ok::<(), qtask_record::RecordError>(())
//! ```

#![warn(missing_docs)]

pub mod backend;
pub mod error;
pub mod file;
pub mod names;
pub mod rest;
pub mod store;
pub mod types;
pub mod uri;
pub mod validate;

pub use backend::{Backend, Batch};
pub use error::{RecordError, Result};
pub use file::FileStore;
pub use rest::RestStore;
pub use store::{Experiment, RecordStore, Run};
pub use types::{
    ArtifactEntry, ExperimentInfo, Metric, RunInfo, RunStatus, format_millis, now_millis,
};
pub use uri::TrackingUri;
