//! `qtask data import-csv`: CSV files into Qlib's binary layout, like Qlib's `dump_bin.py`
//! (`dump_all` into a new folder, `dump_update` to append new dates to an existing one).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use serde::Serialize;

use qtask_core::name::check_name;

use crate::binfile::{BinSeries, read_bin, write_atomic, write_bin};
use crate::error::{DataError, Result};
use crate::provider::{Provider, parse_date};

/// Options of the importer.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Name of the date column.
    pub date_field: String,
    /// Name of the symbol column in a long CSV (absent: the file name is the symbol).
    pub symbol_field: String,
    /// Columns not to import (besides date and symbol).
    pub exclude_fields: Vec<String>,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            date_field: "date".into(),
            symbol_field: "symbol".into(),
            exclude_fields: Vec::new(),
        }
    }
}

/// What the import did.
#[derive(Debug, Clone, Serialize)]
pub struct ImportSummary {
    /// The provider folder.
    pub out: PathBuf,
    /// Symbols written.
    pub symbols: usize,
    /// Of which already present (appended to).
    pub updated_symbols: usize,
    /// Fields imported.
    pub fields: Vec<String>,
    /// Calendar length after the import.
    pub calendar_days: usize,
    /// Trading days added to the calendar.
    pub new_days: usize,
}

type Rows = BTreeMap<NaiveDate, Vec<f64>>;

/// Reads CSV files (a file or a folder of `*.csv`) into symbol -> date -> values.
fn read_sources(src: &Path, opts: &ImportOptions) -> Result<(Vec<String>, BTreeMap<String, Rows>)> {
    let files: Vec<PathBuf> = if src.is_dir() {
        let mut v: Vec<PathBuf> = std::fs::read_dir(src)
            .map_err(|e| DataError::io(src, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x.eq_ignore_ascii_case("csv")))
            .collect();
        v.sort();
        v
    } else if src.is_file() {
        vec![src.to_path_buf()]
    } else {
        return Err(DataError::Invalid(format!(
            "{} does not exist",
            src.display()
        )));
    };
    if files.is_empty() {
        return Err(DataError::Invalid(format!(
            "no .csv file in {}",
            src.display()
        )));
    }
    let mut fields: Vec<String> = Vec::new();
    let mut data: BTreeMap<String, Rows> = BTreeMap::new();
    // Values are stored per field name; files may order or omit columns differently.
    let mut raw: BTreeMap<String, BTreeMap<NaiveDate, BTreeMap<String, f64>>> = BTreeMap::new();
    for path in &files {
        let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
        let mut lines = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty());
        let Some((_, header)) = lines.next() else {
            return Err(DataError::format(path, "empty CSV (no header)"));
        };
        let cols: Vec<String> = split_csv(header)
            .iter()
            .map(|c| c.trim().to_lowercase())
            .collect();
        let date_col = cols
            .iter()
            .position(|c| *c == opts.date_field)
            .ok_or_else(|| {
                DataError::format(
                    path,
                    format!("no `{}` column in the header", opts.date_field),
                )
            })?;
        let sym_col = cols.iter().position(|c| *c == opts.symbol_field);
        let file_symbol = path
            .file_stem()
            .map(|s| s.to_string_lossy().to_uppercase())
            .unwrap_or_default();
        let value_cols: Vec<usize> = (0..cols.len())
            .filter(|&i| {
                i != date_col && Some(i) != sym_col && !opts.exclude_fields.contains(&cols[i])
            })
            .collect();
        for &i in &value_cols {
            // A column becomes `<column>.day.bin`: the one rule for file names applies.
            check_name("column", &cols[i])
                .map_err(|e| DataError::format(path, format!("line 1: {e}")))?;
            if !fields.contains(&cols[i]) {
                fields.push(cols[i].clone());
            }
        }
        for (ln, line) in lines {
            let cells = split_csv(line);
            let at = |msg: String| DataError::format(path, format!("line {}: {msg}", ln + 1));
            if cells.len() != cols.len() {
                return Err(at(format!(
                    "{} fields, the header has {}",
                    cells.len(),
                    cols.len()
                )));
            }
            let date = parse_date(&cells[date_col])
                .ok_or_else(|| at(format!("`{}` is not a date", cells[date_col])))?;
            let symbol = match sym_col {
                Some(c) => cells[c].trim().to_uppercase(),
                None => file_symbol.clone(),
            };
            if symbol.is_empty() {
                return Err(at("empty symbol".into()));
            }
            // A symbol becomes a folder name: the one rule for file names applies.
            check_name("instrument", &symbol).map_err(|e| at(e.to_string()))?;
            let mut vals = BTreeMap::new();
            for &i in &value_cols {
                let s = cells[i].trim();
                let v = if s.is_empty() || s.eq_ignore_ascii_case("nan") {
                    f64::NAN
                } else {
                    s.parse::<f64>()
                        .map_err(|_| at(format!("column `{}`: `{s}` is not a number", cols[i])))?
                };
                vals.insert(cols[i].clone(), v);
            }
            if raw
                .entry(symbol.clone())
                .or_default()
                .insert(date, vals)
                .is_some()
            {
                return Err(at(format!("{symbol} has {date} twice")));
            }
        }
    }
    for (sym, rows) in raw {
        let rows = rows
            .into_iter()
            .map(|(d, m)| {
                let v = fields
                    .iter()
                    .map(|f| m.get(f).copied().unwrap_or(f64::NAN))
                    .collect();
                (d, v)
            })
            .collect();
        data.insert(sym, rows);
    }
    Ok((fields, data))
}

