//! `qtask rolling`: generate rolling tasks, train them through a trainer, collect the windows
//! with RollingGroup, and write the ensembled prediction, a summary and the report.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use qtask_model::signal::IcSummary;
use qtask_runner::TrainerKind;
use serde_json::{Value, json};

use crate::cmd::generate::GenFlags;
use crate::cmd::manage::DEFAULT_STORE;
use crate::cmd::report::write_report;
use crate::cmd::study::{IC_METRICS, ensemble, ensemble_ic, json_num, load_windows, window_json};
use crate::cmd::train::{TrainSetup, run_trainer};
use crate::cmd::worker::ExecFlags;
use crate::output::{self, write_atomic};

/// Arguments of `qtask rolling`.
#[derive(Debug, Args)]
pub struct RollingArgs {
    #[command(flatten)]
    pub generate: GenFlags,
    #[command(flatten)]
    pub exec: ExecFlags,
    /// r (TrainerR), rm (TrainerRM), delay-r (DelayTrainerR) or delay-rm (DelayTrainerRM).
    #[arg(long, default_value = "r")]
    pub trainer: TrainerKind,
    /// Local workers draining the pool (RM trainers).
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Task store of the RM trainers: sqlite:PATH, postgres://..., mongodb://...
    #[arg(long, env = "QTASK_STORE", default_value = DEFAULT_STORE)]
    pub store: String,
    /// Task pool of the RM trainers (default: the experiment name).
    #[arg(short = 't', long = "task-pool")]
    pub pool: Option<String>,
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

/// Where a finished study's outputs are.
pub struct RollingOutput {
    /// The summary written to `summary.json`.
    pub summary: Value,
    /// The report path.
    pub report: PathBuf,
}

fn stem(p: &Path) -> String {
    p.file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| "rolling".into())
}

/// Runs the study without printing (shared by `rolling`, `example rolling` and the bench).
pub fn run_study(mut args: RollingArgs) -> anyhow::Result<RollingOutput> {
    let started = Instant::now();
    let experiment = args
        .experiment
        .clone()
        .unwrap_or_else(|| stem(&args.generate.template));
    let tasks = args.generate.generate()?;
    anyhow::ensure!(!tasks.is_empty(), "the template generated no tasks");
    args.exec.provider_uri = Some(args.generate.data_dir()?);
    let t_gen = started.elapsed().as_secs_f64();

    let t = Instant::now();
    let pool = args.pool.clone().unwrap_or_else(|| experiment.clone());
    let outcome = run_trainer(
        &tasks,
        &TrainSetup {
            exec: &args.exec,
            kind: args.trainer,
            experiment: &experiment,
            store: &args.store,
            pool: &pool,
            workers: args.workers,
            end_train: args.trainer.is_delay(),
        },
    )?;
    if let Some((i, e)) = outcome.failed.first() {
        anyhow::bail!(
            "{} of {} tasks failed; task {i}: {e}",
            outcome.failed.len(),
            tasks.len()
        );
    }
    let t_train = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let store = args.exec.records()?;
    let run_ids = outcome.run_ids();
    let pb = output::bar(2, "collecting");
    let windows = load_windows(&store, &experiment, Some(&run_ids))?;
    pb.inc(1);
    let ens = ensemble(&windows)?;
    let first = ens
        .first()
        .context("no run saved a pred.parquet to collect")?;
    let daily = ensemble_ic(first)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let pred_path = args.out.join("pred.parquet");
    first
        .pred
        .write_parquet(&pred_path)
        .with_context(|| format!("cannot write {}", pred_path.display()))?;
    pb.finish_and_clear();
    let t_collect = t.elapsed().as_secs_f64();

    let ens_metrics = daily
        .as_ref()
        .map(|d| IcSummary::of(&d.ic, &d.rank_ic).metrics())
        .unwrap_or_default();
    let range = first.pred.datetime_range();
    let fit_secs: f64 = windows
        .iter()
        .filter_map(|w| w.metrics.get(qtask_model::workflow::SECONDS_FIT))
        .sum();
    let mut summary = json!({
        "experiment": experiment,
        "config": args.generate.template,
        "trainer": args.trainer.qlib_name(),
        "tasks": tasks.len(),
        "test_segments": windows.iter().map(|w| w.task.pointer("/dataset/kwargs/segments/test")).collect::<Vec<_>>(),
        "windows": windows.iter().map(window_json).collect::<Vec<_>>(),
        "ensemble": {
            "key": first.key,
            "rows": first.pred.len(),
            "start": range.map(|r| r.0.date().to_string()),
            "end": range.map(|r| r.1.date().to_string()),
            "metrics": ens_metrics.iter().map(|(k, v)| (k.clone(), json_num(*v))).collect::<serde_json::Map<_, _>>(),
        },
        "seconds": {
            "generate": t_gen,
            "train": t_train,
            "model_fit": fit_secs,
            "collect": t_collect,
        },
    });
    let t = Instant::now();
    let report = args.out.join("report.html");
    write_report(
        &report,
        &format!("qtask rolling: {experiment}"),
        &experiment,
        &windows,
        vec![
            format!("config: {}", args.generate.template.display()),
            format!(
                "{} tasks, trainer {}",
                tasks.len(),
                args.trainer.qlib_name()
            ),
            format!(
                "seconds: generate {t_gen:.2}, train {t_train:.2} (model fit {fit_secs:.2}), collect {t_collect:.2}"
            ),
        ],
    )?;
    summary["seconds"]["report"] = json!(t.elapsed().as_secs_f64());
    summary["seconds"]["total"] = json!(started.elapsed().as_secs_f64());
    write_atomic(
        &args.out.join("summary.json"),
        serde_json::to_string_pretty(&summary)?.as_bytes(),
    )?;
    Ok(RollingOutput { summary, report })
}

fn fmt(v: &Value) -> String {
    v.as_f64().map_or("nan".into(), |x| format!("{x:.4}"))
}

/// Prints per-window and ensemble metrics as a table.
pub fn print_table(summary: &Value, windows_label: &str) {
    println!(
        "{:<32} {:>8} {:>8} {:>8} {:>9}",
        windows_label, IC_METRICS[0], IC_METRICS[1], IC_METRICS[2], IC_METRICS[3]
    );
    let row = |name: &str, m: &Value| {
        println!(
            "{:<32} {:>8} {:>8} {:>8} {:>9}",
            name,
            fmt(&m["IC"]),
            fmt(&m["ICIR"]),
            fmt(&m["Rank IC"]),
            fmt(&m["Rank ICIR"])
        );
    };
    for w in summary["windows"].as_array().into_iter().flatten() {
        let name = match w["test"].as_array() {
            Some(t) => format!(
                "test {}..{}",
                t.first().and_then(Value::as_str).unwrap_or("?"),
                t.get(1).and_then(Value::as_str).unwrap_or("open")
            ),
            None => w["run_id"].as_str().unwrap_or("?").to_string(),
        };
        row(&name, &w["metrics"]);
    }
    row("ensemble (RollingGroup)", &summary["ensemble"]["metrics"]);
}

/// Runs `qtask rolling`.
pub fn run(args: RollingArgs) -> anyhow::Result<()> {
    let as_json = args.json;
    let out = args.out.clone();
    let done = run_study(args)?;
    if as_json {
        output::write_json(&done.summary, None)?;
    } else {
        print_table(&done.summary, "window");
        println!(
            "prediction: {} ({} rows)\nsummary:    {}\nreport:     {}",
            out.join("pred.parquet").display(),
            done.summary["ensemble"]["rows"],
            out.join("summary.json").display(),
            done.report.display()
        );
    }
    Ok(())
}
