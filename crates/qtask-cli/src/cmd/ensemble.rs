//! `qtask ensemble rolling|average FILE... --out FILE`: combine prediction files directly.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use qtask_collect::{PredTable, average_ensemble, rolling_ensemble};
use serde::Serialize;

use crate::output::{bar, write_json};

/// Which ensemble to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Method {
    /// Qlib's RollingEnsemble: pieces by first datetime, later piece wins on overlap.
    Rolling,
    /// Qlib's AverageEnsemble: per-datetime z-scores averaged into `score`.
    Average,
}

/// Arguments of `qtask ensemble`.
#[derive(Debug, Args)]
pub struct EnsembleArgs {
    /// rolling or average.
    #[arg(value_enum)]
    method: Method,
    /// Prediction files (Parquet), in order: the order breaks ties.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Output file: `.parquet` or `.csv`.
    #[arg(long)]
    out: PathBuf,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

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
        format!("{} rows, {range} -> {}", self.rows, self.out.display())
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

/// Runs `qtask ensemble`.
pub fn run(args: EnsembleArgs) -> anyhow::Result<()> {
    out_format(&args.out)?;
    let pb = bar(args.files.len() as u64, "reading");
    let mut tables = Vec::with_capacity(args.files.len());
    for f in &args.files {
        tables.push(PredTable::read_parquet(f)?);
        pb.inc(1);
    }
    pb.finish_and_clear();
    let labels: Vec<String> = args.files.iter().map(|f| f.display().to_string()).collect();
    let pieces: Vec<(&str, &PredTable)> = labels.iter().map(String::as_str).zip(&tables).collect();
    let result = match args.method {
        Method::Rolling => rolling_ensemble(&pieces),
        Method::Average => average_ensemble(&pieces),
    }
    .context("ensemble")?;
    drop(tables);
    write_table(&result, &args.out)?;
    let summary = TableSummary::of(&result, &args.out);
    if args.json {
        write_json(&summary, None)
    } else {
        let name = match args.method {
            Method::Rolling => "rolling",
            Method::Average => "average",
        };
        println!(
            "{name} ensemble of {} files: {}",
            args.files.len(),
            summary.line()
        );
        Ok(())
    }
}
