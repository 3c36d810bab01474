//! The MLflow file store: `mlruns/<experiment id>/<run id>/{meta.yaml,params,metrics,tags,artifacts}`.
//!
//! Every file is written through a temporary sibling and a rename. Experiment creation and
//! deletion hold an OS file lock (`mlruns/.qtask.lock`) so that two processes creating the same
//! name end up with one experiment. Runs need no lock: each run has its own folder, written by
//! the one process that owns it.

mod fsutil;
mod meta;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::backend::{Backend, Batch, latest_of};
use crate::error::{RecordError, Result};
use crate::types::{ArtifactEntry, ExperimentInfo, Metric, RunInfo, RunStatus, now_millis};
use crate::uri::{file_uri_to_path, path_to_file_uri};
use crate::validate;
use fsutil::{StoreLock, join_rel, write_atomic};

const TRASH: &str = ".trash";
const LOCK_FILE: &str = ".qtask.lock";
const DEFAULT_EXPERIMENT_ID: &str = "0";
const DEFAULT_EXPERIMENT_NAME: &str = "Default";
/// Folders inside an experiment that are not runs (MLflow's `RESERVED_EXPERIMENT_FOLDERS`).
const RESERVED_EXPERIMENT_FOLDERS: [&str; 4] = ["tags", "datasets", "traces", "models"];
/// Folders at the root that are not experiments.
const RESERVED_ROOT_FOLDERS: [&str; 2] = [TRASH, "models"];

/// An MLflow file store rooted at a folder.
///
/// A damaged experiment or run (a `meta.yaml` that cannot be read or parsed) does not hide
/// the others: like MLflow's file store, listings skip it and note a warning naming it (see
/// [`Backend::take_warnings`]).
#[derive(Debug, Clone)]
pub struct FileStore {
    root: PathBuf,
    warnings: Arc<Mutex<BTreeSet<String>>>,
}

impl FileStore {
    /// Opens the store at `root`, creating it (with MLflow's `Default` experiment `0` and
    /// `.trash`) when the folder does not exist yet.
    pub fn open(root: impl AsRef<Path>) -> Result<FileStore> {
        let root = std::path::absolute(root.as_ref())
            .map_err(|e| RecordError::io("cannot resolve", root.as_ref(), e))?;
        let store = FileStore {
            root,
            warnings: Arc::default(),
        };
        if !store.root.exists() {
            fs::create_dir_all(&store.root)
                .map_err(|e| RecordError::io("cannot create", &store.root, e))?;
        }
        if !store.root.is_dir() {
            return Err(RecordError::io(
                "not a folder:",
                &store.root,
                std::io::Error::from(ErrorKind::NotADirectory),
            ));
        }
        let _lock = store.lock()?;
        let default_dir = store.root.join(DEFAULT_EXPERIMENT_ID);
        if !default_dir.exists() && !store.root.join(TRASH).join(DEFAULT_EXPERIMENT_ID).exists() {
            store.write_new_experiment(DEFAULT_EXPERIMENT_ID, DEFAULT_EXPERIMENT_NAME)?;
        }
        let trash = store.root.join(TRASH);
        fs::create_dir_all(&trash).map_err(|e| RecordError::io("cannot create", &trash, e))?;
        Ok(store)
    }

    /// Opens an existing store; an error naming the folder when there is none.
    pub fn open_existing(root: impl AsRef<Path>) -> Result<FileStore> {
        let root = root.as_ref();
        if !root.is_dir() {
            return Err(RecordError::io(
                "no run store at",
                root,
                std::io::Error::from(ErrorKind::NotFound),
            ));
        }
        FileStore::open(root)
    }

    /// A handle that only reads and writes artifacts of runs whose artifact URI is a local
    /// `file:` URI (used for tracking servers that store artifacts on a shared disk).
    pub(crate) fn detached() -> FileStore {
        FileStore {
            root: PathBuf::from("/"),
            warnings: Arc::default(),
        }
    }

    /// The store's root folder (absolute).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Notes that a damaged entry was skipped (shown once, however often it is met).
    fn skipped(&self, what: &str, dir: &Path, e: &RecordError) {
        let name = dir.file_name().unwrap_or_default().to_string_lossy();
        let msg = format!("skipped {what} {name}, which is damaged: {e}");
        self.warnings.lock().expect("not poisoned").insert(msg);
    }

