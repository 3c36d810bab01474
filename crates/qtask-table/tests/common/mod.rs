//! Helpers shared by the table tests.

#![allow(dead_code)]

use chrono::{NaiveDate, NaiveDateTime};

/// Midnight of a `YYYY-MM-DD` date.
pub fn day(s: &str) -> NaiveDateTime {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
}

/// The rows of a table as `(date text, instrument, values)`.
pub fn rows(t: &qtask_table::PredTable) -> Vec<(String, String, Vec<f64>)> {
    (0..t.len())
        .map(|r| {
            (
                t.datetime(r).format("%Y-%m-%d %H:%M:%S").to_string(),
                t.instrument(r).to_string(),
                (0..t.column_names().len())
                    .map(|c| t.column_at(c)[r])
                    .collect(),
            )
        })
        .collect()
}

/// Float equality where NaN equals NaN (bit-level for everything else).
pub fn same(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b
}
