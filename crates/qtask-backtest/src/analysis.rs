//! Signal analysis next to the backtest, as Qlib's `model_performance_graph` computes it
//! (`qlib/contrib/report/analysis_model/analysis_model_performance.py`): the daily return of
//! each score quantile and of long-short / long-average (`_group_return`), the daily IC and
//! Rank IC with their monthly means (`_pred_ic`), the score's rank autocorrelation
//! (`_pred_autocorr`) and the turnover of the top and bottom quantiles (`_pred_turnover`).

use std::collections::{BTreeMap, HashMap};

use chrono::{Datelike, NaiveDate};
use qtask_data::{Instruments, Program, Provider, Query};
use qtask_table::{PredTable, TableBuilder, ns_to_datetime};
use serde::Serialize;

use crate::error::{BacktestError, Result};
use crate::numeric::nanmean;
use crate::signal::score_column;

/// Qlib's default label (Alpha158's): the return from the next day's close to the one after.
pub const DEFAULT_LABEL: &str = "Ref($close, -2)/Ref($close, -1) - 1";

/// One day's rows: score, label, the instrument's previous score.
struct DayRows {
    date: NaiveDate,
    score: Vec<f64>,
    label: Vec<f64>,
    last: Vec<f64>,
}

/// The signal diagnostics of a prediction against a label.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SignalAnalysis {
    /// Number of quantile groups (5).
    pub groups: usize,
    /// Days of the group returns (days where some group has a return).
    pub group_dates: Vec<NaiveDate>,
    /// Daily mean label of each group, `Group1` (highest scores) first, then `long-short`
    /// (Group1 - GroupN) and `long-average` (Group1 - the day's mean label).
    pub group_returns: Vec<(String, Vec<f64>)>,
    /// Days of the IC series.
    pub ic_dates: Vec<NaiveDate>,
    /// Pearson IC per day.
    pub ic: Vec<f64>,
    /// Spearman Rank IC per day.
    pub rank_ic: Vec<f64>,
    /// Mean IC per month, every month of every year covered (NaN where none): (year, month, IC).
    pub monthly_ic: Vec<(i32, u32, f64)>,
    /// Days of the autocorrelation and turnover series.
    pub dates: Vec<NaiveDate>,
    /// Correlation of the score's percentile rank with the previous day's.
    pub rank_autocorr: Vec<f64>,
    /// Share of the top quantile that was not in the previous day's top quantile.
    pub turnover_top: Vec<f64>,
    /// Share of the bottom quantile that was not in the previous day's bottom quantile.
    pub turnover_bottom: Vec<f64>,
}

/// pandas' Pearson correlation over the pairs where both are present.
pub fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let (x, y): (Vec<f64>, Vec<f64>) = a
        .iter()
        .zip(b)
        .filter(|(p, q)| !p.is_nan() && !q.is_nan())
        .map(|(p, q)| (*p, *q))
        .unzip();
    let n = x.len();
    if n < 2 {
        return f64::NAN;
    }
    let mx = x.iter().sum::<f64>() / n as f64;
    let my = y.iter().sum::<f64>() / n as f64;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (p, q) in x.iter().zip(&y) {
        sxy += (p - mx) * (q - my);
        sxx += (p - mx) * (p - mx);
        syy += (q - my) * (q - my);
    }
    let d = (sxx * syy).sqrt();
    if d == 0.0 {
        f64::NAN
    } else {
        (sxy / d).clamp(-1.0, 1.0)
    }
}

/// Average ranks (1-based) of the present values; NaN stays NaN.
fn ranks(x: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..x.len()).filter(|&i| !x[i].is_nan()).collect();
    idx.sort_by(|&i, &j| x[i].total_cmp(&x[j]));
    let mut out = vec![f64::NAN; x.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i + 1;
        while j < idx.len() && x[idx[j]] == x[idx[i]] {
            j += 1;
        }
        let r = (i + j + 1) as f64 / 2.0;
        for &k in &idx[i..j] {
            out[k] = r;
        }
        i = j;
    }
    out
}

