//! The storage interface both backends (file store, tracking server) implement.

use std::collections::BTreeMap;

use crate::error::Result;
use crate::types::{ArtifactEntry, ExperimentInfo, Metric, RunInfo, RunStatus};

/// What one `log_batch` call writes to a run (validated by the caller).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    /// Params, `(key, value)`.
    pub params: Vec<(String, String)>,
    /// Metrics.
    pub metrics: Vec<Metric>,
    /// Tags, `(key, value)`.
    pub tags: Vec<(String, String)>,
}

/// A run store: experiments, runs and their artifacts.
///
/// Implementations are cheap to share (`Send + Sync`) and safe to use from many processes at
/// once on one store, provided each run is written by one process at a time.
pub trait Backend: Send + Sync + std::fmt::Debug {
    /// The tracking URI this backend talks to (for messages).
    fn uri(&self) -> String;

    /// Warnings noted since the last call, e.g. a damaged experiment or run that a listing
    /// skipped (the caller shows them to the user).
    fn take_warnings(&self) -> Vec<String> {
        Vec::new()
    }

    /// The experiment with this name, active or deleted.
    fn experiment_by_name(&self, name: &str) -> Result<Option<ExperimentInfo>>;
    /// The experiment with this name, created if missing; concurrent callers get the same one.
    fn get_or_create_experiment(&self, name: &str) -> Result<ExperimentInfo>;
    /// Active experiments.
    fn list_experiments(&self) -> Result<Vec<ExperimentInfo>>;
    /// Marks an experiment and its runs deleted (the file store moves it to `.trash`).
    fn delete_experiment(&self, experiment_id: &str) -> Result<()>;

    /// Creates a RUNNING run (uuid4 hex id); `tags` include `mlflow.runName`.
    fn create_run(
        &self,
        experiment_id: &str,
        run_name: &str,
        start_time: i64,
        tags: &[(String, String)],
    ) -> Result<RunInfo>;
    /// A run by id, in any experiment.
    fn get_run(&self, run_id: &str) -> Result<RunInfo>;
    /// Marks a run deleted (MLflow's `delete_run`): listings skip it, it can no longer change,
    /// and `mlflow gc` purges it.
    fn delete_run(&self, run: &RunInfo) -> Result<()>;
    /// Sets a run's status and end time.
    fn update_run(
        &self,
        run: &RunInfo,
        status: RunStatus,
        end_time: Option<i64>,
    ) -> Result<RunInfo>;
    /// Writes params, metrics and tags; a param already logged with another value is an error
    /// and nothing of the batch is written.
    fn log_batch(&self, run: &RunInfo, batch: &Batch) -> Result<()>;
    /// All params.
    fn params(&self, run: &RunInfo) -> Result<BTreeMap<String, String>>;
    /// All tags.
    fn tags(&self, run: &RunInfo) -> Result<BTreeMap<String, String>>;
    /// The latest value of each metric (largest step, then timestamp, as MLflow picks it).
    fn latest_metrics(&self, run: &RunInfo) -> Result<Vec<Metric>>;
    /// Every logged value of one metric, in logging order.
    fn metric_history(&self, run: &RunInfo, key: &str) -> Result<Vec<Metric>>;
    /// Active runs of an experiment, newest first (start time descending), optionally only
    /// those with `status`.
    fn search_runs(&self, experiment_id: &str, status: Option<RunStatus>) -> Result<Vec<RunInfo>>;

    /// Stores an artifact (replacing any artifact at that path).
    fn put_artifact(&self, run: &RunInfo, path: &str, bytes: &[u8]) -> Result<()>;
    /// Reads an artifact.
    fn get_artifact(&self, run: &RunInfo, path: &str) -> Result<Vec<u8>>;
    /// Lists one folder of a run's artifacts (`None`: the root), as MLflow's `list_artifacts`.
    fn list_artifacts(&self, run: &RunInfo, dir: Option<&str>) -> Result<Vec<ArtifactEntry>>;
}

/// Orders runs newest first (ties by run id), the order every backend lists them in.
pub(crate) fn sort_newest_first(runs: &mut [RunInfo]) {
    runs.sort_by(|a, b| {
        b.start_time
            .cmp(&a.start_time)
            .then_with(|| a.run_id.cmp(&b.run_id))
    });
}

/// The latest metric of each key among `metrics` (MLflow's `max(step, timestamp, value)`).
pub(crate) fn latest_of(metrics: impl IntoIterator<Item = Metric>) -> Vec<Metric> {
    let mut best: BTreeMap<String, Metric> = BTreeMap::new();
    for m in metrics {
        let replace = match best.get(&m.key) {
            None => true,
            Some(b) => (m.step, m.timestamp)
                .cmp(&(b.step, b.timestamp))
                .then_with(|| m.value.total_cmp(&b.value))
                .is_ge(),
        };
        if replace {
            best.insert(m.key.clone(), m);
        }
    }
    best.into_values().collect()
}