    fn lock(&self) -> Result<StoreLock> {
        StoreLock::acquire(&self.root.join(LOCK_FILE))
    }

    fn write_new_experiment(&self, id: &str, name: &str) -> Result<ExperimentInfo> {
        let dir = self.root.join(id);
        fs::create_dir_all(&dir).map_err(|e| RecordError::io("cannot create", &dir, e))?;
        let now = now_millis();
        let info = ExperimentInfo {
            id: id.to_string(),
            name: name.to_string(),
            artifact_location: path_to_file_uri(&dir),
            lifecycle_stage: "active".into(),
            creation_time: Some(now),
            last_update_time: Some(now),
        };
        meta::write_experiment(&dir, &info)?;
        Ok(info)
    }

    /// `(folder, info)` of every experiment, active ones then deleted ones; damaged ones are
    /// skipped with a warning.
    fn all_experiments(&self) -> Result<Vec<(PathBuf, ExperimentInfo)>> {
        let (found, damaged) = self.scan_experiments()?;
        for (dir, e) in &damaged {
            self.skipped("experiment", dir, e);
        }
        Ok(found)
    }

    /// Every experiment, and the folders whose `meta.yaml` could not be read, with why.
    #[allow(clippy::type_complexity)]
    fn scan_experiments(
        &self,
    ) -> Result<(Vec<(PathBuf, ExperimentInfo)>, Vec<(PathBuf, RecordError)>)> {
        let mut out = Vec::new();
        let mut damaged = Vec::new();
        let trash = self.root.join(TRASH);
        let active = fsutil::subdirs(&self.root)?
            .into_iter()
            .filter(|n| !RESERVED_ROOT_FOLDERS.contains(&n.as_str()) && !n.starts_with('.'))
            .map(|n| self.root.join(n));
        let deleted = fsutil::subdirs(&trash)?.into_iter().map(|n| trash.join(n));
        for dir in active.chain(deleted) {
            // A folder without meta.yaml is not an experiment (MLflow skips it too), e.g. a
            // creation interrupted between mkdir and the meta.yaml rename; one whose
            // meta.yaml is damaged is skipped with a warning, as MLflow does.
            match meta::read_experiment(&dir) {
                Ok(Some(info)) => out.push((dir, info)),
                Ok(None) => {}
                Err(e) => damaged.push((dir, e)),
            }
        }
        Ok((out, damaged))
    }

    fn experiment_dir(&self, id: &str) -> Result<PathBuf> {
        validate::check_experiment_id(id)?;
        let active = self.root.join(id);
        if active.join("meta.yaml").is_file() {
            return Ok(active);
        }
        let deleted = self.root.join(TRASH).join(id);
        if deleted.join("meta.yaml").is_file() {
            return Ok(deleted);
        }
        Err(RecordError::NoExperiment(id.to_string()))
    }

    fn new_experiment_id(&self) -> String {
        // MLflow's `_generate_unique_integer_id`: 18 random decimal digits, no leading zero.
        loop {
            let n =
                uuid::Uuid::new_v4().as_u128() % 900_000_000_000_000_000 + 100_000_000_000_000_000;
            let id = n.to_string();
            if !self.root.join(&id).exists() && !self.root.join(TRASH).join(&id).exists() {
                return id;
            }
        }
    }

    /// The folder of a run: where `run` says it is, else found by id (the experiment may have
    /// moved to `.trash` since `run` was read).
    fn run_dir(&self, run: &RunInfo) -> Result<PathBuf> {
        validate::check_run_id(&run.run_id)?;
        for parent in [self.root.clone(), self.root.join(TRASH)] {
            let dir = parent.join(&run.experiment_id).join(&run.run_id);
            if dir.join("meta.yaml").is_file() {
                return Ok(dir);
            }
        }
        self.find_run(&run.run_id).map(|(dir, _)| dir)
    }

    fn find_run(&self, run_id: &str) -> Result<(PathBuf, RunInfo)> {
        validate::check_run_id(run_id)?;
        for (exp_dir, _) in self.all_experiments()? {
            let dir = exp_dir.join(run_id);
            if is_run_dir(&dir)
                && let Some(info) = meta::read_run(&dir)?
            {
                return Ok((dir, info));
            }
        }
        Err(RecordError::NoRun(run_id.to_string()))
    }

