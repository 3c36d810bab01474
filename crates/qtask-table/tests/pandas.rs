//! pandas reads what qtask writes and qtask reads what pandas writes.
//! Runs when `QTASK_TEST_PANDAS=1`, with `$QTASK_PYTHON` (default `python3`).

mod common;

use std::process::Command;

use common::{day, same};
use qtask_table::{PredTable, TableBuilder};

fn python() -> Option<String> {
    qtask_testkit::enabled(qtask_testkit::Suite::Pandas, "table pandas read-back")?;
    Some(std::env::var("QTASK_PYTHON").unwrap_or_else(|_| "python3".into()))
}

fn run_python(python: &str, script: &str, args: &[&std::path::Path]) -> String {
    let out = Command::new(python)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn pandas_reads_qtask_parquet_as_an_indexed_frame() {
    let Some(py) = python() else { return };
    let mut b = TableBuilder::new(["score", "label"]);
    b.push(day("2020-01-03"), "SZ000001", &[0.1, 1.0]).unwrap();
    b.push(day("2020-01-02"), "SH600000", &[f64::NAN, -2.5])
        .unwrap();
    b.push(day("2020-01-02"), "SZ000001", &[1e-7, 3.0]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pred.parquet");
    b.finish().write_parquet(&path).unwrap();
    let script = r#"
import sys, json, math, pandas as pd
df = pd.read_parquet(sys.argv[1])
assert list(df.index.names) == ["datetime", "instrument"], df.index.names
assert str(df.index.levels[0].dtype).startswith("datetime64"), df.index.levels[0].dtype
rows = [[str(d), i, [None if math.isnan(v) else v for v in vals]]
        for (d, i), vals in zip(df.index, df.values.tolist())]
print(json.dumps({"columns": list(df.columns), "rows": rows}))
"#;
    let got: serde_json::Value = serde_json::from_str(&run_python(&py, script, &[&path])).unwrap();
    let want = serde_json::json!({
        "columns": ["score", "label"],
        "rows": [
            ["2020-01-03 00:00:00", "SZ000001", [0.1, 1.0]],
            ["2020-01-02 00:00:00", "SH600000", [null, -2.5]],
            ["2020-01-02 00:00:00", "SZ000001", [1e-7, 3.0]],
        ]
    });
    // Numbers compared as numbers: Python prints 1e-07 where Rust writes 1e-7, and
    // serde_json keeps a number's text (arbitrary_precision).
    assert_eq!(as_f64(got), as_f64(want));
}

fn as_f64(v: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Number(n) => serde_json::json!(n.as_f64()),
        Value::Array(a) => Value::Array(a.into_iter().map(as_f64).collect()),
        Value::Object(m) => Value::Object(m.into_iter().map(|(k, v)| (k, as_f64(v))).collect()),
        other => other,
    }
}

#[test]
fn qtask_reads_what_pandas_writes() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain.parquet");
    let categorical = dir.path().join("cat.parquet");
    let script = r#"
import sys, numpy as np, pandas as pd
idx = pd.MultiIndex.from_arrays(
    [pd.to_datetime(["2020-01-02", "2020-01-02", "2020-01-03"]), ["SH600000", "SZ000001", "SH600000"]],
    names=["datetime", "instrument"])
df = pd.DataFrame({"score": [0.5, np.nan, -1.25]}, index=idx)
df.to_parquet(sys.argv[1])
cat = df.reset_index()
cat["instrument"] = cat["instrument"].astype("category")
cat["datetime"] = cat["datetime"].astype("datetime64[ns]")
cat.to_parquet(sys.argv[2])
"#;
    run_python(&py, script, &[&plain, &categorical]);
    for path in [&plain, &categorical] {
        let t = PredTable::read_parquet(path).unwrap();
        assert_eq!(t.column_names(), ["score"], "{}", path.display());
        let want = [
            ("2020-01-02", "SH600000", 0.5),
            ("2020-01-02", "SZ000001", f64::NAN),
            ("2020-01-03", "SH600000", -1.25),
        ];
        assert_eq!(t.len(), want.len());
        for (r, (d, i, v)) in want.iter().enumerate() {
            assert_eq!(t.datetime(r), day(d));
            assert_eq!(t.instrument(r), *i);
            assert!(same(t.column_at(0)[r], *v));
        }
    }
}
