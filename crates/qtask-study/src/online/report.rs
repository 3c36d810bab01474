//! What a simulation leaves in its output folder: `signals.parquet`, `history.json`,
//! `tasks.json` and `report.html` (online models over time, the signal's daily IC and, when
//! the template configures a `PortAnaRecord`, the signal's backtest, also kept in `backtest/`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use serde_json::{Value, json};

use crate::analysis::StudyAnalysis;
use crate::ensemble::{Ensembled, ensemble};
use crate::error::{Result, StudyError};
use crate::online::manager::OnlineManager;
use crate::online::state::Step;
use crate::online::strategy::{TestSegment, seg_key};
use crate::report::write_report;
use crate::windows::load_windows;

/// The files [`write_outputs`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct OnlineOutputs {
    /// The signals (`datetime`, `instrument`, `score`).
    pub signals: PathBuf,
    /// The online models after each routine.
    pub history: PathBuf,
    /// The test segment of every task trained, in training order.
    pub tasks: PathBuf,
    /// The HTML report.
    pub report: PathBuf,
    /// The signal's backtest files, when the template configures a `PortAnaRecord`.
    pub backtest: Option<PathBuf>,
}

fn day_json(d: Option<NaiveDate>) -> Value {
    d.map_or(Value::Null, |d| json!(d.to_string()))
}

/// A test segment as JSON: `["YYYY-MM-DD", "YYYY-MM-DD" | null]`.
pub fn segment_json(s: TestSegment) -> Value {
    json!([day_json(s.0), day_json(s.1)])
}

