//! The task's `record` list: Qlib's `SignalRecord` (predictions and labels of the test segment),
//! `SigAnaRecord` (daily IC and Rank IC, their summary metrics, long-short returns) and
//! `PortAnaRecord` (a daily backtest of the prediction, with qtask-backtest).

use std::collections::HashMap;

use chrono::NaiveDate;
use qtask_backtest::BacktestConfig;
use qtask_backtest::config::WeightMethod;
use qtask_data::Provider;
use qtask_data::dataset::Prepared;
use qtask_data::frame::Frame;
use qtask_record::Run;
use qtask_table::{DateSeries, PredTable, TableBuilder};
use serde_json::{Map, Value};

use crate::error::{ModelError, Result};
use crate::model::{Fitted, Segments, segment_text};
use crate::signal::{DayRows, IcSummary, long_short, nanmean, nanstd, pearson, spearman};

/// Record classes `task_train` knows.
pub const SUPPORTED_RECORDS: &[&str] = &["SignalRecord", "SigAnaRecord", "PortAnaRecord"];
pub use qtask_record::names::{LABEL_ARTIFACT, PRED_ARTIFACT};
/// Daily IC.
pub const IC_ARTIFACT: &str = "sig_analysis/ic.parquet";
/// Daily Rank IC.
pub const RIC_ARTIFACT: &str = "sig_analysis/ric.parquet";
/// The segment the records predict and analyse.
pub const TEST_SEGMENT: &str = "test";

/// One entry of the `record` list.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordSpec {
    /// `SignalRecord`.
    Signal,
    /// `SigAnaRecord(ana_long_short=False, ann_scaler=252, label_col=0)`.
    SigAna {
        /// Also compute long-short and long-average returns.
        ana_long_short: bool,
        /// Periods per year for annualising.
        ann_scaler: f64,
        /// Which label column to analyse.
        label_col: usize,
    },
    /// `PortAnaRecord(config)`: a daily backtest of the prediction.
    PortAna(Box<BacktestConfig>),
}

/// Qlib's frequencies of a daily portfolio analysis (`risk_analysis_freq`, ...): `day`,
/// `1day`, `1d`, or a list of them.
fn check_day_freq(what: &str, v: &Value) -> Result<()> {
    let ok = |x: &Value| matches!(x.as_str(), Some("day") | Some("1day") | Some("1d"));
    let fine = match v {
        Value::Null => true,
        Value::Array(a) => a.iter().all(ok),
        other => ok(other),
    };
    if fine {
        Ok(())
    } else {
        Err(ModelError::Invalid(format!(
            "PortAnaRecord: {what} `{v}` is not supported (daily analysis only)"
        )))
    }
}

fn kwargs_of<'a>(class: &str, v: &'a Value) -> Result<Option<&'a Map<String, Value>>> {
    match v.get("kwargs") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(other) => Err(ModelError::Invalid(format!(
            "{class}: `kwargs` must be a map, got {other}"
        ))),
    }
}

