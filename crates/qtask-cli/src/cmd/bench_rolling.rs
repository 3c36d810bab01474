//! `qtask bench rolling`: the whole rolling study (features, LightGBM windows, records,
//! collect, report) on a synthetic market: total seconds against the seconds inside LightGBM,
//! and peak memory.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use serde_json::json;

use crate::cmd::bench::peak_rss_mib;
use crate::cmd::example::{prepare, rolling_args};
use crate::cmd::rolling::run_study;
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
    let dir = a.dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    let config = prepare(&dir, a.instruments, &a.market, 0)?;
    let dir = config.parent().map(PathBuf::from).unwrap_or_default();
    // A cold feature cache of its own: the study computes its features once, as a first run does.
    let cache = dir.join(format!("cache-{}", std::process::id()));
    // SAFETY: set before any other thread of this process exists.
    unsafe { std::env::set_var("QTASK_CACHE_DIR", &cache) };
    let mut args = rolling_args(&dir, &config, 1, true)?;
    args.trainer = qtask_runner::TrainerKind::R;
    args.experiment = Some(format!("bench-{}", std::process::id()));
    let start = Instant::now();
    let done = run_study(args)?;
    let total = start.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&cache);
    let fit = done.summary["seconds"]["model_fit"]
        .as_f64()
        .unwrap_or(f64::NAN);
    write_json(
        &json!({
            "instruments": a.instruments,
            "market": a.market,
            "windows": done.summary["tasks"],
            "ensemble_rows": done.summary["ensemble"]["rows"],
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
