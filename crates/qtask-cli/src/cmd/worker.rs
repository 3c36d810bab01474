//! `qtask worker`: drain a pool, recording a run per task; and the hidden `worker-task` used
//! by `--force-release` to run one task in a fresh child process.

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use qtask_pool::{Query, Status, TaskPool};
use qtask_record::RecordStore;
use qtask_runner::child_env::ENVIRONMENT_EXIT;
use qtask_runner::train::Phase;
use qtask_runner::{
    ChildEnv, ExternalCommand, RecordedTask, RunOptions, RunSummary, StopFlag, TaskContext,
    TaskFunc, run_task,
};
use qtask_study::ExecSpec;
use serde_json::{Value, json};

use crate::ExitWith;
use crate::flags::{ExecFlags, StoreFlags, TrackingFlags};
use crate::output;
use crate::output::progress::progress_events;

/// Arguments of `qtask worker`.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    #[command(flatten)]
    pub store: StoreFlags,
    /// The task pool to drain.
    #[arg(short = 't', long = "task-pool")]
    pub pool: String,
    #[command(flatten)]
    pub exec: ExecFlags,
    #[command(flatten)]
    pub tracking: TrackingFlags,
    /// Experiment the runs go to (default: the pool name).
    #[arg(long)]
    pub experiment: Option<String>,
    /// Qlib data folder for task_train [env: QTASK_PROVIDER_URI; default: ~/.qlib/qlib_data/cn_data].
    #[arg(long)]
    pub provider_uri: Option<PathBuf>,
    /// Only tasks matching this query (MongoDB-style JSON).
    #[arg(long)]
    pub query: Option<String>,
    /// Claim tasks in this status: waiting (the task gets its definition) or part_done (its result).
    #[arg(long, default_value = "waiting", value_parser = crate::flags::status_values())]
    pub before_status: Status,
    /// Commit with this status.
    #[arg(long, default_value = "done", value_parser = crate::flags::status_values())]
    pub after_status: Status,
    /// Task slots running at once.
    #[arg(long, default_value_t = 1)]
    pub concurrency: usize,
    /// Run every task in a fresh child process (memory returned after each; a crash takes one task).
    #[arg(long)]
    pub force_release: bool,
    /// Stop after this many tasks.
    #[arg(long)]
    pub max_tasks: Option<usize>,
    /// Lease in seconds, renewed every third of it; 0: no lease (Qlib's behaviour).
    #[arg(long, default_value_t = 300.0, value_name = "SECS")]
    pub lease: f64,
    /// Wait this long after a failed attempt before it may be retried.
    #[arg(long, default_value_t = 0.0, value_name = "SECS")]
    pub retry_delay: f64,
    /// Keep polling (with backoff) when nothing is left.
    #[arg(long)]
    pub follow: bool,
    /// Print a JSON summary at the end.
    #[arg(long)]
    pub json: bool,
}

fn phase(before: Status, after: Status) -> anyhow::Result<Phase> {
    Ok(match (before, after) {
        (Status::Waiting, Status::Done) => Phase::Full,
        (Status::Waiting, Status::PartDone) => Phase::Begin,
        (Status::PartDone, Status::Done | Status::PartDone) => Phase::End,
        (b, a) => anyhow::bail!(
            "a worker takes waiting or part_done tasks to part_done or done, not {b} -> {a}"
        ),
    })
}

fn seconds(s: f64, flag: &str) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(s)
        .map_err(|_| anyhow::anyhow!("{flag} must be a non-negative number of seconds"))
}

/// The task function a worker runs: the recorded task in-process, or the same in a child
/// process per task with `--force-release`.
fn task_func(
    exec: &ExecSpec,
    records: &RecordStore,
    experiment: &str,
    phase: Phase,
    force_release: bool,
) -> anyhow::Result<Arc<dyn TaskFunc>> {
    if force_release && exec.command.is_none() {
        let me = std::env::current_exe().context("cannot find the qtask binary")?;
        let mut argv = vec![
            me.to_string_lossy().to_string(),
            "worker-task".into(),
            "--experiment".into(),
            experiment.into(),
            "--tracking-uri".into(),
            records.uri(),
            "--phase".into(),
            format!("{phase:?}").to_lowercase(),
        ];
        if let Some(f) = &exec.func {
            argv.extend(["--func".into(), f.clone()]);
        }
        if let Some(p) = &exec.provider_uri {
            argv.extend(["--provider-uri".into(), p.to_string_lossy().to_string()]);
        }
        let child = ExternalCommand::from_argv(argv)?.with_timeout(exec.task_timeout);
        return Ok(Arc::new(child));
    }
    Ok(Arc::new(RecordedTask {
        store: records.clone(),
        experiment: experiment.to_string(),
        exec: exec.executor()?,
        phase,
    }))
}

