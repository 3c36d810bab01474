//! A study's runs read back from the runs store: one window per task, its metrics and
//! predictions, the RollingGroup ensemble of the predictions and labels, and the report data.

use std::collections::BTreeMap;

use anyhow::Context;
use qtask_collect::{CollectMap, Collected, Key, RollingGroup};
use qtask_model::records::{DailyIc, LABEL_ARTIFACT, PRED_ARTIFACT, daily_ic};
use qtask_model::signal::IcSummary;
use qtask_model::workflow::IMPORTANCE_ARTIFACT;
use qtask_record::{RecordError, RecordStore, Run, RunInfo, format_millis, now_millis};
use qtask_report::{MetricRow, ReportData, TaskRow, WindowMetrics};
use qtask_runner::train::{TASK_ARTIFACT, TM_ID};
use qtask_table::{PredTable, ns_to_datetime};
use serde_json::{Value, json};

/// One task of a study: its latest run and what that run holds.
pub struct Window {
    /// The run.
    pub info: RunInfo,
    /// The task id in its pool, if it came from one.
    pub task_id: Option<String>,
    /// Runs recorded for the same task (attempts).
    pub attempts: u32,
    /// The task definition (`task.json`).
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

    fn metric(&self, k: &str) -> f64 {
        self.metrics.get(k).copied().unwrap_or(f64::NAN)
    }
}