/// `history.json`: one entry per routine, `{"time", "online": [test segments, sorted]}`.
pub fn history_json(m: &OnlineManager) -> Result<Value> {
    let tests = test_segments(m)?;
    let entries: Vec<Value> = m
        .state()
        .history
        .iter()
        .filter(|h| h.step == Step::Routine)
        .map(|h| {
            let mut segs: Vec<TestSegment> = h
                .online
                .iter()
                .map(|id| tests.get(id).copied().unwrap_or((None, None)))
                .collect();
            segs.sort_by_key(|s| seg_key(*s));
            json!({
                "time": h.time.to_string(),
                "online": segs.into_iter().map(segment_json).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(Value::Array(entries))
}

/// `tasks.json`: the test segment of every task trained, in training order.
pub fn tasks_json(m: &OnlineManager) -> Value {
    Value::Array(
        m.state()
            .trained
            .iter()
            .map(|t| segment_json(t.test))
            .collect(),
    )
}

/// The test segment of every run the manager trained.
fn test_segments(m: &OnlineManager) -> Result<HashMap<String, TestSegment>> {
    Ok(m.state()
        .trained
        .iter()
        .map(|t| (t.run_id.clone(), t.test))
        .collect())
}

fn write_json(path: &Path, v: &Value) -> Result<()> {
    let text = serde_json::to_string_pretty(v).map_err(|e| StudyError::Invalid(e.to_string()))?;
    qtask_core::fsutil::write_atomic(path, format!("{text}\n").as_bytes())
        .map_err(|e| StudyError::write(path, e))
}

/// The online periods as report lines: each run of days with one online set.
fn online_periods(m: &OnlineManager) -> Result<Vec<String>> {
    let tests = test_segments(m)?;
    let mut lines = Vec::new();
    let routines: Vec<_> = m
        .state()
        .history
        .iter()
        .filter(|h| h.step == Step::Routine)
        .collect();
    let mut i = 0;
    while i < routines.len() {
        let mut j = i;
        while j + 1 < routines.len() && routines[j + 1].online == routines[i].online {
            j += 1;
        }
        let mut segs: Vec<TestSegment> = routines[i]
            .online
            .iter()
            .map(|id| tests.get(id).copied().unwrap_or((None, None)))
            .collect();
        segs.sort_by_key(|s| seg_key(*s));
        let names: Vec<String> = segs
            .iter()
            .map(|s| {
                format!(
                    "{}..{}",
                    s.0.map_or("open".into(), |d| d.to_string()),
                    s.1.map_or("open".into(), |d| d.to_string())
                )
            })
            .collect();
        lines.push(format!(
            "online {} .. {}: {} model(s), test {}",
            routines[i].time,
            routines[j].time,
            names.len(),
            names.join(", ")
        ));
        i = j + 1;
    }
    Ok(lines)
}

/// Writes the simulation's outputs into `out` (created when missing); each file atomically.
/// `backtest` runs when the template configures a `PortAnaRecord`.
pub fn write_outputs(m: &OnlineManager, out: &Path) -> Result<OnlineOutputs> {
    std::fs::create_dir_all(out).map_err(|e| StudyError::write(out, e))?;
    let mut paths = OnlineOutputs {
        signals: out.join("signals.parquet"),
        history: out.join("history.json"),
        tasks: out.join("tasks.json"),
        report: out.join("report.html"),
        backtest: None,
    };
    let signals = m.signals()?.ok_or_else(|| {
        StudyError::Invalid(format!(
            "experiment `{}` has no signals yet (no routine prepared them)",
            m.state().experiment
        ))
    })?;
    signals.write_parquet(&paths.signals)?;
    write_json(&paths.history, &history_json(m)?)?;
    write_json(&paths.tasks, &tasks_json(m))?;

    // One window per model trained, in training order; labels stitched as the signals are.
    let run_ids: Vec<String> = m.state().trained.iter().map(|t| t.run_id.clone()).collect();
    let windows = load_windows(m.records(), &m.state().experiment, Some(&run_ids))?;
    let label = ensemble(&windows)?.into_iter().find_map(|e| e.label);
    let signal = Ensembled {
        key: "signal".into(),
        pred: signals.clone(),
        label,
    };
    let daily = signal.daily_ic()?;
    let mut notes = vec![
        format!(
            "{} routines from {} to {}; {} models trained; signals {} rows",
            m.state()
                .history
                .iter()
                .filter(|h| h.step == Step::Routine)
                .count(),
            m.state().begin_time,
            m.state()
                .history
                .last()
                .map(|h| h.time.to_string())
                .unwrap_or_default(),
            run_ids.len(),
            signals.len()
        ),
        "signal: the online models' predictions stitched with RollingGroup, z-scored per day \
         and averaged (Qlib's AverageEnsemble); its IC is against the models' labels"
            .to_string(),
    ];
    notes.extend(online_periods(m)?);
    notes.extend(qtask_data::synth::synthetic_note(m.provider_uri()));
    // The signal's analysis, and its backtest as the first template's PortAnaRecord says.
    let analysis = match m.strategy().templates.first() {
        Some(task) => StudyAnalysis::of(&signal, task, Some(m.provider_uri()))?,
        None => StudyAnalysis::default(),
    };
    if analysis.backtest.is_some() {
        let dir = out.join("backtest");
        analysis.write_backtest(&dir)?;
        paths.backtest = Some(dir);
    }
    write_report(
        &paths.report,
        &format!("qtask online: {}", m.state().experiment),
        &m.state().experiment,
        &windows,
        Some((&signal, daily.as_ref())),
        &analysis,
        notes,
    )?;
    Ok(paths)
}

/// The manager's status as JSON (what `qtask online status --json` prints): begin time,
/// status, the online models now, the history, the signals' extent and an unfinished step.
pub fn status_json(m: &OnlineManager) -> Result<Value> {
    let state = m.state();
    let online = m.tool().online_models()?;
    let tests = m.tests_of(&online)?;
    let trained = test_segments(m)?;
    let signals = m.signals()?;
    let signal_days = signals.as_ref().map(|s| {
        let mut d: Vec<i64> = s.datetimes_ns().to_vec();
        d.sort_unstable();
        d.dedup();
        d.len()
    });
    let step_name = |s: Step| match s {
        Step::FirstTrain => "first_train",
        Step::Routine => "routine",
    };
    Ok(json!({
        "experiment": state.experiment,
        "begin_time": state.begin_time.to_string(),
        "status": match state.status {
            crate::online::state::ManagerStatus::Online => "online",
            crate::online::state::ManagerStatus::Simulating => "simulating",
        },
        "provider_uri": state.provider_uri,
        "templates": state.strategy.templates.len(),
        "rolling": state.strategy.rolling,
        "online": online.iter().zip(&tests).map(|(id, t)| json!({
            "run_id": id, "test": segment_json(*t),
        })).collect::<Vec<_>>(),
        "routines": state.history.iter().filter(|h| h.step == Step::Routine).count(),
        "last_routine": state.history.iter().rev().find(|h| h.step == Step::Routine)
            .map(|h| h.time.to_string()),
        "models_trained": state.trained.len(),
        "pending": state.pending.as_ref().map(|p| json!({
            "time": p.time.to_string(), "step": step_name(p.step),
        })),
        "signals": signals.as_ref().map(|s| json!({
            "rows": s.len(),
            "days": signal_days,
            "first": s.datetime_range().map(|r| r.0.date().to_string()),
            "last": s.datetime_range().map(|r| r.1.date().to_string()),
        })),
        "history": state.history.iter().map(|h| {
            let mut segs: Vec<TestSegment> = h.online.iter()
                .map(|id| trained.get(id).copied().unwrap_or((None, None))).collect();
            segs.sort_by_key(|s| seg_key(*s));
            json!({
                "time": h.time.to_string(),
                "step": step_name(h.step),
                "online": segs.into_iter().map(segment_json).collect::<Vec<_>>(),
            })
        }).collect::<Vec<_>>(),
    }))
}

/// A simulation's summary: [`status_json`] and where the outputs are.
pub fn summary_json(m: &OnlineManager, out: &OnlineOutputs) -> Result<Value> {
    let mut v = status_json(m)?;
    v["outputs"] = json!({
        "signals": out.signals,
        "history": out.history,
        "tasks": out.tasks,
        "report": out.report,
    });
    Ok(v)
}
