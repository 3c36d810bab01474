//! `qtask collect` and `qtask ensemble` through the real binary, over a real runs store.

use std::path::Path;
use std::process::{Command, Output};

mod common;

use qtask_collect::PredTable;
use qtask_record::{RecordStore, RunStatus};
use qtask_testkit::Suite;
use serde_json::{Value, json};

fn qtask(args: &[&str], cwd: &Path) -> Output {
    common::cmd()
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("run qtask")
}

/// The single stderr line of a failed command (and that it failed with exit code 1).
fn error_line(out: &Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "expected one line, got: {err}"
    );
    err.trim_end().to_string()
}

fn ok_stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// A one-column table of `(day of January 2020, instrument, score)` rows.
fn pred(rows: &[(u32, &str, f64)]) -> PredTable {
    let mut b = qtask_table::TableBuilder::new(["score"]);
    for (d, i, v) in rows {
        let dt = chrono::NaiveDate::from_ymd_opt(2020, 1, *d)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap();
        b.push(dt, i, &[*v]).unwrap();
    }
    b.finish()
}

fn values(t: &PredTable) -> Vec<(u32, String, f64)> {
    use chrono::Datelike;
    (0..t.len())
        .map(|r| {
            (
                t.datetime(r).day(),
                t.instrument(r).to_string(),
                t.column_at(0)[r],
            )
        })
        .collect()
}

fn add_run(
    store: &RecordStore,
    exp: &str,
    model: &str,
    test: [&str; 2],
    p: Option<&PredTable>,
    status: RunStatus,
) {
    std::thread::sleep(std::time::Duration::from_millis(3));
    let mut run = store.experiment(exp).unwrap().start_run(None).unwrap();
    let task =
        json!({"model": {"class": model}, "dataset": {"kwargs": {"segments": {"test": test}}}});
    run.save_json("task.json", &task).unwrap();
    if let Some(p) = p {
        run.save_artifact_bytes("pred.parquet", &p.to_parquet_bytes().unwrap())
            .unwrap();
    }
    run.end(status).unwrap();
}

/// Two models over two rolling windows each (overlapping on Jan 3), one failed run.
fn study(dir: &Path) -> String {
    let store = RecordStore::open(dir.join("mlruns").to_str().unwrap()).unwrap();
    let w1 = [("2020-01-02"), ("2020-01-03")];
    let w2 = [("2020-01-03"), ("2020-01-06")];
    add_run(
        &store,
        "study",
        "LGB",
        w1,
        Some(&pred(&[(2, "A", 1.0), (3, "A", 2.0)])),
        RunStatus::Finished,
    );
    add_run(
        &store,
        "study",
        "LGB",
        w2,
        Some(&pred(&[(3, "A", 20.0), (6, "A", 30.0)])),
        RunStatus::Finished,
    );
    add_run(
        &store,
        "study",
        "Linear",
        w1,
        Some(&pred(&[(2, "A", -1.0)])),
        RunStatus::Finished,
    );
    add_run(
        &store,
        "study",
        "Linear",
        w2,
        Some(&pred(&[(6, "A", -3.0)])),
        RunStatus::Finished,
    );
    add_run(
        &store,
        "study",
        "LGB",
        w2,
        Some(&pred(&[(6, "A", 99.0)])),
        RunStatus::Failed,
    );
    store.experiment("empty").unwrap();
    format!("file:{}", dir.join("mlruns").display())
}

#[test]
fn collect_rolls_each_model_into_one_table() {
    let dir = tempfile::tempdir().unwrap();
    let uri = study(dir.path());
    let out = qtask(
        &[
            "collect",
            "--experiment",
            "study",
            "--tracking-uri",
            &uri,
            "--out",
            "pred.parquet",
            "--json",
        ],
        dir.path(),
    );
    let summary: Value = serde_json::from_str(&ok_stdout(&out)).unwrap();
    assert_eq!(summary["runs"], 4);
    let tables = summary["tables"].as_array().unwrap();
    // Runs are listed newest first, so Linear's group appears first.
    let keys: Vec<&Value> = tables.iter().map(|t| &t["key"]).collect();
    assert_eq!(keys, [&json!(["Linear"]), &json!(["LGB"])]);
    assert_eq!(tables[1]["runs"], 2);
    assert_eq!(tables[1]["rows"], 3);
    assert_eq!(tables[1]["start"], "2020-01-02");
    assert_eq!(tables[1]["end"], "2020-01-06");

    let lgb = PredTable::read_parquet(&dir.path().join("pred.LGB.parquet")).unwrap();
    // The Jan 3 overlap: the window starting later (w2) wins.
    assert_eq!(
        values(&lgb),
        [
            (2, "A".into(), 1.0),
            (3, "A".into(), 20.0),
            (6, "A".into(), 30.0)
        ]
    );
    let linear = PredTable::read_parquet(&dir.path().join("pred.Linear.parquet")).unwrap();
    assert_eq!(
        values(&linear),
        [(2, "A".into(), -1.0), (6, "A".into(), -3.0)]
    );
}

