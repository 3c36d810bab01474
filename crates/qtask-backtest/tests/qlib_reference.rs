//! qtask's backtest against pyqlib's on the same market and prediction
//! (`scripts/fixtures/backtest_qlib.py` wrote `tests/data/qlib/`): every case's daily report,
//! positions, trade indicators and risk analysis must agree.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use qtask_backtest::config::parse_date_value;
use qtask_backtest::rng::{NumpyRandomState, python_shuffle_seed0};
use qtask_backtest::{BacktestConfig, BacktestResult, backtest};
use qtask_data::Provider;
use qtask_table::PredTable;
use serde_json::Value;

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/qlib")
}

/// A CSV written by pandas (no quoting needed here): header and rows of strings.
fn csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text.lines();
    let header = lines
        .next()
        .unwrap()
        .split(',')
        .map(str::to_string)
        .collect();
    let rows = lines
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect();
    (header, rows)
}

fn num(s: &str) -> f64 {
    if s.is_empty() {
        f64::NAN
    } else {
        s.parse().unwrap_or_else(|_| panic!("not a number: {s}"))
    }
}

fn close_abs(a: f64, b: f64, tol: f64) -> bool {
    (a.is_nan() && b.is_nan()) || (a - b).abs() <= tol
}

fn close_rel(a: f64, b: f64, tol: f64) -> bool {
    (a.is_nan() && b.is_nan()) || (a - b).abs() <= tol * b.abs().max(1e-300) || a == b
}

struct Case {
    name: String,
    result: BacktestResult,
}

fn run_case(c: &Value, pred: &PredTable) -> Case {
    let name = c["name"].as_str().unwrap().to_string();
    let provider = Provider::open(data().join(c["market"].as_str().unwrap())).unwrap();
    let mut cfg = BacktestConfig::from_port_analysis(&c["config"]).unwrap();
    cfg.start = parse_date_value("start", Some(&c["start"])).unwrap();
    cfg.end = parse_date_value("end", Some(&c["end"])).unwrap();
    cfg.seed = c["np_seed"].as_u64().map(|s| s as u32);
    let result = backtest(&provider, pred, &cfg).unwrap_or_else(|e| panic!("{name}: {e}"));
    Case { name, result }
}

fn check_report(case: &Case) {
    let (header, rows) = csv(&data().join(&case.name).join("report.csv"));
    let r = &case.result.report;
    assert_eq!(r.len(), rows.len(), "{}: days", case.name);
    let col = |n: &str| header.iter().position(|h| h == n).unwrap();
    for (mine, theirs) in r.iter().zip(&rows) {
        let at = format!("{} {}", case.name, theirs[0]);
        assert_eq!(mine.date.to_string(), theirs[0], "{at}: date");
        let q = |n: &str| num(&theirs[col(n)]);
        for (name, v, tol) in [
            ("return", mine.ret, 1e-7),
            ("cost", mine.cost, 1e-7),
            ("turnover", mine.turnover, 1e-7),
            ("bench", mine.bench, 0.0),
        ] {
            assert!(
                close_abs(v, q(name), tol),
                "{at}: {name} {v} vs Qlib {}",
                q(name)
            );
        }
        for (name, v) in [
            ("account", mine.account),
            ("value", mine.value),
            ("cash", mine.cash),
            ("total_cost", mine.total_cost),
            ("total_turnover", mine.total_turnover),
        ] {
            // Cash is a difference of large numbers: compare it relative to the account.
            let scale = if name == "cash" {
                q("account")
            } else {
                q(name)
            };
            assert!(
                (v - q(name)).abs() <= 1e-7 * scale.abs().max(1.0),
                "{at}: {name} {v} vs Qlib {}",
                q(name)
            );
        }
    }
}

