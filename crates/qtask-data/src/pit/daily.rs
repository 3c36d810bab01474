//! Daily values of `P(x)` / `PRef(x, period)` for one instrument (Qlib's `P._load_internal`):
//! on each trading day, `x` is evaluated over the period series visible that day and the last
//! value is kept, rounded to float32.

use std::path::Path;

use chrono::{Datelike, NaiveDate};

use super::format::read_pit;
use super::timeline::Timeline;
use crate::error::Result;
use crate::expr::{PitQuery, Program};

/// The PIT files one instrument needs for a program's `P(...)` columns.
#[derive(Debug, Clone)]
pub struct PitColumns {
    timelines: Vec<Timeline>,
    /// Per PIT query: indexes into `timelines` of its fields, or `None` when one of its
    /// files is missing (Qlib then yields an empty series: NaN, no rows of its own).
    per_query: Vec<Option<Vec<usize>>>,
}

/// Opens the PIT files of `symbol` under the provider folder `root` for every `P(...)` of
/// `program`; each field is read once. A corrupt file is an error naming it.
pub fn pit_columns(root: &Path, symbol: &str, program: &Program) -> Result<PitColumns> {
    let mut names: Vec<String> = Vec::new();
    let mut timelines: Vec<Option<Timeline>> = Vec::new();
    let mut per_query = Vec::new();
    for q in program.pit_queries() {
        let mut ids = Vec::new();
        let mut complete = true;
        for f in q.program.fields() {
            let id = match names.iter().position(|n| n == f) {
                Some(i) => i,
                None => {
                    names.push(f.clone());
                    timelines.push(read_pit(root, symbol, f)?.map(|p| Timeline::new(&p)));
                    names.len() - 1
                }
            };
            complete &= timelines[id].is_some();
            ids.push(id);
        }
        per_query.push(complete.then_some(ids));
    }
    // Missing fields keep a placeholder so indexes stay valid; they are never read.
    let timelines = timelines
        .into_iter()
        .map(|t| t.unwrap_or_else(Timeline::empty))
        .collect();
    Ok(PitColumns {
        timelines,
        per_query,
    })
}

fn date_int(d: NaiveDate) -> u32 {
    d.year().max(0) as u32 * 10000 + d.month() * 100 + d.day()
}

impl PitColumns {
    /// Whether any `P(...)` of the program has all its files for this instrument.
    pub fn any(&self) -> bool {
        self.per_query.iter().any(Option::is_some)
    }

    /// The daily column of each PIT query over `days` (ascending), `None` where files are
    /// missing; feed them to `Program::eval_with_pit`.
    pub fn compute(&self, program: &Program, days: &[NaiveDate]) -> Vec<Option<Vec<f64>>> {
        program
            .pit_queries()
            .iter()
            .zip(&self.per_query)
            .map(|(q, ids)| ids.as_ref().map(|ids| self.query_days(q, ids, days)))
            .collect()
    }

    fn query_days(&self, q: &PitQuery, ids: &[usize], days: &[NaiveDate]) -> Vec<f64> {
        let mut out = Vec::with_capacity(days.len());
        // The value only changes when a new record becomes visible, so most days reuse it.
        let mut prev: Option<(Vec<usize>, f64)> = None;
        for &d in days {
            let t = date_int(d);
            let state: Vec<usize> = ids.iter().map(|&i| self.timelines[i].visible(t)).collect();
            let v = match &prev {
                Some((s, v)) if *s == state => *v,
                _ => {
                    let v = self.evaluate(q, ids, &state);
                    prev = Some((state, v));
                    v
                }
            };
            out.push(v);
        }
        out
    }

    fn evaluate(&self, q: &PitQuery, ids: &[usize], state: &[usize]) -> f64 {
        let series: Vec<(Vec<u32>, Vec<f64>)> = ids
            .iter()
            .zip(state)
            .map(|(&i, &n)| self.timelines[i].series(n, q.lookback(), q.period))
            .collect();
        // Pandas aligns differently indexed period series on the union of their periods.
        let mut union: Vec<u32> = series.iter().flat_map(|s| s.0.iter().copied()).collect();
        union.sort_unstable();
        union.dedup();
        if union.is_empty() {
            return f64::NAN;
        }
        let fields: Vec<Option<Vec<f64>>> = series
            .into_iter()
            .map(|(periods, values)| {
                if periods == union {
                    return Some(values);
                }
                Some(
                    union
                        .iter()
                        .map(|p| match periods.binary_search(p) {
                            Ok(j) => values[j],
                            Err(_) => f64::NAN,
                        })
                        .collect(),
                )
            })
            .collect();
        let cols = q.program.eval(&fields, union.len());
        cols.first()
            .and_then(|c| c.last())
            .map_or(f64::NAN, |&v| f64::from(v))
    }
}
