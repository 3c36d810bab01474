//! `qtask backtest` through the real binary: Qlib's numbers on the reference market, the
//! output folder, and bad input (one line, non-zero exit, no half-written folder).

mod common;

use std::path::{Path, PathBuf};

use common::{fails_with, ok, qtask};
use qtask_table::{DateFrame, PredTable, TableBuilder};
use serde_json::Value;

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../qtask-backtest/tests/data/qlib")
}

fn args<'a>(out: &'a str, extra: &[&'a str]) -> Vec<String> {
    let d = data();
    let mut v: Vec<String> = [
        "backtest",
        "--provider-uri",
        d.join("market").to_str().unwrap(),
        "--pred",
        d.join("pred.parquet").to_str().unwrap(),
        "--start",
        "2020-01-08",
        "--end",
        "2020-07-15",
        "--topk",
        "5",
        "--n-drop",
        "2",
        "--account",
        "1000000",
        "--out",
        out,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // `extra` flags replace the defaults above (clap refuses a flag given twice).
    let mut i = 0;
    while i < extra.len() {
        let flag = extra[i];
        let value = extra.get(i + 1).filter(|v| !v.starts_with("--"));
        match (v.iter().position(|x| x == flag), value) {
            (Some(p), Some(val)) => v[p + 1] = val.to_string(),
            _ => {
                v.push(flag.to_string());
                if let Some(val) = value {
                    v.push(val.to_string());
                }
            }
        }
        i += if value.is_some() { 2 } else { 1 };
    }
    v
}

fn run(a: &[String]) -> std::process::Output {
    let refs: Vec<&str> = a.iter().map(String::as_str).collect();
    qtask(&refs)
}

/// Nothing but `keep` (if any) in `dir`: no output folder, no temporary sibling.
fn only(dir: &Path, keep: &[&str]) {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    assert_eq!(
        names,
        keep.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    );
}

#[test]
fn backtest_writes_qlibs_numbers_and_the_report() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("bt");
    let printed = ok(&run(&args(out.to_str().unwrap(), &["--json"])));
    let summary: Value = serde_json::from_str(&printed).unwrap();
    assert_eq!(summary["days"], 136);
    for f in [
        "report_normal.parquet",
        "positions.parquet",
        "risk.json",
        "report.html",
        "indicators.parquet",
        "indicator_analysis.json",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    // The reference case `base` is this exact run in pyqlib.
    let qlib: Value =
        serde_json::from_str(&std::fs::read_to_string(data().join("base/analysis.json")).unwrap())
            .unwrap();
    let risk: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("risk.json")).unwrap()).unwrap();
    for block in ["excess_return_without_cost", "excess_return_with_cost"] {
        for k in [
            "mean",
            "std",
            "annualized_return",
            "information_ratio",
            "max_drawdown",
        ] {
            let (a, b) = (
                risk[block][k].as_f64().unwrap(),
                qlib[block][k].as_f64().unwrap(),
            );
            assert!((a - b).abs() < 1e-6, "{block}.{k}: {a} vs Qlib {b}");
        }
    }
    let report =
        DateFrame::from_parquet_bytes(&std::fs::read(out.join("report_normal.parquet")).unwrap())
            .unwrap();
    let names: Vec<&str> = report.columns.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "account",
            "return",
            "total_turnover",
            "turnover",
            "total_cost",
            "cost",
            "value",
            "cash",
            "bench"
        ]
    );
    let final_account = *report.column("account").unwrap().last().unwrap();
    let qlib_final: f64 = std::fs::read_to_string(data().join("base/report.csv"))
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .split(',')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert!((final_account - qlib_final).abs() < 1e-7 * qlib_final);
    let positions = PredTable::read_parquet(&out.join("positions.parquet")).unwrap();
    assert_eq!(
        positions.column_names(),
        ["amount", "price", "weight", "count_day"]
    );
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    for id in [
        "chart-bt-cum-return",
        "chart-bt-excess",
        "chart-bt-drawdown",
        "chart-bt-turnover",
        "chart-sig-groups",
        "chart-sig-monthly-ic",
        "chart-sig-autocorr",
    ] {
        assert!(html.contains(&format!("id=\"{id}\"")), "{id}");
    }
    // Running again replaces the folder whole.
    ok(&run(&args(out.to_str().unwrap(), &["--topk", "6"])));
    only(tmp.path(), &["bt"]);
}

#[test]
fn bad_input_is_one_line_and_leaves_no_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let out = dir.join("bt");
    let o = out.to_str().unwrap();

    fails_with(
        &run(&args(o, &["--benchmark", "SH999999"])),
        "benchmark SH999999 is not in the data",
    );
    fails_with(
        &run(&args(o, &["--start", "2020-07-01", "--end", "2020-06-01"])),
        "starts on 2020-07-01, after its end 2020-06-01",
    );
    fails_with(
        &run(&args(o, &["--topk", "80"])),
        "topk 80 is larger than the 27 instruments the prediction scores",
    );
    fails_with(
        &run(&args(o, &["--limit-threshold", "ten"])),
        "--limit-threshold `ten`",
    );

    // A prediction without a score column.
    let mut b = TableBuilder::new(["alpha", "beta"]);
    let day = chrono::NaiveDate::from_ymd_opt(2020, 1, 2)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap();
    b.push(day, "SH600000", &[1.0, 2.0]).unwrap();
    let bad_pred = dir.join("noscore.parquet");
    b.finish().write_parquet(&bad_pred).unwrap();
    let mut a = args(o, &[]);
    let i = a.iter().position(|x| x == "--pred").unwrap();
    a[i + 1] = bad_pred.to_str().unwrap().to_string();
    fails_with(&run(&a), "no `score` column (columns: alpha, beta)");

    // An unknown strategy is a usage error (exit 2), one line.
    let out2 = run(&args(o, &["--strategy", "momentum"]));
    assert_eq!(out2.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&out2.stderr).lines().count(), 1);

    only(dir, &["noscore.parquet"]);

    // A failing run leaves an earlier output folder as it was.
    ok(&run(&args(o, &[])));
    let before = std::fs::read(out.join("risk.json")).unwrap();
    fails_with(
        &run(&args(o, &["--benchmark", "SH999999"])),
        "not in the data",
    );
    assert_eq!(std::fs::read(out.join("risk.json")).unwrap(), before);
    only(dir, &["bt", "noscore.parquet"]);
}

#[test]
fn bench_backtest_reports_its_run_and_keeps_the_inputs() {
    let tmp = tempfile::tempdir().unwrap();
    let keep = tmp.path().join("bb");
    let out = ok(&qtask(&[
        "bench",
        "backtest",
        "--instruments",
        "8",
        "--days",
        "300",
        "--topk",
        "3",
        "--n-drop",
        "1",
        "--repeat",
        "1",
        "--keep",
        keep.to_str().unwrap(),
        "--json",
    ]));
    let r: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["days"], 300);
    assert!(r["best_seconds"].as_f64().unwrap() > 0.0);
    assert!(r["final_account"].as_f64().unwrap() > 0.0);
    // The kept inputs are what Qlib's timing script reads.
    assert!(keep.join("data/calendars/day.txt").is_file());
    assert!(keep.join("data/features/sh000300/close.day.bin").is_file());
    let pred = PredTable::read_parquet(&keep.join("pred.parquet")).unwrap();
    assert_eq!(pred.column_names(), ["score"]);
}
