//! `qtask bench rolling`: the whole rolling study (features, LightGBM windows, records,
//! collect, report) on a synthetic market: total seconds against the seconds inside LightGBM,
//! and peak memory.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use qtask_runner::{StopFlag, TrainerKind};
use qtask_study::{Example, Study, StudyConfig};
use serde_json::json;

use super::peak_rss_mib;
use crate::output::progress::Bars;
use crate::output::write_json;

/// Arguments of `qtask bench rolling`.
#[derive(Debug, Args)]
pub struct BenchRollingArgs {
    /// Instruments of the synthetic market (2008-2020).
    #[arg(long, default_value_t = 50)]
    instruments: usize,
    /// Market of the study: all (every instrument) or csi100 (about 60% of them).
    #[arg(long, default_value = "all")]
    market: String,
    /// Working folder (default: a fresh temporary folder, removed afterwards).
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// Runs the benchmark.
pub fn run(a: BenchRollingArgs) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let example = Example {
        instruments: a.instruments,
        market: a.market.clone(),
        ..Example::new(a.dir.clone().unwrap_or_else(|| tmp.path().to_path_buf()))
    };
    let bars = Bars::default();
    let config = example.prepare(&bars)?;
    let dir = config.out.parent().map(PathBuf::from).unwrap_or_default();
    // A cold feature cache of its own: the study computes its features once, as a first run does.
    let cache = dir.join(format!("cache-{}", std::process::id()));
    // SAFETY: set before any other thread of this process exists.
    unsafe { std::env::set_var("QTASK_CACHE_DIR", &cache) };
    let config = StudyConfig {
        trainer: TrainerKind::R,
        experiment: Some(format!("bench-{}", std::process::id())),
        ..config
    };
    let start = Instant::now();
    let done = Study::open(config)?.run(&StopFlag::from_signals()?, &bars)?;
    let total = start.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&cache);
    let fit = done.timings.model_fit;
    write_json(
        &json!({
            "instruments": a.instruments,
            "market": a.market,
            "windows": done.tasks.len(),
            "ensemble_rows": done.ensemble.pred.len(),
            "ensemble_metrics": done.summary["ensemble"]["metrics"],
            "total_secs": total,
            "lightgbm_secs": fit,
            "total_over_lightgbm": total / fit,
            "phases": done.summary["seconds"],
            "peak_rss_mib": peak_rss_mib(),
        }),
        None,
    )
}
