//! Prediction tables written by commands: the output format by extension, atomic writes,
//! and the one-line summary of what was written.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use qtask_collect::PredTable;
use serde::Serialize;

/// What was written, for people and for `--json`.
#[derive(Debug, Serialize)]
pub struct TableSummary {
    /// Rows in the table.
    pub rows: usize,
    /// Value columns.
    pub columns: Vec<String>,
    /// Earliest datetime (`YYYY-MM-DD[ HH:MM:SS]`), null when empty.
    pub start: Option<String>,
    /// Latest datetime.
    pub end: Option<String>,
    /// Where it was written.
    pub out: PathBuf,
}

impl TableSummary {
    /// Summary of `table` written at `out`.
    pub fn of(table: &PredTable, out: &Path) -> Self {
        let range = table.datetime_range();
        TableSummary {
            rows: table.len(),
            columns: table.column_names().to_vec(),
            start: range.map(|r| date_text(r.0.format("%Y-%m-%d %H:%M:%S").to_string())),
            end: range.map(|r| date_text(r.1.format("%Y-%m-%d %H:%M:%S").to_string())),
            out: out.to_path_buf(),
        }
    }

    /// One line: `N rows, START..END -> OUT`.
    pub fn line(&self) -> String {
        let range = match (&self.start, &self.end) {
            (Some(s), Some(e)) => format!("{s}..{e}"),
            _ => "no dates".into(),
        };
        format!(
            "{} rows, {range} -> {} ({})",
            self.rows,
            self.out.display(),
            super::file_size(&self.out)
        )
    }
}

/// Drops a midnight time: daily data reads `2020-01-02`, not `2020-01-02 00:00:00`.
fn date_text(full: String) -> String {
    match full.strip_suffix(" 00:00:00") {
        Some(day) => day.to_string(),
        None => full,
    }
}

/// The output format of `path`, checked before any work is done.
pub enum OutFormat {
    /// Apache Parquet, readable by pandas.
    Parquet,
    /// CSV.
    Csv,
}

/// The format of an output path by its extension.
pub fn out_format(path: &Path) -> anyhow::Result<OutFormat> {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("parquet") => Ok(OutFormat::Parquet),
        Some("csv") => Ok(OutFormat::Csv),
        _ => bail!("--out {}: expected a .parquet or .csv file", path.display()),
    }
}

/// Writes `table` at `path` in the format its extension names (atomically).
pub fn write_table(table: &PredTable, path: &Path) -> anyhow::Result<()> {
    match out_format(path)? {
        OutFormat::Parquet => table.write_parquet(path),
        OutFormat::Csv => table.write_csv(path),
    }
    .with_context(|| format!("cannot write {}", path.display()))
}
