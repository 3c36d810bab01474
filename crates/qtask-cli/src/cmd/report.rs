//! `qtask report`: one self-contained HTML page about an experiment's study.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use qtask_record::RecordStore;

use crate::cmd::study::{Window, ensemble, ensemble_ic, load_windows, report_data};
use crate::output::write_atomic;

/// Arguments of `qtask report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Experiment to report on (its latest run of every task).
    #[arg(long)]
    experiment: String,
    /// Runs store: file:PATH or http://HOST:PORT [env: QTASK_TRACKING_URI, MLFLOW_TRACKING_URI; default: file:mlruns].
    #[arg(long)]
    tracking_uri: Option<String>,
    /// Where to write the page.
    #[arg(long, default_value = "report.html")]
    out: PathBuf,
}

/// Writes the report of `windows` to `out` (used by `report` and `rolling`).
pub fn write_report(
    out: &Path,
    title: &str,
    experiment: &str,
    windows: &[Window],
    notes: Vec<String>,
) -> anyhow::Result<()> {
    let ens = ensemble(windows)?;
    let first = ens.first();
    let daily = match first {
        Some(e) => ensemble_ic(e)?,
        None => None,
    };
    let data = report_data(
        title,
        experiment,
        windows,
        first.map(|e| (e, daily.as_ref())),
        notes,
    );
    write_atomic(out, qtask_report::render(&data).as_bytes())
}

/// Runs `qtask report`.
pub fn run(args: ReportArgs) -> anyhow::Result<()> {
    let store = RecordStore::from_env(args.tracking_uri.as_deref(), false)
        .context("cannot open the runs store")?;
    let windows = load_windows(&store, &args.experiment, None)?;
    write_report(
        &args.out,
        &format!("qtask report: {}", args.experiment),
        &args.experiment,
        &windows,
        vec![format!("runs store: {}", store.uri())],
    )?;
    println!("{}", args.out.display());
    Ok(())
}