    /// The run's meta, refusing runs that are deleted (MLflow's `check_run_is_active`).
    fn active_run(&self, run: &RunInfo) -> Result<(PathBuf, RunInfo)> {
        let dir = self.run_dir(run)?;
        let info = meta::read_run(&dir)?.ok_or_else(|| RecordError::NoRun(run.run_id.clone()))?;
        if info.lifecycle_stage != "active" {
            return Err(RecordError::Invalid(format!(
                "run {} is deleted; it cannot be changed",
                run.run_id
            )));
        }
        Ok((dir, info))
    }

    fn artifact_root(&self, run: &RunInfo) -> Result<PathBuf> {
        file_uri_to_path(&run.artifact_uri).ok_or_else(|| {
            RecordError::Invalid(format!(
                "run {}: artifact location `{}` is not a local folder; open this run through \
                 its tracking server",
                run.run_id, run.artifact_uri
            ))
        })
    }
}

/// MLflow only treats a folder as a run when it has `metrics/`, `params/` and `artifacts/`.
fn is_run_dir(dir: &Path) -> bool {
    ["metrics", "params", "artifacts"]
        .iter()
        .all(|sub| dir.join(sub).is_dir())
}

fn read_kv_dir(dir: &Path) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for key in fsutil::files_under(dir)? {
        let path = join_rel(dir, &key);
        let value = fsutil::read_text_optional(&path)?.unwrap_or_default();
        out.insert(key, value);
    }
    Ok(out)
}

fn parse_metric_file(path: &Path, key: &str) -> Result<Vec<Metric>> {
    let Some(text) = fsutil::read_text_optional(path)? else {
        return Ok(Vec::new());
    };
    let corrupt = |line: usize, message: &str| RecordError::Corrupt {
        path: path.to_path_buf(),
        what: "metric file",
        message: format!("line {line}: {message}"),
    };
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        if parts.is_empty() {
            continue;
        }
        if !matches!(parts.len(), 2 | 3 | 5) {
            return Err(corrupt(i + 1, "expected `timestamp value step`"));
        }
        let timestamp = parts[0]
            .parse()
            .map_err(|_| corrupt(i + 1, "timestamp is not an integer"))?;
        let value = parse_python_float(parts[1]).ok_or_else(|| corrupt(i + 1, "bad value"))?;
        let step = match parts.get(2) {
            Some(s) => s
                .parse()
                .map_err(|_| corrupt(i + 1, "step is not an integer"))?,
            None => 0,
        };
        out.push(Metric {
            key: key.to_string(),
            value,
            timestamp,
            step,
        });
    }
    Ok(out)
}

/// Python's `float()` for what MLflow writes (`nan`, `inf`, `-inf`, `1e-05`, `0.1`).
fn parse_python_float(s: &str) -> Option<f64> {
    match s.to_ascii_lowercase().as_str() {
        "nan" | "+nan" | "-nan" => Some(f64::NAN),
        "inf" | "+inf" | "infinity" | "+infinity" => Some(f64::INFINITY),
        "-inf" | "-infinity" => Some(f64::NEG_INFINITY),
        _ => s.parse().ok(),
    }
}

fn metric_line(m: &Metric) -> String {
    let value = if m.value.is_finite() {
        format!("{}", m.value)
    } else {
        validate::python_float(m.value)
    };
    format!("{} {} {}\n", m.timestamp, value, m.step)
}

