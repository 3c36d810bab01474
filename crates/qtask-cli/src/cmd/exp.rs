//! `qtask exp`: browse and delete experiments and runs (MLflow file store or tracking server).

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use crate::output;
use qtask_record::{RecordStore, RunInfo, RunStatus, format_millis};

/// Experiments and runs.
#[derive(Debug, Args)]
pub struct ExpArgs {
    /// Run store: file:PATH, a folder, or http://host:port (an MLflow tracking server)
    /// [env: QTASK_TRACKING_URI, then MLFLOW_TRACKING_URI; default: file:mlruns].
    #[arg(long, global = true, value_name = "URI")]
    pub tracking_uri: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: ExpCommand,
}

/// `qtask exp` subcommands.
#[derive(Debug, Subcommand)]
pub enum ExpCommand {
    /// List the active experiments, newest first.
    List,
    /// List an experiment's runs, newest first.
    Runs {
        /// Experiment name.
        name: String,
        /// Only runs with this status (RUNNING, FINISHED, FAILED, KILLED, SCHEDULED).
        #[arg(long)]
        status: Option<RunStatus>,
    },
    /// Show one run: metadata, params, metrics, tags and artifacts.
    Show {
        /// Run id (32 hex digits).
        run_id: String,
    },
    /// Delete an experiment and its runs (MLflow semantics: moved to .trash, name reserved).
    Rm {
        /// Experiment name.
        name: String,
    },
}

/// Runs `qtask exp ...`.
pub fn run(args: ExpArgs) -> anyhow::Result<()> {
    let store = RecordStore::from_env(args.tracking_uri.as_deref(), false)?;
    let result = match args.command {
        ExpCommand::List => list(&store, args.json),
        ExpCommand::Runs { name, status } => runs(&store, &name, status, args.json),
        ExpCommand::Show { run_id } => show(&store, &run_id, args.json),
        ExpCommand::Rm { name } => rm(&store, &name, args.json),
    };
    // On failure the error line says what matters; warnings only accompany a success.
    if result.is_ok() {
        output::warn_all(store.take_warnings());
    }
    result
}

fn list(store: &RecordStore, json: bool) -> anyhow::Result<()> {
    let exps = store.experiments()?;
    if json {
        return output::write_json(&exps, None);
    }
    let rows: Vec<Vec<String>> = exps
        .iter()
        .map(|e| {
            vec![
                e.id.clone(),
                e.name.clone(),
                e.creation_time.map(format_millis).unwrap_or_default(),
            ]
        })
        .collect();
    print_table(&["ID", "NAME", "CREATED (UTC)"], &rows);
    Ok(())
}

fn runs(
    store: &RecordStore,
    name: &str,
    status: Option<RunStatus>,
    json: bool,
) -> anyhow::Result<()> {
    let exp = store
        .find_experiment(name)?
        .with_context(|| format!("no experiment `{name}` in {}", store.uri()))?;
    let runs = exp.runs(status)?;
    if json {
        return output::write_json(&runs, None);
    }
    let rows: Vec<Vec<String>> = runs.iter().map(run_row).collect();
    print_table(
        &["RUN ID", "STATUS", "NAME", "START (UTC)", "DURATION"],
        &rows,
    );
    Ok(())
}

fn run_row(r: &RunInfo) -> Vec<String> {
    let duration = r
        .end_time
        .map(|end| format!("{:.1}s", (end - r.start_time) as f64 / 1000.0))
        .unwrap_or_default();
    vec![
        r.run_id.clone(),
        r.status.to_string(),
        r.run_name.clone(),
        format_millis(r.start_time),
        duration,
    ]
}

