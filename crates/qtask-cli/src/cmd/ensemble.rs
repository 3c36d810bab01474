//! `qtask ensemble rolling|average FILE... --out FILE`: combine prediction files directly.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, ValueEnum};
use qtask_collect::{PredTable, average_ensemble, rolling_ensemble};

use crate::output::tables::{TableSummary, out_format, write_table};
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
