//! The quant workflow through the binary: `qtask run`, `qtask rolling`, `qtask report`,
//! `qtask example rolling`, on small synthetic markets.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Output;

mod common;
use common::ok;

use qtask_table::PredTable;
use serde_json::Value;

fn qtask(dir: &Path, args: &[&str]) -> Output {
    common::cmd()
        .args(args)
        .current_dir(dir)
        .env("QTASK_CACHE_DIR", dir.join("cache"))
        .output()
        .expect("run qtask")
}

fn fails_with(out: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(
        lines[0].starts_with("error: ") && lines[0].contains(needle),
        "{err}"
    );
}

/// A 10-instrument market over 2008-2012 and a rolling config on it.
fn study(dir: &Path) -> PathBuf {
    ok(&qtask(
        dir,
        &[
            "data",
            "synth",
            "--out",
            "data",
            "--instruments",
            "10",
            "--start",
            "2008-01-01",
            "--end",
            "2012-12-31",
            "--seed",
            "3",
        ],
    ));
    let config = dir.join("workflow.yaml");
    std::fs::write(
        &config,
        format!(
            r#"qlib_init:
    provider_uri: "{}"
handler: &handler
    start_time: 2008-01-01
    end_time: 2012-12-31
    fit_start_time: <dataset.kwargs.segments.train.0>
    fit_end_time: <dataset.kwargs.segments.train.1>
    instruments: all
task:
    model:
        class: LGBModel
        module_path: qlib.contrib.model.gbdt
        kwargs: {{loss: mse, learning_rate: 0.1, num_leaves: 31, num_threads: 2}}
    dataset:
        class: DatasetH
        kwargs:
            handler: {{class: Alpha158, kwargs: *handler}}
            segments:
                train: [2008-01-01, 2009-12-31]
                valid: [2010-01-01, 2010-12-31]
                test: [2011-01-01, 2012-12-31]
    record:
        - {{class: SignalRecord, kwargs: {{model: <MODEL>, dataset: <DATASET>}}}}
        - {{class: SigAnaRecord, kwargs: {{ana_long_short: false, ann_scaler: 252}}}}
"#,
            dir.join("data").display()
        ),
    )
    .unwrap();
    config
}

fn calendar(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("data/calendars/day.txt"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// (symbol, start, end) of the market's listing spans.
fn listings(dir: &Path) -> Vec<(String, String, String)> {
    std::fs::read_to_string(dir.join("data/instruments/all.txt"))
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[0].to_string(), f[1].to_string(), f[2].to_string())
        })
        .collect()
}

