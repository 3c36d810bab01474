//! `qtask run`: Qlib's `qrun`, one workflow config trained into one run.

use std::path::PathBuf;

use clap::Args;
use qtask_core::load_template;
use qtask_model::TASK_TRAIN;
use qtask_runner::{StopFlag, TrainerKind};
use qtask_study::{TrainSetup, json_num, load_windows, train_tasks};
use serde_json::{Value, json};

use crate::flags::{ExecFlags, TrackingFlags};
use crate::output;
use crate::output::progress::Bars;

/// Arguments of `qtask run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Qlib workflow config (YAML/JSON with `task:`), or a task file.
    pub config: PathBuf,
    /// Experiment of the run [default: the config's experiment_name, else workflow].
    #[arg(long)]
    pub experiment: Option<String>,
    /// Qlib data folder [default: the config's qlib_init.provider_uri, else
    /// $QTASK_PROVIDER_URI, else ~/.qlib/qlib_data/cn_data].
    #[arg(long)]
    pub provider_uri: Option<PathBuf>,
    #[command(flatten)]
    pub exec: ExecFlags,
    #[command(flatten)]
    pub tracking: TrackingFlags,
    /// Print the run and its metrics as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `qtask run`.
pub fn run(args: RunArgs) -> anyhow::Result<()> {
    let template = load_template(&args.config)?;
    anyhow::ensure!(
        !template.tasks.is_empty(),
        "{}: no task in the config",
        args.config.display()
    );
    // Every key task_train reads is checked before a run starts: a config it cannot honour
    // fails here, naming the key and the file, rather than running as something else. (An
    // `--exec` command reads the task itself.)
    let builtin =
        args.exec.exec.is_none() && args.exec.func.as_deref().unwrap_or(TASK_TRAIN) == TASK_TRAIN;
    for task in template.tasks.iter().filter(|_| builtin) {
        qtask_model::check_task(task)
            .map_err(|e| anyhow::anyhow!("{}: {e}", args.config.display()))?;
    }
    let experiment = args
        .experiment
        .clone()
        .or_else(|| template.experiment_name.clone())
        .unwrap_or_else(|| "workflow".to_string());
    let provider = qtask_core::resolve_provider_uri(
        args.provider_uri.as_deref(),
        template.provider_uri.as_deref(),
    );
    let exec = args.exec.spec(Some(provider))?;
    let store = args.tracking.open(true)?;
    let outcome = train_tasks(
        &store,
        &template.tasks,
        &TrainSetup {
            exec: &exec,
            kind: TrainerKind::R,
            experiment: &experiment,
            pool: None,
            workers: 1,
            end_train: false,
        },
        &StopFlag::from_signals()?,
        &Bars::default(),
    )?;
    if let Some((_, e)) = outcome.failed.first() {
        anyhow::bail!("{e}");
    }
    let windows = load_windows(&store, &experiment, Some(&outcome.run_ids()))?;
    let runs: Vec<Value> = windows
        .iter()
        .map(|w| {
            let metrics: serde_json::Map<String, Value> = w
                .metrics
                .iter()
                .filter(|(k, _)| {
                    !k.starts_with("qtask.") && !k.contains(".train") && !k.contains(".valid")
                })
                .map(|(k, v)| (k.clone(), json_num(*v)))
                .collect();
            json!({"run_id": w.info.run_id, "experiment": experiment, "metrics": metrics})
        })
        .collect();
    if args.json {
        return output::write_json(&runs, None);
    }
    for r in &runs {
        println!(
            "run {} (experiment {experiment})",
            r["run_id"].as_str().unwrap_or("")
        );
        for (k, v) in r["metrics"].as_object().into_iter().flatten() {
            let v = v.as_f64().map_or("nan".to_string(), |x| format!("{x:.6}"));
            println!("  {k:<24} {v}");
        }
    }
    Ok(())
}
