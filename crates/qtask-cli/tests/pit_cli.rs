//! `qtask data import-pit`, `qtask data features` on PIT fields and `qtask bench pit`
//! through the real binary, on Qlib's `roewa_q` fixture.

use std::path::{Path, PathBuf};

mod common;
use common::{fails_with, ok, qtask};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../qtask-data/tests/data/pit")
}

fn provider(dir: &Path) {
    std::fs::create_dir_all(dir.join("calendars")).unwrap();
    std::fs::copy(
        fixtures().join("calendars/day.txt"),
        dir.join("calendars/day.txt"),
    )
    .unwrap();
}

#[test]
fn import_pit_then_features_on_pit_fields() {
    let dir = tempfile::tempdir().unwrap();
    provider(dir.path());
    let csv = fixtures().join("roewa_q_input.csv");
    let out = qtask(&[
        "data",
        "import-pit",
        "--csv",
        csv.to_str().unwrap(),
        "--out",
        dir.path().to_str().unwrap(),
        "--json",
    ]);
    let summary: serde_json::Value = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!(summary["written"], 54);
    assert_eq!(summary["fields"], 1);
    let index = std::fs::read(dir.path().join("financial/sh600519/roewa_q.index")).unwrap();
    assert_eq!(index.len(), 4 + 52 * 4);

    let out = qtask(&[
        "data",
        "features",
        "--provider-uri",
        dir.path().to_str().unwrap(),
        "--instruments",
        "SH600519",
        "--start",
        "2019-07-12",
        "--end",
        "2019-07-18",
        "--expr",
        "P($$roewa_q)",
        "--expr",
        "P(Sum($$roewa_q, 4))",
    ]);
    let text = ok(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "instrument,datetime,P($$roewa_q),\"P(Sum($$roewa_q, 4))\""
    );
    let row = |day: &str| -> Vec<f64> {
        let l = lines.iter().find(|l| l.contains(day)).unwrap();
        l.split(',').skip(2).map(|v| v.parse().unwrap()).collect()
    };
    // Values from Qlib (expected_queries.json): the Saturday 2019-07-13 publication shows on
    // Monday 2019-07-15, the 2019-07-18 revision on its own day.
    let close = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-6);
    assert!(close(&row("2019-07-12"), &[0.094737, 0.865164]));
    assert!(close(&row("2019-07-15"), &[0.0, 0.694601]));
    assert!(close(&row("2019-07-18"), &[0.175322, 0.869923]));
    assert_eq!(lines.len(), 1 + 5);
}

#[test]
fn import_pit_bad_input_is_one_line_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    provider(dir.path());
    let csv = dir.path().join("bad.csv");
    std::fs::write(
        &csv,
        "symbol,date,period,field,value\nSH600519,2019-13-01,201901,roewa_q,0.1\n",
    )
    .unwrap();
    let out = qtask(&[
        "data",
        "import-pit",
        "--csv",
        csv.to_str().unwrap(),
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    fails_with(&out, "line 2: date `2019-13-01`");
    assert!(!dir.path().join("financial").exists());

    let out = qtask(&[
        "data",
        "features",
        "--provider-uri",
        dir.path().to_str().unwrap(),
        "--instruments",
        "SH600519",
        "--expr",
        "P(Ref($$roewa_q, -1))",
    ]);
    fails_with(&out, "future period");
}

#[test]
fn bench_pit_reports_json() {
    let dir = tempfile::tempdir().unwrap();
    let keep = dir.path().join("bench");
    let out = qtask(&[
        "bench",
        "pit",
        "--instruments",
        "3",
        "--quarters",
        "8",
        "--years",
        "2",
        "--repeat",
        "1",
        "--keep",
        keep.to_str().unwrap(),
        "--json",
    ]);
    let r: serde_json::Value = serde_json::from_str(&ok(&out)).unwrap();
    let days = r["trading_days"].as_u64().unwrap();
    // 2010 has 261 weekdays and 2011 has 260; every instrument has a file, so every day is a row.
    assert_eq!(days, 521);
    assert_eq!(r["rows"].as_u64().unwrap(), 3 * days);
    assert!(r["records"].as_u64().unwrap() >= 3 * 8);
    assert!(keep.join("financial/sh600002/roe_q.data").is_file());
}
