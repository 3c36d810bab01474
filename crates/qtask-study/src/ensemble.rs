//! The study's ensembled prediction: Qlib's `RollingGroup` over keys `(model class, test
//! segment)`, i.e. the windows stitched in time, the later window winning where two overlap.

use qtask_collect::{CollectMap, Collected, Key, RollingGroup};
use qtask_model::records::{DailyIc, daily_ic};
use qtask_table::PredTable;
use serde_json::{Value, json};

use crate::error::Result;
use crate::windows::Window;

/// Metric names shown per window and for the ensemble.
pub const IC_METRICS: [&str; 4] = ["IC", "ICIR", "Rank IC", "Rank ICIR"];

/// One model class's ensembled prediction and label.
#[derive(Debug, Clone)]
pub struct Ensembled {
    /// The group key (the model class).
    pub key: String,
    /// Ensembled predictions (`score`).
    pub pred: PredTable,
    /// Ensembled labels, when every window had them.
    pub label: Option<PredTable>,
}

impl Ensembled {
    /// Daily IC and Rank IC of the prediction against the label (`None` without labels).
    pub fn daily_ic(&self) -> Result<Option<DailyIc>> {
        match &self.label {
            Some(l) => Ok(Some(daily_ic(&self.pred, l, 0)?)),
            None => Ok(None),
        }
    }
}

fn rolling_ensemble(
    windows: &[Window],
    pick: impl Fn(&Window) -> Option<&PredTable>,
) -> Result<Vec<(Key, PredTable)>> {
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

/// Ensembles the windows' predictions and labels: one entry per model class.
pub fn ensemble(windows: &[Window]) -> Result<Vec<Ensembled>> {
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

/// A number as JSON; NaN and infinities as null (JSON has no NaN).
pub fn json_num(v: f64) -> Value {
    if v.is_finite() { json!(v) } else { Value::Null }
}

/// A window's run, status, test segment, IC metrics and duration as JSON (the study summary's
/// `windows` entries).
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