fn show(store: &RecordStore, run_id: &str, json: bool) -> anyhow::Result<()> {
    let run = store.run(run_id)?;
    let params = run.params()?;
    let metrics = run.metrics()?;
    let tags = run.tags()?;
    let artifacts = run.all_artifacts()?;
    if json {
        let metrics: serde_json::Map<String, Value> = metrics
            .iter()
            .map(|m| {
                (
                    m.key.clone(),
                    json!({"value": json_number(m.value), "step": m.step, "timestamp": m.timestamp}),
                )
            })
            .collect();
        let doc = json!({
            "info": run.info(),
            "params": params,
            "metrics": metrics,
            "tags": tags,
            "artifacts": artifacts,
        });
        return output::write_json(&doc, None);
    }
    let info = run.info();
    println!("run        {}", info.run_id);
    println!("name       {}", info.run_name);
    println!("experiment {}", info.experiment_id);
    println!("status     {}", info.status);
    println!("started    {} UTC", format_millis(info.start_time));
    if let Some(end) = info.end_time {
        println!("ended      {} UTC", format_millis(end));
    }
    println!("artifacts  {}", info.artifact_uri);
    section(
        "params",
        params.iter().map(|(k, v)| vec![k.clone(), v.clone()]),
    );
    section(
        "metrics",
        metrics.iter().map(|m| {
            vec![
                m.key.clone(),
                m.value.to_string(),
                format!("step {}", m.step),
            ]
        }),
    );
    section(
        "tags",
        tags.iter().map(|(k, v)| vec![k.clone(), one_line(v)]),
    );
    section(
        "artifacts",
        artifacts.iter().map(|a| {
            vec![
                a.path.clone(),
                a.size.map(|s| format!("{s} B")).unwrap_or_default(),
            ]
        }),
    );
    Ok(())
}

fn rm(store: &RecordStore, name: &str, json: bool) -> anyhow::Result<()> {
    let info = store
        .delete_experiment(name)
        .with_context(|| format!("cannot delete experiment `{name}`"))?;
    if json {
        return output::write_json(&info, None);
    }
    println!(
        "deleted experiment `{}` (id {}) and its runs; MLflow keeps the name reserved until \
         the experiment is purged",
        info.name, info.id
    );
    Ok(())
}

/// JSON has no NaN or infinity: those become strings, as MLflow's REST API writes them.
fn json_number(x: f64) -> Value {
    if x.is_finite() {
        json!(x)
    } else if x.is_nan() {
        json!("NaN")
    } else if x > 0.0 {
        json!("Infinity")
    } else {
        json!("-Infinity")
    }
}

fn one_line(text: &str) -> String {
    text.replace('\n', "\\n")
}

fn section(title: &str, rows: impl Iterator<Item = Vec<String>>) {
    let rows: Vec<Vec<String>> = rows.collect();
    println!("\n{title} ({})", rows.len());
    print_rows(&rows, "  ");
}

fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut all = vec![header.iter().map(|h| h.to_string()).collect::<Vec<_>>()];
    all.extend(rows.iter().cloned());
    print_rows(&all, "");
}

fn print_rows(rows: &[Vec<String>], indent: &str) {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, cell)| {
                if i + 1 == row.len() {
                    cell.clone()
                } else {
                    format!("{cell:<w$}", w = widths[i])
                }
            })
            .collect();
        println!("{indent}{}", cells.join("  "));
    }
}

/// Arguments of `qtask bench runs`.
#[derive(Debug, Args)]
pub struct BenchRunsArgs {
    /// Run store to write to (default: a fresh file store in a temporary folder, removed
    /// afterwards). A tracking server gets a new `qtask-bench-<pid>` experiment, left in place.
    #[arg(long, value_name = "URI")]
    pub tracking_uri: Option<String>,
    /// Runs to write.
    #[arg(long, default_value_t = 200)]
    pub runs: usize,
    /// Writer threads sharing one store handle.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Size of the prediction artifact of each run, in KiB.
    #[arg(long, default_value_t = 256)]
    pub artifact_kib: usize,
}

