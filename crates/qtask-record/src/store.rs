//! The handles callers use: [`RecordStore`] (a store), [`Experiment`], [`Run`].

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::backend::{Backend, Batch};
use crate::error::{RecordError, Result};
use crate::file::FileStore;
use crate::rest::RestStore;
use crate::types::{ArtifactEntry, ExperimentInfo, Metric, RunInfo, RunStatus, now_millis};
use crate::uri::TrackingUri;
use crate::validate::{self, MAX_PARAM_VALUE_LENGTH, MAX_TAG_VALUE_LENGTH};

/// MLflow's per-request limits for `log-batch` (also used for the file store, harmlessly).
const PARAMS_TAGS_PER_BATCH: usize = 100;
const METRICS_PER_BATCH: usize = 1000;

/// A run store (file store or tracking server). Cheap to clone; share it across threads.
#[derive(Debug, Clone)]
pub struct RecordStore {
    backend: Arc<dyn Backend>,
}

impl RecordStore {
    /// Opens the store a tracking URI names (`file:PATH`, a path, `http://host:port`); a file
    /// store is created when missing.
    pub fn open(uri: &str) -> Result<RecordStore> {
        RecordStore::open_uri(&TrackingUri::parse(uri)?, true)
    }

    /// Opens the store of `--tracking-uri` (`explicit`), `QTASK_TRACKING_URI`,
    /// `MLFLOW_TRACKING_URI` or `file:mlruns`, in that order. With `create` false a missing
    /// file store is an error instead of being created (for read-only commands).
    pub fn from_env(explicit: Option<&str>, create: bool) -> Result<RecordStore> {
        RecordStore::open_uri(&TrackingUri::resolve(explicit)?, create)
    }

    /// Opens a parsed tracking URI.
    pub fn open_uri(uri: &TrackingUri, create: bool) -> Result<RecordStore> {
        let backend: Arc<dyn Backend> = match uri {
            TrackingUri::File(path) if create => Arc::new(FileStore::open(path)?),
            TrackingUri::File(path) => Arc::new(FileStore::open_existing(path)?),
            TrackingUri::Http(base) => {
                if base.starts_with("https://") && !cfg!(feature = "tls") {
                    return Err(RecordError::BadUri {
                        uri: base.clone(),
                        message: "https needs qtask built with the `tls` feature of qtask-record"
                            .into(),
                    });
                }
                Arc::new(RestStore::new(base))
            }
        };
        Ok(RecordStore { backend })
    }

    /// Wraps any backend.
    pub fn with_backend(backend: Arc<dyn Backend>) -> RecordStore {
        RecordStore { backend }
    }

    /// The backend.
    pub fn backend(&self) -> &dyn Backend {
        self.backend.as_ref()
    }

    /// The tracking URI (for messages).
    pub fn uri(&self) -> String {
        self.backend.uri()
    }

    /// Warnings noted since the last call (a damaged experiment or run that was skipped), one
    /// line each.
    pub fn take_warnings(&self) -> Vec<String> {
        self.backend.take_warnings()
    }

    /// The experiment named `name`, created when missing (two processes asking at once get
    /// the same one). A deleted experiment of that name is an error, as in MLflow.
    pub fn experiment(&self, name: &str) -> Result<Experiment> {
        let info = self.backend.get_or_create_experiment(name)?;
        Ok(Experiment {
            store: self.clone(),
            info,
        })
    }

    /// The active experiment named `name`, if any (never creates one).
    pub fn find_experiment(&self, name: &str) -> Result<Option<Experiment>> {
        Ok(self
            .backend
            .experiment_by_name(name)?
            .filter(|info| info.lifecycle_stage == "active")
            .map(|info| Experiment {
                store: self.clone(),
                info,
            }))
    }

    /// Active experiments, newest first.
    pub fn experiments(&self) -> Result<Vec<ExperimentInfo>> {
        self.backend.list_experiments()
    }

