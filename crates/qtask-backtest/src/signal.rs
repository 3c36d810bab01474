//! The strategy's view of a prediction table (Qlib's `SignalWCache.get_signal`): on trading
//! day `i`, the scores dated in `[cal[i-1], cal[i])`, the last non-NaN one per instrument.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use qtask_table::PredTable;

use crate::error::{BacktestError, Result};
use crate::quote::Codes;

/// Scores per trading step.
#[derive(Debug, Clone, Default)]
pub struct Signal {
    /// Calendar index of the trade day -> (instrument id, score) sorted by id.
    by_day: BTreeMap<usize, Vec<(u32, f64)>>,
}

fn ns_of(d: NaiveDate) -> i64 {
    d.and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        .and_utc()
        .timestamp_nanos_opt()
        .unwrap_or(i64::MAX)
}

/// The score column of a prediction: `score` when present, else the only column.
pub fn score_column(pred: &PredTable) -> Result<&[f64]> {
    if let Some(c) = pred.column("score") {
        return Ok(c);
    }
    match pred.column_names() {
        [_] => Ok(pred.column_at(0)),
        names => Err(BacktestError::Input(format!(
            "the prediction has no `score` column (columns: {})",
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        ))),
    }
}

impl Signal {
    /// Groups the prediction by the trading day whose decision reads it: a score dated `t`
    /// serves the first trading day after `t` (Qlib shifts the signal by one step).
    pub fn new(pred: &PredTable, calendar: &[NaiveDate], codes: &Codes) -> Result<Signal> {
        let scores = score_column(pred)?;
        let cal_ns: Vec<i64> = calendar.iter().map(|d| ns_of(*d)).collect();
        // (day, instrument) -> (datetime, score) of the latest non-NaN score (or NaN).
        let mut last: BTreeMap<(usize, u32), (i64, f64)> = BTreeMap::new();
        for (r, &s) in scores.iter().enumerate() {
            let t = pred.datetimes_ns()[r];
            let i = cal_ns.partition_point(|c| *c <= t);
            if i == 0 || i >= cal_ns.len() {
                // Before the calendar, or after its last day: no trading day reads it.
                continue;
            }
            let Some(id) = codes.id(&pred.instrument(r).trim().to_uppercase()) else {
                continue;
            };
            let e = last.entry((i, id)).or_insert((t, s));
            // groupby(instrument).last(): the latest non-NaN value in datetime order.
            if !s.is_nan() && (e.1.is_nan() || t >= e.0) {
                *e = (t, s);
            }
        }
        let mut by_day: BTreeMap<usize, Vec<(u32, f64)>> = BTreeMap::new();
        for ((day, id), (_, s)) in last {
            by_day.entry(day).or_default().push((id, s));
        }
        Ok(Signal { by_day })
    }

    /// The scores trading day `day` decides on, sorted by instrument id; `None` when the
    /// prediction has nothing for it (Qlib then trades nothing that day).
    pub fn on(&self, day: usize) -> Option<&[(u32, f64)]> {
        self.by_day.get(&day).map(Vec::as_slice)
    }
}
