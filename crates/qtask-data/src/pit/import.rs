//! `qtask data import-pit`: CSV rows `symbol,date,period,field,value` into PIT files.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use super::format::{pit_paths, read_pit};
use super::period::Interval;
use super::writer::{Publication, append_rows};
use crate::binfile::write_atomic;
use crate::error::{DataError, Result};
use crate::provider::parse_date;

/// One published value.
#[derive(Debug, Clone, PartialEq)]
pub struct PitRow {
    /// Instrument (stored lower-case on disk).
    pub symbol: String,
    /// Publication date `YYYYMMDD`.
    pub date: u32,
    /// `YYYYQQ` or `YYYY`.
    pub period: u32,
    /// Field name with its `_q` / `_a` suffix.
    pub field: String,
    /// The value.
    pub value: f64,
    /// 1-based CSV line, for error messages.
    pub line: usize,
}

/// What an import wrote.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ImportSummary {
    /// CSV rows read.
    pub rows: usize,
    /// Records appended.
    pub written: usize,
    /// Rows not newer than the field's last stored record (dropped, as Qlib does).
    pub skipped: usize,
    /// `(symbol, field)` pairs written (each a `.data` and an `.index`).
    pub fields: usize,
    /// Distinct symbols.
    pub symbols: usize,
}

const COLUMNS: [&str; 5] = ["symbol", "date", "period", "field", "value"];

fn parse_day(s: &str) -> Option<u32> {
    if s.len() == 8 && s.bytes().all(|b| b.is_ascii_digit()) {
        let v: u32 = s.parse().ok()?;
        chrono::NaiveDate::from_ymd_opt((v / 10000) as i32, v / 100 % 100, v % 100)?;
        return Some(v);
    }
    let d = parse_date(s)?;
    d.format("%Y%m%d").to_string().parse().ok()
}

/// Parses a PIT CSV: a header naming the columns `symbol,date,period,field,value` (any order,
/// extra columns ignored), dates as `YYYY-MM-DD` or `YYYYMMDD`, empty or `nan` values as NaN.
/// Quoted cells are not supported. Errors name the file, line and column.
pub fn parse_pit_csv(path: &Path) -> Result<Vec<PitRow>> {
    let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
    let bad = |line: usize, msg: String| DataError::format(path, format!("line {line}: {msg}"));
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let Some((_, header)) = lines.next() else {
        return Err(DataError::format(
            path,
            "empty CSV (expected a header symbol,date,period,field,value)",
        ));
    };
    let names: Vec<String> = header.split(',').map(|c| c.trim().to_lowercase()).collect();
    let mut col = [0usize; 5];
    for (k, want) in COLUMNS.iter().enumerate() {
        col[k] = names.iter().position(|n| n == want).ok_or_else(|| {
            DataError::format(path, format!("line 1: missing column `{want}` (header must name symbol,date,period,field,value)"))
        })?;
    }
    let mut out = Vec::new();
    for (i, l) in lines {
        let line = i + 1;
        if l.contains('"') {
            return Err(bad(line, "quoted cells are not supported".into()));
        }
        let cells: Vec<&str> = l.split(',').map(str::trim).collect();
        if cells.len() != names.len() {
            return Err(bad(
                line,
                format!("{} cells, the header has {}", cells.len(), names.len()),
            ));
        }
        let symbol = cells[col[0]];
        qtask_core::name::check_name("instrument", symbol).map_err(|e| bad(line, e.to_string()))?;
        let date = parse_day(cells[col[1]]).ok_or_else(|| {
            bad(
                line,
                format!("date `{}` is not YYYY-MM-DD or YYYYMMDD", cells[col[1]]),
            )
        })?;
        let field = cells[col[3]].to_lowercase();
        let interval = Interval::of_field(&field).ok_or_else(|| {
            bad(
                line,
                format!("field `{field}` must end with _q (quarterly) or _a (annual)"),
            )
        })?;
        if !field.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(bad(
                line,
                format!("field `{field}` may only hold letters, digits and _"),
            ));
        }
        let period: u32 = cells[col[2]]
            .parse()
            .ok()
            // Qlib's period lists only accept years 1900..=2099; a wild year would also
            // make the index huge.
            .filter(|&p| interval.is_valid(p) && (1900..=2099).contains(&interval.year(p)))
            .ok_or_else(|| {
                bad(
                    line,
                    match interval {
                        Interval::Quarterly => {
                            format!(
                                "period `{}` is not YYYYQQ (year 1900..2099, QQ in 01..04)",
                                cells[col[2]]
                            )
                        }
                        Interval::Annual => {
                            format!("period `{}` is not a year in 1900..2099", cells[col[2]])
                        }
                    },
                )
            })?;
        let v = cells[col[4]];
        let value = if v.is_empty() || v.eq_ignore_ascii_case("nan") {
            f64::NAN
        } else {
            v.parse()
                .map_err(|_| bad(line, format!("value `{v}` is not a number")))?
        };
        out.push(PitRow {
            symbol: symbol.to_string(),
            date,
            period,
            field,
            value,
            line,
        });
    }
    Ok(out)
}

/// Imports a PIT CSV into the provider folder `out` (`financial/<symbol>/<field>.data|.index`),
/// creating or appending. Every file is computed before any is written, so a bad row or a
/// corrupt existing file writes nothing; each file is replaced atomically. `progress(done,
/// total)` is called per field written.
pub fn import_pit_csv(
    csv: &Path,
    out: &Path,
    progress: &dyn Fn(u64, u64),
) -> Result<ImportSummary> {
    let rows = parse_pit_csv(csv)?;
    let mut groups: BTreeMap<(String, String), Vec<Publication>> = BTreeMap::new();
    for r in &rows {
        groups
            .entry((r.symbol.to_lowercase(), r.field.clone()))
            .or_default()
            .push((r.date, r.period, r.value));
    }
    let mut summary = ImportSummary {
        rows: rows.len(),
        ..ImportSummary::default()
    };
    let mut planned = Vec::new();
    for ((symbol, field), rs) in &groups {
        let interval = Interval::of_field(field).expect("validated while parsing");
        let existing = read_pit(out, symbol, field)?;
        let appended = append_rows(existing, interval, rs)
            .map_err(|e| DataError::Invalid(format!("{}: {symbol} {field}: {e}", csv.display())))?;
        summary.written += appended.written;
        summary.skipped += appended.skipped;
        planned.push((symbol.clone(), field.clone(), appended.file));
    }
    let total = planned.len() as u64;
    for (i, (symbol, field, file)) in planned.iter().enumerate() {
        let (data, index) = pit_paths(out, symbol, field)?;
        // Appends only add records: if a crash falls between the two renames, the reader
        // rejects the mismatched pair with a clear error instead of returning wrong values.
        write_atomic(&data, &file.data_bytes())?;
        write_atomic(&index, &file.index_bytes())?;
        progress(i as u64 + 1, total);
    }
    summary.fields = planned.len();
    let mut symbols: Vec<&String> = groups.keys().map(|(s, _)| s).collect();
    symbols.dedup();
    summary.symbols = symbols.len();
    Ok(summary)
}
