//! `qtask example rolling`: the README's main job. Makes a synthetic market if the folder has
//! none, writes Qlib's CSI100 LightGBM rolling config, and runs the rolling study on it
//! through the embedded SQLite pool.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use qtask_runner::StopFlag;
use qtask_study::{Example, Study};

use crate::output::progress::Bars;
use crate::output::study::print_study;

/// Example studies.
#[derive(Debug, Subcommand)]
pub enum ExampleCommand {
    /// Qlib's rolling LightGBM example (CSI100, Alpha158, RollingGen step 550 sliding) on a
    /// synthetic market.
    Rolling(ExampleArgs),
}

/// Arguments of `qtask example rolling`.
#[derive(Debug, Args)]
pub struct ExampleArgs {
    /// Working folder: market data, config, pool, runs and outputs go here.
    #[arg(long, default_value = "qtask_example")]
    pub dir: PathBuf,
    /// Instruments of the synthetic market (used only when the folder has no market yet).
    #[arg(long, default_value_t = 50)]
    pub instruments: usize,
    /// Local workers draining the pool.
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Market of the study: csi100 (Qlib's example: about 60% of the instruments) or all.
    #[arg(long, default_value = "csi100")]
    pub market: String,
    /// Seed of the synthetic market.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `qtask example ...`.
pub fn run(cmd: ExampleCommand) -> anyhow::Result<()> {
    let ExampleCommand::Rolling(a) = cmd;
    let example = Example {
        dir: a.dir,
        instruments: a.instruments,
        workers: a.workers,
        market: a.market,
        seed: a.seed,
    };
    let bars = Bars::default();
    let config = example.prepare(&bars)?;
    eprintln!("config: {}", config.template.display());
    let done = Study::open(config)?.run(&StopFlag::from_signals()?, &bars)?;
    print_study(&done, a.json)
}
