//! What a backtest produces, and its files: the daily report (`report_normal`), the positions,
//! the trade indicators and the risk analysis, as Parquet and JSON.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use qtask_table::{DateFrame, PredTable, TableBuilder};
use serde::Serialize;
use serde_json::{Value, json};

use crate::account::{IndicatorRow, PositionSnapshot, ReportRow};
use crate::config::BacktestConfig;
use crate::error::{BacktestError, Result};
use crate::risk::{IndicatorAnalysis, RiskReport};

/// Qlib's frequency tag of daily results (`report_normal_1day`, `1day.ffr`).
pub const FREQ: &str = "1day";

/// The report file of `qtask backtest` (a `datetime` column plus Qlib's report columns).
pub const REPORT_FILE: &str = "report_normal.parquet";
/// The positions file (datetime, instrument, amount, price, weight, count_day).
pub const POSITIONS_FILE: &str = "positions.parquet";
/// The risk analysis file.
pub const RISK_FILE: &str = "risk.json";
/// The daily trade indicators file.
pub const INDICATORS_FILE: &str = "indicators.parquet";
/// The trade indicators' summary.
pub const INDICATOR_ANALYSIS_FILE: &str = "indicator_analysis.json";
/// The HTML report.
pub const HTML_FILE: &str = "report.html";

/// Columns of the daily report, in Qlib's order.
pub const REPORT_COLUMNS: [&str; 9] = [
    "account",
    "return",
    "total_turnover",
    "turnover",
    "total_cost",
    "cost",
    "value",
    "cash",
    "bench",
];

/// A finished backtest.
#[derive(Debug, Clone, Serialize)]
pub struct BacktestResult {
    /// The configured start (before alignment to the calendar).
    pub start: NaiveDate,
    /// The configured end.
    pub end: NaiveDate,
    /// The configuration it ran with.
    pub config: BacktestConfig,
    /// The NumPy seed random buying/selling used (`None` when nothing was random).
    pub seed: Option<u32>,
    /// One row per trading day (Qlib's `report_normal`).
    pub report: Vec<ReportRow>,
    /// The position at each day's end.
    pub positions: Vec<PositionSnapshot>,
    /// Trade indicators per day.
    pub indicators: Vec<IndicatorRow>,
    /// Risk of the excess return without and with costs.
    pub risk: RiskReport,
    /// Trade indicators over the whole run.
    pub indicator_analysis: IndicatorAnalysis,
}

fn ns(d: NaiveDate) -> i64 {
    d.and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        .and_utc()
        .timestamp_nanos_opt()
        .expect("market dates fit in nanoseconds")
}

impl BacktestResult {
    /// The trading days.
    pub fn dates(&self) -> Vec<NaiveDate> {
        self.report.iter().map(|r| r.date).collect()
    }

    /// The daily report as a date-indexed frame with Qlib's column names.
    pub fn report_frame(&self) -> DateFrame {
        let col = |f: fn(&ReportRow) -> f64| self.report.iter().map(f).collect::<Vec<f64>>();
        let values: [Vec<f64>; 9] = [
            col(|r| r.account),
            col(|r| r.ret),
            col(|r| r.total_turnover),
            col(|r| r.turnover),
            col(|r| r.total_cost),
            col(|r| r.cost),
            col(|r| r.value),
            col(|r| r.cash),
            col(|r| r.bench),
        ];
        DateFrame {
            datetimes_ns: self.report.iter().map(|r| ns(r.date)).collect(),
            columns: REPORT_COLUMNS
                .iter()
                .map(|s| s.to_string())
                .zip(values)
                .collect(),
        }
    }

    /// The positions, one row per holding per day.
    pub fn positions_table(&self) -> Result<PredTable> {
        let mut b = TableBuilder::new(["amount", "price", "weight", "count_day"]);
        b.reserve(self.positions.iter().map(|p| p.holdings.len()).sum());
        for p in &self.positions {
            for h in &p.holdings {
                b.push_ns(
                    ns(p.date),
                    &h.instrument,
                    &[h.amount, h.price, h.weight, f64::from(h.count_day)],
                )?;
            }
        }
        Ok(b.finish())
    }

    /// The daily trade indicators as a date-indexed frame.
    pub fn indicators_frame(&self) -> DateFrame {
        let col = |f: fn(&IndicatorRow) -> f64| self.indicators.iter().map(f).collect::<Vec<f64>>();
        DateFrame {
            datetimes_ns: self.indicators.iter().map(|r| ns(r.date)).collect(),
            columns: vec![
                ("ffr".into(), col(|r| r.ffr)),
                ("pa".into(), col(|r| r.pa)),
                ("pos".into(), col(|r| r.pos)),
                ("deal_amount".into(), col(|r| r.deal_amount)),
                ("value".into(), col(|r| r.value)),
                ("count".into(), col(|r| r.count)),
            ],
        }
    }

