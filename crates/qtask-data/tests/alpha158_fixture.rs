//! Every Alpha158 column and the label, computed on Qlib's fixture market, must equal the values
//! Qlib computed (`tests/data/alpha158_market_small.csv`): relative error <= 1e-4 or absolute
//! <= 1e-6, and NaN exactly where Qlib has NaN.

use std::collections::HashMap;
use std::path::PathBuf;

use qtask_data::{Instruments, Program, Provider, Query, compute};

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

fn alpha158_exprs() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(data_dir().join("alpha158_exprs.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_string(),
                e["expr"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Qlib's rows by (instrument, date): one value per column, NaN for an empty field.
type Rows = HashMap<(String, String), Vec<f64>>;

/// Qlib's column names and rows.
fn expected() -> (Vec<String>, Rows) {
    let text = std::fs::read_to_string(data_dir().join("alpha158_market_small.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()
        .unwrap()
        .split(',')
        .map(str::to_string)
        .collect();
    let mut rows = HashMap::new();
    for line in lines {
        let f: Vec<&str> = line.split(',').collect();
        let vals = f[2..]
            .iter()
            .map(|s| {
                if s.is_empty() {
                    f64::NAN
                } else {
                    s.parse().unwrap()
                }
            })
            .collect();
        rows.insert((f[0].to_string(), f[1].to_string()), vals);
    }
    (header[2..].to_vec(), rows)
}

#[test]
fn alpha158_matches_qlib_on_every_column() {
    let provider = Provider::open(data_dir().join("market_small")).unwrap();
    let program = Program::compile(&alpha158_exprs()).unwrap();
    let q = Query {
        instruments: Instruments::Market("all".into()),
        start: None,
        end: None,
    };
    let frame = compute(&provider, &program, &q, &|| {}).unwrap();
    let (cols, want) = expected();
    assert_eq!(frame.len(), want.len(), "row count differs from Qlib's");
    let mut bad: HashMap<String, (usize, String)> = HashMap::new();
    for (ci, name) in cols.iter().enumerate() {
        let fc = frame
            .column_index(name)
            .unwrap_or_else(|| panic!("no column {name}"));
        for r in 0..frame.len() {
            let key = (
                frame.symbol(r).to_string(),
                frame.datetime[r].format("%Y-%m-%d").to_string(),
            );
            let exp = want
                .get(&key)
                .unwrap_or_else(|| panic!("row {key:?} not in Qlib's output"))[ci];
            let got = frame.data[fc][r] as f64;
            let ok = if exp.is_nan() || got.is_nan() {
                exp.is_nan() && got.is_nan()
            } else {
                let diff = (got - exp).abs();
                diff <= 1e-6 || diff <= 1e-4 * exp.abs()
            };
            if !ok {
                let e = bad.entry(name.clone()).or_insert((0, String::new()));
                if e.0 == 0 {
                    e.1 = format!("{key:?}: got {got}, Qlib {exp}");
                }
                e.0 += 1;
            }
        }
    }
    let mut report: Vec<_> = bad.into_iter().collect();
    report.sort();
    assert!(
        report.is_empty(),
        "{} columns differ from Qlib: {report:#?}",
        report.len()
    );
}

#[test]
fn alpha158_shares_common_subexpressions() {
    let program = Program::compile(&alpha158_exprs()).unwrap();
    // 159 outputs reuse e.g. `Ref($close, 1)` and `Abs($close-Ref($close, 1))` many times;
    // without sharing the graph would have well over a thousand nodes.
    assert!(program.node_count() < 700, "{} nodes", program.node_count());
    assert_eq!(program.fields().len(), 6);
}
