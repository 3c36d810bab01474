//! `qtask rolling`: the rolling study (generate, train, collect with RollingGroup, ensemble)
//! writing the prediction, a summary and the report.

use std::path::PathBuf;

use clap::Args;
use qtask_runner::StopFlag;
use qtask_study::{Study, StudyConfig};

use crate::flags::{ExecFlags, GenFlags, StoreFlags, TrackingFlags, TrainerFlags};
use crate::output::progress::Bars;
use crate::output::study::print_study;

/// Arguments of `qtask rolling`.
#[derive(Debug, Args)]
pub struct RollingArgs {
    #[command(flatten)]
    pub generate: GenFlags,
    #[command(flatten)]
    pub exec: ExecFlags,
    #[command(flatten)]
    pub tracking: TrackingFlags,
    #[command(flatten)]
    pub trainer: TrainerFlags,
    #[command(flatten)]
    pub store: StoreFlags,
    /// Experiment of the runs (default: the config file's name).
    #[arg(long)]
    pub experiment: Option<String>,
    /// Folder receiving pred.parquet, summary.json and report.html.
    #[arg(long, default_value = "rolling_out")]
    pub out: PathBuf,
    /// Print the summary as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

impl RollingArgs {
    /// The study these flags describe.
    fn config(&self) -> anyhow::Result<StudyConfig> {
        Ok(StudyConfig {
            provider_uri: self.generate.provider_uri.clone(),
            generators: self.generate.settings(),
            trainer: self.trainer.trainer,
            workers: self.trainer.workers,
            store: self.store.store.clone(),
            pool: self.trainer.pool.clone(),
            tracking_uri: self.tracking.tracking_uri.clone(),
            experiment: self.experiment.clone(),
            exec: self.exec.spec(None)?,
            out: self.out.clone(),
            ..StudyConfig::new(&self.generate.template)
        })
    }
}

/// Runs `qtask rolling`.
pub fn run(args: RollingArgs) -> anyhow::Result<()> {
    let study = Study::open(args.config()?)?;
    let done = study.run(&StopFlag::from_signals()?, &Bars::default())?;
    print_study(&done, args.json)
}
