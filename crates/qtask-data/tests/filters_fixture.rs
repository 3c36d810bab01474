//! Qlib's dynamic instrument filters (`filter_pipe`) against pyqlib 0.9.7 on the fixture market
//! (`tests/data/filters_market_small.json`, written by `scripts/fixtures/qlib_filters.py`): the
//! listed ranges each pipe leaves, and the rows of a query over the filtered market.

use std::path::PathBuf;

use qtask_data::filter::DFilter;
use qtask_data::{Instruments, NaiveDate, Program, Provider, Query, compute};
use serde_json::{Value, json};

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn filtered(market: &str, pipe: &Value) -> Instruments {
    Instruments::Filtered {
        market: market.into(),
        filter_pipe: pipe
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
            .map(|(i, f)| DFilter::from_value(f, &format!("filter_pipe[{i}]")).unwrap())
            .collect(),
    }
}

#[test]
fn filter_pipes_match_qlib() {
    let text = std::fs::read_to_string(data_dir().join("filters_market_small.json")).unwrap();
    let fx: Value = serde_json::from_str(&text).unwrap();
    let provider = Provider::open(data_dir().join("market_small")).unwrap();
    let cal = provider.calendar();
    let (first, last) = (cal[0], cal[cal.len() - 1]);
    let query = fx["query"].as_array().unwrap();
    let close = Program::compile(&[("$close".into(), "$close".into())]).unwrap();
    let cases = fx["cases"].as_array().unwrap();
    assert!(cases.len() >= 10);
    for case in cases {
        let sel = filtered(case["market"].as_str().unwrap(), &case["filter_pipe"]);
        let listed = provider.list_instruments(&sel, first, last).unwrap();
        let got: serde_json::Map<String, Value> = listed
            .iter()
            .map(|l| {
                let spans: Vec<Value> = l
                    .spans
                    .iter()
                    .map(|(s, e)| json!([s.to_string(), e.to_string()]))
                    .collect();
                (l.symbol.clone(), Value::Array(spans))
            })
            .collect();
        assert_eq!(
            Value::Object(got),
            case["spans"],
            "listed ranges for {}",
            case["filter_pipe"]
        );
        let q = Query {
            instruments: sel,
            start: Some(d(query[0].as_str().unwrap())),
            end: Some(d(query[1].as_str().unwrap())),
        };
        let frame = compute(&provider, &close, &q, &|| {}).unwrap();
        let rows: Vec<String> = (0..frame.len())
            .map(|r| format!("{} {}", frame.symbol(r), frame.datetime[r]))
            .collect();
        let want: Vec<&str> = case["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap())
            .collect();
        assert_eq!(rows, want, "rows for {}", case["filter_pipe"]);
    }
}

#[test]
fn bad_filters_are_refused_naming_the_key() {
    let err = |v: Value| {
        DFilter::from_value(&v, "h.filter_pipe[0]")
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        err(json!({"filter_type": "RegexFilter", "name_rule_re": "SH"})),
        "h.filter_pipe[0]: unknown filter_type `RegexFilter` (supported: NameDFilter, \
         ExpressionDFilter)"
    );
    assert!(
        err(json!({"filter_type": "NameDFilter", "name_rule_re": "SH", "keep": true}))
            .contains("unknown key `keep` for NameDFilter")
    );
    assert!(
        err(json!({"filter_type": "NameDFilter", "name_rule_re": "SH(?=6)"}))
            .contains("is not a regular expression qtask reads")
    );
    assert!(
        err(json!({"filter_type": "ExpressionDFilter", "rule_expression": "$close >"}))
            .contains("h.filter_pipe[0]: expression `$close >`")
    );
    assert!(
        err(
            json!({"filter_type": "ExpressionDFilter", "rule_expression": "$close",
                   "filter_start_time": "2019-02-01", "filter_end_time": "2019-01-01"})
        )
        .contains("filter_start_time 2019-02-01 is after filter_end_time 2019-01-01")
    );
    assert!(
        err(
            json!({"filter_type": "ExpressionDFilter", "rule_expression": "$close",
                   "keep": "yes"})
        )
        .contains("keep: `\"yes\"` is not true or false")
    );
}