/// pandas' Spearman correlation: ranks of the complete pairs, then Pearson.
pub fn spearman(a: &[f64], b: &[f64]) -> f64 {
    let (x, y): (Vec<f64>, Vec<f64>) = a
        .iter()
        .zip(b)
        .filter(|(p, q)| !p.is_nan() && !q.is_nan())
        .map(|(p, q)| (*p, *q))
        .unzip();
    pearson(&ranks(&x), &ranks(&y))
}

/// `rank(pct=True)`: average rank over the count of present values.
fn pct_ranks(x: &[f64]) -> Vec<f64> {
    let n = x.iter().filter(|v| !v.is_nan()).count() as f64;
    ranks(x).into_iter().map(|r| r / n).collect()
}

/// The first `k` rows of `nlargest` (`largest`) or `nsmallest`: present values sorted
/// (ties in row order), then the NaN rows in row order.
fn select_n(x: &[f64], k: usize, largest: bool) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..x.len()).filter(|&i| !x[i].is_nan()).collect();
    if largest {
        idx.sort_by(|&i, &j| x[j].total_cmp(&x[i]));
    } else {
        idx.sort_by(|&i, &j| x[i].total_cmp(&x[j]));
    }
    idx.extend((0..x.len()).filter(|&i| x[i].is_nan()));
    idx.truncate(k);
    idx
}

fn turnover(day: &DayRows, n_groups: usize, largest: bool) -> f64 {
    let k = day.score.len() / n_groups;
    let now = select_n(&day.score, k, largest);
    let before = select_n(&day.last, k, largest);
    let kept = now.iter().filter(|i| before.contains(i)).count();
    1.0 - kept as f64 / k as f64
}

fn date_of(ns: i64) -> NaiveDate {
    ns_to_datetime(ns).date()
}

impl SignalAnalysis {
    /// Analyses `pred` (its `score` column) against `label` (its `label` column, else its
    /// first), joined on (datetime, instrument) as Qlib's `pred_label` frame is, with `groups`
    /// quantiles (Qlib's `N`, 5).
    pub fn compute(pred: &PredTable, label: &PredTable, groups: usize) -> Result<SignalAnalysis> {
        if groups == 0 {
            return Err(BacktestError::Config(
                "signal analysis needs at least 1 group".into(),
            ));
        }
        let scores = score_column(pred)?;
        let labels = match label.column("label") {
            Some(c) => c,
            None if !label.column_names().is_empty() => label.column_at(0),
            None => return Err(BacktestError::Input("the label table has no column".into())),
        };
        let mut label_of: HashMap<(i64, &str), f64> = HashMap::with_capacity(label.len());
        for (r, v) in labels.iter().enumerate() {
            label_of.insert((label.datetimes_ns()[r], label.instrument(r)), *v);
        }
        let mut order: Vec<usize> = (0..pred.len()).collect();
        order.sort_by(|&a, &b| {
            (pred.datetimes_ns()[a], pred.instrument(a))
                .cmp(&(pred.datetimes_ns()[b], pred.instrument(b)))
        });
        // score_last: the instrument's previous row (groupby(instrument).shift(1)).
        let mut prev: HashMap<&str, f64> = HashMap::new();
        let mut days: Vec<DayRows> = Vec::new();
        let mut current_ns = None;
        for r in order {
            let t = pred.datetimes_ns()[r];
            let inst = pred.instrument(r);
            if current_ns != Some(t) {
                days.push(DayRows {
                    date: date_of(t),
                    score: Vec::new(),
                    label: Vec::new(),
                    last: Vec::new(),
                });
                current_ns = Some(t);
            }
            let day = days.last_mut().expect("a day was pushed");
            day.score.push(scores[r]);
            day.label
                .push(label_of.get(&(t, inst)).copied().unwrap_or(f64::NAN));
            day.last
                .push(prev.insert(inst, scores[r]).unwrap_or(f64::NAN));
        }
        let mut out = SignalAnalysis {
            groups,
            ..SignalAnalysis::default()
        };
        let mut cols: Vec<Vec<f64>> = vec![Vec::new(); groups + 2];
        for day in &days {
            let mut ranked: Vec<usize> = (0..day.score.len())
                .filter(|&i| !day.score[i].is_nan())
                .collect();
            ranked.sort_by(|&i, &j| day.score[j].total_cmp(&day.score[i]));
            let k = ranked.len() / groups;
            let mut row: Vec<f64> = (0..groups)
                .map(|g| {
                    let part: Vec<f64> = ranked[k * g..k * (g + 1)]
                        .iter()
                        .map(|&i| day.label[i])
                        .collect();
                    nanmean(&part)
                })
                .collect();
            row.push(row[0] - row[groups - 1]);
            row.push(row[0] - nanmean(&day.label));
            if row.iter().all(|v| v.is_nan()) {
                continue;
            }
            out.group_dates.push(day.date);
            for (c, v) in cols.iter_mut().zip(row) {
                c.push(v);
            }
        }
        let names = (1..=groups)
            .map(|g| format!("Group{g}"))
            .chain(["long-short".to_string(), "long-average".to_string()]);
        out.group_returns = names.zip(cols).collect();

        let mut monthly: BTreeMap<(i32, u32), Vec<f64>> = BTreeMap::new();
        for day in &days {
            let ic = pearson(&day.label, &day.score);
            out.ic_dates.push(day.date);
            out.ic.push(ic);
            out.rank_ic.push(spearman(&day.label, &day.score));
            monthly
                .entry((day.date.year(), day.date.month()))
                .or_default()
                .push(ic);
            out.dates.push(day.date);
            out.rank_autocorr
                .push(pearson(&pct_ranks(&day.score), &pct_ranks(&day.last)));
            out.turnover_top.push(turnover(day, groups, true));
            out.turnover_bottom.push(turnover(day, groups, false));
        }
        if let (Some(first), Some(last)) = (days.first(), days.last()) {
            for year in first.date.year()..=last.date.year() {
                for month in 1..=12 {
                    let v = monthly.get(&(year, month)).map_or(f64::NAN, |v| nanmean(v));
                    out.monthly_ic.push((year, month, v));
                }
            }
        }
        Ok(out)
    }

