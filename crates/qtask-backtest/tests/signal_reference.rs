//! The signal analysis against the frames Qlib's `model_performance_graph` draws
//! (`tests/data/qlib/signal/`, recorded by `scripts/fixtures/backtest_qlib.py`).

use std::path::{Path, PathBuf};

use qtask_backtest::analysis::{SignalAnalysis, default_label};
use qtask_data::Provider;
use qtask_table::PredTable;

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/qlib")
}

fn csv(name: &str) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(data().join("signal").join(name)).unwrap();
    text.lines()
        .skip(1)
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

fn num(s: &str) -> f64 {
    if s.is_empty() {
        f64::NAN
    } else {
        s.parse().unwrap()
    }
}

fn same(a: f64, b: f64, tol: f64) -> bool {
    (a.is_nan() && b.is_nan()) || (a - b).abs() <= tol
}

fn analysis() -> SignalAnalysis {
    let table = PredTable::read_parquet(&data().join("pred_label.parquet")).unwrap();
    SignalAnalysis::compute(&table, &table, 5).unwrap()
}

#[test]
fn group_returns_match_qlib() {
    let a = analysis();
    let rows = csv("group_cumulative.csv");
    assert_eq!(a.group_dates.len(), rows.len());
    for (k, (name, daily)) in a.group_returns.iter().enumerate() {
        let cum = SignalAnalysis::cumulative(daily);
        for (i, row) in rows.iter().enumerate() {
            assert_eq!(a.group_dates[i].to_string(), row[0]);
            let q = num(&row[k + 1]);
            assert!(
                same(cum[i], q, 1e-9),
                "{name} {}: {} vs Qlib {q}",
                row[0],
                cum[i]
            );
        }
    }
    assert_eq!(a.group_returns[5].0, "long-short");
}

#[test]
fn ic_and_monthly_ic_match_qlib() {
    let a = analysis();
    let rows = csv("ic.csv");
    assert_eq!(a.ic.len(), rows.len());
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(a.ic_dates[i].to_string(), row[0]);
        assert!(same(a.ic[i], num(&row[1]), 1e-9), "IC {}", row[0]);
        assert!(same(a.rank_ic[i], num(&row[2]), 1e-9), "Rank IC {}", row[0]);
    }
    let months = csv("monthly_ic.csv");
    assert_eq!(a.monthly_ic.len(), months.len());
    for ((y, m, v), row) in a.monthly_ic.iter().zip(&months) {
        assert_eq!(format!("{y}"), row[0]);
        assert_eq!(format!("{m:02}"), row[1]);
        assert!(same(*v, num(&row[2]), 1e-9), "{y}-{m}: {v} vs {}", row[2]);
    }
    assert!(
        a.monthly_ic.iter().any(|m| m.2.is_nan()),
        "months without data stay empty"
    );
}

#[test]
fn autocorrelation_and_turnover_match_qlib() {
    let a = analysis();
    let ac = csv("autocorr.csv");
    let to = csv("turnover.csv");
    assert_eq!(a.dates.len(), ac.len());
    for (i, (acr, tor)) in ac.iter().zip(&to).enumerate() {
        assert_eq!(a.dates[i].to_string(), acr[0]);
        assert!(
            same(a.rank_autocorr[i], num(&acr[1]), 1e-9),
            "autocorr {}",
            acr[0]
        );
        assert!(
            same(a.turnover_top[i], num(&tor[1]), 1e-12),
            "top {}",
            tor[0]
        );
        assert!(
            same(a.turnover_bottom[i], num(&tor[2]), 1e-12),
            "bottom {}",
            tor[0]
        );
    }
}

#[test]
fn the_default_label_is_qlibs() {
    // The label qtask computes from the market equals the one Qlib's D.features gave.
    let table = PredTable::read_parquet(&data().join("pred_label.parquet")).unwrap();
    let provider = Provider::open(data().join("market")).unwrap();
    let mine = default_label(&provider, &table).unwrap();
    let theirs = table.column("label").unwrap();
    let ours = mine.column("label").unwrap();
    let mut compared = 0;
    for r in 0..table.len() {
        assert_eq!(mine.instrument(r), table.instrument(r));
        assert!(
            same(ours[r], theirs[r], 1e-7 * theirs[r].abs().max(1e-3)),
            "{} {}: {} vs {}",
            table.datetime(r),
            table.instrument(r),
            ours[r],
            theirs[r]
        );
        compared += usize::from(!theirs[r].is_nan());
    }
    assert!(compared > 1000);
}
