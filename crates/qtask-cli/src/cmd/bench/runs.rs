//! `qtask bench runs`: runs written, listed and read back per second.

use clap::Args;
use qtask_record::names::{PRED_ARTIFACT, TASK_ARTIFACT, TM_ID};
use qtask_record::{RecordStore, RunStatus};
use serde_json::{Value, json};

use crate::output;

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
pub fn run(args: BenchRunsArgs) -> anyhow::Result<()> {
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
                                (TM_ID.into(), run.id().to_string()),
                            ])?;
                            run.save_json(TASK_ARTIFACT, &task)?;
                            run.save_artifact_bytes(PRED_ARTIFACT, &pred)?;
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