impl RecordSpec {
    /// Reads the task's `record` value: one record config or a list of them.
    pub fn list_from(v: Option<&Value>) -> Result<Vec<RecordSpec>> {
        match v {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(a)) => a.iter().map(RecordSpec::from_value).collect(),
            Some(one @ Value::Object(_)) => Ok(vec![RecordSpec::from_value(one)?]),
            Some(other) => Err(ModelError::Invalid(format!(
                "`record` must be a record config or a list of them, got {other}"
            ))),
        }
    }

    /// Reads `{"class": ..., "module_path": ... (ignored), "kwargs": {...}}`.
    pub fn from_value(v: &Value) -> Result<RecordSpec> {
        let class = v.get("class").and_then(Value::as_str).ok_or_else(|| {
            ModelError::Invalid(format!("a record config needs a `class`, got {v}"))
        })?;
        let kwargs = kwargs_of(class, v)?;
        let unknown = |k: &str| ModelError::Invalid(format!("{class}: unknown kwarg `{k}`"));
        match class {
            "SignalRecord" => {
                // model/dataset are `<MODEL>`/`<DATASET>` placeholders: the task's own.
                if let Some(k) = kwargs
                    .into_iter()
                    .flat_map(|m| m.keys())
                    .find(|k| !["model", "dataset", "recorder"].contains(&k.as_str()))
                {
                    return Err(unknown(k));
                }
                Ok(RecordSpec::Signal)
            }
            "SigAnaRecord" => {
                let mut spec = (false, 252.0, 0usize);
                for (k, val) in kwargs.into_iter().flatten() {
                    let bad =
                        || ModelError::Invalid(format!("SigAnaRecord: bad value {val} for `{k}`"));
                    match k.as_str() {
                        "ana_long_short" => spec.0 = val.as_bool().ok_or_else(bad)?,
                        "ann_scaler" => spec.1 = val.as_f64().ok_or_else(bad)?,
                        "label_col" => spec.2 = val.as_u64().ok_or_else(bad)? as usize,
                        "skip_existing" | "recorder" => {}
                        _ => return Err(unknown(k)),
                    }
                }
                Ok(RecordSpec::SigAna {
                    ana_long_short: spec.0,
                    ann_scaler: spec.1,
                    label_col: spec.2,
                })
            }
            "PortAnaRecord" => {
                let mut cfg = None;
                let mut method = WeightMethod::Mean;
                for (k, val) in kwargs.into_iter().flatten() {
                    match k.as_str() {
                        "config" if !val.is_null() => {
                            cfg = Some(BacktestConfig::from_port_analysis(val)?);
                        }
                        "config" => {}
                        "risk_analysis_freq" | "indicator_analysis_freq" => check_day_freq(k, val)?,
                        "indicator_analysis_method" if val.is_null() => {}
                        "indicator_analysis_method" => {
                            method =
                                WeightMethod::parse("PortAnaRecord indicator_analysis_method", val)?
                        }
                        "skip_existing" | "recorder" => {}
                        _ => return Err(unknown(k)),
                    }
                }
                let mut cfg = cfg.unwrap_or_else(BacktestConfig::port_analysis_default);
                cfg.indicator_method = method;
                Ok(RecordSpec::PortAna(Box::new(cfg)))
            }
            other => Err(ModelError::Invalid(format!(
                "unknown record class `{other}` (supported: {})",
                SUPPORTED_RECORDS.join(", ")
            ))),
        }
    }
}

/// What the records of one task produced, passed from one record to the next (Qlib's records
/// reload them from the run; keeping them in memory saves the round trip).
#[derive(Default)]
pub struct RecordState {
    /// `SignalRecord`'s predictions.
    pub pred: Option<PredTable>,
    /// `SignalRecord`'s labels (all label columns of the raw data).
    pub label: Option<PredTable>,
    /// Metrics logged by the records.
    pub metrics: Vec<(String, f64)>,
}

fn ns(d: NaiveDate) -> i64 {
    d.and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        .and_utc()
        .timestamp_nanos_opt()
        .expect("dates of market data fit in nanoseconds")
}

impl RecordSpec {
    /// Checks the record against the market data before any training (a portfolio
    /// analysis' benchmark and exchange universe must exist).
    pub fn check_data(&self, provider: &Provider) -> Result<()> {
        match self {
            RecordSpec::PortAna(cfg) => Ok(cfg.check_data(provider)?),
            _ => Ok(()),
        }
    }

    /// Runs the record on a fitted model and its dataset, saving into `run`.
    pub fn generate(
        &self,
        model: &Fitted,
        test: Option<&TestSegment>,
        provider: &Provider,
        run: &Run,
        state: &mut RecordState,
    ) -> Result<()> {
        match self {
            RecordSpec::Signal => {
                let test = test.ok_or_else(|| {
                    ModelError::Invalid("SignalRecord: the test segment was not prepared".into())
                })?;
                signal_record(model, test, run, state)
            }
            RecordSpec::SigAna {
                ana_long_short,
                ann_scaler,
                label_col,
            } => sig_ana_record(run, state, *ana_long_short, *ann_scaler, *label_col),
            RecordSpec::PortAna(cfg) => port_ana_record(provider, cfg, run, state),
        }
    }
}

