//! Qlib's `RecorderCollector`: one table per run and artifact, from any source of runs.
//!
//! The source is a trait so that this crate does not depend on where runs are stored; the
//! `qtask` CLI implements it over the runs store (`qtask-record`).

use std::cell::OnceCell;
use std::collections::BTreeMap;
use std::sync::Mutex;

use qtask_table::PredTable;
use serde_json::Value;

use crate::collector::Collector;
use crate::group::Process;
use crate::{CollectError, CollectMap, Key, Result, SourceError};

use qtask_record::names::PRED_ARTIFACT;
pub use qtask_record::names::TASK_ARTIFACT;

/// A run as a source lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRecord {
    /// The run id.
    pub id: String,
    /// MLflow's status name: `FINISHED`, `RUNNING`, `FAILED`, `KILLED`, `SCHEDULED`.
    pub status: String,
}

/// Where runs come from: an experiment's runs, their artifacts, tags and params.
pub trait RunSource {
    /// The experiment's runs, **newest first**, whatever their status; an unknown
    /// experiment is an error.
    fn runs(&self, experiment: &str) -> Result<Vec<RunRecord>, SourceError>;
    /// An artifact's bytes, `None` when the run has no artifact at `path`.
    fn artifact(&self, run_id: &str, path: &str) -> Result<Option<Vec<u8>>, SourceError>;
    /// The run's tags.
    fn tags(&self, run_id: &str) -> Result<BTreeMap<String, String>, SourceError>;
    /// The run's params.
    fn params(&self, run_id: &str) -> Result<BTreeMap<String, String>, SourceError>;
}

/// A run as key and filter functions see it; task, tags and params load on first use.
pub struct RunContext<'a> {
    source: &'a dyn RunSource,
    run: &'a RunRecord,
    task: OnceCell<Option<Value>>,
    tags: OnceCell<BTreeMap<String, String>>,
    params: OnceCell<BTreeMap<String, String>>,
}

impl<'a> RunContext<'a> {
    /// A context for `run` of `source`.
    pub fn new(source: &'a dyn RunSource, run: &'a RunRecord) -> Self {
        RunContext {
            source,
            run,
            task: OnceCell::new(),
            tags: OnceCell::new(),
            params: OnceCell::new(),
        }
    }

    /// The run id.
    pub fn id(&self) -> &str {
        &self.run.id
    }

    /// The run status.
    pub fn status(&self) -> &str {
        &self.run.status
    }

    /// The run's task (its `task.json` artifact), `None` when it has none.
    pub fn task(&self) -> Result<Option<&Value>> {
        if self.task.get().is_none() {
            let task = match self
                .source
                .artifact(&self.run.id, TASK_ARTIFACT)
                .map_err(CollectError::Source)?
            {
                None => None,
                Some(bytes) => Some(serde_json::from_slice(&bytes).map_err(|e| {
                    CollectError::Source(
                        format!("run {}: {TASK_ARTIFACT} is not JSON: {e}", self.run.id).into(),
                    )
                })?),
            };
            let _ = self.task.set(task);
        }
        Ok(self.task.get().expect("set above").as_ref())
    }

    /// The run's tags.
    pub fn tags(&self) -> Result<&BTreeMap<String, String>> {
        if self.tags.get().is_none() {
            let tags = self
                .source
                .tags(&self.run.id)
                .map_err(CollectError::Source)?;
            let _ = self.tags.set(tags);
        }
        Ok(self.tags.get().expect("set above"))
    }

    /// The run's params.
    pub fn params(&self) -> Result<&BTreeMap<String, String>> {
        if self.params.get().is_none() {
            let params = self
                .source
                .params(&self.run.id)
                .map_err(CollectError::Source)?;
            let _ = self.params.set(params);
        }
        Ok(self.params.get().expect("set above"))
    }

