//! `qtask bench ...`: benchmarks behind the performance claims of the README.

mod backtest;
mod ensemble;
mod features;
mod online;
mod pit;
mod pool;
mod rolling;
mod runs;
mod scale;
mod ui;

use clap::Subcommand;

/// Benchmarks.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Claims per second of W worker processes against the store's raw write rate.
    Pool(pool::BenchPoolArgs),
    /// Time and peak memory of computing a handler's features.
    Features(features::BenchFeaturesArgs),
    /// Time and peak memory of the rolling and average ensembles.
    Ensemble(ensemble::BenchEnsembleArgs),
    /// Runs written, listed and read back per second (file store or tracking server).
    Runs(runs::BenchRunsArgs),
    /// Time and peak memory of P() over a synthetic point-in-time database.
    Pit(pit::BenchPitArgs),
    /// A whole rolling LightGBM study: total seconds vs seconds inside LightGBM, peak memory.
    Rolling(rolling::BenchRollingArgs),
    /// A daily TopkDropout backtest on a synthetic market (inputs kept to time Qlib on them).
    Backtest(backtest::BenchBacktestArgs),
    /// Response time of the dashboard's pages over a pool of a million tasks.
    Ui(ui::BenchUiArgs),
    /// Qlib's online simulation (LightGBM, step 20, 75 trading days): seconds, peak memory.
    Online(online::BenchOnlineArgs),
    /// A pool at scale: create N tasks, drain them, then claim latency among N done tasks.
    Scale(scale::BenchScaleArgs),
}

/// Runs a benchmark.
pub fn run(cmd: BenchCommand) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Pool(a) => pool::run(a),
        BenchCommand::Features(a) => features::run(a),
        BenchCommand::Ensemble(a) => ensemble::run(a),
        BenchCommand::Runs(a) => runs::run(a),
        BenchCommand::Pit(a) => pit::run(a),
        BenchCommand::Rolling(a) => rolling::run(a),
        BenchCommand::Backtest(a) => backtest::run(a),
        BenchCommand::Ui(a) => ui::run(a),
        BenchCommand::Scale(a) => scale::run(a),
        BenchCommand::Online(a) => online::run(a),
    }
}

/// A `/proc/self/status` memory field (`VmHWM:`, `VmRSS:`) in bytes (0 when unavailable).
pub fn status_bytes(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with(field))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or(0, |kb| kb * 1024)
}

/// Peak resident memory of this process (Linux `VmHWM`), in MiB.
pub fn peak_rss_mib() -> f64 {
    status_bytes("VmHWM:") as f64 / (1024.0 * 1024.0)
}