/// Qlib's `PortAnaRecord`: backtests the task's prediction (`<PRED>`, or `[<MODEL>,
/// <DATASET>]` on the test segment: the same scores), saves `portfolio_analysis/` and logs
/// `1day.excess_return_with_cost.annualized_return` and the other figures as Qlib names them.
/// With no `start_time`/`end_time` the backtest spans the prediction (to the trading day
/// after its last), as Qlib's.
fn port_ana_record(
    provider: &Provider,
    cfg: &BacktestConfig,
    run: &Run,
    state: &mut RecordState,
) -> Result<()> {
    let pred = match state.pred.take() {
        Some(p) => p,
        None => {
            let bytes = run.load_artifact_bytes(PRED_ARTIFACT).map_err(|e| {
                ModelError::Invalid(format!(
                    "PortAnaRecord needs `{PRED_ARTIFACT}` from SignalRecord (put SignalRecord \
                     first): {e}"
                ))
            })?;
            PredTable::from_parquet_bytes(&bytes)?
        }
    };
    let result = qtask_backtest::backtest(provider, &pred, cfg);
    state.pred = Some(pred);
    let result = result?;
    for (path, bytes) in result.record_artifacts()? {
        run.save_artifact_bytes(&path, &bytes)?;
    }
    let metrics = result.metrics();
    run.log_metrics(&metrics, 0)?;
    state.metrics.extend(metrics);
    Ok(())
}

/// The test segment as the records read it: infer data to predict on and the raw labels,
/// taken out of the dataset before training so the dataset need not outlive it.
pub struct TestSegment {
    /// Infer data (Qlib's `predict` reads `DK_I`).
    pub infer: Prepared,
    /// Labels as computed (raw data, as Qlib's `generate_label` takes them).
    pub raw_labels: Prepared,
}

impl TestSegment {
    /// The test segment from its infer frame and raw labels; a segment with no rows is an
    /// error (`segments` names its dates).
    pub fn new(
        infer: &Frame,
        raw_labels: Prepared,
        n_features: usize,
        segments: &Segments,
    ) -> Result<TestSegment> {
        if infer.is_empty() {
            return Err(ModelError::Data(format!(
                "segment `{TEST_SEGMENT}` {} has no data to predict",
                segment_text(segments, TEST_SEGMENT)
            )));
        }
        Ok(TestSegment {
            infer: Prepared::from_frame(infer, n_features),
            raw_labels,
        })
    }
}

fn signal_record(
    model: &Fitted,
    test: &TestSegment,
    run: &Run,
    state: &mut RecordState,
) -> Result<()> {
    let rows = &test.infer;
    let scores = model.predict(rows)?;
    let mut b = TableBuilder::new(["score"]);
    b.reserve(rows.len());
    for ((d, inst), s) in rows.datetime.iter().zip(&rows.instruments).zip(&scores) {
        b.push_ns(ns(*d), inst, &[*s])?;
    }
    let pred = b.finish();
    run.save_artifact_bytes(PRED_ARTIFACT, &pred.to_parquet_bytes()?)?;

    let raw = &test.raw_labels;
    let names: Vec<String> = if raw.label_names.len() == 1 {
        vec!["label".to_string()]
    } else {
        raw.label_names.clone()
    };
    let k = raw.label_names.len();
    let mut b = TableBuilder::new(names);
    b.reserve(raw.len());
    for (r, (d, inst)) in raw.datetime.iter().zip(&raw.instruments).enumerate() {
        let vals: Vec<f64> = raw.labels[r * k..(r + 1) * k]
            .iter()
            .map(|&v| f64::from(v))
            .collect();
        b.push_ns(ns(*d), inst, &vals)?;
    }
    let label = b.finish();
    if k > 0 {
        run.save_artifact_bytes(LABEL_ARTIFACT, &label.to_parquet_bytes()?)?;
    }
    state.pred = Some(pred);
    state.label = (k > 0).then_some(label);
    Ok(())
}

