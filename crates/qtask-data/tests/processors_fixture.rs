//! Qlib's processors against pyqlib 0.9.7 on the fixture market
//! (`tests/data/processors_market_small.json`, written by
//! `scripts/fixtures/qlib_processors.py`): for each DataHandlerLP config, the infer and learn
//! data of a window of days must have Qlib's columns and rows, and its values within relative
//! 1e-4 or absolute 1e-5 (NaN exactly where Qlib has NaN).

use std::path::PathBuf;

use qtask_data::frame::Frame;
use qtask_data::handler::{Handler, HandlerConfig};
use qtask_data::{NaiveDate, Provider};
use serde_json::Value;

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn value(v: &Value) -> f64 {
    match v {
        Value::Null => f64::NAN,
        Value::String(s) if s == "inf" => f64::INFINITY,
        Value::String(s) if s == "-inf" => f64::NEG_INFINITY,
        v => v.as_f64().unwrap(),
    }
}

fn compare(what: &str, got: &Frame, want: &Value) -> Vec<String> {
    let cols: Vec<&str> = want["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    if got.columns != cols {
        return vec![format!("{what}: columns {:?}, Qlib {cols:?}", got.columns)];
    }
    let rows: Vec<String> = (0..got.len())
        .map(|r| format!("{} {}", got.symbol(r), got.datetime[r]))
        .collect();
    let want_rows: Vec<&str> = want["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    if rows != want_rows {
        return vec![format!(
            "{what}: {} rows, Qlib {} (first difference at {:?})",
            rows.len(),
            want_rows.len(),
            rows.iter().zip(&want_rows).position(|(a, b)| a != b)
        )];
    }
    let mut out = Vec::new();
    for (c, col) in want["values"].as_array().unwrap().iter().enumerate() {
        for (r, w) in col.as_array().unwrap().iter().enumerate() {
            let (g, w) = (got.data[c][r] as f64, value(w));
            let ok = if w.is_nan() {
                g.is_nan()
            } else {
                (g - w).abs() <= 1e-5 || (g - w).abs() <= 1e-4 * w.abs()
            };
            if !ok {
                out.push(format!(
                    "{what}: {} {}: got {g}, Qlib {w}",
                    cols[c], rows[r]
                ));
                break;
            }
        }
    }
    out
}

#[test]
fn processors_match_qlib() {
    let text = std::fs::read_to_string(data_dir().join("processors_market_small.json")).unwrap();
    let fx: Value = serde_json::from_str(&text).unwrap();
    let provider = Provider::open(data_dir().join("market_small")).unwrap();
    let window = fx["window"].as_array().unwrap();
    let (s, e) = (
        Some(d(window[0].as_str().unwrap())),
        Some(d(window[1].as_str().unwrap())),
    );
    let mut failures = Vec::new();
    for (i, case) in fx["cases"].as_array().unwrap().iter().enumerate() {
        let cfg = HandlerConfig::from_value(&case["handler"]).unwrap();
        let h = Handler::load(&provider, &cfg, None, &|| {}).unwrap();
        failures.extend(compare(
            &format!("case {i} infer"),
            &h.infer().rows_between(s, e),
            &case["infer"],
        ));
        failures.extend(compare(
            &format!("case {i} learn"),
            &h.learn(s, e),
            &case["learn"],
        ));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
