//! `qtask train`: generate tasks and train them with one of Qlib's four trainers.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use qtask_runner::{RunOptions, StopFlag, TrainOutcome, Trainer, TrainerKind};
use serde_json::{Value, json};

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

/// What a trainer needs besides the tasks.
pub struct TrainSetup<'a> {
    /// How tasks are executed and where runs go.
    pub exec: &'a ExecFlags,
    /// Which trainer.
    pub kind: TrainerKind,
    /// Experiment of the runs.
    pub experiment: &'a str,
    /// Task store URL (RM trainers).
    pub store: &'a str,
    /// Task pool name (RM trainers).
    pub pool: &'a str,
    /// Local workers (RM trainers).
    pub workers: usize,
    /// Also run end_train (delay trainers fit here).
    pub end_train: bool,
}

/// Trains `tasks` with a progress bar; `end_train` runs only when every task trained.
pub fn run_trainer(tasks: &[Value], setup: &TrainSetup) -> anyhow::Result<TrainOutcome> {
    let records = setup.exec.records()?;
    let pool = if setup.kind.uses_pool() {
        Some(Arc::from(qtask_pool::open(setup.store, setup.pool)?))
    } else {
        None
    };
    let trainer = Trainer {
        kind: setup.kind,
        store: records,
        experiment: setup.experiment.to_string(),
        exec: setup.exec.executor()?,
        pool,
        run: RunOptions {
            concurrency: setup.workers.max(1),
            ..RunOptions::default()
        },
        poll: Duration::from_millis(500),
    };
    let stop = StopFlag::from_signals()?;
    let pb = output::bar(tasks.len() as u64, "training");
    let events = progress_events(&pb);
    let mut outcome = trainer
        .train(tasks, &stop, &events)
        .context("training failed")?;
    if setup.end_train && outcome.failed.is_empty() {
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
    Ok(outcome)
}

/// Runs `qtask train`.
pub fn run(mut args: TrainArgs) -> anyhow::Result<()> {
    let tasks = args.generate.generate()?;
    args.exec.provider_uri = Some(args.generate.data_dir()?);
    let pool = args.pool.clone().unwrap_or_else(|| args.experiment.clone());
    let outcome = run_trainer(
        &tasks,
        &TrainSetup {
            exec: &args.exec,
            kind: args.trainer,
            experiment: &args.experiment,
            store: &args.store,
            pool: &pool,
            workers: args.workers,
            end_train: args.end_train,
        },
    )?;
    report(&outcome, args.json, tasks.len())
}

/// Prints the runs (or JSON) and fails when any task failed.
pub fn report(outcome: &TrainOutcome, as_json: bool, n: usize) -> anyhow::Result<()> {
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
