//! `qtask train`: generate tasks and train them with one of Qlib's four trainers.

use clap::Args;
use qtask_runner::{StopFlag, TrainOutcome};
use qtask_study::{PoolTarget, TrainSetup, train_tasks};
use serde_json::json;

use crate::flags::{ExecFlags, GenFlags, StoreFlags, TrackingFlags, TrainerFlags};
use crate::output;
use crate::output::progress::Bars;

/// Arguments of `qtask train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
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
    /// Experiment the runs are recorded in.
    #[arg(long)]
    pub experiment: String,
    /// Also run end_train: fit what delay trainers recorded, tag runs end_task_train.
    #[arg(long)]
    pub end_train: bool,
    /// Print the outcome as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `qtask train`.
pub fn run(args: TrainArgs) -> anyhow::Result<()> {
    let (tasks, provider) = args.generate.generate()?;
    let exec = args.exec.spec(Some(provider))?;
    let records = args.tracking.open(true)?;
    let pool = args
        .trainer
        .pool
        .clone()
        .unwrap_or_else(|| args.experiment.clone());
    let outcome = train_tasks(
        &records,
        &tasks,
        &TrainSetup {
            exec: &exec,
            kind: args.trainer.trainer,
            experiment: &args.experiment,
            pool: Some(PoolTarget {
                store: &args.store.store,
                name: &pool,
            }),
            workers: args.trainer.workers,
            end_train: args.end_train,
        },
        &StopFlag::from_signals()?,
        &Bars::default(),
    )?;
    report(&outcome, args.json, tasks.len())
}

/// Prints the runs (or JSON) and fails when any task failed.
fn report(outcome: &TrainOutcome, as_json: bool, n: usize) -> anyhow::Result<()> {
    if as_json {
        let failed: Vec<_> = outcome
            .failed
            .iter()
            .map(|(i, e)| json!({"index": i, "error": e}))
            .collect();
        output::write_json(&json!({"runs": outcome.runs, "failed": failed}), None)?;
    } else {
        for id in outcome.run_ids() {
            println!("{id}");
        }
    }
    if let Some((i, e)) = outcome.failed.first() {
        anyhow::bail!(
            "{} of {n} tasks failed; task {i}: {e}",
            outcome.failed.len()
        );
    }
    Ok(())
}
