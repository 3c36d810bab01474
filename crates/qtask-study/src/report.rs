//! The study's HTML report: what the windows and the ensemble show, as `qtask-report` data.

use std::collections::BTreeMap;
use std::path::Path;

use qtask_model::records::DailyIc;
use qtask_model::signal::IcSummary;
use qtask_record::{format_millis, now_millis};
use qtask_report::{MetricRow, ReportData, TaskRow, WindowMetrics};
use qtask_table::ns_to_datetime;

use qtask_backtest::report::{section, signal_section};

use crate::analysis::StudyAnalysis;
use crate::ensemble::{Ensembled, IC_METRICS};
use crate::error::{Result, StudyError};
use crate::windows::Window;

/// Writes the report of `windows`, their ensemble (with its daily IC) and its analyses to
/// `out`, atomically.
pub fn write_report(
    out: &Path,
    title: &str,
    experiment: &str,
    windows: &[Window],
    ens: Option<(&Ensembled, Option<&DailyIc>)>,
    analysis: &StudyAnalysis,
    notes: Vec<String>,
) -> Result<()> {
    let data = analysed_report_data(title, experiment, windows, ens, analysis, notes);
    qtask_core::fsutil::write_atomic(out, qtask_report::render(&data).as_bytes())
        .map_err(|e| StudyError::write(out, e))
}

/// The report's data with the signal analysis and backtest sections filled in.
pub fn analysed_report_data(
    title: &str,
    experiment: &str,
    windows: &[Window],
    ens: Option<(&Ensembled, Option<&DailyIc>)>,
    analysis: &StudyAnalysis,
    notes: Vec<String>,
) -> ReportData {
    let mut data = report_data(title, experiment, windows, ens, notes);
    data.signal = analysis.signal.as_ref().map(signal_section);
    data.backtest = analysis.backtest.as_ref().map(section);
    data
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
            test: w.test_shown(),
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
        signal: None,
        backtest: None,
    }
}