#[test]
fn collect_with_where_writes_one_file_and_average_works() {
    let dir = tempfile::tempdir().unwrap();
    let uri = study(dir.path());
    let out = qtask(
        &[
            "collect",
            "--experiment",
            "study",
            "--tracking-uri",
            &uri,
            "--where",
            "model.class=LGB",
            "--out",
            "lgb.csv",
        ],
        dir.path(),
    );
    let text = ok_stdout(&out);
    assert!(
        text.contains("pred ('LGB',) (2 runs): 3 rows, 2020-01-02..2020-01-06 -> lgb.csv"),
        "{text}"
    );
    let csv = std::fs::read_to_string(dir.path().join("lgb.csv")).unwrap();
    assert_eq!(
        csv,
        "datetime,instrument,score\n2020-01-02,A,1.0\n2020-01-03,A,20.0\n2020-01-06,A,30.0\n"
    );

    // Everything averaged: on Jan 2 the four tables give one row each -> NaN z-scores.
    let out = qtask(
        &[
            "collect",
            "--experiment",
            "study",
            "--tracking-uri",
            &uri,
            "--group",
            "none",
            "--ensemble",
            "average",
            "--out",
            "avg.parquet",
        ],
        dir.path(),
    );
    ok_stdout(&out);
    let avg = PredTable::read_parquet(&dir.path().join("avg.parquet")).unwrap();
    assert_eq!(avg.column_names(), ["score"]);
    assert_eq!(avg.len(), 3);
    assert!(avg.column_at(0).iter().all(|v| v.is_nan()));
}

#[test]
fn collect_bad_input_gives_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let uri = study(dir.path());
    let run = |extra: &[&str]| {
        let mut args = vec!["collect", "--tracking-uri", uri.as_str()];
        args.extend_from_slice(extra);
        error_line(&qtask(&args, dir.path()))
    };
    assert_eq!(
        run(&["--experiment", "empty"]),
        "error: experiment `empty` has no runs"
    );
    assert!(run(&["--experiment", "nope"]).starts_with("error: no experiment `nope` in "));
    let msg = run(&[
        "--experiment",
        "study",
        "--key",
        "model.klass,dataset.kwargs.segments.test",
    ]);
    assert!(
        msg.starts_with("error: run ")
            && msg.ends_with(": no `model.klass` in its task (task.json)"),
        "{msg}"
    );
    assert_eq!(
        run(&["--experiment", "study", "--where", "model.class=XGB"]),
        "error: experiment `study`: no run matches (5 runs: 1 FAILED, 4 FINISHED; wanted FINISHED and --where model.class=XGB)"
    );
    assert_eq!(
        run(&["--experiment", "study", "--out", "x.txt"]),
        "error: --out x.txt: expected a .parquet or .csv file"
    );
    assert!(
        run(&["--experiment", "study", "--key", "model.class"])
            .starts_with("error: --group rolling groups by all but the last key element")
    );
    assert_eq!(
        run(&["--experiment", "study", "--where", "model.class"]),
        "error: --where `model.class`: expected PATH=VALUE"
    );
    // Nothing was written by any of these.
    let files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(files, ["mlruns"]);
}