fn check_positions(case: &Case) {
    let (_, rows) = csv(&data().join(&case.name).join("positions.csv"));
    // datetime -> instrument -> (amount, price, weight, count_day); cash rows separately.
    let mut qlib: BTreeMap<String, BTreeMap<String, [f64; 4]>> = BTreeMap::new();
    for row in &rows {
        let e = qlib.entry(row[0].clone()).or_default();
        if row[1] != "__cash__" {
            e.insert(
                row[1].clone(),
                [num(&row[2]), num(&row[3]), num(&row[4]), num(&row[5])],
            );
        }
    }
    assert_eq!(
        case.result.positions.len(),
        qlib.len(),
        "{}: days",
        case.name
    );
    for snap in &case.result.positions {
        let day = snap.date.to_string();
        let theirs = qlib
            .get(&day)
            .unwrap_or_else(|| panic!("{}: no Qlib positions on {day}", case.name));
        let mine: Vec<&str> = snap
            .holdings
            .iter()
            .map(|h| h.instrument.as_str())
            .collect();
        let theirs_codes: Vec<&str> = theirs.keys().map(String::as_str).collect();
        assert_eq!(mine, theirs_codes, "{} {day}: holdings", case.name);
        for h in &snap.holdings {
            let [amount, price, weight, count] = theirs[&h.instrument];
            let at = format!("{} {day} {}", case.name, h.instrument);
            assert!(
                close_rel(h.amount, amount, 1e-9),
                "{at}: amount {} vs {amount}",
                h.amount
            );
            assert!(
                close_rel(h.price, price, 1e-12),
                "{at}: price {} vs {price}",
                h.price
            );
            assert!(
                close_abs(h.weight, weight, 1e-9),
                "{at}: weight {} vs {weight}",
                h.weight
            );
            assert_eq!(f64::from(h.count_day), count, "{at}: count_day");
        }
    }
}

fn check_indicators(case: &Case) {
    let (header, rows) = csv(&data().join(&case.name).join("indicators.csv"));
    let col = |n: &str| header.iter().position(|h| h == n).unwrap();
    assert_eq!(case.result.indicators.len(), rows.len());
    for (mine, theirs) in case.result.indicators.iter().zip(&rows) {
        let at = format!("{} {}", case.name, theirs[0]);
        for (name, v) in [
            ("ffr", mine.ffr),
            ("pa", mine.pa),
            ("pos", mine.pos),
            ("count", mine.count),
        ] {
            assert!(
                close_abs(v, num(&theirs[col(name)]), 1e-12),
                "{at}: {name} {v} vs {}",
                theirs[col(name)]
            );
        }
        for (name, v) in [("deal_amount", mine.deal_amount), ("value", mine.value)] {
            assert!(
                close_rel(v, num(&theirs[col(name)]), 1e-9),
                "{at}: {name} {v} vs {}",
                theirs[col(name)]
            );
        }
    }
}

fn check_analysis(case: &Case) {
    let text = std::fs::read_to_string(data().join(&case.name).join("analysis.json")).unwrap();
    let qlib: Value = serde_json::from_str(&text).unwrap();
    let risk = case.result.risk_json();
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
            assert!(
                (a - b).abs() <= 1e-6,
                "{} {block}.{k}: {a} vs Qlib {b}",
                case.name
            );
        }
    }
    let ia = case.result.indicator_analysis_json();
    for k in ["ffr", "pa", "pos"] {
        let (a, b) = (
            ia[k].as_f64().unwrap_or(f64::NAN),
            qlib["indicator_analysis"][k].as_f64().unwrap_or(f64::NAN),
        );
        assert!(
            close_abs(a, b, 1e-9),
            "{} indicator {k}: {a} vs Qlib {b}",
            case.name
        );
    }
}

fn cases() -> (Vec<Value>, PredTable) {
    let cases: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(data().join("cases.json")).unwrap()).unwrap();
    let pred = PredTable::read_parquet(&data().join("pred.parquet")).unwrap();
    (cases, pred)
}

#[test]
fn every_case_matches_qlib() {
    let (cases, pred) = cases();
    assert!(cases.len() >= 15);
    for c in &cases {
        let case = run_case(c, &pred);
        check_report(&case);
        check_positions(&case);
        check_indicators(&case);
        check_analysis(&case);
    }
}

#[test]
fn numpy_and_python_generators_match() {
    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(data().join("rng.json")).unwrap()).unwrap();
    for entry in v["numpy"].as_array().unwrap() {
        let mut rs = NumpyRandomState::new(entry["seed"].as_u64().unwrap() as u32);
        for p in entry["permutations"].as_array().unwrap() {
            let want: Vec<usize> = serde_json::from_value(p.clone()).unwrap();
            assert_eq!(rs.permutation(want.len()), want, "seed {}", entry["seed"]);
        }
    }
    for p in v["python_shuffle_seed0"].as_array().unwrap() {
        let want: Vec<usize> = serde_json::from_value(p.clone()).unwrap();
        assert_eq!(python_shuffle_seed0(want.len()), want);
    }
}
