//! A study's runs read back: one window per task (its latest run), with the run's metrics,
//! task, predictions and labels. Runs are selected and their tables loaded by Qlib's
//! `RecorderCollector` over the runs store.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use qtask_collect::{Collector, Key, RecorderCollector};
use qtask_model::workflow::IMPORTANCE_ARTIFACT;
use qtask_record::names::{LABEL_ARTIFACT, PRED_ARTIFACT, TASK_ARTIFACT, TM_ID};
use qtask_record::{RecordError, RecordStore, RunInfo};
use qtask_table::PredTable;
use serde_json::Value;

use crate::error::{Result, StudyError};

/// One task of a study: its latest run and what that run holds.
#[derive(Debug, Clone)]
pub struct Window {
    /// The run.
    pub info: RunInfo,
    /// The task id in its pool, if it came from one.
    pub task_id: Option<String>,
    /// Runs recorded for the same task (attempts).
    pub attempts: u32,
    /// The task definition (`task.json`), `Null` when the run has none.
    pub task: Value,
    /// Latest value of each metric.
    pub metrics: BTreeMap<String, f64>,
    /// `pred.parquet`, when the run has one.
    pub pred: Option<PredTable>,
    /// `label.parquet`, when the run has one.
    pub label: Option<PredTable>,
    /// Feature gains (LightGBM), when saved.
    pub importance: Vec<(String, f64)>,
}

impl Window {
    /// The `[start, end]` of a segment of the task as text (`open` for an open end).
    pub fn segment(&self, name: &str) -> Option<(String, String)> {
        let s = self
            .task
            .pointer(&format!("/dataset/kwargs/segments/{name}"))?;
        let text = |v: &Value| match v {
            Value::String(s) => s.clone(),
            Value::Null => "open".into(),
            other => other.to_string(),
        };
        Some((text(s.get(0)?), text(s.get(1)?)))
    }

    /// The test segment as a report shows it: an open end is replaced by the last day the
    /// window predicted, marked `(open)`, so the reader sees where the window really ends.
    pub fn test_shown(&self) -> Option<(String, String)> {
        let (start, end) = self.segment("test")?;
        if end != "open" {
            return Some((start, end));
        }
        let last = self
            .pred
            .as_ref()
            .and_then(|p| p.datetime_range())
            .map(|(_, hi)| hi.date().to_string());
        Some((start, last.map_or(end, |d| format!("{d} (open)"))))
    }

    /// A short name: model class and test segment.
    pub fn name(&self) -> String {
        let class = self
            .task
            .pointer("/model/class")
            .and_then(Value::as_str)
            .unwrap_or("task");
        match self.segment("test") {
            Some((s, e)) => format!("{class} {s}..{e}"),
            None => format!(
                "{class} {}",
                &self.info.run_id[..8.min(self.info.run_id.len())]
            ),
        }
    }

    /// The run's duration in seconds (ended runs).
    pub fn duration(&self) -> Option<f64> {
        self.info
            .end_time
            .map(|e| (e - self.info.start_time) as f64 / 1000.0)
    }

    /// A metric's latest value, NaN when the run did not log it.
    pub fn metric(&self, k: &str) -> f64 {
        self.metrics.get(k).copied().unwrap_or(f64::NAN)
    }
}

/// Which runs a study reads, decided as the collector lists them (newest first): every run is
/// counted against its task, and a run is kept when it is asked for (`wanted`) or, without a
/// list, when it is its task's newest.
#[derive(Default)]
struct Selection {
    attempts: HashMap<String, u32>,
    task_of: HashMap<String, Option<String>>,
    seen_tasks: HashSet<String>,
    kept: Vec<String>,
}

/// Reads the windows of `experiment`: with `run_ids`, exactly those runs in that order;
/// otherwise the latest run of every task (runs of one task grouped by their pool id),
/// oldest first.
pub fn load_windows(
    store: &RecordStore,
    experiment: &str,
    run_ids: Option<&[String]>,
) -> Result<Vec<Window>> {
    let selection = Arc::new(Mutex::new(Selection::default()));
    let wanted: Option<HashSet<String>> = run_ids.map(|ids| ids.iter().cloned().collect());
    let sel = Arc::clone(&selection);
    let collector = RecorderCollector::new(store, experiment)
        .statuses(Vec::new())
        .artifacts(vec![
            ("pred".into(), PRED_ARTIFACT.into()),
            ("label".into(), LABEL_ARTIFACT.into()),
        ])
        .filter_fn(move |run| {
            let tm = run.tags()?.get(TM_ID).cloned();
            let task = tm.clone().unwrap_or_else(|| run.id().to_string());
            let mut s = sel.lock().unwrap_or_else(|e| e.into_inner());
            *s.attempts.entry(task.clone()).or_default() += 1;
            s.task_of.insert(run.id().to_string(), tm);
            let newest = s.seen_tasks.insert(task);
            let keep = match &wanted {
                Some(ids) => ids.contains(run.id()),
                None => newest,
            };
            if keep {
                s.kept.push(run.id().to_string());
            }
            Ok(keep)
        });
    let mut tables: HashMap<(String, String), PredTable> = collector
        .collect()?
        .flatten()
        .into_iter()
        .filter_map(|(path, table)| match path.as_slice() {
            [Key::Str(artifact), Key::Str(run)] => Some(((artifact.clone(), run.clone()), table)),
            _ => None,
        })
        .collect();
    let selection = selection.lock().unwrap_or_else(|e| e.into_inner());
    let chosen: Vec<String> = match run_ids {
        Some(ids) => {
            if let Some(id) = ids.iter().find(|id| !selection.task_of.contains_key(*id)) {
                return Err(StudyError::Invalid(format!(
                    "run {id} is not in experiment `{experiment}`"
                )));
            }
            ids.to_vec()
        }
        None => {
            // Listed newest first; the study reads them oldest first.
            selection.kept.iter().rev().cloned().collect()
        }
    };
    let mut out = Vec::with_capacity(chosen.len());
    for run_id in chosen {
        let run = store.run(&run_id)?;
        let task_id = selection.task_of.get(&run_id).cloned().flatten();
        let attempts = selection
            .attempts
            .get(task_id.as_deref().unwrap_or(&run_id))
            .copied()
            .unwrap_or(1);
        let task: Value = optional(run.load_json(TASK_ARTIFACT))?.unwrap_or(Value::Null);
        let metrics = run
            .metrics()?
            .into_iter()
            .map(|m| (m.key, m.value))
            .collect();
        let importance: Vec<(String, f64)> = optional(run.load_json::<Value>(IMPORTANCE_ARTIFACT))?
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|r| Some((r["feature"].as_str()?.to_string(), r["gain"].as_f64()?)))
            .collect();
        out.push(Window {
            pred: tables.remove(&("pred".to_string(), run_id.clone())),
            label: tables.remove(&("label".to_string(), run_id.clone())),
            info: run.info().clone(),
            task_id,
            attempts,
            task,
            metrics,
            importance,
        });
    }
    Ok(out)
}

fn optional<T>(r: std::result::Result<T, RecordError>) -> Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(RecordError::NoArtifact { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}
