//! `qtask bench ...`: benchmarks behind the performance claims of the README.

use clap::Subcommand;

/// Benchmarks.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Claims per second of W worker processes against the store's raw write rate.
    Pool(crate::cmd::bench_pool::BenchPoolArgs),
    /// Time and peak memory of computing a handler's features.
    Features(crate::cmd::bench_features::BenchFeaturesArgs),
    /// Time and peak memory of the rolling and average ensembles.
    Ensemble(crate::cmd::bench_ensemble::BenchEnsembleArgs),
    /// Runs written, listed and read back per second (file store or tracking server).
    Runs(crate::cmd::exp::BenchRunsArgs),
    /// Time and peak memory of P() over a synthetic point-in-time database.
    Pit(crate::cmd::bench_pit::BenchPitArgs),
    /// A whole rolling LightGBM study: total seconds vs seconds inside LightGBM, peak memory.
    Rolling(crate::cmd::bench_rolling::BenchRollingArgs),
    /// A pool at scale: create N tasks, drain them, then claim latency among N done tasks.
    Scale(crate::cmd::bench_scale::BenchScaleArgs),
}

/// Runs a benchmark.
pub fn run(cmd: BenchCommand) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Pool(a) => crate::cmd::bench_pool::run(a),
        BenchCommand::Features(a) => crate::cmd::bench_features::run(a),
        BenchCommand::Ensemble(a) => crate::cmd::bench_ensemble::run(a),
        BenchCommand::Runs(a) => crate::cmd::exp::bench_runs(a),
        BenchCommand::Pit(a) => crate::cmd::bench_pit::run(a),
        BenchCommand::Rolling(a) => crate::cmd::bench_rolling::run(a),
        BenchCommand::Scale(a) => crate::cmd::bench_scale::run(a),
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