fn split_csv(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            '\r' => {}
            c => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// Imports `src` into the provider folder `out`. A new folder gets everything; an existing
/// one gets the dates after its last calendar day appended (existing days are left as they
/// are), new symbols added and `instruments/all.txt` extended. All input is parsed and
/// checked before anything is written; every file is replaced atomically and the calendar
/// last, so an interrupted import never leaves a calendar naming days without data.
pub fn import_csv(src: &Path, out: &Path, opts: &ImportOptions) -> Result<ImportSummary> {
    let (fields, data) = read_sources(src, opts)?;
    if data.is_empty() {
        return Err(DataError::Invalid(format!(
            "{} has no data rows",
            src.display()
        )));
    }
    let existing = if out.join("calendars/day.txt").exists() {
        Some(Provider::open(out)?)
    } else {
        None
    };
    let old_cal: Vec<NaiveDate> = existing
        .as_ref()
        .map(|p| p.calendar().to_vec())
        .unwrap_or_default();
    let old_last = old_cal.last().copied();
    let old_instruments = match &existing {
        Some(p) if out.join("instruments/all.txt").exists() => p.market("all")?,
        _ => BTreeMap::new(),
    };
    let old_cal_set: BTreeSet<NaiveDate> = old_cal.iter().copied().collect();
    let mut new_days: BTreeSet<NaiveDate> = BTreeSet::new();
    for (sym, rows) in &data {
        let is_old = old_instruments.contains_key(sym);
        for d in rows.keys() {
            if old_last.is_some_and(|l| *d <= l) {
                if !is_old && !old_cal_set.contains(d) {
                    return Err(DataError::Invalid(format!(
                        "{sym} {d}: not a trading day of the existing calendar {}",
                        out.join("calendars/day.txt").display()
                    )));
                }
            } else {
                new_days.insert(*d);
            }
        }
    }
    let cal: Vec<NaiveDate> = old_cal
        .iter()
        .copied()
        .chain(new_days.iter().copied())
        .collect();
    let index: BTreeMap<NaiveDate, usize> = cal.iter().enumerate().map(|(i, d)| (*d, i)).collect();
    let mut instruments = old_instruments.clone();
    let mut updated = 0;
    for (sym, rows) in &data {
        let dir = out.join("features").join(sym.to_lowercase());
        let is_old = old_instruments.contains_key(sym);
        // Existing symbols only take days after the old calendar.
        let rows: Vec<(&NaiveDate, &Vec<f64>)> = rows
            .iter()
            .filter(|(d, _)| !is_old || old_last.is_none_or(|l| **d > l))
            .collect();
        if rows.is_empty() {
            continue;
        }
        if is_old {
            updated += 1;
        }
        let first = index[rows[0].0];
        let last = index[rows[rows.len() - 1].0];
        for (fi, f) in fields.iter().enumerate() {
            let path = dir.join(format!("{f}.day.bin"));
            let mut series = if is_old && path.exists() {
                read_bin(&path)?
            } else {
                BinSeries {
                    start: first,
                    values: Vec::new(),
                }
            };
            let end = series.end().max(first);
            series.values.resize(end - series.start, f32::NAN);
            series.values.resize(last + 1 - series.start, f32::NAN);
            for (d, v) in &rows {
                let i = index[*d] - series.start;
                series.values[i] = v[fi] as f32;
            }
            write_bin(&path, &series)?;
        }
        let (s, e) = (*rows[0].0, *rows[rows.len() - 1].0);
        let spans = instruments.entry(sym.clone()).or_default();
        match spans.last_mut() {
            Some(span) => span.1 = span.1.max(e),
            None => spans.push((s, e)),
        }
    }
    let all: String = instruments
        .iter()
        .flat_map(|(sym, spans)| spans.iter().map(move |(s, e)| format!("{sym}\t{s}\t{e}\n")))
        .collect();
    write_atomic(&out.join("instruments/all.txt"), all.as_bytes())?;
    let cal_text: String = cal.iter().map(|d| format!("{d}\n")).collect();
    write_atomic(&out.join("calendars/day.txt"), cal_text.as_bytes())?;
    Ok(ImportSummary {
        out: out.to_path_buf(),
        symbols: data.len(),
        updated_symbols: updated,
        fields,
        calendar_days: cal.len(),
        new_days: new_days.len(),
    })
}
