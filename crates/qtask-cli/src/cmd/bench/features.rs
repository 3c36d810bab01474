//! `qtask bench features`: time and peak memory of computing a handler's features.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use qtask_data::{Instruments, Program, Provider, Query, alpha};
use serde::Serialize;

use crate::output::write_json;

/// Arguments of `qtask bench features`.
#[derive(Debug, Args)]
pub struct BenchFeaturesArgs {
    /// Qlib data folder (e.g. from `qtask data synth`).
    #[arg(long)]
    provider_uri: PathBuf,
    /// Alpha158 or Alpha360.
    #[arg(long, default_value = "Alpha158")]
    handler: String,
    /// Market [default: all].
    #[arg(long)]
    market: Option<String>,
    /// Also compute the label.
    #[arg(long)]
    with_label: bool,
    /// Repetitions (the best and the mean are reported).
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Report {
    handler: String,
    instruments: usize,
    rows: usize,
    columns: usize,
    threads: usize,
    best_seconds: f64,
    mean_seconds: f64,
    peak_rss_mib: f64,
}

/// Runs the benchmark.
pub fn run(a: BenchFeaturesArgs) -> anyhow::Result<()> {
    let provider = Provider::open(&a.provider_uri)?;
    let fields = alpha::requested_fields(Some(&a.handler), &[], a.with_label)?;
    let program = Program::compile(&fields)?;
    let q = Query {
        instruments: Instruments::select(a.market, None),
        start: None,
        end: None,
    };
    let mut times = Vec::new();
    let mut shape = (0, 0, 0);
    for _ in 0..a.repeat.max(1) {
        let t = Instant::now();
        let frame = qtask_data::compute(&provider, &program, &q, &|| {})?;
        times.push(t.elapsed().as_secs_f64());
        shape = (frame.symbols.len(), frame.len(), frame.columns.len());
    }
    let report = Report {
        handler: a.handler,
        instruments: shape.0,
        rows: shape.1,
        columns: shape.2,
        threads: qtask_data::features::threads(),
        best_seconds: times.iter().copied().fold(f64::INFINITY, f64::min),
        mean_seconds: times.iter().sum::<f64>() / times.len() as f64,
        peak_rss_mib: super::peak_rss_mib(),
    };
    if a.json {
        write_json(&report, None)
    } else {
        println!(
            "{}: {} instruments, {} rows x {} columns: best {:.3} s, mean {:.3} s over {} runs, peak RSS {:.0} MiB ({} threads)",
            report.handler,
            report.instruments,
            report.rows,
            report.columns,
            report.best_seconds,
            report.mean_seconds,
            times.len(),
            report.peak_rss_mib,
            report.threads
        );
        Ok(())
    }
}