    /// Deletes the experiment named `name` with MLflow's semantics: it and its runs are marked
    /// deleted and (file store) moved to `.trash/`; the name stays reserved until purged.
    pub fn delete_experiment(&self, name: &str) -> Result<ExperimentInfo> {
        let exp = self
            .find_experiment(name)?
            .ok_or_else(|| RecordError::NoExperiment(name.to_string()))?;
        self.backend.delete_experiment(&exp.info.id)?;
        Ok(exp.info)
    }

    /// An existing run, as it is (its status is not changed).
    pub fn run(&self, run_id: &str) -> Result<Run> {
        validate::check_run_id(run_id)?;
        let info = self.backend.get_run(run_id)?;
        Ok(Run {
            store: self.clone(),
            info,
        })
    }

    /// Resumes an existing run: it is RUNNING again, with no end time (as MLflow's
    /// `start_run(run_id=...)`).
    pub fn resume_run(&self, run_id: &str) -> Result<Run> {
        let mut run = self.run(run_id)?;
        run.info = self
            .backend
            .update_run(&run.info, RunStatus::Running, None)?;
        Ok(run)
    }
}

/// An experiment of a store.
#[derive(Debug, Clone)]
pub struct Experiment {
    store: RecordStore,
    info: ExperimentInfo,
}

impl Experiment {
    /// Its metadata.
    pub fn info(&self) -> &ExperimentInfo {
        &self.info
    }

    /// Its id.
    pub fn id(&self) -> &str {
        &self.info.id
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.info.name
    }

    /// Starts a RUNNING run; its id is a uuid4 in hex, its name `name` or `run-<8 hex>`.
    pub fn start_run(&self, name: Option<&str>) -> Result<Run> {
        self.start_run_tagged(name, &[])
    }

    /// Starts a RUNNING run that has `tags` from the start: no reader ever sees the run
    /// without them (e.g. which process owns it, for whoever finds it after a crash).
    pub fn start_run_tagged(&self, name: Option<&str>, tags: &[(String, String)]) -> Result<Run> {
        for (key, value) in tags {
            validate::check_key("tag", key)?;
            validate::check_value("tag", key, value, MAX_TAG_VALUE_LENGTH)?;
        }
        let run_id_hint = uuid::Uuid::new_v4().simple().to_string();
        let name = match name {
            Some(n) if !n.is_empty() => n.to_string(),
            _ => format!("run-{}", &run_id_hint[..8]),
        };
        validate::check_value("tag", "mlflow.runName", &name, MAX_TAG_VALUE_LENGTH)?;
        let mut all = vec![
            ("mlflow.runName".to_string(), name.clone()),
            ("mlflow.user".to_string(), crate::file::user_id()),
            ("mlflow.source.name".to_string(), "qtask".to_string()),
            ("mlflow.source.type".to_string(), "LOCAL".to_string()),
        ];
        all.extend(tags.iter().cloned());
        let info = self
            .store
            .backend
            .create_run(&self.info.id, &name, now_millis(), &all)?;
        Ok(Run {
            store: self.store.clone(),
            info,
        })
    }

    /// Its active runs, newest first, optionally only those with `status`.
    pub fn runs(&self, status: Option<RunStatus>) -> Result<Vec<RunInfo>> {
        self.store.backend.search_runs(&self.info.id, status)
    }

    /// Opens one of its runs by id.
    pub fn run(&self, run_id: &str) -> Result<Run> {
        let run = self.store.run(run_id)?;
        if run.info.experiment_id != self.info.id {
            return Err(RecordError::NoRun(format!(
                "{run_id} in experiment `{}`",
                self.info.name
            )));
        }
        Ok(run)
    }
}

/// One run (Qlib's recorder). Cheap to clone.
#[derive(Debug, Clone)]
pub struct Run {
    store: RecordStore,
    info: RunInfo,
}

