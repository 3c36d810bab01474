//! `qtask report`: one self-contained HTML page about an experiment's study.

use std::path::PathBuf;

use clap::Args;
use qtask_study::report_experiment;

use crate::flags::TrackingFlags;

/// Arguments of `qtask report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Experiment to report on (its latest run of every task).
    #[arg(long)]
    experiment: String,
    #[command(flatten)]
    tracking: TrackingFlags,
    /// Qlib data folder for the backtest of the ensemble when the tasks configure a
    /// PortAnaRecord [env: QTASK_PROVIDER_URI; without it the report has no backtest].
    #[arg(long, env = "QTASK_PROVIDER_URI")]
    provider_uri: Option<PathBuf>,
    /// Where to write the page.
    #[arg(long, default_value = "report.html")]
    out: PathBuf,
}

/// Runs `qtask report`.
pub fn run(args: ReportArgs) -> anyhow::Result<()> {
    let store = args.tracking.open(false)?;
    let windows = report_experiment(
        &store,
        &args.experiment,
        args.provider_uri.as_deref(),
        &args.out,
        &format!("qtask report: {}", args.experiment),
        vec![format!("runs store: {}", store.uri())],
    )?;
    println!(
        "wrote {} ({} window(s) of experiment `{}`, {})",
        args.out.display(),
        windows.len(),
        args.experiment,
        crate::output::file_size(&args.out)
    );
    Ok(())
}
