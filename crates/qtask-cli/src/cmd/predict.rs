//! `qtask predict`: a trained run's predictions for any dates, without retraining and without
//! its training data (its model and fitted processors are read back from the run).

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use qtask_data::cache::FeatureCache;
use qtask_data::{NaiveDate, Provider};
use qtask_model::RunPredictor;

use crate::flags::TrackingFlags;
use crate::output::tables::{TableSummary, out_format, write_table};
use crate::output::{bar, write_json};

/// Arguments of `qtask predict`.
#[derive(Debug, Args)]
pub struct PredictArgs {
    /// The trained run (its id).
    #[arg(long)]
    run: String,
    /// The run's experiment (checked when given).
    #[arg(long)]
    experiment: Option<String>,
    /// First day to predict (YYYY-MM-DD).
    #[arg(long, value_parser = date_arg)]
    start: NaiveDate,
    /// Last day to predict (YYYY-MM-DD).
    #[arg(long, value_parser = date_arg)]
    end: NaiveDate,
    /// Output file: .parquet (datetime, instrument, score) or .csv.
    #[arg(long)]
    out: PathBuf,
    /// Qlib data folder [env: QTASK_PROVIDER_URI; default: the task's qlib_init.provider_uri,
    /// else ~/.qlib/qlib_data/cn_data].
    #[arg(long)]
    provider_uri: Option<PathBuf>,
    #[command(flatten)]
    tracking: TrackingFlags,
    /// Print what was written as JSON.
    #[arg(long)]
    json: bool,
}

fn date_arg(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| format!("`{s}` is not a YYYY-MM-DD date"))
}

/// Runs `qtask predict`.
pub fn run(a: PredictArgs) -> anyhow::Result<()> {
    out_format(&a.out)?;
    let store = a.tracking.open(false)?;
    let run = match &a.experiment {
        Some(name) => store
            .find_experiment(name)?
            .with_context(|| format!("no experiment `{name}` in {}", store.uri()))?
            .run(&a.run)?,
        None => store.run(&a.run)?,
    };
    let predictor = RunPredictor::load(&run)?;
    let provider_uri = predictor.provider_uri(a.provider_uri.as_deref());
    let provider = Provider::open(&provider_uri)
        .with_context(|| format!("cannot open the data folder {}", provider_uri.display()))?;
    let cache = FeatureCache::default_dir().map(FeatureCache::new);
    let pb = bar(0, "predicting");
    let pred = predictor.predict(&provider, a.start, a.end, cache.as_ref());
    pb.finish_and_clear();
    let pred = pred?;
    write_table(&pred, &a.out)?;
    let summary = TableSummary::of(&pred, &a.out);
    if a.json {
        return write_json(&summary, None);
    }
    println!("run {}: {}", run.id(), summary.line());
    Ok(())
}