fn load_table(run: &Run, artifact: &str) -> Result<PredTable> {
    let bytes = run.load_artifact_bytes(artifact).map_err(|e| {
        ModelError::Invalid(format!(
            "SigAnaRecord needs `{artifact}` from SignalRecord (put SignalRecord first): {e}"
        ))
    })?;
    Ok(PredTable::from_parquet_bytes(&bytes)?)
}

/// Daily IC and Rank IC of a prediction against a label, joined on (datetime, instrument):
/// one entry per datetime of the prediction, in time order.
pub fn daily_ic(pred: &PredTable, label: &PredTable, label_col: usize) -> Result<DailyIc> {
    Ok(ic_of_days(&join_by_day(pred, label, label_col)?))
}

fn ic_of_days(days: &DayPairs) -> DailyIc {
    let mut out = DailyIc::default();
    for (day, (p, l)) in days {
        out.datetimes_ns.push(*day);
        out.ic.push(pearson(p, l));
        out.rank_ic.push(spearman(p, l));
    }
    out
}

/// Daily IC and Rank IC series.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DailyIc {
    /// Days, nanoseconds since the epoch.
    pub datetimes_ns: Vec<i64>,
    /// Pearson IC per day.
    pub ic: Vec<f64>,
    /// Spearman Rank IC per day.
    pub rank_ic: Vec<f64>,
}

type DayPairs = Vec<(i64, (Vec<f64>, Vec<f64>))>;

/// The prediction's rows grouped by day with the label of each row (NaN when the label table
/// has no such row, as pandas' index alignment gives).
fn join_by_day(pred: &PredTable, label: &PredTable, label_col: usize) -> Result<DayPairs> {
    if label_col >= label.column_names().len() {
        return Err(ModelError::Invalid(format!(
            "SigAnaRecord: label_col {label_col} but the label has {} column(s)",
            label.column_names().len()
        )));
    }
    let lv = label.column_at(label_col);
    let mut index: HashMap<(i64, &str), f64> = HashMap::with_capacity(label.len());
    for (r, v) in lv.iter().enumerate() {
        index.insert((label.datetimes_ns()[r], label.instrument(r)), *v);
    }
    let pv = pred.column_at(0);
    let mut rows: Vec<usize> = (0..pred.len()).collect();
    rows.sort_by_key(|&r| pred.datetimes_ns()[r]);
    let mut out: DayPairs = Vec::new();
    for r in rows {
        let day = pred.datetimes_ns()[r];
        let l = index
            .get(&(day, pred.instrument(r)))
            .copied()
            .unwrap_or(f64::NAN);
        match out.last_mut() {
            Some((d, (p, ls))) if *d == day => {
                p.push(pv[r]);
                ls.push(l);
            }
            _ => out.push((day, (vec![pv[r]], vec![l]))),
        }
    }
    Ok(out)
}

