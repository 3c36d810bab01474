//! `qtask bench backtest`: seconds of a daily TopkDropout backtest (data loading included) on
//! a synthetic market, with the inputs kept for timing pyqlib on the same data
//! (`scripts/bench/backtest_qlib.py`).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use qtask_backtest::config::TopkDropout;
use qtask_backtest::{BacktestConfig, StrategyConfig, backtest};
use qtask_data::synth::{SynthConfig, synth};
use qtask_data::{NaiveDate, Provider};
use qtask_table::{PredTable, TableBuilder};
use serde::Serialize;

use crate::output::write_json;

/// Arguments of `qtask bench backtest`.
#[derive(Debug, Args)]
pub struct BenchBacktestArgs {
    /// Instruments in the synthetic market.
    #[arg(long, default_value_t = 60)]
    instruments: usize,
    /// Trading days backtested.
    #[arg(long, default_value_t = 500)]
    days: usize,
    /// Stocks held.
    #[arg(long, default_value_t = 10)]
    topk: usize,
    /// Stocks replaced each day.
    #[arg(long, default_value_t = 5)]
    n_drop: usize,
    /// Repetitions (the best and the mean are reported).
    #[arg(long, default_value_t = 5)]
    repeat: usize,
    /// Keep the market (`DIR/data`) and the prediction (`DIR/pred.parquet`) here, to time
    /// Qlib on the same inputs.
    #[arg(long)]
    keep: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Report {
    instruments: usize,
    days: usize,
    topk: usize,
    n_drop: usize,
    start: String,
    end: String,
    best_seconds: f64,
    mean_seconds: f64,
    final_account: f64,
    peak_rss_mib: f64,
}

/// A deterministic generator, so every run benchmarks the same scores.
struct Lcg(u64);

impl Lcg {
    fn next_f64(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Random scores for every listed instrument on every day of the calendar.
fn prediction(provider: &Provider) -> anyhow::Result<PredTable> {
    let cal = provider.calendar();
    let market = provider.market("all")?;
    let mut rng = Lcg(11);
    let mut b = TableBuilder::new(["score"]);
    for d in cal {
        let ns = d
            .and_hms_opt(0, 0, 0)
            .expect("midnight")
            .and_utc()
            .timestamp_nanos_opt()
            .expect("in range");
        for (sym, spans) in &market {
            if spans.iter().any(|(a, e)| d >= a && d <= e) {
                b.push_ns(ns, sym, &[rng.next_f64() - 0.5])?;
            }
        }
    }
    Ok(b.finish())
}

/// Runs the benchmark.
pub fn run(a: BenchBacktestArgs) -> anyhow::Result<()> {
    anyhow::ensure!(a.days >= 2, "--days must be at least 2");
    let tmp = std::env::temp_dir().join(format!("qtask-bench-backtest-{}", std::process::id()));
    let root = a.keep.clone().unwrap_or_else(|| tmp.clone());
    if root.exists() && std::fs::read_dir(&root)?.next().is_some() {
        anyhow::bail!("bench backtest: {} exists and is not empty", root.display());
    }
    let result = (|| -> anyhow::Result<Report> {
        // Weekdays from 2018: the synthetic calendar, with a little more than the days asked.
        let start = NaiveDate::from_ymd_opt(2018, 1, 1).expect("valid date");
        let weeks = (a.days.max(260) + 10) / 5 + 2;
        let end = start
            .iter_days()
            .nth(weeks * 7)
            .expect("dates stay in range");
        let cfg = SynthConfig {
            instruments: a.instruments,
            start,
            end,
            seed: 7,
        };
        synth(&root.join("data"), &cfg, &|| {}).context("bench backtest: synthetic market")?;
        let provider = Provider::open(root.join("data"))?;
        let pred = prediction(&provider)?;
        pred.write_parquet(&root.join("pred.parquet"))?;
        let cal = provider.calendar();
        let (first, last) = (cal[cal.len() - a.days - 1], cal[cal.len() - 2]);
        let bt = BacktestConfig {
            start: Some(first),
            end: Some(last),
            strategy: StrategyConfig::TopkDropoutStrategy(TopkDropout {
                topk: a.topk,
                n_drop: a.n_drop,
                ..TopkDropout::default()
            }),
            ..BacktestConfig::default()
        };
        let mut times = Vec::new();
        let mut final_account = f64::NAN;
        for _ in 0..a.repeat.max(1) {
            let t = Instant::now();
            let r = backtest(&provider, &pred, &bt)?;
            times.push(t.elapsed().as_secs_f64());
            anyhow::ensure!(
                r.report.len() == a.days,
                "backtested {} days",
                r.report.len()
            );
            final_account = r.report.last().map_or(f64::NAN, |x| x.account);
        }
        Ok(Report {
            instruments: a.instruments,
            days: a.days,
            topk: a.topk,
            n_drop: a.n_drop,
            start: first.to_string(),
            end: last.to_string(),
            best_seconds: times.iter().copied().fold(f64::INFINITY, f64::min),
            mean_seconds: times.iter().sum::<f64>() / times.len() as f64,
            final_account,
            peak_rss_mib: super::peak_rss_mib(),
        })
    })();
    if a.keep.is_none() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    let report = result?;
    if a.json {
        return write_json(&report, None);
    }
    println!(
        "backtest of {} instruments x {} days (TopkDropout topk {}, n_drop {}, {} to {}): {:.4} s best, {:.4} s mean, data loading included; final account {:.2}; peak RSS {:.0} MiB",
        report.instruments,
        report.days,
        report.topk,
        report.n_drop,
        report.start,
        report.end,
        report.best_seconds,
        report.mean_seconds,
        report.final_account,
        report.peak_rss_mib
    );
    if let Some(k) = &a.keep {
        println!(
            "inputs kept in {}: time Qlib with scripts/bench/backtest_qlib.py --dir {} --start {} --end {} --topk {} --n-drop {}",
            k.display(),
            k.display(),
            report.start,
            report.end,
            report.topk,
            report.n_drop
        );
    }
    Ok(())
}
