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
}

/// Runs a benchmark.
pub fn run(cmd: BenchCommand) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Pool(a) => crate::cmd::bench_pool::run(a),
        BenchCommand::Features(a) => crate::cmd::bench_features::run(a),
        BenchCommand::Ensemble(a) => crate::cmd::bench_ensemble::run(a),
        BenchCommand::Runs(a) => crate::cmd::exp::bench_runs(a),
        BenchCommand::Pit(a) => crate::cmd::bench_pit::run(a),
    }
}
