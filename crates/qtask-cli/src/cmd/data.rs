//! `qtask data ...`: synthetic markets, CSV import and feature computation on Qlib-format data.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use qtask_data::cache::FeatureCache;
use qtask_data::import::{ImportOptions, import_csv};
use qtask_data::provider::parse_date;
use qtask_data::synth::{SynthConfig, synth};
use qtask_data::{Frame, Instruments, NaiveDate, Program, Provider, Query, alpha, compute};

use crate::output::{bar, write_atomic, write_json};

/// Qlib-format market data.
#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Write a synthetic market (Qlib binary layout) with a learnable signal.
    Synth(SynthArgs),
    /// Compute features (a handler's or given expressions) for instruments and dates.
    Features(FeaturesArgs),
    /// Import CSV files into the Qlib binary layout (new folder, or append new dates).
    ImportCsv(ImportArgs),
    /// Import point-in-time financial rows (symbol,date,period,field,value) into financial/.
    ImportPit(ImportPitArgs),
}

/// `qtask data import-pit`.
#[derive(Debug, Args)]
pub struct ImportPitArgs {
    /// CSV with the columns symbol,date,period,field,value (field ends with _q or _a).
    #[arg(long)]
    csv: PathBuf,
    /// Qlib data folder to create or append to (files go to financial/<symbol>/).
    #[arg(long)]
    out: PathBuf,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

/// `qtask data synth`.
#[derive(Debug, Args)]
pub struct SynthArgs {
    /// Folder to create (must not exist or be empty).
    #[arg(long)]
    out: PathBuf,
    /// Number of instruments.
    #[arg(long, default_value_t = 50)]
    instruments: usize,
    /// First calendar day (YYYY-MM-DD).
    #[arg(long, default_value = "2008-01-01", value_parser = date_arg)]
    start: NaiveDate,
    /// Last calendar day (YYYY-MM-DD).
    #[arg(long, default_value = "2020-12-31", value_parser = date_arg)]
    end: NaiveDate,
    /// Random seed; the same seed writes identical files.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

/// `qtask data features`.
#[derive(Debug, Args)]
pub struct FeaturesArgs {
    /// Qlib data folder (with calendars/, instruments/, features/).
    #[arg(long, env = "QTASK_PROVIDER_URI")]
    provider_uri: PathBuf,
    /// Market (instruments/<market>.txt) [default: all].
    #[arg(long, conflicts_with = "instruments")]
    market: Option<String>,
    /// Comma-separated symbols instead of a market.
    #[arg(long, value_delimiter = ',')]
    instruments: Option<Vec<String>>,
    /// First day (YYYY-MM-DD) [default: the calendar's first].
    #[arg(long, value_parser = date_arg)]
    start: Option<NaiveDate>,
    /// Last day (YYYY-MM-DD) [default: the calendar's last].
    #[arg(long, value_parser = date_arg)]
    end: Option<NaiveDate>,
    /// A built-in handler's features: Alpha158 or Alpha360.
    #[arg(long, conflicts_with = "expr", required_unless_present = "expr")]
    handler: Option<String>,
    /// An expression (repeatable); the column is named by the expression.
    #[arg(long)]
    expr: Vec<String>,
    /// With --handler, also output the label column LABEL0.
    #[arg(long, requires = "handler")]
    with_label: bool,
    /// Output file (.csv or .parquet: datetime, instrument, then float64 columns); CSV on stdout when absent.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Reuse/store the result in the feature cache ($QTASK_CACHE_DIR/features or ~/.cache/qtask/features).
    #[arg(long)]
    cache: bool,
}

/// `qtask data import-csv`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// A CSV file (long format with a symbol column) or a folder of <SYMBOL>.csv files.
    #[arg(long)]
    csv: PathBuf,
    /// Qlib data folder to create or append to.
    #[arg(long)]
    out: PathBuf,
    /// Name of the date column.
    #[arg(long, default_value = "date")]
    date_field: String,
    /// Name of the symbol column of a long CSV.
    #[arg(long, default_value = "symbol")]
    symbol_field: String,
    /// Columns not to import (comma-separated).
    #[arg(long, value_delimiter = ',')]
    exclude_fields: Vec<String>,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

fn date_arg(s: &str) -> Result<NaiveDate, String> {
    parse_date(s).ok_or_else(|| format!("`{s}` is not a YYYY-MM-DD date"))
}

/// Runs a `data` subcommand.
pub fn run(cmd: DataCommand) -> anyhow::Result<()> {
    match cmd {
        DataCommand::Synth(a) => run_synth(a),
        DataCommand::Features(a) => run_features(a),
        DataCommand::ImportCsv(a) => run_import(a),
        DataCommand::ImportPit(a) => run_import_pit(a),
    }
}

fn run_synth(a: SynthArgs) -> anyhow::Result<()> {
    let cfg = SynthConfig {
        instruments: a.instruments,
        start: a.start,
        end: a.end,
        seed: a.seed,
    };
    let pb = bar(a.instruments as u64, "synth");
    let summary = synth(&a.out, &cfg, &|| pb.inc(1)).context("data synth")?;
    pb.finish_and_clear();
    if a.json {
        write_json(&summary, None)
    } else {
        println!(
            "wrote {}: {} instruments x {} days ({} listed late, {} delisted early, {} suspended days)",
            summary.out.display(),
            summary.instruments,
            summary.days,
            summary.late_listings,
            summary.early_delistings,
            summary.suspended_days
        );
        Ok(())
    }
}

/// Computes a frame with a progress bar over instruments.
pub fn compute_with_bar(
    provider: &Provider,
    program: &Program,
    q: &Query,
    cache: Option<&FeatureCache>,
) -> anyhow::Result<Frame> {
    let cal = provider.calendar();
    let n = provider
        .list_instruments(
            &q.instruments,
            q.start.unwrap_or(cal[0]),
            q.end.unwrap_or(cal[cal.len() - 1]),
        )?
        .len();
    let pb = bar(n as u64, "features");
    let frame = match cache {
        Some(c) => c.get_or_compute(provider, program, q, &|| pb.inc(1))?,
        None => compute(provider, program, q, &|| pb.inc(1))?,
    };
    pb.finish_and_clear();
    Ok(frame)
}

fn run_features(a: FeaturesArgs) -> anyhow::Result<()> {
    let provider = Provider::open(&a.provider_uri)?;
    let fields = alpha::requested_fields(a.handler.as_deref(), &a.expr, a.with_label)?;
    let program = Program::compile(&fields)?;
    let q = Query {
        instruments: Instruments::select(a.market, a.instruments),
        start: a.start,
        end: a.end,
    };
    let cache = if a.cache {
        Some(FeatureCache::new(
            FeatureCache::default_dir().context("no cache folder: set QTASK_CACHE_DIR")?,
        ))
    } else {
        None
    };
    let mut frame = compute_with_bar(&provider, &program, &q, cache.as_ref())?;
    frame.sort_by_instrument();
    match a.out {
        None => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            frame.write_csv(&mut out)?;
            out.flush()?;
        }
        Some(path) => write_frame(&frame, &path)?,
    }
    Ok(())
}

/// Writes a frame as CSV or Parquet (by extension), atomically.
pub fn write_frame(frame: &Frame, path: &Path) -> anyhow::Result<()> {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "csv" => {
            let mut buf = Vec::new();
            frame.write_csv(&mut buf)?;
            write_atomic(path, &buf)
        }
        "parquet" => {
            let mut b = qtask_table::TableBuilder::new(frame.columns.iter().cloned());
            b.reserve(frame.len());
            let mut row = vec![0.0; frame.columns.len()];
            for r in 0..frame.len() {
                for (v, c) in row.iter_mut().zip(&frame.data) {
                    *v = c[r] as f64;
                }
                let day = frame.datetime[r]
                    .and_hms_opt(0, 0, 0)
                    .context("midnight exists")?;
                b.push(day, frame.symbol(r), &row)?;
            }
            b.finish()
                .write_parquet(path)
                .with_context(|| format!("cannot write {}", path.display()))
        }
        _ => bail!(
            "{}: unsupported output format (use .csv or .parquet)",
            path.display()
        ),
    }
}