/// Runs `qtask worker`.
pub fn run(args: WorkerArgs) -> anyhow::Result<()> {
    let exec = args.exec.spec(args.provider_uri.clone())?;
    let pool: Box<dyn TaskPool> = qtask_pool::open(&args.store.store, &args.pool)?;
    let query = Query::parse_str(args.query.as_deref().unwrap_or(""))?;
    let phase = phase(args.before_status, args.after_status)?;
    let records = args.tracking.open(true)?;
    let experiment = args.experiment.clone().unwrap_or_else(|| args.pool.clone());
    let func = task_func(&exec, &records, &experiment, phase, args.force_release)?;
    let lease = seconds(args.lease, "--lease")?;
    let opts = RunOptions {
        query: query.clone(),
        before_status: args.before_status,
        after_status: args.after_status,
        lease: (!lease.is_zero()).then_some(lease),
        concurrency: args.concurrency.max(1),
        max_tasks: args.max_tasks,
        retry_delay: seconds(args.retry_delay, "--retry-delay")?,
        follow: args.follow,
        experiment: Some(experiment),
        ..RunOptions::default()
    };
    let stop = StopFlag::from_signals()?;
    let todo = pool.task_stat(&query.with_status(args.before_status))?;
    let pb = output::bar(todo.values().sum(), "tasks");
    let summary = run_task(
        pool.as_ref(),
        func.as_ref(),
        &opts,
        &stop,
        &progress_events(&pb),
    );
    pb.finish_and_clear();
    // On failure the error line says what matters; warnings only accompany a success.
    let summary: RunSummary = summary?;
    output::warn_all(records.take_warnings());
    if args.json {
        output::write_json(
            &json!({"committed": summary.committed, "failed": summary.failed,
                    "returned": summary.returned, "lease_lost": summary.lease_lost}),
            None,
        )?;
    } else {
        eprintln!(
            "worker: {} committed, {} failed attempts, {} returned, {} leases lost",
            summary.committed, summary.failed, summary.returned, summary.lease_lost
        );
    }
    Ok(())
}

/// Arguments of the hidden `qtask worker-task` (one task in a child process).
#[derive(Debug, Args)]
pub struct WorkerTaskArgs {
    #[arg(long)]
    experiment: String,
    #[arg(long)]
    tracking_uri: String,
    #[arg(long)]
    phase: String,
    #[arg(long)]
    func: Option<String>,
    #[arg(long)]
    provider_uri: Option<PathBuf>,
}

/// Runs one recorded task: parameter on stdin, result on stdout (context from the environment
/// the parent's external-command executor sets).
pub fn run_child(args: WorkerTaskArgs) -> anyhow::Result<()> {
    let phase = match args.phase.as_str() {
        "full" => Phase::Full,
        "begin" => Phase::Begin,
        "end" => Phase::End,
        other => anyhow::bail!("unknown phase {other}"),
    };
    let exec = ExecSpec {
        func: args.func,
        provider_uri: args.provider_uri,
        ..ExecSpec::default()
    };
    // An unusable runs store is the worker's environment, not the task's fault.
    let store = RecordStore::from_env(Some(&args.tracking_uri), true).map_err(|e| {
        ExitWith(
            ENVIRONMENT_EXIT as u8,
            format!("cannot open the runs store: {e}"),
        )
    })?;
    let func = RecordedTask {
        store,
        experiment: args.experiment.clone(),
        exec: exec.executor()?,
        phase,
    };
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input)?;
    let param: Value = qtask_core::json::parse(&input).context("the task on stdin is not JSON")?;
    let env = ChildEnv::from_env().map_err(anyhow::Error::msg)?;
    let ctx = TaskContext {
        experiment: Some(args.experiment),
        tracking_uri: None,
        ..env.context(Arc::new(AtomicBool::new(false)))
    };
    match func.call(&ctx, &param) {
        Ok(res) => {
            println!("{}", serde_json::to_string(&res)?);
            Ok(())
        }
        // The parent worker reads this exit status as "hand the task back and stop".
        Err(e) if e.is_environment() => Err(ExitWith(ENVIRONMENT_EXIT as u8, e.message).into()),
        Err(e) => Err(e.into()),
    }
}
