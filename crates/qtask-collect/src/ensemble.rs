//! Ensembles: many prediction tables in, one out (Qlib's `RollingEnsemble`,
//! `AverageEnsemble`, `SingleKeyEnsemble`).

use qtask_table::{PredTable, ns_to_datetime};

use crate::merge::{Dictionary, merge};
use crate::stats::{nan_mean_std, nan_row_mean};
use crate::{CollectError, CollectMap, Collected, Key, Result};

/// Name of the value column an average ensemble produces (Qlib's prediction column).
pub const SCORE: &str = "score";

/// Qlib's `RollingEnsemble` over labelled tables (labels only name pieces in errors).
///
/// Orders the pieces by their earliest datetime (stable: ties keep the given order; empty
/// pieces hold no rows and do not matter), concatenates them, keeps the **last** row where
/// pieces share a `(datetime, instrument)` (so the later window wins), and sorts by
/// `(datetime, instrument)`. Every piece must have the same value columns (any order); the
/// result has the columns of the earliest piece, in its order.
pub fn rolling_ensemble(pieces: &[(&str, &PredTable)]) -> Result<PredTable> {
    if pieces.is_empty() {
        return Err(CollectError::Empty);
    }
    let mut order: Vec<usize> = (0..pieces.len()).collect();
    let start = |t: &PredTable| t.datetimes_ns().iter().min().copied().unwrap_or(i64::MAX);
    order.sort_by_key(|&i| start(pieces[i].1));
    let names: Vec<String> = pieces[order[0]].1.column_names().to_vec();
    let mut sorted_names = names.clone();
    sorted_names.sort();
    // For each piece (in merge order), where each output column is in that piece.
    let mut column_maps = Vec::with_capacity(pieces.len());
    for &i in &order {
        let (label, t) = pieces[i];
        let mut theirs = t.column_names().to_vec();
        theirs.sort();
        if theirs != sorted_names {
            return Err(CollectError::MismatchedColumns {
                first: pieces[order[0]].0.to_string(),
                expected: names.clone(),
                piece: label.to_string(),
                found: t.column_names().to_vec(),
            });
        }
        let map: Vec<usize> = names
            .iter()
            .map(|n| {
                t.column_names()
                    .iter()
                    .position(|m| m == n)
                    .expect("same names")
            })
            .collect();
        column_maps.push(map);
    }
    let tables: Vec<&PredTable> = order.iter().map(|&i| pieces[i].1).collect();
    let dict = Dictionary::build(&tables);

    // The upper bound: untouched capacity costs address space, not memory, and no
    // reallocation ever holds two copies of a growing column.
    let capacity: usize = tables.iter().map(|t| t.len()).sum();
    let mut dts = Vec::with_capacity(capacity);
    let mut gids = Vec::with_capacity(capacity);
    let mut cols: Vec<Vec<f64>> = names.iter().map(|_| Vec::with_capacity(capacity)).collect();
    // The row waiting to be written: it is replaced while equal keys keep coming (keep last).
    let mut pending: Option<(i64, u32, usize, usize)> = None;
    let mut flush = |p: (i64, u32, usize, usize), dts: &mut Vec<i64>, gids: &mut Vec<u32>| {
        let (dt, gid, piece, row) = p;
        dts.push(dt);
        gids.push(gid);
        for (out, &c) in cols.iter_mut().zip(&column_maps[piece]) {
            out.push(tables[piece].column_at(c)[row]);
        }
    };
    merge(&tables, &dict, |dt, gid, piece, row| {
        if let Some(p) = pending
            && (p.0, p.1) != (dt, gid)
        {
            flush(p, &mut dts, &mut gids);
        }
        pending = Some((dt, gid, piece, row));
        Ok(())
    })?;
    if let Some(p) = pending {
        flush(p, &mut dts, &mut gids);
    }
    let columns = names.into_iter().zip(cols).collect();
    Ok(PredTable::from_parts(dts, gids, dict.names, columns)?)
}