#[test]
fn ensemble_combines_files_in_the_given_order() {
    let dir = tempfile::tempdir().unwrap();
    let a = pred(&[(2, "A", 1.0), (3, "A", 2.0)]);
    let b = pred(&[(2, "A", 5.0)]);
    a.write_parquet(&dir.path().join("a.parquet")).unwrap();
    b.write_parquet(&dir.path().join("b.parquet")).unwrap();
    // Both start on Jan 2: the later file wins the overlap, so the order matters.
    let out = qtask(
        &[
            "ensemble",
            "rolling",
            "a.parquet",
            "b.parquet",
            "--out",
            "ab.parquet",
        ],
        dir.path(),
    );
    let size = std::fs::metadata(dir.path().join("ab.parquet"))
        .unwrap()
        .len() as f64
        / 1024.0;
    assert_eq!(
        ok_stdout(&out),
        format!(
            "rolling ensemble of 2 files: 2 rows, 2020-01-02..2020-01-03 -> ab.parquet ({size:.1} KiB)\n"
        )
    );
    let ab = PredTable::read_parquet(&dir.path().join("ab.parquet")).unwrap();
    assert_eq!(values(&ab), [(2, "A".into(), 5.0), (3, "A".into(), 2.0)]);
    let out = qtask(
        &[
            "ensemble",
            "rolling",
            "b.parquet",
            "a.parquet",
            "--out",
            "ba.csv",
            "--json",
        ],
        dir.path(),
    );
    let summary: Value = serde_json::from_str(&ok_stdout(&out)).unwrap();
    assert_eq!(summary["rows"], 2);
    let ba = std::fs::read_to_string(dir.path().join("ba.csv")).unwrap();
    assert_eq!(
        ba,
        "datetime,instrument,score\n2020-01-02,A,1.0\n2020-01-03,A,2.0\n"
    );
}

#[test]
fn ensemble_bad_input_gives_one_clear_line_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    pred(&[(2, "A", 1.0)])
        .write_parquet(&dir.path().join("a.parquet"))
        .unwrap();
    let mut label = pred(&[(3, "A", 1.0)]);
    label.set_column_names(["LABEL0"]).unwrap();
    label
        .write_parquet(&dir.path().join("label.parquet"))
        .unwrap();
    write_keyless(&dir.path().join("keyless.parquet"));

    let run = |args: &[&str]| error_line(&qtask(args, dir.path()));
    assert_eq!(
        run(&[
            "ensemble",
            "rolling",
            "a.parquet",
            "label.parquet",
            "--out",
            "o.parquet"
        ]),
        "error: ensemble: label.parquet has columns [LABEL0] but a.parquet has [score]"
    );
    assert_eq!(
        run(&[
            "ensemble",
            "average",
            "a.parquet",
            "keyless.parquet",
            "--out",
            "o.parquet"
        ]),
        "error: keyless.parquet: no `datetime` column (columns: date, score)"
    );
    assert_eq!(
        run(&[
            "ensemble",
            "average",
            "a.parquet",
            "missing.parquet",
            "--out",
            "o.parquet"
        ]),
        "error: missing.parquet: No such file or directory (os error 2)"
    );
    assert_eq!(
        run(&["ensemble", "rolling", "a.parquet", "--out", "o.json"]),
        "error: --out o.json: expected a .parquet or .csv file"
    );
    assert!(!dir.path().join("o.parquet").exists());
}

fn write_keyless(path: &Path) {
    use std::sync::Arc;
    let schema = Arc::new(arrow_schema::Schema::new(vec![
        arrow_schema::Field::new("date", arrow_schema::DataType::Int64, false),
        arrow_schema::Field::new("score", arrow_schema::DataType::Float64, false),
    ]));
    let batch = arrow_array::RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(arrow_array::Int64Array::from(vec![1])),
            Arc::new(arrow_array::Float64Array::from(vec![1.0])),
        ],
    )
    .unwrap();
    let file = std::fs::File::create(path).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, schema, None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

#[test]
fn pandas_reads_what_qtask_ensemble_writes() {
    if qtask_testkit::enabled(Suite::Pandas, "pandas_reads_what_qtask_ensemble_writes").is_none() {
        return;
    }
    let python = std::env::var("QTASK_PYTHON").unwrap_or_else(|_| "python3".into());
    let dir = tempfile::tempdir().unwrap();
    pred(&[(2, "B", 0.5), (2, "A", -1.5), (3, "A", f64::NAN)])
        .write_parquet(&dir.path().join("a.parquet"))
        .unwrap();
    ok_stdout(&qtask(
        &["ensemble", "rolling", "a.parquet", "--out", "r.parquet"],
        dir.path(),
    ));
    let script = "import sys, pandas as pd\n\
                  df = pd.read_parquet(sys.argv[1])\n\
                  print(list(df.index.names), [(str(d.date()), i, repr(v)) for (d, i), v in df['score'].items()])";
    let out = Command::new(python)
        .arg("-c")
        .arg(script)
        .arg(dir.path().join("r.parquet"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "['datetime', 'instrument'] [('2020-01-02', 'A', '-1.5'), ('2020-01-02', 'B', '0.5'), ('2020-01-03', 'A', 'nan')]"
    );
}