pub(crate) fn user_id() -> String {
    ["USER", "LOGNAME", "USERNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "unknown".into())
}

impl Backend for FileStore {
    fn uri(&self) -> String {
        path_to_file_uri(&self.root)
    }

    fn take_warnings(&self) -> Vec<String> {
        std::mem::take(&mut *self.warnings.lock().expect("not poisoned"))
            .into_iter()
            .collect()
    }

    fn experiment_by_name(&self, name: &str) -> Result<Option<ExperimentInfo>> {
        Ok(self
            .all_experiments()?
            .into_iter()
            .map(|(_, info)| info)
            .find(|info| info.name == name))
    }

    fn get_or_create_experiment(&self, name: &str) -> Result<ExperimentInfo> {
        validate::check_experiment_name(name)?;
        if let Some(found) = self.experiment_by_name(name)? {
            return active_or_deleted_error(found, &self.root);
        }
        // Look again under the lock: another process may have created it meanwhile.
        let _lock = self.lock()?;
        let (found, damaged) = self.scan_experiments()?;
        if let Some((_, found)) = found.into_iter().find(|(_, info)| info.name == name) {
            return active_or_deleted_error(found, &self.root);
        }
        // A damaged experiment might be this one: creating another of the same name would
        // split its runs in two. Using existing experiments is fine; creating is refused.
        if let Some((dir, e)) = damaged.into_iter().next() {
            let why = match &e {
                RecordError::Corrupt { message, .. } => message.clone(),
                other => other.to_string(),
            };
            return Err(RecordError::Corrupt {
                path: dir.join("meta.yaml"),
                what: "experiment metadata",
                message: format!(
                    "it may be experiment `{name}`, which would be created now; repair or remove \
                     it first ({why})"
                ),
            });
        }
        self.write_new_experiment(&self.new_experiment_id(), name)
    }

    fn list_experiments(&self) -> Result<Vec<ExperimentInfo>> {
        let mut out: Vec<ExperimentInfo> = self
            .all_experiments()?
            .into_iter()
            .map(|(_, info)| info)
            .filter(|info| info.lifecycle_stage == "active")
            .collect();
        // MLflow's default order: creation time descending, then id.
        out.sort_by(|a, b| {
            b.creation_time
                .cmp(&a.creation_time)
                .then_with(|| a.id.cmp(&b.id))
        });
        Ok(out)
    }

    fn delete_experiment(&self, experiment_id: &str) -> Result<()> {
        validate::check_experiment_id(experiment_id)?;
        if experiment_id == DEFAULT_EXPERIMENT_ID {
            return Err(RecordError::Invalid(
                "the Default experiment (id 0) cannot be deleted (MLflow reserves it)".into(),
            ));
        }
        let _lock = self.lock()?;
        let dir = self.root.join(experiment_id);
        let mut info = meta::read_experiment(&dir)?
            .ok_or_else(|| RecordError::NoExperiment(experiment_id.to_string()))?;
        let target = self.root.join(TRASH).join(experiment_id);
        if target.exists() {
            return Err(RecordError::Invalid(format!(
                "cannot delete experiment {experiment_id}: {} already exists",
                target.display()
            )));
        }
        let now = now_millis();
        // Runs first, then the experiment, then the move: an interruption leaves an experiment
        // that is still listed and can be deleted again.
        for name in fsutil::subdirs(&dir)? {
            let run_dir = dir.join(&name);
            if RESERVED_EXPERIMENT_FOLDERS.contains(&name.as_str()) || !is_run_dir(&run_dir) {
                continue;
            }
            if let Some(mut run) = meta::read_run(&run_dir)?
                && run.lifecycle_stage == "active"
            {
                run.lifecycle_stage = "deleted".into();
                meta::write_run(&run_dir, &run, Some(now))?;
            }
        }
        info.lifecycle_stage = "deleted".into();
        info.last_update_time = Some(now);
        meta::write_experiment(&dir, &info)?;
        fs::rename(&dir, &target).map_err(|e| RecordError::io("cannot move to .trash", &dir, e))
    }

    fn create_run(
        &self,
        experiment_id: &str,
        run_name: &str,
        start_time: i64,
        tags: &[(String, String)],
    ) -> Result<RunInfo> {
        let exp_dir = self.experiment_dir(experiment_id)?;
        let exp = meta::read_experiment(&exp_dir)?
            .ok_or_else(|| RecordError::NoExperiment(experiment_id.to_string()))?;
        if exp.lifecycle_stage != "active" {
            return Err(RecordError::Invalid(format!(
                "experiment `{}` (id {experiment_id}) is deleted; cannot start a run in it",
                exp.name
            )));
        }
        let run_id = uuid::Uuid::new_v4().simple().to_string();
        let run_dir = exp_dir.join(&run_id);
        let artifact_root = match file_uri_to_path(&exp.artifact_location) {
            Some(p) => p.join(&run_id).join("artifacts"),
            None => run_dir.join("artifacts"),
        };
        let info = RunInfo {
            run_id: run_id.clone(),
            experiment_id: experiment_id.to_string(),
            run_name: run_name.to_string(),
            status: RunStatus::Running,
            start_time,
            end_time: None,
            artifact_uri: path_to_file_uri(&artifact_root),
            lifecycle_stage: "active".into(),
            user_id: user_id(),
        };
        for sub in ["metrics", "params", "artifacts", "tags"] {
            let d = run_dir.join(sub);
            fs::create_dir_all(&d).map_err(|e| RecordError::io("cannot create", &d, e))?;
        }
        for (key, value) in tags {
            write_atomic(&join_rel(&run_dir.join("tags"), key), value.as_bytes())?;
        }
        // meta.yaml last: until it exists the folder is not a run for any reader.
        meta::write_run(&run_dir, &info, None)?;
        Ok(info)
    }

    fn get_run(&self, run_id: &str) -> Result<RunInfo> {
        self.find_run(run_id).map(|(_, info)| info)
    }

    fn delete_run(&self, run: &RunInfo) -> Result<()> {
        let (dir, mut info) = self.active_run(run)?;
        info.lifecycle_stage = "deleted".into();
        meta::write_run(&dir, &info, Some(now_millis()))
    }

    fn update_run(
        &self,
        run: &RunInfo,
        status: RunStatus,
        end_time: Option<i64>,
    ) -> Result<RunInfo> {
        let (dir, mut info) = self.active_run(run)?;
        info.status = status;
        info.end_time = end_time;
        meta::write_run(&dir, &info, None)?;
        Ok(info)
    }

    fn log_batch(&self, run: &RunInfo, batch: &Batch) -> Result<()> {
        let (dir, mut info) = self.active_run(run)?;
        // Check every param before writing anything, so a refused batch leaves no trace.
        let mut pending: BTreeMap<&str, &str> = BTreeMap::new();
        for (key, value) in &batch.params {
            let path = join_rel(&dir.join("params"), key);
            let old = fsutil::read_text_optional(&path)?;
            let old = old.as_deref().or(pending.get(key.as_str()).copied());
            if let Some(old) = old
                && old != value
            {
                return Err(RecordError::ParamChanged {
                    run_id: run.run_id.clone(),
                    key: key.clone(),
                    old: old.to_string(),
                    new: value.clone(),
                });
            }
            pending.insert(key, value);
        }
        for (key, value) in pending {
            write_atomic(&join_rel(&dir.join("params"), key), value.as_bytes())?;
        }
        let mut by_key: BTreeMap<&str, Vec<&Metric>> = BTreeMap::new();
        for m in &batch.metrics {
            by_key.entry(&m.key).or_default().push(m);
        }
        for (key, metrics) in by_key {
            // MLflow appends; we rewrite through a rename so a crash never leaves half a line.
            let path = join_rel(&dir.join("metrics"), key);
            let mut text = fsutil::read_text_optional(&path)?.unwrap_or_default();
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            for m in metrics {
                text.push_str(&metric_line(m));
            }
            write_atomic(&path, text.as_bytes())?;
        }
        for (key, value) in &batch.tags {
            write_atomic(&join_rel(&dir.join("tags"), key), value.as_bytes())?;
            if key == "mlflow.runName" && info.run_name != *value {
                info.run_name = value.clone();
                meta::write_run(&dir, &info, None)?;
            }
        }
        Ok(())
    }

    fn params(&self, run: &RunInfo) -> Result<BTreeMap<String, String>> {
        read_kv_dir(&self.run_dir(run)?.join("params"))
    }

    fn tags(&self, run: &RunInfo) -> Result<BTreeMap<String, String>> {
        read_kv_dir(&self.run_dir(run)?.join("tags"))
    }

    fn latest_metrics(&self, run: &RunInfo) -> Result<Vec<Metric>> {
        let dir = self.run_dir(run)?.join("metrics");
        let mut all = Vec::new();
        for key in fsutil::files_under(&dir)? {
            all.extend(parse_metric_file(&join_rel(&dir, &key), &key)?);
        }
        Ok(latest_of(all))
    }

    fn metric_history(&self, run: &RunInfo, key: &str) -> Result<Vec<Metric>> {
        validate::check_key("metric", key)?;
        let dir = self.run_dir(run)?.join("metrics");
        parse_metric_file(&join_rel(&dir, key), key)
    }

    fn search_runs(&self, experiment_id: &str, status: Option<RunStatus>) -> Result<Vec<RunInfo>> {
        let exp_dir = self.experiment_dir(experiment_id)?;
        let mut runs = Vec::new();
        for name in fsutil::subdirs(&exp_dir)? {
            let dir = exp_dir.join(&name);
            if RESERVED_EXPERIMENT_FOLDERS.contains(&name.as_str()) || !is_run_dir(&dir) {
                continue;
            }
            let info = match meta::read_run(&dir) {
                Ok(Some(info)) => info,
                Ok(None) => continue,
                Err(e) => {
                    self.skipped("run", &dir, &e);
                    continue;
                }
            };
            if info.experiment_id != experiment_id || info.lifecycle_stage != "active" {
                continue;
            }
            if status.is_none_or(|s| s == info.status) {
                runs.push(info);
            }
        }
        crate::backend::sort_newest_first(&mut runs);
        Ok(runs)
    }

    fn put_artifact(&self, run: &RunInfo, path: &str, bytes: &[u8]) -> Result<()> {
        let path = validate::artifact_path(path)?;
        let target = join_rel(&self.artifact_root(run)?, &path);
        if target.is_dir() {
            return Err(RecordError::Invalid(format!(
                "run {}: artifact `{path}` is a folder",
                run.run_id
            )));
        }
        write_atomic(&target, bytes)
    }

    fn get_artifact(&self, run: &RunInfo, path: &str) -> Result<Vec<u8>> {
        let path = validate::artifact_path(path)?;
        let target = join_rel(&self.artifact_root(run)?, &path);
        if target.is_dir() {
            return Err(RecordError::Invalid(format!(
                "run {}: artifact `{path}` is a folder",
                run.run_id
            )));
        }
        fsutil::read_optional(&target)?.ok_or(RecordError::NoArtifact {
            run_id: run.run_id.clone(),
            path,
        })
    }

    fn list_artifacts(&self, run: &RunInfo, dir: Option<&str>) -> Result<Vec<ArtifactEntry>> {
        let root = self.artifact_root(run)?;
        let (rel, here) = match dir {
            None => (String::new(), root),
            Some(d) => {
                let d = validate::artifact_path(d)?;
                let here = join_rel(&root, &d);
                (format!("{d}/"), here)
            }
        };
        let entries = match fs::read_dir(&here) {
            Ok(e) => e,
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
                return Ok(Vec::new());
            }
            Err(e) => return Err(RecordError::io("cannot list", &here, e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| RecordError::io("cannot list", &here, e))?;
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if fsutil::is_temp_name(&name) {
                continue;
            }
            let meta = entry
                .metadata()
                .map_err(|e| RecordError::io("cannot read", entry.path(), e))?;
            out.push(ArtifactEntry {
                path: format!("{rel}{name}"),
                is_dir: meta.is_dir(),
                size: (!meta.is_dir()).then_some(meta.len()),
            });
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }
}

fn active_or_deleted_error(found: ExperimentInfo, root: &Path) -> Result<ExperimentInfo> {
    if found.lifecycle_stage == "active" {
        return Ok(found);
    }
    let hint = format!(
        "; remove {} to reuse the name",
        root.join(TRASH).join(&found.id).display()
    );
    Err(RecordError::ExperimentDeleted {
        name: found.name,
        id: found.id,
        hint,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_lines_read_what_mlflow_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("IC");
        // Lines as MLflow 3.17 wrote them (two-field lines are MLflow 0.x's format).
        fs::write(
            &path,
            "1795274967802 0.05 0\n1795274967808 nan 1\n1700000000000 1e-05\n",
        )
        .unwrap();
        let m = parse_metric_file(&path, "IC").unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(
            (m[0].timestamp, m[0].value, m[0].step),
            (1795274967802, 0.05, 0)
        );
        assert!(m[1].value.is_nan() && m[1].step == 1);
        assert_eq!((m[2].value, m[2].step), (1e-5, 0));
        fs::write(&path, "1 2 3 4\n").unwrap();
        let err = parse_metric_file(&path, "IC").unwrap_err().to_string();
        assert!(err.contains("corrupt metric file: line 1"), "{err}");
    }

    #[test]
    fn metric_values_are_written_for_python_float() {
        let m = |value| Metric {
            key: "k".into(),
            value,
            timestamp: 5,
            step: 2,
        };
        assert_eq!(metric_line(&m(0.05)), "5 0.05 2\n");
        assert_eq!(metric_line(&m(f64::NAN)), "5 nan 2\n");
        assert_eq!(metric_line(&m(f64::NEG_INFINITY)), "5 -inf 2\n");
        assert_eq!(parse_python_float("1e-05"), Some(1e-5));
    }
}
