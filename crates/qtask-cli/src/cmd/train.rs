//! `qtask train`: generate tasks and train them with one of Qlib's four trainers.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use qtask_runner::{RunOptions, StopFlag, TrainOutcome, Trainer, TrainerKind};
use serde_json::json;

use crate::cmd::generate::GenFlags;
use crate::cmd::manage::DEFAULT_STORE;
use crate::cmd::worker::{ExecFlags, progress_events};
use crate::output;

/// Arguments of `qtask train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    #[command(flatten)]
    pub generate: GenFlags,
    #[command(flatten)]
    pub exec: ExecFlags,
    /// Experiment the runs are recorded in.
    #[arg(long)]
    pub experiment: String,
    /// r (TrainerR), rm (TrainerRM), delay-r (DelayTrainerR) or delay-rm (DelayTrainerRM).
    #[arg(long, default_value = "r")]
    pub trainer: TrainerKind,
    /// Task store of the RM trainers: sqlite:PATH, postgres://..., mongodb://...
    #[arg(long, env = "QTASK_STORE", default_value = DEFAULT_STORE)]
    pub store: String,
    /// Task pool of the RM trainers (default: the experiment name).
    #[arg(short = 't', long = "task-pool")]
    pub pool: Option<String>,
    /// Local workers draining the pool (RM trainers); other machines may join with `qtask worker`.
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Also run end_train: fit what delay trainers recorded, tag runs end_task_train.
    #[arg(long)]
    pub end_train: bool,
    /// Print the outcome as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `qtask train`.
pub fn run(args: TrainArgs) -> anyhow::Result<()> {
    let tasks = args.generate.generate()?;
    let records = args.exec.records()?;
    let pool = if args.trainer.uses_pool() {
        let name = args.pool.clone().unwrap_or_else(|| args.experiment.clone());
        Some(Arc::from(qtask_pool::open(&args.store, &name)?))
    } else {
        None
    };
    let trainer = Trainer {
        kind: args.trainer,
        store: records,
        experiment: args.experiment.clone(),
        exec: args.exec.executor()?,
        pool,
        run: RunOptions {
            concurrency: args.workers.max(1),
            ..RunOptions::default()
        },
        poll: Duration::from_millis(500),
    };
    let stop = StopFlag::from_signals()?;
    let pb = output::bar(tasks.len() as u64, "training");
    let events = progress_events(&pb);
    let mut outcome = trainer
        .train(&tasks, &stop, &events)
        .context("training failed")?;
    if args.end_train && outcome.failed.is_empty() {
        pb.set_position(0);
        pb.set_message("end_train");
        let ended = trainer
            .end_train(&outcome.run_ids(), &stop, &events)
            .context("end_train failed")?;
        outcome = TrainOutcome {
            runs: outcome.runs,
            failed: ended.failed,
        };
    }
    pb.finish_and_clear();
    report(&outcome, args.json, tasks.len())
}

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