fn run_import_pit(a: ImportPitArgs) -> anyhow::Result<()> {
    let pb = bar(0, "import-pit");
    let s = qtask_data::pit::import_pit_csv(&a.csv, &a.out, &|done, total| {
        pb.set_length(total);
        pb.set_position(done);
    })
    .context("data import-pit")?;
    pb.finish_and_clear();
    if a.json {
        write_json(&s, None)
    } else {
        println!(
            "imported {} rows into {} fields of {} symbols under {}: {} records written, {} skipped (not newer than stored data)",
            s.rows,
            s.fields,
            s.symbols,
            a.out.join("financial").display(),
            s.written,
            s.skipped
        );
        Ok(())
    }
}

fn run_import(a: ImportArgs) -> anyhow::Result<()> {
    let opts = ImportOptions {
        date_field: a.date_field.to_lowercase(),
        symbol_field: a.symbol_field.to_lowercase(),
        exclude_fields: a.exclude_fields.iter().map(|s| s.to_lowercase()).collect(),
    };
    let s = import_csv(&a.csv, &a.out, &opts).context("data import-csv")?;
    if a.json {
        write_json(&s, None)
    } else {
        println!(
            "imported {} symbols ({} appended to) with fields {} into {}: calendar {} days (+{})",
            s.symbols,
            s.updated_symbols,
            s.fields.join(","),
            s.out.display(),
            s.calendar_days,
            s.new_days
        );
        Ok(())
    }
}
