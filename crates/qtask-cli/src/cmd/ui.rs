//! `qtask ui`: the web dashboard over the task store, the runs store and study reports.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use qtask_record::RecordStore;
use qtask_report::ReportData;
use qtask_web::{BoxError, Config, Server};

use crate::flags::{StoreFlags, TrackingFlags};

/// Arguments of `qtask ui`.
#[derive(Debug, Args)]
pub struct UiArgs {
    #[command(flatten)]
    store: StoreFlags,
    #[command(flatten)]
    tracking: TrackingFlags,
    /// Address to listen on; anything but loopback needs --token.
    #[arg(long, default_value = "127.0.0.1:8765")]
    bind: SocketAddr,
    /// Actions (retry, reset, prioritize, remove) need `Authorization: Bearer TOKEN`.
    #[arg(long, env = "QTASK_UI_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Refuse every action: look, do not touch.
    #[arg(long)]
    read_only: bool,
    /// Qlib data folder for the backtest section of study reports (none: no backtest shown).
    #[arg(long, value_name = "DIR")]
    provider_uri: Option<PathBuf>,
}

/// The study report of an experiment: what `qtask report` renders, with the backtest when
/// `provider` holds the market data.
fn study_report(
    runs: &RecordStore,
    experiment: &str,
    provider: Option<&Path>,
) -> Result<ReportData, BoxError> {
    let (data, _) = qtask_study::experiment_report(
        runs,
        experiment,
        provider,
        &format!("qtask report: {experiment}"),
        vec![format!("runs store: {}", runs.uri())],
    )?;
    Ok(data)
}

/// Runs `qtask ui` until the process is stopped.
pub fn run(args: UiArgs) -> anyhow::Result<()> {
    let store = args.store.store;
    let config = Config {
        tracking_uri: args.tracking.tracking_uri,
        bind: args.bind,
        token: args.token,
        read_only: args.read_only,
        ..Config::new(&store)
    };
    let provider = args.provider_uri;
    let report = move |runs: &RecordStore, experiment: &str| {
        study_report(runs, experiment, provider.as_deref())
    };
    let server = Server::new(config, Some(Arc::new(report)))?;
    let running = server.start().context("cannot start the dashboard")?;
    eprintln!(
        "qtask ui: serving http://{} (task store {}{}); Ctrl-C stops it",
        running.addr(),
        qtask_pool::StoreUrl::redacted(&store),
        if args.read_only { ", read-only" } else { "" }
    );
    running.wait();
    Ok(())
}