fn sig_ana_record(
    run: &Run,
    state: &mut RecordState,
    ana_long_short: bool,
    ann_scaler: f64,
    label_col: usize,
) -> Result<()> {
    let pred = match state.pred.take() {
        Some(p) => p,
        None => load_table(run, PRED_ARTIFACT)?,
    };
    let label = match state.label.take() {
        Some(l) => l,
        None => load_table(run, LABEL_ARTIFACT)?,
    };
    let days = join_by_day(&pred, &label, label_col)?;
    let daily = ic_of_days(&days);
    let summary = IcSummary::of(&daily.ic, &daily.rank_ic);
    let mut metrics = summary.metrics();
    let series = |name: &str, values: &[f64]| DateSeries {
        name: name.to_string(),
        datetimes_ns: daily.datetimes_ns.clone(),
        values: values.to_vec(),
    };
    run.save_artifact_bytes(IC_ARTIFACT, &series("IC", &daily.ic).to_parquet_bytes()?)?;
    run.save_artifact_bytes(
        RIC_ARTIFACT,
        &series("Rank IC", &daily.rank_ic).to_parquet_bytes()?,
    )?;
    if ana_long_short {
        let (ls, avg): (Vec<f64>, Vec<f64>) = days
            .iter()
            .map(|(_, (p, l))| long_short(DayRows { pred: p, label: l }, 0.2))
            .unzip();
        let sharpe = |x: &[f64]| nanmean(x) / nanstd(x) * ann_scaler.sqrt();
        metrics.extend([
            (
                "Long-Short Ann Return".to_string(),
                nanmean(&ls) * ann_scaler,
            ),
            ("Long-Short Ann Sharpe".to_string(), sharpe(&ls)),
            (
                "Long-Avg Ann Return".to_string(),
                nanmean(&avg) * ann_scaler,
            ),
            ("Long-Avg Ann Sharpe".to_string(), sharpe(&avg)),
        ]);
        run.save_artifact_bytes(
            "sig_analysis/long_short_r.parquet",
            &series("long_short_r", &ls).to_parquet_bytes()?,
        )?;
        run.save_artifact_bytes(
            "sig_analysis/long_avg_r.parquet",
            &series("long_avg_r", &avg).to_parquet_bytes()?,
        )?;
    }
    // MLflow refuses NaN metrics from some clients; Qlib logs them anyway, so do we.
    run.log_metrics(&metrics, 0)?;
    state.metrics.extend(metrics);
    state.pred = Some(pred);
    state.label = Some(label);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use qtask_backtest::StrategyConfig;
    use serde_json::json;

    #[test]
    fn port_ana_record_takes_qlibs_config_or_its_default() {
        let spec = RecordSpec::from_value(&json!({"class": "PortAnaRecord"})).unwrap();
        let RecordSpec::PortAna(cfg) = spec else {
            panic!("not a PortAnaRecord")
        };
        assert_eq!(cfg.strategy.topk(), 50);
        assert_eq!(cfg.account.cash, 1e8);
        assert_eq!(cfg.exchange.open_cost, 0.0005);
        let spec = RecordSpec::from_value(&json!({
            "class": "PortAnaRecord",
            "module_path": "qlib.workflow.record_temp",
            "kwargs": {
                "config": {
                    "strategy": {"class": "TopkDropoutStrategy",
                                 "kwargs": {"signal": "<PRED>", "topk": 10, "n_drop": 2}},
                    "executor": {"class": "SimulatorExecutor", "module_path": "qlib.backtest.executor",
                                 "kwargs": {"time_per_step": "day", "generate_portfolio_metrics": true}},
                    "backtest": {"start_time": null, "end_time": null, "account": 5000000,
                                 "benchmark": "SH000905", "exchange_kwargs": {"deal_price": "open"}}
                },
                "risk_analysis_freq": "day",
                "indicator_analysis_method": "value_weighted"
            }
        }))
        .unwrap();
        let RecordSpec::PortAna(cfg) = spec else {
            panic!("not a PortAnaRecord")
        };
        assert!(matches!(&cfg.strategy, StrategyConfig::TopkDropoutStrategy(s) if s.topk == 10));
        assert_eq!(cfg.start, None);
        assert_eq!(cfg.exchange.deal_price.buy, "$open");
        assert_eq!(cfg.indicator_method, WeightMethod::ValueWeighted);
    }

    #[test]
    fn port_ana_record_refuses_intraday_analysis() {
        let err = RecordSpec::from_value(&json!({
            "class": "PortAnaRecord", "kwargs": {"risk_analysis_freq": ["day", "30min"]}
        }))
        .unwrap_err()
        .to_string();
        assert!(err.contains("daily analysis only"), "{err}");
    }
}