    /// The value at a dotted path: `tags.NAME` and `params.NAME` read the run's tags and
    /// params (strings); `task.PATH` or any other `PATH` reads its task
    /// (`model.class`, `dataset.kwargs.segments.test`). A missing value is an error.
    pub fn lookup(&self, path: &str) -> Result<Value> {
        let missing = |place: &str| CollectError::UnknownPath {
            run: self.run.id.clone(),
            path: path.to_string(),
            place: place.to_string(),
        };
        if let Some(name) = path.strip_prefix("tags.") {
            return self
                .tags()?
                .get(name)
                .map(|v| Value::String(v.clone()))
                .ok_or_else(|| missing("tags"));
        }
        if let Some(name) = path.strip_prefix("params.") {
            return self
                .params()?
                .get(name)
                .map(|v| Value::String(v.clone()))
                .ok_or_else(|| missing("params"));
        }
        let inner = path.strip_prefix("task.").unwrap_or(path);
        let task = self
            .task()?
            .ok_or_else(|| missing("task (the run has no task.json)"))?;
        qtask_core::path::get(task, inner)
            .cloned()
            .ok_or_else(|| missing("task (task.json)"))
    }
}

/// How a run's key is made (Qlib's `rec_key_func`).
pub type KeyFn = dyn Fn(&RunContext) -> Result<Key>;
/// Which runs are kept (Qlib's `rec_filter_func`).
pub type FilterFn = dyn Fn(&RunContext) -> Result<bool>;

/// Qlib's `RecorderCollector`: lists an experiment's runs (newest first), keeps those with
/// an accepted status (default `FINISHED`) that pass the filter, and loads each requested
/// artifact as a table into `{artifact name: {run key: table}}`.
///
/// A run without an artifact is skipped for that artifact (unless [`Self::require_artifacts`]).
/// Two runs with the same key: the later-listed (older) run wins, with a warning, as in
/// Qlib; the key keeps the position where it first appeared.
pub struct RecorderCollector<'a> {
    source: &'a dyn RunSource,
    experiment: String,
    key_fn: Box<KeyFn>,
    filter_fn: Option<Box<FilterFn>>,
    artifacts: Vec<(String, String)>,
    statuses: Vec<String>,
    skip_missing: bool,
    processes: Vec<Box<dyn Process + 'a>>,
    warnings: Mutex<Vec<String>>,
}

impl<'a> RecorderCollector<'a> {
    /// Collects `experiment` from `source` with Qlib's defaults: key = run id, no filter,
    /// artifacts `pred -> pred.parquet`, status FINISHED, missing artifacts skipped.
    pub fn new(source: &'a dyn RunSource, experiment: impl Into<String>) -> Self {
        RecorderCollector {
            source,
            experiment: experiment.into(),
            key_fn: Box::new(|run| Ok(Key::str(run.id()))),
            filter_fn: None,
            artifacts: vec![("pred".into(), PRED_ARTIFACT.into())],
            statuses: vec!["FINISHED".into()],
            skip_missing: true,
            processes: Vec::new(),
            warnings: Mutex::new(Vec::new()),
        }
    }

    /// Sets the key function.
    pub fn key_fn(mut self, f: impl Fn(&RunContext) -> Result<Key> + 'static) -> Self {
        self.key_fn = Box::new(f);
        self
    }

    /// Sets the filter function.
    pub fn filter_fn(mut self, f: impl Fn(&RunContext) -> Result<bool> + 'static) -> Self {
        self.filter_fn = Some(Box::new(f));
        self
    }

    /// Sets the artifacts to load, `(name, path)` (replaces the default `pred`).
    pub fn artifacts(mut self, artifacts: Vec<(String, String)>) -> Self {
        self.artifacts = artifacts;
        self
    }

    /// Sets the accepted statuses (empty: any status).
    pub fn statuses(mut self, statuses: Vec<String>) -> Self {
        self.statuses = statuses;
        self
    }

    /// Makes a missing artifact an error instead of skipping the run for it.
    pub fn require_artifacts(mut self) -> Self {
        self.skip_missing = false;
        self
    }

    /// Adds a processing step (e.g. a [`crate::RollingGroup`]).
    pub fn process(mut self, p: impl Process + 'a) -> Self {
        self.processes.push(Box::new(p));
        self
    }