/// Qlib's `AverageEnsemble` over labelled tables.
///
/// Joins every value column of every piece side by side on `(datetime, instrument)` (outer
/// join: a missing row is NaN), z-scores each column within each datetime (mean and sample
/// standard deviation with ddof=1 over the non-NaN values: one value gives NaN, a constant
/// column gives 0/0 = NaN), averages each row over its non-NaN z-scores (NaN when there are
/// none) and sorts. Arithmetic follows numpy's (pairwise sums down columns, sequential
/// sums across a row), so results match pandas bit for bit. The result has one column, `score`. Keys must be unique within a piece.
pub fn average_ensemble(pieces: &[(&str, &PredTable)]) -> Result<PredTable> {
    if pieces.is_empty() {
        return Err(CollectError::Empty);
    }
    let tables: Vec<&PredTable> = pieces.iter().map(|p| p.1).collect();
    let dict = Dictionary::build(&tables);
    let offsets: Vec<usize> = tables
        .iter()
        .scan(0, |acc, t| {
            let o = *acc;
            *acc += t.column_names().len();
            Some(o)
        })
        .collect();
    let width: usize = tables.iter().map(|t| t.column_names().len()).sum();

    // Sized for the worst case (no shared keys), for the same reason as in the rolling case.
    let capacity: usize = tables.iter().map(|t| t.len()).sum();
    let mut out_dts = Vec::with_capacity(capacity);
    let mut out_gids = Vec::with_capacity(capacity);
    let mut out_score = Vec::with_capacity(capacity);
    // The rows of the current datetime, row-major, and their instruments.
    let mut day = DayBlock::new(width);
    let mut last_piece_for_key: Option<(i64, u32, usize)> = None;

    merge(&tables, &dict, |dt, gid, piece, row| {
        if day.datetime != Some(dt) {
            day.finish(&mut out_dts, &mut out_gids, &mut out_score);
            day.datetime = Some(dt);
        }
        if day.gids.last() != Some(&gid) {
            day.new_row(gid, (piece as u32, row as u32));
        } else if last_piece_for_key == Some((dt, gid, piece)) {
            return Err(CollectError::DuplicateRow {
                piece: pieces[piece].0.to_string(),
                datetime: ns_to_datetime(dt).to_string(),
                instrument: dict.names[gid as usize].clone(),
            });
        }
        last_piece_for_key = Some((dt, gid, piece));
        let t = tables[piece];
        let base = day.cells.len() - width + offsets[piece];
        for c in 0..t.column_names().len() {
            day.cells[base + c] = t.column_at(c)[row];
        }
        Ok(())
    })?;
    day.finish(&mut out_dts, &mut out_gids, &mut out_score);
    Ok(PredTable::from_parts(
        out_dts,
        out_gids,
        dict.names,
        vec![(SCORE.to_string(), out_score)],
    )?)
}

/// The joined rows of one datetime, z-scored and averaged when the datetime is complete.
///
/// Rows are kept in instrument order, but column sums run in pandas' row order: its outer
/// join lists keys by first appearance (the first piece's rows in file order, then each
/// later piece's new rows), and a pairwise sum depends on the order of its terms.
struct DayBlock {
    width: usize,
    datetime: Option<i64>,
    gids: Vec<u32>,
    first_seen: Vec<(u32, u32)>,
    sum_order: Vec<usize>,
    cells: Vec<f64>,
    column: Vec<f64>,
    scratch: Vec<f64>,
}

impl DayBlock {
    fn new(width: usize) -> Self {
        DayBlock {
            width,
            datetime: None,
            gids: Vec::new(),
            first_seen: Vec::new(),
            sum_order: Vec::new(),
            cells: Vec::new(),
            column: Vec::new(),
            scratch: Vec::new(),
        }
    }

    fn new_row(&mut self, gid: u32, first_seen: (u32, u32)) {
        self.gids.push(gid);
        self.first_seen.push(first_seen);
        self.cells.extend(std::iter::repeat_n(f64::NAN, self.width));
    }

