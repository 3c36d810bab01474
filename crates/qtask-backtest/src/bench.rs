//! The benchmark's daily return, as Qlib's `PortfolioMetrics` computes its `bench` column:
//! `$close/Ref($close,1)-1` per instrument (float32, as Qlib's expression engine evaluates it),
//! the mean over the instruments of each day (NaN skipped, 0 when none), then
//! `(x + 1).prod() - 1` over the day.
//!
//! pandas' groupby mean of that float32 column (measured with pandas 3.1) is float64 when the
//! frame's datetimes are already in order (one instrument, or instruments on successive
//! dates) and the column has no NaN; otherwise it is a compensated float32 sum. The
//! `(x + 1) - 1` that follows is then done in that precision. Both are reproduced, so `bench`
//! agrees with Qlib's to the bit.

use qtask_data::Provider;

use crate::config::Benchmark;
use crate::error::{BacktestError, Result};

/// Kahan-compensated sum (pandas' `group_mean`), in `f64` or emulated `f32`.
fn compensated_mean(xs: &[f32], in_f32: bool) -> f64 {
    if in_f32 {
        let (mut sum, mut comp) = (0.0f32, 0.0f32);
        for &x in xs {
            let y = x - comp;
            let t = sum + y;
            comp = (t - sum) - y;
            sum = t;
        }
        let mean = sum / xs.len() as f32;
        f64::from((mean + 1.0f32) - 1.0f32)
    } else {
        let (mut sum, mut comp) = (0.0f64, 0.0f64);
        for &x in xs {
            let y = f64::from(x) - comp;
            let t = sum + y;
            comp = (t - sum) - y;
            sum = t;
        }
        let mean = sum / xs.len() as f64;
        (mean + 1.0) - 1.0
    }
}

/// The benchmark's return on each of `days` (calendar indexes, consecutive).
pub fn bench_returns(provider: &Provider, bench: &Benchmark, days: &[usize]) -> Result<Vec<f64>> {
    let codes: Vec<String> = match bench {
        Benchmark::None => return Ok(vec![0.0; days.len()]),
        Benchmark::Code(c) => vec![c.clone()],
        Benchmark::Codes(cs) => {
            let mut cs = cs.clone();
            // Qlib's frame is sorted by instrument, which is the order its groupby sums in.
            cs.sort();
            cs.dedup();
            cs
        }
    };
    let mut series = Vec::with_capacity(codes.len());
    for code in &codes {
        let dir = provider.symbol_dir(code)?;
        let close = provider.read_field(code, "close")?.ok_or_else(|| {
            BacktestError::Input(format!(
                "benchmark {code} is not in the data: {} does not exist",
                dir.join("close.day.bin").display()
            ))
        })?;
        series.push(close);
    }
    // Qlib's frame lists each instrument's days in turn: its datetimes are in order when every
    // instrument's rows come after the previous one's.
    let (first, last) = (days.first().copied(), days.last().copied());
    let spans: Vec<(usize, usize)> = series
        .iter()
        .filter_map(|b| {
            let lo = first?.max(b.start);
            let hi = last?.min(b.end().saturating_sub(1));
            (b.end() > 0 && lo <= hi).then_some((lo, hi))
        })
        .collect();
    let in_order = spans.windows(2).all(|w| w[0].1 <= w[1].0);
    // Per day: `None` when no instrument has a row, else the rows' changes (NaN kept).
    let mut any_nan = false;
    let rows: Vec<Option<Vec<f32>>> = days
        .iter()
        .map(|&t| {
            let day: Vec<f32> = series
                .iter()
                .filter(|b| t >= b.start && t < b.end())
                .map(|b| {
                    let c = b.values[t - b.start];
                    let p = if t > b.start {
                        b.values[t - 1 - b.start]
                    } else {
                        f32::NAN
                    };
                    c / p - 1.0f32
                })
                .collect();
            any_nan |= day.iter().any(|x| x.is_nan());
            (!day.is_empty()).then_some(day)
        })
        .collect();
    Ok(rows
        .into_iter()
        .map(|day| match day {
            // No row that day: Qlib samples nothing and takes 0.
            None => 0.0,
            Some(xs) => {
                let present: Vec<f32> = xs.into_iter().filter(|x| !x.is_nan()).collect();
                if present.is_empty() {
                    // fillna(0), then (0 + 1) - 1.
                    0.0
                } else {
                    compensated_mean(&present, any_nan || !in_order)
                }
            }
        })
        .collect())
}