    /// Warnings of the last collection (duplicate keys, skipped artifacts), then clears them.
    pub fn take_warnings(&self) -> Vec<String> {
        std::mem::take(&mut *self.warnings.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Runs listed by the source that pass the status filter and the filter function.
    pub fn selected_runs(&self) -> Result<Vec<RunRecord>> {
        let runs = self
            .source
            .runs(&self.experiment)
            .map_err(CollectError::Source)?;
        let mut kept = Vec::new();
        for run in runs {
            if !self.statuses.is_empty()
                && !self
                    .statuses
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(&run.status))
            {
                continue;
            }
            if let Some(f) = &self.filter_fn
                && !f(&RunContext::new(self.source, &run))?
            {
                continue;
            }
            kept.push(run);
        }
        Ok(kept)
    }

    /// Collects with a callback after each run (for progress bars).
    pub fn collect_with(&self, mut on_run: impl FnMut(usize, usize)) -> Result<CollectMap> {
        let runs = self.selected_runs()?;
        let mut warnings = Vec::new();
        let mut out = CollectMap::new();
        for (i, run) in runs.iter().enumerate() {
            let ctx = RunContext::new(self.source, run);
            let key = (self.key_fn)(&ctx)?;
            for (name, path) in &self.artifacts {
                let bytes = self
                    .source
                    .artifact(&run.id, path)
                    .map_err(CollectError::Source)?;
                let Some(bytes) = bytes else {
                    if self.skip_missing {
                        warnings.push(format!("run {} has no artifact `{path}`; skipped", run.id));
                        continue;
                    }
                    return Err(CollectError::MissingArtifact {
                        run: run.id.clone(),
                        path: path.clone(),
                    });
                };
                let table = PredTable::from_parquet_bytes(&bytes).map_err(|error| {
                    CollectError::BadArtifact {
                        run: run.id.clone(),
                        path: path.clone(),
                        error,
                    }
                })?;
                let slot = match out.get_mut(&Key::str(name.as_str())) {
                    Some(crate::Collected::Map(m)) => m,
                    _ => {
                        out.insert(Key::str(name.as_str()), CollectMap::new());
                        match out.get_mut(&Key::str(name.as_str())) {
                            Some(crate::Collected::Map(m)) => m,
                            _ => unreachable!("just inserted a map"),
                        }
                    }
                };
                if slot.insert(key.clone(), table).is_some() {
                    warnings.push(format!(
                        "key {key} is duplicated; run {} (older) overrides the previous value",
                        run.id
                    ));
                }
            }
            on_run(i + 1, runs.len());
        }
        self.warnings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(warnings);
        Ok(out)
    }
}

impl Collector for RecorderCollector<'_> {
    fn collect(&self) -> Result<CollectMap> {
        self.collect_with(|_, _| {})
    }

    fn processes(&self) -> Vec<&dyn Process> {
        self.processes
            .iter()
            .map(|p| p.as_ref() as &dyn Process)
            .collect()
    }
}

/// A key function for dotted paths (the CLI's `--key`): one path gives that value's key,
/// several give a tuple of them.
pub fn path_key(paths: Vec<String>) -> impl Fn(&RunContext) -> Result<Key> {
    move |run| {
        let mut parts = Vec::with_capacity(paths.len());
        for p in &paths {
            parts.push(Key::from_json(&run.lookup(p)?));
        }
        Ok(if parts.len() == 1 {
            parts.pop().expect("one part")
        } else {
            Key::Tuple(parts)
        })
    }
}

/// A filter for `PATH=VALUE` conditions (the CLI's `--where`), all of which must hold. A
/// string value compares as text; otherwise `VALUE` is parsed as JSON when it can be
/// (`--where model.kwargs.num_leaves=210`), else compared as text. A missing path is an error.
pub fn path_filter(conditions: Vec<(String, String)>) -> impl Fn(&RunContext) -> Result<bool> {
    move |run| {
        for (path, want) in &conditions {
            let got = run.lookup(path)?;
            let ok = match &got {
                Value::String(s) => s == want,
                other => {
                    serde_json::from_str::<Value>(want)
                        .map(|w| &w == other)
                        .unwrap_or(false)
                        || qtask_core::canonical_json(other) == *want
                }
            };
            if !ok {
                return Ok(false);
            }
        }
        Ok(true)
    }
}
