//! Qlib's own LightGBM benchmark config (`tests/data/qlib_benchmark/`), unchanged, runs with
//! `qtask run` on a synthetic market: SignalRecord, SigAnaRecord and PortAnaRecord, with the
//! portfolio analysis saved and logged under Qlib's names.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{cmd, fails_with, ok};
use qtask_table::DateFrame;
use serde_json::Value;

fn config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/qlib_benchmark/workflow_config_lightgbm_Alpha158.yaml")
}

fn qtask(dir: &Path, args: &[&str]) -> Output {
    cmd()
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run qtask")
}

fn run_config(dir: &Path, config: &Path, experiment: &str) -> Output {
    qtask(
        dir,
        &[
            "run",
            config.to_str().unwrap(),
            "--provider-uri",
            "data",
            "--tracking-uri",
            "file:mlruns",
            "--experiment",
            experiment,
            "--json",
        ],
    )
}

#[test]
fn qlibs_lightgbm_benchmark_config_runs_with_its_portfolio_analysis() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    ok(&qtask(
        dir,
        &[
            "data",
            "synth",
            "--out",
            "data",
            "--instruments",
            "12",
            "--seed",
            "5",
        ],
    ));
    let printed = ok(&run_config(dir, &config(), "benchmark"));
    let runs: Vec<Value> = serde_json::from_str(&printed).unwrap();
    let m = &runs[0]["metrics"];
    for k in ["IC", "Rank IC"] {
        assert!(m[k].as_f64().is_some(), "{k}: {m}");
    }
    for block in ["excess_return_without_cost", "excess_return_with_cost"] {
        for k in [
            "mean",
            "std",
            "annualized_return",
            "information_ratio",
            "max_drawdown",
        ] {
            let name = format!("1day.{block}.{k}");
            assert!(m[&name].as_f64().is_some_and(f64::is_finite), "{name}: {m}");
        }
    }
    assert_eq!(m["1day.ffr"].as_f64(), Some(1.0));
    // Costs only ever lower the excess return.
    assert!(
        m["1day.excess_return_with_cost.mean"].as_f64().unwrap()
            < m["1day.excess_return_without_cost.mean"].as_f64().unwrap()
    );

    let run_id = runs[0]["run_id"].as_str().unwrap();
    let artifacts = std::fs::read_dir(dir.join("mlruns"))
        .unwrap()
        .map(|e| e.unwrap().path().join(run_id).join("artifacts"))
        .find(|p| p.is_dir())
        .expect("the run's artifacts");
    let pa = artifacts.join("portfolio_analysis");
    for f in [
        "report_normal_1day.parquet",
        "positions_normal_1day.parquet",
        "port_analysis_1day.json",
        "indicators_normal_1day.parquet",
        "indicator_analysis_1day.json",
    ] {
        assert!(pa.join(f).is_file(), "{f}");
    }
    // The report covers the config's backtest window, day by day, with the benchmark's change.
    let report = DateFrame::from_parquet_bytes(
        &std::fs::read(pa.join("report_normal_1day.parquet")).unwrap(),
    )
    .unwrap();
    let calendar = std::fs::read_to_string(dir.join("data/calendars/day.txt")).unwrap();
    let days = calendar
        .lines()
        .filter(|d| *d >= "2017-01-01" && *d <= "2020-08-01")
        .count();
    assert_eq!(report.datetimes_ns.len(), days);
    let bench = report.column("bench").unwrap();
    assert!(bench.iter().filter(|b| **b != 0.0).count() > days / 2);
    let risk: Value =
        serde_json::from_str(&std::fs::read_to_string(pa.join("port_analysis_1day.json")).unwrap())
            .unwrap();
    assert_eq!(
        risk["excess_return_with_cost"]["annualized_return"].as_f64(),
        m["1day.excess_return_with_cost.annualized_return"].as_f64()
    );

    // Configs qtask cannot run fail with one line and a FAILED run, before any training.
    let text = std::fs::read_to_string(config()).unwrap();
    for (from, to, needle) in [
        (
            "class: TopkDropoutStrategy",
            "class: EnhancedIndexingStrategy",
            "unknown strategy class `EnhancedIndexingStrategy`",
        ),
        (
            "    backtest:\n",
            "    executor:\n        class: NestedExecutor\n        kwargs: {time_per_step: day}\n    backtest:\n",
            "unknown executor class `NestedExecutor`",
        ),
        (
            "benchmark: &benchmark SH000300",
            "benchmark: &benchmark SH999999",
            "benchmark SH999999 is not in the data",
        ),
    ] {
        let bad = dir.join("bad.yaml");
        assert!(text.contains(from), "{from}");
        std::fs::write(&bad, text.replacen(from, to, 1)).unwrap();
        fails_with(&run_config(dir, &bad, "bad"), needle);
    }
    // No model was fitted for them: the only model file is the good run's.
    assert_eq!(count_named(&dir.join("mlruns"), "model.txt"), 1);
}

fn count_named(dir: &Path, name: &str) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            if p.is_dir() {
                count_named(&p, name)
            } else {
                usize::from(p.file_name().is_some_and(|n| n == name))
            }
        })
        .sum()
}