impl Run {
    /// Its metadata as last read or written by this handle.
    pub fn info(&self) -> &RunInfo {
        &self.info
    }

    /// Its id (32 hex digits).
    pub fn id(&self) -> &str {
        &self.info.run_id
    }

    /// Re-reads its metadata from the store.
    pub fn refresh(&mut self) -> Result<&RunInfo> {
        self.info = self.store.backend.get_run(&self.info.run_id)?;
        Ok(&self.info)
    }

    /// Logs a (nested) JSON map as params, flattened with `.` like Qlib's `flatten_dict`;
    /// values are rendered as Python's `str()` renders them. Logging a key again with the
    /// same value is fine; with a different value it is an error and nothing is written.
    pub fn log_params(&self, params: &Value) -> Result<()> {
        let flat: Vec<(String, String)> = match params {
            Value::Object(_) => qtask_core::path::flatten(params)
                .into_iter()
                .map(|(k, v)| (k, validate::python_str(&v)))
                .collect(),
            _ => {
                return Err(RecordError::Invalid(
                    "params must be a JSON map of key to value".into(),
                ));
            }
        };
        self.log_param_strings(&flat)
    }

    /// Logs string params as they are.
    pub fn log_param_strings(&self, params: &[(String, String)]) -> Result<()> {
        for (key, value) in params {
            validate::check_key("param", key)?;
            validate::check_value("param", key, value, MAX_PARAM_VALUE_LENGTH)?;
        }
        let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
        for (key, value) in params {
            if let Some(old) = seen.insert(key, value)
                && old != value
            {
                return Err(RecordError::Invalid(format!(
                    "param `{key}` is given twice with different values (`{old}`, `{value}`)"
                )));
            }
        }
        // Check against stored values first so a refused call writes nothing, even when it
        // spans several server requests.
        let stored = self.params()?;
        for (key, value) in params {
            if let Some(old) = stored.get(key)
                && old != value
            {
                return Err(RecordError::ParamChanged {
                    run_id: self.info.run_id.clone(),
                    key: key.clone(),
                    old: old.clone(),
                    new: value.clone(),
                });
            }
        }
        let fresh: Vec<(String, String)> = seen
            .into_iter()
            .filter(|(k, _)| !stored.contains_key(*k))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        for chunk in fresh.chunks(PARAMS_TAGS_PER_BATCH) {
            self.log_batch(Batch {
                params: chunk.to_vec(),
                ..Batch::default()
            })?;
        }
        Ok(())
    }

    /// Logs one metric value at `step`.
    pub fn log_metric(&self, key: &str, value: f64, step: i64) -> Result<()> {
        self.log_metrics(&[(key.to_string(), value)], step)
    }

    /// Logs several metric values at one step, with one timestamp.
    pub fn log_metrics(&self, metrics: &[(String, f64)], step: i64) -> Result<()> {
        for (key, _) in metrics {
            validate::check_key("metric", key)?;
        }
        let timestamp = now_millis();
        let all: Vec<Metric> = metrics
            .iter()
            .map(|(key, value)| Metric {
                key: key.clone(),
                value: *value,
                timestamp,
                step,
            })
            .collect();
        for chunk in all.chunks(METRICS_PER_BATCH) {
            self.log_batch(Batch {
                metrics: chunk.to_vec(),
                ..Batch::default()
            })?;
        }
        Ok(())
    }

    /// Sets one tag (tags can be overwritten).
    pub fn set_tag(&self, key: &str, value: &str) -> Result<()> {
        self.set_tags(&[(key.to_string(), value.to_string())])
    }

    /// Sets several tags.
    pub fn set_tags(&self, tags: &[(String, String)]) -> Result<()> {
        for (key, value) in tags {
            validate::check_key("tag", key)?;
            validate::check_value("tag", key, value, MAX_TAG_VALUE_LENGTH)?;
        }
        for chunk in tags.chunks(PARAMS_TAGS_PER_BATCH) {
            self.log_batch(Batch {
                tags: chunk.to_vec(),
                ..Batch::default()
            })?;
        }
        Ok(())
    }

