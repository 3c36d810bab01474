//! `qtask bench pit`: time and peak memory of `P(...)` over a synthetic PIT database.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use qtask_data::binfile::write_atomic;
use qtask_data::pit::{Interval, append_rows, pit_paths};
use qtask_data::{Instruments, NaiveDate, Program, Provider, Query};
use serde::Serialize;

use crate::output::{bar, write_json};

/// Arguments of `qtask bench pit`.
#[derive(Debug, Args)]
pub struct BenchPitArgs {
    /// Number of synthetic instruments.
    #[arg(long, default_value_t = 1000)]
    instruments: usize,
    /// Quarters of financial reports per instrument (some revised once).
    #[arg(long, default_value_t = 40)]
    quarters: u32,
    /// Years of trading days (weekdays from 2010-01-01) to compute over.
    #[arg(long, default_value_t = 10)]
    years: u32,
    /// Expressions to compute (repeatable).
    #[arg(long, default_values_t = ["P($$roe_q)".to_string(), "P(Sum($$roe_q, 4))".to_string()])]
    expr: Vec<String>,
    /// Repetitions of the computation (the best and the mean are reported).
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Keep the generated provider folder here instead of a temporary one.
    #[arg(long)]
    keep: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Report {
    instruments: usize,
    quarters: u32,
    trading_days: usize,
    records: usize,
    exprs: Vec<String>,
    rows: usize,
    threads: usize,
    write_seconds: f64,
    best_seconds: f64,
    mean_seconds: f64,
    peak_rss_mib: f64,
}

/// A small deterministic generator, so every run benchmarks the same data.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

fn after(d: NaiveDate, days: u64) -> NaiveDate {
    d.iter_days()
        .nth(days as usize)
        .expect("dates stay in range")
}

fn ymd(d: NaiveDate) -> u32 {
    d.format("%Y%m%d").to_string().parse().expect("8 digits")
}

/// Writes the calendar and one `roe_q` field per instrument; returns the record count.
fn generate(root: &std::path::Path, a: &BenchPitArgs) -> anyhow::Result<(Vec<String>, usize)> {
    let start = NaiveDate::from_ymd_opt(2010, 1, 1).expect("valid date");
    let end = NaiveDate::from_ymd_opt(2010 + a.years as i32, 1, 1).expect("valid date");
    let days: Vec<String> = start
        .iter_days()
        .take_while(|&d| d < end)
        .filter(|d| d.format("%u").to_string().as_str() <= "5")
        .map(|d| d.to_string())
        .collect();
    write_atomic(
        &root.join("calendars/day.txt"),
        (days.join("\n") + "\n").as_bytes(),
    )?;
    let mut rng = Lcg(7);
    let mut symbols = Vec::new();
    let mut records = 0;
    let pb = bar(a.instruments as u64, "generate");
    for i in 0..a.instruments {
        let symbol = format!("SH{:06}", 600000 + i);
        let mut rows = Vec::new();
        for k in 0..a.quarters {
            let (year, q) = (2009 + k / 4, k % 4 + 1);
            let quarter_end = NaiveDate::from_ymd_opt(year as i32, q * 3, 28).expect("valid");
            let published = after(quarter_end, 20 + rng.next() % 60);
            let value = (rng.next() % 10_000) as f64 / 1e4;
            rows.push((ymd(published), year * 100 + q, value));
            if rng.next().is_multiple_of(4) {
                let revised = after(published, 5 + rng.next() % 40);
                rows.push((ymd(revised), year * 100 + q, value * 1.05));
            }
        }
        let file = append_rows(None, Interval::Quarterly, &rows)?.file;
        records += file.records.len();
        let (data, index) = pit_paths(root, &symbol, "roe_q")?;
        write_atomic(&data, &file.data_bytes())?;
        write_atomic(&index, &file.index_bytes())?;
        symbols.push(symbol);
        pb.inc(1);
    }
    pb.finish_and_clear();
    Ok((symbols, records))
}

/// Runs the benchmark.
pub fn run(a: BenchPitArgs) -> anyhow::Result<()> {
    let tmp = std::env::temp_dir().join(format!("qtask-bench-pit-{}", std::process::id()));
    let root = a.keep.clone().unwrap_or_else(|| tmp.clone());
    if root.exists() && std::fs::read_dir(&root)?.next().is_some() {
        anyhow::bail!("bench pit: {} exists and is not empty", root.display());
    }
    let t = Instant::now();
    let generated = generate(&root, &a).context("bench pit: writing synthetic PIT data");
    let write_seconds = t.elapsed().as_secs_f64();
    let result = generated.and_then(|(symbols, records)| {
        let provider = Provider::open(&root)?;
        let named: Vec<(String, String)> = a.expr.iter().map(|e| (e.clone(), e.clone())).collect();
        let program = Program::compile(&named)?;
        let q = Query {
            instruments: Instruments::List(symbols),
            start: None,
            end: None,
        };
        let mut times = Vec::new();
        let mut rows = 0;
        for _ in 0..a.repeat.max(1) {
            let pb = bar(a.instruments as u64, "P()");
            let t = Instant::now();
            let frame = qtask_data::compute(&provider, &program, &q, &|| pb.inc(1))?;
            times.push(t.elapsed().as_secs_f64());
            pb.finish_and_clear();
            rows = frame.len();
        }
        Ok(Report {
            instruments: a.instruments,
            quarters: a.quarters,
            trading_days: provider.calendar().len(),
            records,
            exprs: a.expr.clone(),
            rows,
            threads: qtask_data::features::threads(),
            write_seconds,
            best_seconds: times.iter().copied().fold(f64::INFINITY, f64::min),
            mean_seconds: times.iter().sum::<f64>() / times.len() as f64,
            peak_rss_mib: super::peak_rss_mib(),
        })
    });
    if a.keep.is_none() {
        // The generated data is only scaffolding for the measurement.
        let _ = std::fs::remove_dir_all(&tmp);
    }
    let report = result?;
    if a.json {
        write_json(&report, None)
    } else {
        println!(
            "P() over {} instruments x {} quarters x {} trading days ({} threads): {} rows in {:.3} s best, {:.3} s mean; data written in {:.2} s; peak RSS {:.0} MiB",
            report.instruments,
            report.quarters,
            report.trading_days,
            report.threads,
            report.rows,
            report.best_seconds,
            report.mean_seconds,
            report.write_seconds,
            report.peak_rss_mib
        );
        Ok(())
    }
}
