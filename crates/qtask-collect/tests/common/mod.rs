//! Helpers shared by the collect tests.

#![allow(dead_code)]

use chrono::NaiveDate;
use qtask_table::{PredTable, TableBuilder};

/// A one-column (`score`) table from `(YYYY-MM-DD, instrument, value)` rows, in that order.
pub fn table(rows: &[(&str, &str, f64)]) -> PredTable {
    let mut b = TableBuilder::new(["score"]);
    for (d, i, v) in rows {
        let day = NaiveDate::parse_from_str(d, "%Y-%m-%d")
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap();
        b.push(day, i, &[*v]).unwrap();
    }
    b.finish()
}

/// The rows of a one-column table as `(YYYY-MM-DD, instrument, value)`.
pub fn rows(t: &PredTable) -> Vec<(String, String, f64)> {
    (0..t.len())
        .map(|r| {
            (
                t.datetime(r).format("%Y-%m-%d").to_string(),
                t.instrument(r).to_string(),
                t.column_at(0)[r],
            )
        })
        .collect()
}

/// Asserts rows equal, NaN equal to NaN, values within `tol`.
pub fn assert_rows(t: &PredTable, want: &[(&str, &str, f64)], tol: f64) {
    let got = rows(t);
    assert_eq!(got.len(), want.len(), "rows: {got:?}");
    for (g, w) in got.iter().zip(want) {
        assert_eq!((g.0.as_str(), g.1.as_str()), (w.0, w.1), "{got:?}");
        let ok = (g.2.is_nan() && w.2.is_nan()) || (g.2 - w.2).abs() <= tol;
        assert!(ok, "{} {}: got {}, want {}", g.0, g.1, g.2, w.2);
    }
}