/// `qtask bench runs`: how fast runs are written the way the trainer writes them (start, a
/// Qlib task as params, tags, metrics, task.json, a prediction artifact, end), then listed
/// and read back.
pub fn bench_runs(args: BenchRunsArgs) -> anyhow::Result<()> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Instant;

    anyhow::ensure!(args.threads > 0, "--threads must be at least 1");
    let temp = match &args.tracking_uri {
        Some(_) => None,
        None => Some(std::env::temp_dir().join(format!(
            "qtask-bench-runs-{}-{}",
            std::process::id(),
            qtask_record::now_millis()
        ))),
    };
    let uri = match (&args.tracking_uri, &temp) {
        (Some(u), _) => u.clone(),
        (None, Some(dir)) => format!("file:{}", dir.display()),
        (None, None) => unreachable!("a temporary folder is chosen when no URI is given"),
    };
    let result = (|| -> anyhow::Result<Value> {
        let store = RecordStore::open(&uri)?;
        let exp = store.experiment(&format!("qtask-bench-{}", std::process::id()))?;
        let task = json!({
            "model": {"class": "LGBModel", "module_path": "qlib.contrib.model.gbdt",
                      "kwargs": {"loss": "mse", "colsample_bytree": 0.8879, "learning_rate": 0.2,
                                 "subsample": 0.8789, "lambda_l1": 205.6999, "lambda_l2": 580.9768,
                                 "max_depth": 8, "num_leaves": 210, "num_threads": 20}},
            "dataset": {"class": "DatasetH", "module_path": "qlib.data.dataset",
                        "kwargs": {"handler": {"class": "Alpha158", "kwargs": {
                            "start_time": "2008-01-01", "end_time": "2020-08-01",
                            "fit_start_time": "2008-01-01", "fit_end_time": "2014-12-31",
                            "instruments": "csi300"}},
                                   "segments": {"train": ["2008-01-01", "2014-12-31"],
                                                "valid": ["2015-01-01", "2016-12-31"],
                                                "test": ["2017-01-01", "2020-08-01"]}}},
        });
        let pred = vec![0x5au8; args.artifact_kib * 1024];
        let next = AtomicUsize::new(0);
        let bar = output::bar(args.runs as u64, "runs");
        let started = Instant::now();
        std::thread::scope(|s| -> anyhow::Result<()> {
            let handles: Vec<_> = (0..args.threads)
                .map(|_| {
                    s.spawn(|| -> anyhow::Result<()> {
                        while next.fetch_add(1, Ordering::Relaxed) < args.runs {
                            let mut run = exp.start_run(None)?;
                            run.log_params(&task)?;
                            run.set_tags(&[
                                ("train_status".into(), "begin_task_train".into()),
                                ("hostname".into(), "bench".into()),
                                ("_id in TaskManager".into(), run.id().to_string()),
                            ])?;
                            run.save_json("task.json", &task)?;
                            run.save_artifact_bytes("pred.parquet", &pred)?;
                            run.log_metrics(
                                &[
                                    ("IC".into(), 0.05),
                                    ("ICIR".into(), 0.4),
                                    ("Rank IC".into(), 0.06),
                                    ("Rank ICIR".into(), 0.5),
                                ],
                                0,
                            )?;
                            run.end(RunStatus::Finished)?;
                            bar.inc(1);
                        }
                        Ok(())
                    })
                })
                .collect();
            for h in handles {
                h.join()
                    .map_err(|_| anyhow::anyhow!("a writer thread panicked"))??;
            }
            Ok(())
        })?;
        let write_s = started.elapsed().as_secs_f64();
        bar.finish_and_clear();
        let started = Instant::now();
        let listed = exp.runs(Some(RunStatus::Finished))?;
        let list_s = started.elapsed().as_secs_f64();
        anyhow::ensure!(
            listed.len() == args.runs,
            "listed {} runs, wrote {}",
            listed.len(),
            args.runs
        );
        let started = Instant::now();
        for info in &listed {
            let run = store.run(&info.run_id)?;
            run.params()?;
            run.metrics()?;
            run.tags()?;
        }
        let read_s = started.elapsed().as_secs_f64();
        Ok(json!({
            "store": store.uri(),
            "runs": args.runs,
            "threads": args.threads,
            "artifact_kib": args.artifact_kib,
            "write_seconds": round3(write_s),
            "runs_per_second": round3(args.runs as f64 / write_s),
            "ms_per_run": round3(write_s * 1000.0 / args.runs as f64),
            "list_seconds": round3(list_s),
            "read_all_seconds": round3(read_s),
        }))
    })();
    if let Some(dir) = &temp {
        let _ = std::fs::remove_dir_all(dir);
    }
    output::write_json(&result?, None)
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