#[test]
fn rolling_trains_collects_and_reports_the_windows_qlib_would() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let config = study(dir);
    let c = config.to_str().unwrap();
    let gen_flags = ["--rolling-step", "250", "--rtype", "sliding"];
    let mut args = vec!["rolling", c];
    args.extend(gen_flags);
    args.extend([
        "--trainer",
        "rm",
        "--store",
        "sqlite:pool.db",
        "--tracking-uri",
        "file:mlruns",
        "--out",
        "out",
        "--json",
    ]);
    let summary: Value = serde_json::from_str(&ok(&qtask(dir, &args))).unwrap();

    // The windows are exactly the tasks `qtask gen` makes from the same config.
    let mut gen_args = vec!["gen", c];
    gen_args.extend(gen_flags);
    let tasks: Vec<Value> = serde_json::from_str(&ok(&qtask(dir, &gen_args))).unwrap();
    assert!(tasks.len() >= 2, "{} windows", tasks.len());
    let expected: Vec<Value> = tasks
        .iter()
        .map(|t| t["dataset"]["kwargs"]["segments"]["test"].clone())
        .collect();
    assert_eq!(summary["test_segments"], Value::Array(expected.clone()));
    assert_eq!(summary["tasks"], tasks.len());

    // The ensembled prediction covers every listed (day, instrument) of the test windows once,
    // counted here from the calendar and the instruments file alone.
    let cal = calendar(dir);
    let first = expected[0][0].as_str().unwrap().to_string();
    // An open end runs to the end of the calendar.
    let last = expected.last().unwrap()[1]
        .as_str()
        .map_or_else(|| cal.last().unwrap().clone(), str::to_string);
    let days: Vec<&String> = cal.iter().filter(|d| **d >= first && **d <= last).collect();
    let mut keys = BTreeSet::new();
    for (sym, s, e) in listings(dir) {
        for d in &days {
            if **d >= s && **d <= e {
                keys.insert((d.to_string(), sym.clone()));
            }
        }
    }
    let pred = PredTable::read_parquet(&dir.join("out/pred.parquet")).unwrap();
    assert_eq!(pred.column_names(), ["score"]);
    assert_eq!(pred.len(), keys.len());
    assert_eq!(summary["ensemble"]["rows"], keys.len());
    let (lo, hi) = pred.datetime_range().unwrap();
    assert_eq!(lo.date().to_string(), *days[0]);
    assert_eq!(hi.date().to_string(), **days.last().unwrap());

    // The planted signal is learnt, per window and ensembled.
    let ic = summary["ensemble"]["metrics"]["IC"].as_f64().unwrap();
    let ric = summary["ensemble"]["metrics"]["Rank IC"].as_f64().unwrap();
    assert!(ic > 0.02 && ric > 0.02, "IC {ic}, Rank IC {ric}");
    for w in summary["windows"].as_array().unwrap() {
        assert_eq!(w["status"], "FINISHED");
        assert!(w["metrics"]["IC"].as_f64().unwrap() > 0.0, "{w}");
    }

    let html = std::fs::read_to_string(dir.join("out/report.html")).unwrap();
    for id in ["chart-window-ic", "chart-cum-ic", "chart-importance"] {
        assert!(html.contains(&format!("id=\"{id}\"")), "missing {id}");
    }
    // An open last window shows the day it really ends on.
    if expected.last().unwrap()[1].is_null() {
        assert!(
            html.contains(&format!("{} (open)", days.last().unwrap())),
            "the open last window does not show its last day {}",
            days.last().unwrap()
        );
    }
    // The market is `qtask data synth`'s: the report says so where it cannot be missed.
    assert!(
        html.contains(r#"<li class="synthetic">data: a SYNTHETIC market"#),
        "the report does not say its market is synthetic"
    );
    let on_disk: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("out/summary.json")).unwrap())
            .unwrap();
    assert_eq!(on_disk["ensemble"]["rows"], summary["ensemble"]["rows"]);
    for phase in [
        "generate",
        "train",
        "model_fit",
        "collect",
        "report",
        "total",
    ] {
        assert!(
            on_disk["seconds"][phase].as_f64().is_some(),
            "no {phase} seconds"
        );
    }

    // A second run reuses the pool: done tasks are not retrained (same runs).
    let again: Value = serde_json::from_str(&ok(&qtask(dir, &args))).unwrap();
    let ids = |s: &Value| -> Vec<Value> {
        s["windows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["run_id"].clone())
            .collect()
    };
    assert_eq!(ids(&again), ids(&summary));

    // `qtask report` over the experiment gives the same charts.
    ok(&qtask(
        dir,
        &[
            "report",
            "--experiment",
            "workflow",
            "--tracking-uri",
            "file:mlruns",
            "--out",
            "r.html",
        ],
    ));
    let html = std::fs::read_to_string(dir.join("r.html")).unwrap();
    assert!(html.contains("id=\"chart-cum-ic\""));
    for w in summary["windows"].as_array().unwrap() {
        assert!(html.contains(w["run_id"].as_str().unwrap()));
    }
}

#[test]
fn qrun_trains_one_workflow_and_prints_its_metrics() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let config = study(dir);
    let out = ok(&qtask(
        dir,
        &[
            "run",
            config.to_str().unwrap(),
            "--tracking-uri",
            "file:mlruns",
            "--json",
        ],
    ));
    let runs: Vec<Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["experiment"], "workflow");
    for k in ["IC", "ICIR", "Rank IC", "Rank ICIR"] {
        assert!(
            runs[0]["metrics"][k].as_f64().is_some(),
            "no {k}: {}",
            runs[0]
        );
    }
    assert!(runs[0]["metrics"]["IC"].as_f64().unwrap() > 0.02);

    // Bad data (a train segment after the handler's last day): one line naming the problem,
    // non-zero exit, a FAILED run keeping the error. (A config qtask refuses fails before any
    // run starts: tests/qlib_configs_cli.rs.)
    let bad = dir.join("bad.yaml");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "train: [2008-01-01, 2009-12-31]",
        "train: [2013-01-01, 2013-12-31]",
    );
    std::fs::write(&bad, text).unwrap();
    let out = qtask(
        dir,
        &[
            "run",
            bad.to_str().unwrap(),
            "--tracking-uri",
            "file:mlruns",
            "--experiment",
            "bad",
        ],
    );
    fails_with(&out, "segment `train`");
    let listed = ok(&qtask(
        dir,
        &[
            "exp",
            "runs",
            "bad",
            "--tracking-uri",
            "file:mlruns",
            "--json",
        ],
    ));
    let runs: Vec<Value> = serde_json::from_str(&listed).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["status"], "FAILED");
}
