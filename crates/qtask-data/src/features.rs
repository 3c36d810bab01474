//! Computing expressions for many instruments over a date range (Qlib's `D.features`).

use chrono::NaiveDate;
use rayon::prelude::*;

use crate::error::{DataError, Result};
use crate::expr::Program;
use crate::frame::Frame;
use crate::provider::{Instruments, Listed, Provider};

/// What to compute: instruments and an inclusive date range (`None` = calendar bounds).
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// Which instruments.
    pub instruments: Instruments,
    /// First day (inclusive).
    pub start: Option<NaiveDate>,
    /// Last day (inclusive).
    pub end: Option<NaiveDate>,
}

/// One instrument's rows: calendar indexes and one column per output.
struct Block {
    rows: Vec<usize>,
    cols: Vec<Vec<f32>>,
    missing: Vec<bool>,
}

/// Resolves a query's date range to calendar indexes `[start, end)`.
pub fn resolve_range(provider: &Provider, q: &Query) -> Result<(usize, usize)> {
    let cal = provider.calendar();
    let s = q.start.map_or(0, |d| provider.align_start(d));
    let e = q.end.map_or(cal.len(), |d| provider.align_end_excl(d));
    if s >= e {
        return Err(DataError::Invalid(format!(
            "no trading day between {} and {} in {}",
            q.start.map_or("the first day".into(), |d| d.to_string()),
            q.end.map_or("the last day".into(), |d| d.to_string()),
            provider.root().join("calendars/day.txt").display()
        )));
    }
    Ok((s, e))
}

/// Computes every output of `program` for the query: rows (instrument, datetime) for which the
/// instrument has data and is listed, sorted by instrument then datetime. `tick` is called once
/// per instrument done (for progress bars).
pub fn compute(
    provider: &Provider,
    program: &Program,
    q: &Query,
    tick: &(dyn Fn() + Sync),
) -> Result<Frame> {
    let (s, e) = resolve_range(provider, q)?;
    let cal = provider.calendar();
    let listed = provider.list_instruments(&q.instruments, cal[s], cal[e - 1])?;
    let blocks: Vec<Block> = listed
        .par_iter()
        .map(|l| {
            let b = compute_one(provider, program, l, s, e);
            tick();
            b
        })
        .collect::<Result<_>>()?;
    for (fi, f) in program.fields().iter().enumerate() {
        if !blocks.is_empty() && blocks.iter().all(|b| b.missing[fi]) {
            return Err(DataError::Invalid(format!(
                "unknown field ${f}: no selected instrument has features/<symbol>/{f}.day.bin"
            )));
        }
    }
    let mut frame = Frame {
        symbols: listed.iter().map(|l| l.symbol.clone()).collect(),
        columns: program.names().to_vec(),
        data: vec![Vec::new(); program.names().len()],
        ..Frame::default()
    };
    for (i, b) in blocks.into_iter().enumerate() {
        frame
            .inst
            .extend(std::iter::repeat_n(i as u32, b.rows.len()));
        frame.datetime.extend(b.rows.iter().map(|&r| cal[r]));
        for (dst, src) in frame.data.iter_mut().zip(b.cols) {
            dst.extend(src);
        }
    }
    Ok(frame)
}

fn compute_one(
    provider: &Provider,
    program: &Program,
    listed: &Listed,
    s: usize,
    e: usize,
) -> Result<Block> {
    let (left, right) = program.extended_window();
    let qs = s.saturating_sub(left);
    let qe = (e + right).min(provider.calendar().len());
    let mut series = Vec::with_capacity(program.fields().len());
    for f in program.fields() {
        series.push(provider.read_field(&listed.symbol, f)?);
    }
    let missing: Vec<bool> = series.iter().map(Option::is_none).collect();
    // Only programs with P(...) touch financial/, so ordinary expressions pay nothing.
    let pit = if program.pit_queries().is_empty() {
        None
    } else {
        Some(crate::pit::pit_columns(
            provider.root(),
            &listed.symbol,
            program,
        )?)
    };
    // A P(...) with files spans the whole query, as Qlib's P series does.
    let pit_span = pit.as_ref().is_some_and(|p| p.any()).then_some((qs, qe));
    let empty = Block {
        rows: Vec::new(),
        cols: vec![Vec::new(); program.names().len()],
        missing: missing.clone(),
    };
    // Qlib's series only cover the days present in the files; rows are their union.
    let spans = series
        .iter()
        .flatten()
        .map(|b| (b.start, b.end()))
        .chain(pit_span);
    let Some(ds) = spans.clone().map(|s| s.0).min() else {
        return Ok(empty);
    };
    let de = spans.map(|s| s.1).max().unwrap_or(ds);
    let (ds, de) = (ds.max(qs), de.min(qe));
    if ds >= de {
        return Ok(empty);
    }
    let len = de - ds;
    let fields: Vec<Option<Vec<f64>>> = series
        .iter()
        .map(|b| {
            b.as_ref().map(|b| {
                (ds..de)
                    .map(|t| {
                        if t >= b.start && t < b.end() {
                            b.values[t - b.start] as f64
                        } else {
                            f64::NAN
                        }
                    })
                    .collect()
            })
        })
        .collect();
    let cal = provider.calendar();
    let cols = match &pit {
        Some(p) => program.eval_with_pit(&fields, &p.compute(program, &cal[ds..de]), len),
        None => program.eval(&fields, len),
    };
    let rows: Vec<usize> = (ds.max(s)..de.min(e))
        .filter(|&t| {
            listed.spans.is_empty()
                || listed
                    .spans
                    .iter()
                    .any(|&(a, b)| cal[t] >= a && cal[t] <= b)
        })
        .collect();
    let cols = cols
        .into_iter()
        .map(|c| rows.iter().map(|&t| c[t - ds]).collect())
        .collect();
    Ok(Block {
        rows,
        cols,
        missing,
    })
}

/// Number of threads instruments are computed on (rayon's pool; `RAYON_NUM_THREADS`).
pub fn threads() -> usize {
    rayon::current_num_threads()
}
