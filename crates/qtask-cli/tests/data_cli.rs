//! `qtask data ...` and `qtask bench features` through the real binary.

use std::path::Path;

mod common;
use common::{fails_with, ok, qtask};

/// One line on stderr starting with `error: `, exit code 1.
fn synth(dir: &Path) {
    let out = qtask(&[
        "data",
        "synth",
        "--out",
        dir.to_str().unwrap(),
        "--instruments",
        "4",
        "--start",
        "2018-01-01",
        "--end",
        "2019-06-30",
        "--seed",
        "5",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!(v["instruments"], 4);
}

#[test]
fn synth_then_features_csv() {
    let t = tempfile::tempdir().unwrap();
    let m = t.path().join("m");
    synth(&m);
    let csv = t.path().join("f.csv");
    ok(&qtask(&[
        "data",
        "features",
        "--provider-uri",
        m.to_str().unwrap(),
        "--instruments",
        "SH600000,SH600001",
        "--start",
        "2018-03-01",
        "--end",
        "2018-03-31",
        "--expr",
        "$close",
        "--expr",
        "Mean($close, 5)/$close",
        "--out",
        csv.to_str().unwrap(),
    ]));
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        "instrument,datetime,$close,\"Mean($close, 5)/$close\""
    );
    let rows: Vec<&str> = lines.collect();
    // 22 weekdays in March 2018, two instruments, instrument-major.
    assert_eq!(rows.len(), 44);
    assert!(rows[0].starts_with("SH600000,2018-03-01,"));
    assert!(rows[43].starts_with("SH600001,2018-03-30,"));
    // The handler's columns on stdout.
    let out = ok(&qtask(&[
        "data",
        "features",
        "--provider-uri",
        m.to_str().unwrap(),
        "--instruments",
        "SH600003",
        "--start",
        "2019-06-28",
        "--handler",
        "Alpha158",
        "--with-label",
    ]));
    let header: Vec<&str> = out.lines().next().unwrap().split(',').collect();
    assert_eq!(header.len(), 2 + 158 + 1);
    assert_eq!((header[2], header[160]), ("KMID", "LABEL0"));
}

#[test]
fn features_parquet_reads_back() {
    let t = tempfile::tempdir().unwrap();
    let m = t.path().join("m");
    synth(&m);
    let pq = t.path().join("f.parquet");
    ok(&qtask(&[
        "data",
        "features",
        "--provider-uri",
        m.to_str().unwrap(),
        "--instruments",
        "SH600001",
        "--start",
        "2018-03-01",
        "--end",
        "2018-03-02",
        "--expr",
        "$close",
        "--out",
        pq.to_str().unwrap(),
    ]));
    let table = qtask_table::PredTable::read_parquet(&pq).unwrap();
    assert_eq!(table.column_names(), ["$close"]);
    assert_eq!(table.len(), 2);
    assert_eq!(table.instrument(0), "SH600001");
    assert_eq!(table.datetime(1).date().to_string(), "2018-03-02");
    let csv = ok(&qtask(&[
        "data",
        "features",
        "--provider-uri",
        m.to_str().unwrap(),
        "--instruments",
        "SH600001",
        "--start",
        "2018-03-02",
        "--end",
        "2018-03-02",
        "--expr",
        "$close",
    ]));
    let close: f32 = csv
        .lines()
        .nth(1)
        .unwrap()
        .rsplit(',')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(table.column("$close").unwrap()[1], close as f64);
}

#[test]
fn import_csv_then_features() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("prices.csv");
    std::fs::write(&src, "symbol,date,open,high,low,close,volume\nAAA,2020-01-02,1,1,1,2,10\nAAA,2020-01-03,1,1,1,3,10\n").unwrap();
    let out_dir = t.path().join("q");
    ok(&qtask(&[
        "data",
        "import-csv",
        "--csv",
        src.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
    ]));
    let out = ok(&qtask(&[
        "data",
        "features",
        "--provider-uri",
        out_dir.to_str().unwrap(),
        "--expr",
        "$close/Ref($close, 1)",
    ]));
    assert_eq!(
        out,
        "instrument,datetime,\"$close/Ref($close, 1)\"\nAAA,2020-01-02,\nAAA,2020-01-03,1.5\n"
    );
}

#[test]
fn bad_input_is_one_line() {
    let t = tempfile::tempdir().unwrap();
    let m = t.path().join("m");
    synth(&m);
    let p = m.to_str().unwrap();
    fails_with(
        &qtask(&[
            "data",
            "features",
            "--provider-uri",
            p,
            "--expr",
            "Mean($close)",
        ]),
        "Mean takes 2 arguments",
    );
    fails_with(
        &qtask(&[
            "data",
            "features",
            "--provider-uri",
            p,
            "--expr",
            "Bogus($close, 2)",
        ]),
        "unknown operator `Bogus`",
    );
    fails_with(
        &qtask(&["data", "features", "--provider-uri", p, "--expr", "$nope"]),
        "unknown field $nope",
    );
    fails_with(
        &qtask(&[
            "data",
            "features",
            "--provider-uri",
            p,
            "--market",
            "csi9",
            "--expr",
            "$close",
        ]),
        "unknown market `csi9`",
    );
    fails_with(
        &qtask(&[
            "data",
            "features",
            "--provider-uri",
            p,
            "--handler",
            "Alpha1",
        ]),
        "unknown handler `Alpha1`",
    );
    let out = t.path().join("x.csv");
    fails_with(
        &qtask(&[
            "data",
            "features",
            "--provider-uri",
            p,
            "--expr",
            "$nope",
            "--out",
            out.to_str().unwrap(),
        ]),
        "unknown field",
    );
    assert!(!out.exists(), "nothing written on error");
    std::fs::remove_file(m.join("calendars/day.txt")).unwrap();
    fails_with(
        &qtask(&["data", "features", "--provider-uri", p, "--expr", "$close"]),
        "calendar file is missing",
    );
    fails_with(
        &qtask(&["data", "synth", "--out", p]),
        "already exists and is not empty",
    );
}

#[test]
fn bench_features_reports_time_and_memory() {
    let t = tempfile::tempdir().unwrap();
    let m = t.path().join("m");
    synth(&m);
    let out = ok(&qtask(&[
        "bench",
        "features",
        "--provider-uri",
        m.to_str().unwrap(),
        "--repeat",
        "1",
        "--json",
    ]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["instruments"], 4);
    assert_eq!(v["columns"], 158);
    assert!(v["best_seconds"].as_f64().unwrap() > 0.0);
    assert!(v["peak_rss_mib"].as_f64().unwrap() > 0.0);
}
