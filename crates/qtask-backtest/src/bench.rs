//! The benchmark's daily return, as Qlib's `PortfolioMetrics` computes its `bench` column:
//! `$close/Ref($close,1)-1` per instrument (float32, as Qlib's expression engine evaluates it),
//! the mean over the instruments of each day (float64, NaN skipped, 0 when none), then
//! `(x + 1).prod() - 1` over the day.

use qtask_data::Provider;

use crate::config::Benchmark;
use crate::error::{BacktestError, Result};

/// The benchmark's return on each of `days` (calendar indexes).
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
        let close = provider.read_field(code, "close")?.ok_or_else(|| {
            BacktestError::Input(format!(
                "benchmark {code} is not in the data: {} does not exist",
                provider.symbol_dir(code).join("close.day.bin").display()
            ))
        })?;
        series.push(close);
    }
    Ok(days
        .iter()
        .map(|&t| {
            // pandas' groupby mean: a Kahan-compensated float64 sum over the rows of the day.
            let (mut sum, mut comp, mut n, mut rows) = (0.0f64, 0.0f64, 0usize, 0usize);
            for b in &series {
                if t < b.start || t >= b.end() {
                    continue;
                }
                rows += 1;
                let c = b.values[t - b.start];
                let p = if t > b.start {
                    b.values[t - 1 - b.start]
                } else {
                    f32::NAN
                };
                let x = f64::from(c / p - 1.0f32);
                if x.is_nan() {
                    continue;
                }
                n += 1;
                let y = x - comp;
                let s = sum + y;
                comp = (s - sum) - y;
                sum = s;
            }
            // No row at all: Qlib samples nothing and takes 0; rows but all NaN: fillna(0).
            let mean = if rows == 0 || n == 0 {
                0.0
            } else {
                sum / n as f64
            };
            (mean + 1.0) - 1.0
        })
        .collect())
}