    fn log_batch(&self, batch: Batch) -> Result<()> {
        self.store.backend.log_batch(&self.info, &batch)
    }

    /// All params.
    pub fn params(&self) -> Result<BTreeMap<String, String>> {
        self.store.backend.params(&self.info)
    }

    /// All tags (including MLflow's `mlflow.*` ones).
    pub fn tags(&self) -> Result<BTreeMap<String, String>> {
        self.store.backend.tags(&self.info)
    }

    /// The latest value of every metric, by key.
    pub fn metrics(&self) -> Result<Vec<Metric>> {
        self.store.backend.latest_metrics(&self.info)
    }

    /// Every value logged for one metric, in logging order.
    pub fn metric_history(&self, key: &str) -> Result<Vec<Metric>> {
        validate::check_key("metric", key)?;
        self.store.backend.metric_history(&self.info, key)
    }

    /// Saves bytes as the artifact `path` (relative, e.g. `sig_analysis/ic.parquet`).
    pub fn save_artifact_bytes(&self, path: &str, bytes: &[u8]) -> Result<()> {
        let path = validate::artifact_path(path)?;
        self.store.backend.put_artifact(&self.info, &path, bytes)
    }

    /// Reads the artifact `path`.
    pub fn load_artifact_bytes(&self, path: &str) -> Result<Vec<u8>> {
        let path = validate::artifact_path(path)?;
        self.store.backend.get_artifact(&self.info, &path)
    }

    /// Saves a value as pretty JSON at `path` (e.g. `task.json`).
    pub fn save_json<T: Serialize + ?Sized>(&self, path: &str, value: &T) -> Result<()> {
        let mut bytes = serde_json::to_vec_pretty(value).map_err(|source| RecordError::Json {
            path: path.to_string(),
            source,
        })?;
        bytes.push(b'\n');
        self.save_artifact_bytes(path, &bytes)
    }

    /// Reads a JSON artifact.
    pub fn load_json<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let bytes = self.load_artifact_bytes(path)?;
        serde_json::from_slice(&bytes).map_err(|source| RecordError::Json {
            path: path.to_string(),
            source,
        })
    }

    /// One folder of artifacts (`None`: the root), like MLflow's `list_artifacts`.
    pub fn list_artifacts(&self, dir: Option<&str>) -> Result<Vec<ArtifactEntry>> {
        self.store.backend.list_artifacts(&self.info, dir)
    }

    /// Every artifact file, recursively, sorted by path.
    pub fn all_artifacts(&self) -> Result<Vec<ArtifactEntry>> {
        let mut out = Vec::new();
        let mut pending = vec![None::<String>];
        while let Some(dir) = pending.pop() {
            for entry in self.list_artifacts(dir.as_deref())? {
                if entry.is_dir {
                    pending.push(Some(entry.path));
                } else {
                    out.push(entry);
                }
            }
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    /// Deletes the run as MLflow does (marked deleted: listings skip it, `mlflow gc` purges
    /// it); a deleted run can no longer change.
    pub fn delete(&mut self) -> Result<()> {
        self.store.backend.delete_run(&self.info)?;
        self.info.lifecycle_stage = "deleted".into();
        Ok(())
    }

    /// Ends the run with `status` (FINISHED, FAILED or KILLED) and the current time.
    pub fn end(&mut self, status: RunStatus) -> Result<()> {
        if !status.is_terminated() {
            return Err(RecordError::Invalid(format!(
                "a run ends as FINISHED, FAILED or KILLED, not {status}"
            )));
        }
        self.info = self
            .store
            .backend
            .update_run(&self.info, status, Some(now_millis()))?;
        Ok(())
    }
}
