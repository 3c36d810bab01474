//! `qtask bench ensemble --windows W --rows R`: time and memory of the rolling and average
//! ensembles over W tables of R rows each.

use std::time::Instant;

use clap::Args;
use qtask_collect::{PredTable, average_ensemble, rolling_ensemble};
use serde::Serialize;

use crate::output::write_json;

/// Arguments of `qtask bench ensemble`.
#[derive(Debug, Args)]
pub struct BenchEnsembleArgs {
    /// Number of tables (rolling windows, or models averaged).
    #[arg(long, default_value_t = 20)]
    windows: usize,
    /// Rows per table.
    #[arg(long, default_value_t = 1_000_000)]
    rows: usize,
    /// Instruments per datetime.
    #[arg(long, default_value_t = 500)]
    instruments: usize,
    /// Fraction of each rolling window that overlaps the next one (exercises "later wins").
    #[arg(long, default_value_t = 0.2)]
    overlap: f64,
}

#[derive(Serialize)]
struct Phase {
    tables: usize,
    rows_per_table: usize,
    input_rows: usize,
    /// In-memory size of the inputs (datetimes, instrument ids, values).
    input_bytes: usize,
    /// Size of the inputs as snappy Parquet files.
    input_parquet_bytes: usize,
    output_rows: usize,
    seconds: f64,
    rows_per_second: f64,
    /// Peak resident memory of the process during this phase (VmHWM, reset per phase).
    peak_rss_bytes: u64,
    /// Peak minus the process's resident memory before any table existed, over input_bytes.
    peak_rss_over_input: f64,
    parquet_write_seconds: f64,
    parquet_read_seconds: f64,
}

#[derive(Serialize)]
struct Report {
    /// Resident memory before any table was built (the binary itself).
    baseline_rss_bytes: u64,
    rolling: Phase,
    average: Phase,
    peak_reset_supported: bool,
}

/// Peak resident memory (VmHWM) in bytes.
fn peak_rss() -> u64 {
    super::status_bytes("VmHWM:")
}

/// Resets VmHWM to the current RSS (Linux: `5` into clear_refs); false when refused.
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// A 64-bit LCG: the bench needs fast, repeatable numbers, not good ones.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Table `w`: `rows` rows on consecutive days from day `first_day`, `instruments` per day,
/// already in (datetime, instrument) order, as predictions usually are.
fn table(
    first_day: usize,
    rows: usize,
    instruments: usize,
    rng: &mut Lcg,
) -> anyhow::Result<PredTable> {
    const DAY: i64 = 86_400 * 1_000_000_000;
    let base = 17_532 * DAY; // 2018-01-01
    let names: Vec<String> = (0..instruments)
        .map(|i| format!("SH{:06}", 600_000 + i))
        .collect();
    let dts = (0..rows)
        .map(|r| base + (first_day + r / instruments) as i64 * DAY)
        .collect();
    let ids = (0..rows).map(|r| (r % instruments) as u32).collect();
    let values = (0..rows).map(|_| rng.next() - 0.5).collect();
    Ok(PredTable::from_parts(
        dts,
        ids,
        names,
        vec![("score".into(), values)],
    )?)
}

fn input_bytes(tables: &[PredTable]) -> usize {
    tables
        .iter()
        .map(|t| t.len() * (8 + 4 + 8 * t.column_names().len()))
        .sum()
}

fn phase(
    tables: Vec<PredTable>,
    baseline: u64,
    reset: bool,
    f: impl Fn(&[(&str, &PredTable)]) -> qtask_collect::Result<PredTable>,
) -> anyhow::Result<Phase> {
    let mut parquet_bytes = 0;
    for t in &tables {
        parquet_bytes += t.to_parquet_bytes()?.len();
    }
    let input = input_bytes(&tables);
    if reset {
        reset_peak();
    }
    let pieces: Vec<(&str, &PredTable)> = tables.iter().map(|t| ("bench", t)).collect();
    let start = Instant::now();
    let out = f(&pieces)?;
    let seconds = start.elapsed().as_secs_f64();
    let peak = peak_rss();
    let start = Instant::now();
    let bytes = out.to_parquet_bytes()?;
    let write = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let back = PredTable::from_parquet_bytes(&bytes)?;
    let read = start.elapsed().as_secs_f64();
    anyhow::ensure!(back.len() == out.len(), "parquet round trip lost rows");
    let input_rows = tables.iter().map(PredTable::len).sum();
    Ok(Phase {
        tables: tables.len(),
        rows_per_table: tables.first().map_or(0, PredTable::len),
        input_rows,
        input_bytes: input,
        input_parquet_bytes: parquet_bytes,
        output_rows: out.len(),
        seconds,
        rows_per_second: input_rows as f64 / seconds,
        peak_rss_bytes: peak,
        peak_rss_over_input: peak.saturating_sub(baseline) as f64 / input as f64,
        parquet_write_seconds: write,
        parquet_read_seconds: read,
    })
}

/// Runs the benchmark and prints JSON.
pub fn run(args: BenchEnsembleArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.windows > 0 && args.rows > 0 && args.instruments > 0,
        "--windows, --rows and --instruments must be positive"
    );
    anyhow::ensure!(
        (0.0..1.0).contains(&args.overlap),
        "--overlap must be in [0, 1)"
    );
    let days = args.rows.div_ceil(args.instruments);
    let step = ((days as f64) * (1.0 - args.overlap)).ceil().max(1.0) as usize;
    let baseline = super::status_bytes("VmRSS:");
    let pb = crate::output::bar(2 * args.windows as u64, "generating");
    let mut rng = Lcg(42);
    let mut rolling_in = Vec::with_capacity(args.windows);
    for w in 0..args.windows {
        rolling_in.push(table(w * step, args.rows, args.instruments, &mut rng)?);
        pb.inc(1);
    }
    let reset = reset_peak();
    let rolling = phase(rolling_in, baseline, reset, rolling_ensemble)?;
    let mut average_in = Vec::with_capacity(args.windows);
    for _ in 0..args.windows {
        average_in.push(table(0, args.rows, args.instruments, &mut rng)?);
        pb.inc(1);
    }
    pb.finish_and_clear();
    let average = phase(average_in, baseline, reset, average_ensemble)?;
    write_json(
        &Report {
            baseline_rss_bytes: baseline,
            rolling,
            average,
            peak_reset_supported: reset,
        },
        None,
    )
}
