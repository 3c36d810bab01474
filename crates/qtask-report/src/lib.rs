//! qtask-report: one self-contained HTML report of a rolling model-training study, and the
//! backtest and signal-analysis sections ([`render_backtest_sections`],
//! [`render_signal_sections`], [`render_backtest_page`]).
//!
//! [`render`] turns a [`ReportData`] into a complete HTML document with inline CSS and inline
//! SVG charts, so the file opens offline and can be mailed or archived as is. The charts are
//! hand-written SVG (no plotting crate): IC and Rank IC per window, the ensemble's cumulative
//! IC and Rank IC over time, and the top feature importances. All text is HTML-escaped and
//! non-finite numbers never reach SVG coordinates.
//!
//! A tiny inline script records each chart's laid-out size in a `data-rendered="WxH"`
//! attribute (and the number of drawn charts in `<body data-charts>`), which lets headless
//! browser tests check that the charts were actually laid out.
//!
//! ```
//! use qtask_report::{render, DailyIc, ReportData};
//! let data = ReportData {
//!     title: "qtask rolling: demo".into(),
//!     ensemble_daily: vec![DailyIc { date: "2020-01-02".into(), ic: 0.05, rank_ic: 0.04 }],
//!     ..ReportData::default()
//! };
//! let html = render(&data);
//! assert!(html.contains(r#"id="chart-cum-ic""#));
//! ```

#![warn(missing_docs)]

mod backtest;
mod chart;
mod escape;
mod format;
mod page;
mod series;

pub use backtest::{
    BacktestSection, RiskRow, SignalSection, render_backtest_page, render_backtest_sections,
    render_signal_sections,
};
pub use escape::escape;
pub use format::{MISSING, fmt_duration, fmt_sig4};
pub use series::{cumulative, downsample_indices};

use serde::{Deserialize, Serialize};

/// Most points drawn per line in the cumulative IC chart.
pub const MAX_LINE_POINTS: usize = chart::MAX_POINTS;
/// How many features the importance chart shows.
pub const TOP_FEATURES: usize = chart::TOP_N;

/// Everything the report shows.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ReportData {
    /// Page title, e.g. `qtask rolling: csi100_lgb`.
    pub title: String,
    /// Preformatted generation timestamp.
    pub generated_at: String,
    /// Experiment name.
    pub experiment: String,
    /// One row per task (rolling window).
    pub tasks: Vec<TaskRow>,
    /// IC and Rank IC of each window's predictions.
    pub windows: Vec<WindowMetrics>,
    /// The ensembled prediction's IC and Rank IC per day, in date order.
    pub ensemble_daily: Vec<DailyIc>,
    /// Metrics table rows: per-window values plus the ensemble's.
    pub metrics: Vec<MetricRow>,
    /// Feature importance (gain) by feature, any order; the chart shows the top 20.
    pub importance: Vec<(String, f64)>,
    /// Free text lines shown under the title.
    pub notes: Vec<String>,
    /// Signal diagnostics of the ensembled prediction (quantile returns, monthly IC, rank
    /// autocorrelation), when its labels are known.
    #[serde(default)]
    pub signal: Option<SignalSection>,
    /// The backtest of the ensembled prediction, when the study configures a `PortAnaRecord`.
    #[serde(default)]
    pub backtest: Option<BacktestSection>,
}

/// One task (window) of the study.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TaskRow {
    /// Display name of the task.
    pub name: String,
    /// Recorder run id.
    pub run_id: String,
    /// Task pool id, when the task came from a pool.
    pub task_id: Option<String>,
    /// Train segment `(start, end)`.
    pub train: Option<(String, String)>,
    /// Validation segment `(start, end)`.
    pub valid: Option<(String, String)>,
    /// Test segment `(start, end)`.
    pub test: Option<(String, String)>,
    /// Task status, e.g. `done` or `failed`.
    pub status: String,
    /// How many times the task was attempted.
    pub attempts: u32,
    /// Wall-clock duration in seconds, when known.
    pub duration_secs: Option<f64>,
}

/// Signal quality of one window's predictions.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct WindowMetrics {
    /// Window (task) name.
    pub name: String,
    /// Mean daily IC.
    pub ic: f64,
    /// IC information ratio (mean / std).
    pub icir: f64,
    /// Mean daily Rank IC.
    pub rank_ic: f64,
    /// Rank IC information ratio.
    pub rank_icir: f64,
}

/// IC and Rank IC of one day.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct DailyIc {
    /// Day as `YYYY-MM-DD`.
    pub date: String,
    /// Pearson IC of the day (NaN when undefined).
    pub ic: f64,
    /// Spearman Rank IC of the day (NaN when undefined).
    pub rank_ic: f64,
}

/// One row of the metrics table.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MetricRow {
    /// Metric name.
    pub name: String,
    /// Value per window, in window order.
    pub values: Vec<Option<f64>>,
    /// Value of the ensemble.
    pub ensemble: Option<f64>,
}

/// Renders the complete, self-contained HTML document.
pub fn render(data: &ReportData) -> String {
    page::render_page(data)
}