    /// The running sum of a daily series (NaN days add nothing), as Qlib plots cumulative
    /// returns (`cumsum`, not compounded).
    pub fn cumulative(values: &[f64]) -> Vec<f64> {
        let mut s = 0.0;
        values
            .iter()
            .map(|v| {
                if !v.is_nan() {
                    s += v;
                }
                s
            })
            .collect()
    }
}

/// Qlib's default label for `pred`'s rows, computed from the market data: a table keyed like
/// `pred` with one column `label` (NaN where the data cannot give it).
pub fn default_label(provider: &Provider, pred: &PredTable) -> Result<PredTable> {
    let Some((lo, hi)) = pred.datetime_range() else {
        return Ok(PredTable::empty(["label"]));
    };
    let cal = provider.calendar();
    let known: Vec<String> = pred
        .instruments()
        .iter()
        .filter(|s| provider.symbol_dir(s).is_ok_and(|d| d.is_dir()))
        .cloned()
        .collect();
    let program = Program::compile(&[("label".to_string(), DEFAULT_LABEL.to_string())])?;
    let start = lo.date().max(cal[0]);
    let end = hi.date().min(cal[cal.len() - 1]);
    let mut values: HashMap<(NaiveDate, String), f64> = HashMap::new();
    if !known.is_empty() && start <= end {
        let q = Query {
            instruments: Instruments::List(known),
            start: Some(start),
            end: Some(end),
        };
        let frame = qtask_data::compute(provider, &program, &q, &|| {})?;
        for r in 0..frame.len() {
            values.insert(
                (frame.datetime[r], frame.symbol(r).to_string()),
                f64::from(frame.data[0][r]),
            );
        }
    }
    let mut b = TableBuilder::new(["label"]);
    b.reserve(pred.len());
    for r in 0..pred.len() {
        let t = pred.datetimes_ns()[r];
        let v = values
            .get(&(date_of(t), pred.instrument(r).to_uppercase()))
            .copied()
            .unwrap_or(f64::NAN);
        b.push_ns(t, pred.instrument(r), &[v])?;
    }
    Ok(b.finish())
}