    fn finish(&mut self, dts: &mut Vec<i64>, gids: &mut Vec<u32>, score: &mut Vec<f64>) {
        let Some(dt) = self.datetime else { return };
        let n = self.gids.len();
        self.sum_order.clear();
        self.sum_order.extend(0..n);
        if !self.first_seen.is_sorted() {
            let seen = &self.first_seen;
            self.sum_order.sort_unstable_by_key(|&r| seen[r]);
        }
        for c in 0..self.width {
            self.column.clear();
            let (cells, width) = (&self.cells, self.width);
            self.column
                .extend(self.sum_order.iter().map(|&r| cells[r * width + c]));
            let (mean, std) = nan_mean_std(&self.column, &mut self.scratch);
            for r in 0..n {
                let cell = &mut self.cells[r * self.width + c];
                *cell = (*cell - mean) / std;
            }
        }
        for r in 0..n {
            let row = &self.cells[r * self.width..(r + 1) * self.width];
            score.push(nan_row_mean(row));
            dts.push(dt);
        }
        gids.extend_from_slice(&self.gids);
        self.gids.clear();
        self.first_seen.clear();
        self.cells.clear();
        self.datetime = None;
    }
}

/// Reduces a map of collected values to one value (Qlib's `Ensemble`).
pub trait Ensemble: Send + Sync {
    /// Combines the values of `map`.
    fn ensemble(&self, map: CollectMap) -> Result<Collected>;
}

/// Labels for flattened pieces: their key path, e.g. `('LGBModel', ('2017-01-01', ...))`.
fn labelled(map: CollectMap) -> Vec<(String, PredTable)> {
    map.flatten()
        .into_iter()
        .map(|(path, t)| {
            let label = match path.as_slice() {
                [one] => one.to_string(),
                many => Key::tuple(many.iter().cloned()).to_string(),
            };
            (label, t)
        })
        .collect()
}

fn refs(pieces: &[(String, PredTable)]) -> Vec<(&str, &PredTable)> {
    pieces.iter().map(|(l, t)| (l.as_str(), t)).collect()
}

/// [`rolling_ensemble`] over a map's tables in insertion order (nested maps flattened).
#[derive(Debug, Clone, Copy, Default)]
pub struct RollingEnsemble;

impl Ensemble for RollingEnsemble {
    fn ensemble(&self, map: CollectMap) -> Result<Collected> {
        let pieces = labelled(map);
        Ok(Collected::Table(rolling_ensemble(&refs(&pieces))?))
    }
}

/// [`average_ensemble`] over a map's tables in insertion order (nested maps flattened).
#[derive(Debug, Clone, Copy, Default)]
pub struct AverageEnsemble;

impl Ensemble for AverageEnsemble {
    fn ensemble(&self, map: CollectMap) -> Result<Collected> {
        let pieces = labelled(map);
        Ok(Collected::Table(average_ensemble(&refs(&pieces))?))
    }
}

/// Qlib's `SingleKeyEnsemble`: replaces every one-entry map by its value, recursively
/// (inner maps first); other maps and tables stay as they are.
#[derive(Debug, Clone, Copy, Default)]
pub struct SingleKeyEnsemble;

impl SingleKeyEnsemble {
    /// Applies the rule to any collected value.
    pub fn apply(&self, value: Collected) -> Collected {
        match value {
            Collected::Table(t) => Collected::Table(t),
            Collected::Map(m) => {
                let mut m: CollectMap = m.into_iter().map(|(k, v)| (k, self.apply(v))).collect();
                if m.len() == 1 {
                    let (_, only) = m.into_iter().next().expect("one entry");
                    only
                } else {
                    Collected::Map(std::mem::take(&mut m))
                }
            }
        }
    }
}

impl Ensemble for SingleKeyEnsemble {
    fn ensemble(&self, map: CollectMap) -> Result<Collected> {
        Ok(self.apply(Collected::Map(map)))
    }
}