    /// `{"excess_return_without_cost": {mean, std, annualized_return, information_ratio,
    /// max_drawdown}, "excess_return_with_cost": {...}}` (NaN as null).
    pub fn risk_json(&self) -> Value {
        let block = |r: &crate::risk::RiskAnalysis| {
            let mut m = serde_json::Map::new();
            for (k, v) in r.entries() {
                m.insert(k.to_string(), json_num(v));
            }
            Value::Object(m)
        };
        json!({
            "excess_return_without_cost": block(&self.risk.excess_return_without_cost),
            "excess_return_with_cost": block(&self.risk.excess_return_with_cost),
        })
    }

    /// `{"ffr", "pa", "pos"}` over the whole run.
    pub fn indicator_analysis_json(&self) -> Value {
        let a = &self.indicator_analysis;
        json!({"ffr": json_num(a.ffr), "pa": json_num(a.pa), "pos": json_num(a.pos)})
    }

    /// The metrics as `PortAnaRecord` logs them: `1day.excess_return_without_cost.mean`, ...,
    /// `1day.ffr`, `1day.pa`, `1day.pos`.
    pub fn metrics(&self) -> Vec<(String, f64)> {
        let mut out = Vec::new();
        for (name, r) in [
            (
                "excess_return_without_cost",
                &self.risk.excess_return_without_cost,
            ),
            (
                "excess_return_with_cost",
                &self.risk.excess_return_with_cost,
            ),
        ] {
            for (k, v) in r.entries() {
                out.push((format!("{FREQ}.{name}.{k}"), v));
            }
        }
        let a = &self.indicator_analysis;
        out.extend([
            (format!("{FREQ}.ffr"), a.ffr),
            (format!("{FREQ}.pa"), a.pa),
            (format!("{FREQ}.pos"), a.pos),
        ]);
        out
    }

    /// The files of `qtask backtest`'s output folder (without the HTML page).
    pub fn files(&self) -> Result<Vec<(&'static str, Vec<u8>)>> {
        Ok(vec![
            (REPORT_FILE, self.report_frame().to_parquet_bytes()?),
            (POSITIONS_FILE, self.positions_table()?.to_parquet_bytes()?),
            (RISK_FILE, pretty(&self.risk_json())),
            (INDICATORS_FILE, self.indicators_frame().to_parquet_bytes()?),
            (
                INDICATOR_ANALYSIS_FILE,
                pretty(&self.indicator_analysis_json()),
            ),
        ])
    }

    /// `PortAnaRecord`'s artifacts under `portfolio_analysis/`, with Qlib's stems
    /// (`report_normal_1day`, `positions_normal_1day`, `port_analysis_1day`,
    /// `indicators_normal_1day`, `indicator_analysis_1day`) and open formats.
    pub fn record_artifacts(&self) -> Result<Vec<(String, Vec<u8>)>> {
        let dir = "portfolio_analysis";
        Ok(vec![
            (
                format!("{dir}/report_normal_{FREQ}.parquet"),
                self.report_frame().to_parquet_bytes()?,
            ),
            (
                format!("{dir}/positions_normal_{FREQ}.parquet"),
                self.positions_table()?.to_parquet_bytes()?,
            ),
            (
                format!("{dir}/port_analysis_{FREQ}.json"),
                pretty(&self.risk_json()),
            ),
            (
                format!("{dir}/indicators_normal_{FREQ}.parquet"),
                self.indicators_frame().to_parquet_bytes()?,
            ),
            (
                format!("{dir}/indicator_analysis_{FREQ}.json"),
                pretty(&self.indicator_analysis_json()),
            ),
        ])
    }
}

fn json_num(v: f64) -> Value {
    serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number)
}

fn pretty(v: &Value) -> Vec<u8> {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_default();
    s.push('\n');
    s.into_bytes()
}

/// Writes `files` into the folder `out` whole or not at all: they go to a temporary sibling
/// folder that is renamed into place (an existing `out` folder is replaced only then).
pub fn write_folder(out: &Path, files: &[(&str, Vec<u8>)]) -> Result<()> {
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = out
        .file_name()
        .ok_or_else(|| BacktestError::Config(format!("{} is not a folder name", out.display())))?
        .to_string_lossy()
        .to_string();
    if out.exists() && !out.is_dir() {
        return Err(BacktestError::Config(format!(
            "{} exists and is not a folder",
            out.display()
        )));
    }
    std::fs::create_dir_all(parent).map_err(|e| BacktestError::io(parent, e))?;
    let tmp: PathBuf = parent.join(format!(".{name}.tmp{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let written = (|| -> Result<()> {
        std::fs::create_dir(&tmp).map_err(|e| BacktestError::io(&tmp, e))?;
        for (file, bytes) in files {
            let p = tmp.join(file);
            std::fs::write(&p, bytes).map_err(|e| BacktestError::io(&p, e))?;
        }
        Ok(())
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    let old = parent.join(format!(".{name}.old{}", std::process::id()));
    let had_old = out.exists();
    if had_old {
        std::fs::rename(out, &old).map_err(|e| BacktestError::io(out, e))?;
    }
    if let Err(e) = std::fs::rename(&tmp, out) {
        if had_old {
            let _ = std::fs::rename(&old, out);
        }
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(BacktestError::io(out, e));
    }
    if had_old {
        let _ = std::fs::remove_dir_all(&old);
    }
    Ok(())
}
