//! `qtask bench online`: Qlib's online_management_simulate (LightGBM on Alpha158, rolling step
//! 20, begin 2018-09-10) on a synthetic market: one routine per trading day for `--days` days,
//! then the outputs of `qtask online simulate`. Reports seconds and peak memory.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use qtask_core::{RollStep, TimeAdjuster};
use qtask_data::NaiveDate;
use qtask_data::synth::{SynthConfig, synth};
use qtask_runner::{StopFlag, TrainerKind};
use qtask_study::Quiet;
use qtask_study::online::{
    OnlineConfig, OnlineManager, RollingSpec, RollingStrategy, Step, write_outputs,
};
use serde_json::{Value, json};

use super::peak_rss_mib;
use crate::output::write_json;

/// Arguments of `qtask bench online`.
#[derive(Debug, Args)]
pub struct BenchOnlineArgs {
    /// Instruments of the synthetic market (2017-2019; the template's csi100 is about 60%).
    #[arg(long, default_value_t = 100)]
    instruments: usize,
    /// Trading days simulated from 2018-09-10 (one routine each).
    #[arg(long, default_value_t = 75)]
    days: usize,
    /// Rolling step in trading days.
    #[arg(long, default_value_t = 20)]
    step: i64,
    /// Trainer: r or delay-r.
    #[arg(long, default_value = "r", value_parser = ["r", "delay-r"])]
    trainer: String,
    /// Working folder (default: a fresh temporary folder, removed afterwards).
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// The example's task: LightGBM on Alpha158 over csi100, the handler's data to the end of
/// 2018 so that every window of the simulation has its test days.
fn template() -> Value {
    json!({
        "model": {"class": "LGBModel", "module_path": "qlib.contrib.model.gbdt",
                  "kwargs": {"num_threads": 1}},
        "dataset": {"class": "DatasetH", "module_path": "qlib.data.dataset", "kwargs": {
            "handler": {"class": "Alpha158", "module_path": "qlib.contrib.data.handler", "kwargs": {
                "start_time": "2018-01-01", "end_time": "2018-12-31",
                "fit_start_time": "2018-01-01", "fit_end_time": "2018-03-31",
                "instruments": "csi100"}},
            "segments": {"train": ["2018-01-01", "2018-03-31"],
                         "valid": ["2018-04-01", "2018-05-31"],
                         "test": ["2018-06-01", "2018-09-10"]}}},
        "record": [
            {"class": "SignalRecord", "module_path": "qlib.workflow.record_temp",
             "kwargs": {"dataset": "<DATASET>", "model": "<MODEL>"}},
            {"class": "SigAnaRecord", "module_path": "qlib.workflow.record_temp"}
        ]
    })
}

/// Runs the benchmark.
pub fn run(a: BenchOnlineArgs) -> anyhow::Result<()> {
    anyhow::ensure!(a.days >= 1, "--days must be at least 1");
    let tmp = tempfile::tempdir()?;
    let dir = a.dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&dir)?;
    let day = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("a fixed date");
    let provider = dir.join("data");
    synth(
        &provider,
        &SynthConfig {
            instruments: a.instruments,
            start: day("2017-01-01"),
            end: day("2019-06-30"),
            seed: 7,
        },
        &|| {},
    )?;
    let begin = day("2018-09-10");
    let ta = TimeAdjuster::from_provider(&provider)?;
    let days = ta.calendar().days();
    let first = days.partition_point(|d| *d < begin);
    let end = *days
        .get(first + a.days - 1)
        .context("the synthetic calendar is shorter than --days")?;
    // A cold feature cache of its own: the first routine computes its features, as cron's does.
    let cache = dir.join(format!("cache-{}", std::process::id()));
    // SAFETY: set before any other thread of this process exists.
    unsafe { std::env::set_var("QTASK_CACHE_DIR", &cache) };

    let mut rolling = RollingSpec::new(RollStep::Days(a.step));
    rolling.rtype = "sliding".into();
    rolling.handler_mod = false;
    let strategy = RollingStrategy::new(vec![template()], rolling)?;
    let trainer = if a.trainer == "r" {
        TrainerKind::R
    } else {
        TrainerKind::DelayR
    };
    let run = dir.join(format!("run-{}", std::process::id()));
    let config = OnlineConfig {
        trainer,
        tracking_uri: Some(format!("file:{}", run.join("mlruns").display())),
        store: format!("sqlite:{}", run.join("qtask.db").display()),
        ..OnlineConfig::new("bench_online")
    };
    let start = Instant::now();
    let m = OnlineManager::simulate(
        config,
        strategy,
        begin,
        end,
        provider,
        &StopFlag::new(),
        &Quiet,
    )?;
    let simulate_secs = start.elapsed().as_secs_f64();
    write_outputs(&m, &run.join("out"))?;
    let total = start.elapsed().as_secs_f64();
    let state = m.state();
    let routines = state
        .history
        .iter()
        .filter(|h| h.step == Step::Routine)
        .count();
    let signal_rows = m.signals()?.map_or(0, |s| s.len());
    let _ = std::fs::remove_dir_all(&cache);
    write_json(
        &json!({
            "instruments": a.instruments,
            "begin": begin.to_string(),
            "end": end.to_string(),
            "routines": routines,
            "models": state.trained.len(),
            "signal_rows": signal_rows,
            "trainer": a.trainer,
            "simulate_secs": simulate_secs,
            "total_secs": total,
            "peak_rss_mib": peak_rss_mib(),
        }),
        None,
    )
}
