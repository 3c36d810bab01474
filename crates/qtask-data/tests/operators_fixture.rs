//! Every expression operator against Qlib's own values on the fixture market
//! (`tests/data/operators_market_small.json`, written by `scripts/fixtures/qlib_operators.py`
//! with pyqlib 0.9.7). Each expression is computed on its own, as Qlib computes each field with
//! its own extended window. Rows must be Qlib's rows; values agree within relative 1e-4 or
//! absolute 1e-6, NaN exactly where Qlib has NaN, infinities exactly.

use std::path::PathBuf;

use qtask_data::{Instruments, NaiveDate, Program, Provider, Query, compute};
use serde_json::Value;

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

fn value(v: &Value) -> f64 {
    match v {
        Value::Null => f64::NAN,
        Value::String(s) if s == "inf" => f64::INFINITY,
        Value::String(s) if s == "-inf" => f64::NEG_INFINITY,
        v => v.as_f64().expect("a number"),
    }
}

fn close(got: f64, want: f64) -> bool {
    if want.is_nan() {
        return got.is_nan();
    }
    if want.is_infinite() {
        return got == want;
    }
    (got - want).abs() <= 1e-6 || (got - want).abs() <= 1e-4 * want.abs()
}

#[test]
fn every_operator_matches_qlib() {
    let text = std::fs::read_to_string(data_dir().join("operators_market_small.json")).unwrap();
    let fx: Value = serde_json::from_str(&text).unwrap();
    let provider = Provider::open(data_dir().join("market_small")).unwrap();
    let date = |k: &str| NaiveDate::parse_from_str(fx[k].as_str().unwrap(), "%Y-%m-%d").unwrap();
    let q = Query {
        instruments: Instruments::Market("all".into()),
        start: Some(date("start")),
        end: Some(date("end")),
    };
    let symbols: Vec<&str> = fx["symbols"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    let days: Vec<&str> = fx["days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    let cases = fx["cases"].as_array().unwrap();
    assert!(cases.len() >= 80, "the fixture covers every operator");
    let mut failures = Vec::new();
    for case in cases {
        let expr = case["expr"].as_str().unwrap();
        let program = match Program::compile(&[(expr.to_string(), expr.to_string())]) {
            Ok(p) => p,
            Err(e) => {
                failures.push(format!("{expr}: {e}"));
                continue;
            }
        };
        let frame = compute(&provider, &program, &q, &|| {}).unwrap();
        let rows = case.get("rows").unwrap_or(&fx["rows"]).as_array().unwrap();
        let want_rows: Vec<(&str, &str)> = rows
            .iter()
            .map(|r| {
                let r = r.as_array().unwrap();
                (
                    symbols[r[0].as_u64().unwrap() as usize],
                    days[r[1].as_u64().unwrap() as usize],
                )
            })
            .collect();
        let got_rows: Vec<(String, String)> = (0..frame.len())
            .map(|r| (frame.symbol(r).to_string(), frame.datetime[r].to_string()))
            .collect();
        let same_rows = got_rows.len() == want_rows.len()
            && got_rows
                .iter()
                .zip(&want_rows)
                .all(|(g, w)| g.0 == w.0 && g.1 == w.1);
        if !same_rows {
            failures.push(format!(
                "{expr}: {} rows, Qlib has {} (first {:?} vs {:?})",
                got_rows.len(),
                want_rows.len(),
                got_rows.first(),
                want_rows.first()
            ));
            continue;
        }
        let values = case["values"].as_array().unwrap();
        for (r, w) in values.iter().enumerate() {
            let (got, want) = (frame.data[0][r] as f64, value(w));
            if !close(got, want) {
                failures.push(format!(
                    "{expr}: {} {}: got {got}, Qlib {want}",
                    want_rows[r].0, want_rows[r].1
                ));
                break;
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
