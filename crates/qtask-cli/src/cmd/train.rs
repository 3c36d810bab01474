//! `qtask train`: generate tasks and train them with one of Qlib's four trainers.

use clap::Args;
use qtask_pool::{CreateOptions, Query, Status};
use qtask_runner::{StopFlag, TrainOutcome, TrainerKind};
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
    /// Train again the tasks the pool already holds as done (RM trainers; new runs).
    #[arg(long)]
    pub retrain: bool,
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
    let uses_pool = matches!(args.trainer.trainer, TrainerKind::Rm | TrainerKind::DelayRm);
    let done_before = if uses_pool {
        done_in_pool(&args.store.store, &pool, &tasks, args.retrain)?
    } else {
        0
    };
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
    if done_before > 0 {
        // Qlib's TrainerRM returns the old runs of tasks it finds done: say so, or a user
        // reads them as fresh results.
        let n = tasks.len();
        if done_before == n {
            eprintln!(
                "{n} task(s) already done in pool `{pool}`; nothing to train (their runs are \
                 listed); use a new pool (-t) or --retrain"
            );
        } else {
            eprintln!(
                "{done_before} of {n} task(s) already done in pool `{pool}` (their runs are \
                 listed, not retrained; --retrain trains them again)"
            );
        }
    }
    report(&outcome, args.json, tasks.len())
}

/// How many of `tasks` the pool holds as done; with `retrain` they are set back to waiting
/// (and 0 is returned).
fn done_in_pool(
    store: &str,
    pool: &str,
    tasks: &[serde_json::Value],
    retrain: bool,
) -> anyhow::Result<usize> {
    let pool = qtask_pool::open(store, pool)?;
    let created = pool.create_tasks(
        tasks,
        &CreateOptions {
            dry_run: true,
            ..CreateOptions::default()
        },
    )?;
    let ids: Vec<String> = created.into_iter().filter_map(|c| c.id).collect();
    if ids.is_empty() {
        return Ok(0);
    }
    let query = Query::parse(&json!({"_id": {"$in": ids}, "status": Status::Done.as_str()}))?;
    if retrain {
        pool.reset_status(&query, Status::Waiting)?;
        return Ok(0);
    }
    Ok(pool.task_stat(&query)?.values().sum::<u64>() as usize)
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
