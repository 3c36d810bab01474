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

/// One instrument's input, read before anything is evaluated: the rows it will have
/// (calendar indexes) are known then, so every instrument's outputs can be written straight
/// into their place in the frame's columns.
struct Plan {
    /// Calendar indexes of the output rows.
    rows: Vec<usize>,
    /// Which fields have no file.
    missing: Vec<bool>,
    /// What to evaluate (`None`: no data at all).
    input: Option<Input>,
}

/// The field series of one instrument over calendar indexes `ds..de`.
struct Input {
    ds: usize,
    len: usize,
    fields: Vec<Option<Vec<f64>>>,
    /// `Program::foreign_fields()` over the same days.
    foreign: Vec<Option<Vec<f64>>>,
    pit: Option<Vec<Option<Vec<f64>>>>,
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
    compute_listed(provider, program, &listed, (s, e), tick)
}

/// Checks that every `(instrument, field)` an expression reads from another instrument
/// exists: Qlib would give NaN for a mistyped symbol; qtask says so instead.
fn check_foreign(provider: &Provider, program: &Program) -> Result<()> {
    for (sym, f) in program.foreign_fields() {
        let dir = provider.symbol_dir(sym)?;
        if !dir.is_dir() {
            return Err(DataError::Invalid(format!(
                "ChangeInstrument/Mask: instrument {sym} has no data ({} does not exist)",
                dir.display()
            )));
        }
        let file = dir.join(format!("{f}.day.bin"));
        if !file.exists() {
            return Err(DataError::Invalid(format!(
                "ChangeInstrument/Mask: unknown field ${f} of {sym} ({} does not exist)",
                file.display()
            )));
        }
    }
    Ok(())
}

/// [`compute`] for instruments already listed (with their listed ranges), over calendar
/// indexes `range = [start, end)`.
pub fn compute_listed(
    provider: &Provider,
    program: &Program,
    listed: &[Listed],
    range: (usize, usize),
    tick: &(dyn Fn() + Sync),
) -> Result<Frame> {
    let (s, e) = range;
    let cal = provider.calendar();
    check_foreign(provider, program)?;
    let plans: Vec<Plan> = listed
        .par_iter()
        .map(|l| plan_one(provider, program, l, s, e))
        .collect::<Result<_>>()?;
    for (fi, f) in program.fields().iter().enumerate() {
        if !plans.is_empty() && plans.iter().all(|p| p.missing[fi]) {
            return Err(DataError::Invalid(format!(
                "unknown field ${f}: no selected instrument has features/<symbol>/{f}.day.bin"
            )));
        }
    }
    let total: usize = plans.iter().map(|p| p.rows.len()).sum();
    let mut frame = Frame {
        symbols: listed.iter().map(|l| l.symbol.clone()).collect(),
        columns: program.names().to_vec(),
        data: (0..program.names().len())
            .map(|_| vec![0f32; total])
            .collect(),
        inst: Vec::with_capacity(total),
        datetime: Vec::with_capacity(total),
    };
    for (i, p) in plans.iter().enumerate() {
        frame
            .inst
            .extend(std::iter::repeat_n(i as u32, p.rows.len()));
        frame.datetime.extend(p.rows.iter().map(|&r| cal[r]));
    }
    // Each instrument gets its own row range of every column, so instruments are evaluated in
    // parallel straight into the frame: no per-instrument copy of the outputs is gathered.
    let mut parts: Vec<Vec<&mut [f32]>> = plans.iter().map(|_| Vec::new()).collect();
    for col in frame.data.iter_mut() {
        let mut rest: &mut [f32] = col;
        for (part, p) in parts.iter_mut().zip(&plans) {
            let (mine, tail) = rest.split_at_mut(p.rows.len());
            part.push(mine);
            rest = tail;
        }
    }
    plans
        .into_par_iter()
        .zip(parts)
        .for_each(|(plan, mut out)| {
            eval_into(program, plan, &mut out);
            tick();
        });
    Ok(frame)
}

/// Reads one instrument's series and decides its rows.
fn plan_one(
    provider: &Provider,
    program: &Program,
    listed: &Listed,
    s: usize,
    e: usize,
) -> Result<Plan> {
    let (left, right) = program.extended_window();
    let qs = s.saturating_sub(left);
    let qe = (e + right).min(provider.calendar().len());
    let mut series = Vec::with_capacity(program.fields().len());
    for f in program.fields() {
        series.push(provider.read_field(&listed.symbol, f)?);
    }
    let missing: Vec<bool> = series.iter().map(Option::is_none).collect();
    // Another instrument's series are read like the instrument's own: Qlib's rows are the
    // union of every series' days, theirs included.
    let nf = series.len();
    for (sym, f) in program.foreign_fields() {
        series.push(provider.read_field(sym, f)?);
    }
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
    let empty = Plan {
        rows: Vec::new(),
        missing: missing.clone(),
        input: None,
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
    let mut fields: Vec<Option<Vec<f64>>> = series
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
    let foreign = fields.split_off(nf);
    let cal = provider.calendar();
    let pit = pit.map(|p| p.compute(program, &cal[ds..de]));
    let rows: Vec<usize> = (ds.max(s)..de.min(e))
        .filter(|&t| {
            listed.spans.is_empty()
                || listed
                    .spans
                    .iter()
                    .any(|&(a, b)| cal[t] >= a && cal[t] <= b)
        })
        .collect();
    Ok(Plan {
        rows,
        missing,
        input: Some(Input {
            ds,
            len: de - ds,
            fields,
            foreign,
            pit,
        }),
    })
}

/// Evaluates one instrument into its row range of every output column.
fn eval_into(program: &Program, plan: Plan, out: &mut [&mut [f32]]) {
    let Some(input) = plan.input else { return };
    let cols = program.eval_inputs(
        &crate::expr::Inputs {
            fields: &input.fields,
            foreign: &input.foreign,
            pits: input.pit.as_deref().unwrap_or(&[]),
        },
        input.len,
    );
    for (dst, c) in out.iter_mut().zip(cols) {
        for (d, &t) in dst.iter_mut().zip(&plan.rows) {
            *d = c[t - input.ds];
        }
    }
}

/// Number of threads instruments are computed on (rayon's pool; `RAYON_NUM_THREADS`).
pub fn threads() -> usize {
    rayon::current_num_threads()
}