fn optional<T>(r: Result<T, RecordError>) -> anyhow::Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(RecordError::NoArtifact { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Reads the windows of `experiment`: with `run_ids`, exactly those runs in that order;
/// otherwise the latest run of every task (runs of one task grouped by their pool id),
/// oldest first.
pub fn load_windows(
    store: &RecordStore,
    experiment: &str,
    run_ids: Option<&[String]>,
) -> anyhow::Result<Vec<Window>> {
    let exp = store
        .find_experiment(experiment)?
        .with_context(|| format!("no experiment `{experiment}` in {}", store.uri()))?;
    let all = exp.runs(None)?; // newest first
    let mut by_task: BTreeMap<String, u32> = BTreeMap::new();
    let mut tm_of: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut opened: BTreeMap<String, Run> = BTreeMap::new();
    for r in &all {
        let run = exp.run(&r.run_id)?;
        let tags = run.tags()?;
        opened.insert(r.run_id.clone(), run);
        let tm = tags.get(TM_ID).cloned();
        *by_task
            .entry(tm.clone().unwrap_or_else(|| r.run_id.clone()))
            .or_default() += 1;
        tm_of.insert(r.run_id.clone(), tm);
    }
    let chosen: Vec<RunInfo> = match run_ids {
        Some(ids) => ids
            .iter()
            .map(|id| {
                all.iter()
                    .find(|r| &r.run_id == id)
                    .cloned()
                    .with_context(|| format!("run {id} is not in experiment `{experiment}`"))
            })
            .collect::<anyhow::Result<_>>()?,
        None => {
            let mut seen = std::collections::HashSet::new();
            let mut latest: Vec<RunInfo> = all
                .iter()
                .filter(|r| {
                    let key = tm_of[&r.run_id].clone().unwrap_or_else(|| r.run_id.clone());
                    seen.insert(key)
                })
                .cloned()
                .collect();
            latest.reverse();
            latest
        }
    };
    let mut out = Vec::with_capacity(chosen.len());
    for info in chosen {
        let run = opened
            .remove(&info.run_id)
            .with_context(|| format!("run {} was listed twice", info.run_id))?;
        let task_id = tm_of.get(&info.run_id).cloned().flatten();
        let attempts = by_task
            .get(task_id.as_deref().unwrap_or(&info.run_id))
            .copied()
            .unwrap_or(1);
        let task: Value = optional(run.load_json(TASK_ARTIFACT))?.unwrap_or(Value::Null);
        let metrics = run
            .metrics()?
            .into_iter()
            .map(|m| (m.key, m.value))
            .collect();
        let table = |path: &str| -> anyhow::Result<Option<PredTable>> {
            match optional(run.load_artifact_bytes(path))? {
                Some(b) => Ok(Some(
                    PredTable::from_parquet_bytes(&b)
                        .with_context(|| format!("run {}: {path}", info.run_id))?,
                )),
                None => Ok(None),
            }
        };
        let importance: Vec<(String, f64)> = optional(run.load_json::<Value>(IMPORTANCE_ARTIFACT))?
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|r| Some((r["feature"].as_str()?.to_string(), r["gain"].as_f64()?)))
            .collect();
        out.push(Window {
            pred: table(PRED_ARTIFACT)?,
            label: table(LABEL_ARTIFACT)?,
            info,
            task_id,
            attempts,
            task,
            metrics,
            importance,
        });
    }
    Ok(out)
}

/// The ensembled prediction and label: Qlib's RollingGroup over keys
/// `(model class, test segment)`, i.e. the windows stitched in time, the later window winning
/// where two overlap. One entry per model class.
pub struct Ensembled {
    /// The group key (the model class).
    pub key: String,
    /// Ensembled predictions (`score`).
    pub pred: PredTable,
    /// Ensembled labels, when every window had them.
    pub label: Option<PredTable>,
}

fn rolling_ensemble(
    windows: &[Window],
    pick: impl Fn(&Window) -> Option<&PredTable>,
) -> anyhow::Result<Vec<(Key, PredTable)>> {
    let mut map = CollectMap::new();
    for w in windows {
        let Some(t) = pick(w) else { continue };
        let class = w
            .task
            .pointer("/model/class")
            .map(Key::from_json)
            .unwrap_or_else(|| Key::str("model"));
        let seg = w
            .task
            .pointer("/dataset/kwargs/segments/test")
            .map(Key::from_json)
            .unwrap_or_else(|| Key::str(w.info.run_id.clone()));
        map.insert(Key::tuple([class, seg]), t.clone());
    }
    let reduced = RollingGroup::new().apply(map)?;
    Ok(reduced
        .into_iter()
        .filter_map(|(k, v)| match v {
            Collected::Table(t) => Some((k, t)),
            Collected::Map(_) => None,
        })
        .collect())
}

/// Ensembles the windows' predictions and labels.
pub fn ensemble(windows: &[Window]) -> anyhow::Result<Vec<Ensembled>> {
    let preds = rolling_ensemble(windows, |w| w.pred.as_ref())?;
    let all_labels = windows
        .iter()
        .all(|w| w.pred.is_none() || w.label.is_some());
    let labels = if all_labels {
        rolling_ensemble(windows, |w| w.pred.as_ref().and(w.label.as_ref()))?
    } else {
        Vec::new()
    };
    Ok(preds
        .into_iter()
        .map(|(k, pred)| Ensembled {
            key: k.label(),
            label: labels
                .iter()
                .find(|(lk, _)| *lk == k)
                .map(|(_, t)| t.clone()),
            pred,
        })
        .collect())
}

/// Daily IC of an ensemble (empty without labels).
pub fn ensemble_ic(e: &Ensembled) -> anyhow::Result<Option<DailyIc>> {
    match &e.label {
        Some(l) => Ok(Some(daily_ic(&e.pred, l, 0)?)),
        None => Ok(None),
    }
}

/// Metric names shown per window and for the ensemble.
pub const IC_METRICS: [&str; 4] = ["IC", "ICIR", "Rank IC", "Rank ICIR"];

/// Per-window metrics as JSON.
pub fn window_json(w: &Window) -> Value {
    let metrics: serde_json::Map<String, Value> = IC_METRICS
        .iter()
        .map(|k| (k.to_string(), json_num(w.metric(k))))
        .collect();
    json!({
        "run_id": w.info.run_id,
        "task_id": w.task_id,
        "status": w.info.status.as_str(),
        "test": w.task.pointer("/dataset/kwargs/segments/test"),
        "metrics": metrics,
        "seconds": w.duration(),
    })
}

/// A number as JSON; NaN and infinities as null (JSON has no NaN).
pub fn json_num(v: f64) -> Value {
    if v.is_finite() { json!(v) } else { Value::Null }
}

/// Everything the HTML report shows.
pub fn report_data(
    title: &str,
    experiment: &str,
    windows: &[Window],
    ens: Option<(&Ensembled, Option<&DailyIc>)>,
    notes: Vec<String>,
) -> ReportData {
    let tasks = windows
        .iter()
        .map(|w| TaskRow {
            name: w.name(),
            run_id: w.info.run_id.clone(),
            task_id: w.task_id.clone(),
            train: w.segment("train"),
            valid: w.segment("valid"),
            test: w.segment("test"),
            status: w.info.status.as_str().to_string(),
            attempts: w.attempts,
            duration_secs: w.duration(),
        })
        .collect();
    let window_metrics = windows
        .iter()
        .map(|w| WindowMetrics {
            name: w.name(),
            ic: w.metric("IC"),
            icir: w.metric("ICIR"),
            rank_ic: w.metric("Rank IC"),
            rank_icir: w.metric("Rank ICIR"),
        })
        .collect();
    let ens_summary = ens
        .and_then(|(_, d)| d)
        .map(|d| IcSummary::of(&d.ic, &d.rank_ic));
    let mut names: Vec<String> = IC_METRICS.iter().map(|s| s.to_string()).collect();
    for w in windows {
        for k in w.metrics.keys() {
            let extra = k.starts_with("Long-");
            if extra && !names.contains(k) {
                names.push(k.clone());
            }
        }
    }
    let metrics = names
        .iter()
        .map(|name| MetricRow {
            name: name.clone(),
            values: windows
                .iter()
                .map(|w| w.metrics.get(name).copied())
                .collect(),
            ensemble: ens_summary.and_then(|s| {
                s.metrics()
                    .into_iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v)
            }),
        })
        .collect();
    let ensemble_daily = ens
        .and_then(|(_, d)| d)
        .map(|d| {
            d.datetimes_ns
                .iter()
                .zip(d.ic.iter().zip(&d.rank_ic))
                .map(|(t, (ic, ric))| qtask_report::DailyIc {
                    date: ns_to_datetime(*t).date().to_string(),
                    ic: *ic,
                    rank_ic: *ric,
                })
                .collect()
        })
        .unwrap_or_default();
    // Importance: mean gain over the windows that saved one.
    let mut gain: BTreeMap<String, (f64, usize)> = BTreeMap::new();
    for w in windows {
        for (f, g) in &w.importance {
            let e = gain.entry(f.clone()).or_default();
            e.0 += g;
            e.1 += 1;
        }
    }
    let importance = gain
        .into_iter()
        .map(|(f, (s, n))| (f, s / n as f64))
        .collect();
    ReportData {
        title: title.to_string(),
        generated_at: format!("{} UTC", format_millis(now_millis())),
        experiment: experiment.to_string(),
        tasks,
        windows: window_metrics,
        ensemble_daily,
        metrics,
        importance,
        notes,
    }
}
