//! `qtask online`: online serving (Qlib's OnlineManager with a RollingStrategy). `init` trains
//! the first rolling windows, `routine` is what cron runs every trading day, `simulate` replays
//! the routines over past days, `signals` and `status` read what the manager keeps in the
//! runs store.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use qtask_core::{TimeAdjuster, load_template, resolve_provider_uri};
use qtask_data::NaiveDate;
use qtask_runner::StopFlag;
use qtask_study::online::{
    OnlineConfig, OnlineManager, RollingStrategy, StepReport, write_outputs,
};

use crate::flags::{ExecFlags, GenFlags, StoreFlags, TrackingFlags, TrainerFlags};
use crate::output::online::{print_signals, print_status, print_step};
use crate::output::progress::Bars;
use crate::output::tables::write_table;
use crate::output::write_json;

/// `qtask online`.
#[derive(Debug, Subcommand)]
pub enum OnlineCommand {
    /// Create the manager of an experiment and train the template's first rolling windows,
    /// set online (Qlib's first_train).
    Init(InitArgs),
    /// One routine (cron, each trading day): train the windows that came due, switch the
    /// online models, update their predictions to the day, prepare the signals.
    Routine(RoutineArgs),
    /// Replay the routines of every trading day from --begin to --end (Qlib's simulate) and
    /// write signals.parquet, history.json, tasks.json and report.html.
    Simulate(SimulateArgs),
    /// The signals prepared so far.
    Signals(SignalsArgs),
    /// The manager: online models, history, signals, an unfinished routine.
    Status(StatusArgs),
}

/// Where the manager keeps its models and how it trains them.
#[derive(Debug, Args)]
pub struct ManagerFlags {
    #[command(flatten)]
    exec: ExecFlags,
    #[command(flatten)]
    tracking: TrackingFlags,
    #[command(flatten)]
    trainer: TrainerFlags,
    #[command(flatten)]
    store: StoreFlags,
}

impl ManagerFlags {
    fn config(
        &self,
        experiment: String,
        provider_uri: Option<PathBuf>,
    ) -> anyhow::Result<OnlineConfig> {
        Ok(OnlineConfig {
            provider_uri,
            trainer: self.trainer.trainer,
            workers: self.trainer.workers,
            store: self.store.store.clone(),
            pool: self.trainer.pool.clone(),
            tracking_uri: self.tracking.tracking_uri.clone(),
            exec: self.exec.spec(None)?,
            ..OnlineConfig::new(experiment)
        })
    }
}

/// `qtask online init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    #[command(flatten)]
    generate: GenFlags,
    #[command(flatten)]
    manager: ManagerFlags,
    /// Experiment of the model runs (default: the template file's name).
    #[arg(long)]
    experiment: Option<String>,
    /// The manager's begin time: no routine before it (default: the data's last day).
    #[arg(long, value_parser = date_arg)]
    begin: Option<NaiveDate>,
    /// Print what was done as JSON.
    #[arg(long)]
    json: bool,
}

/// `qtask online routine`.
#[derive(Debug, Args)]
pub struct RoutineArgs {
    /// Experiment of the model runs (the one given to `init`).
    #[arg(long)]
    experiment: String,
    /// The routine's day (default: the data's last day).
    #[arg(long, value_parser = date_arg)]
    time: Option<NaiveDate>,
    /// Qlib data folder (default: the one given to `init`).
    #[arg(long)]
    provider_uri: Option<PathBuf>,
    #[command(flatten)]
    manager: ManagerFlags,
    /// Print what was done as JSON.
    #[arg(long)]
    json: bool,
}

/// `qtask online simulate`.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    #[command(flatten)]
    generate: GenFlags,
    #[command(flatten)]
    manager: ManagerFlags,
    /// Experiment of the model runs (default: the template file's name).
    #[arg(long)]
    experiment: Option<String>,
    /// First day simulated (the manager's begin time).
    #[arg(long, value_parser = date_arg)]
    begin: NaiveDate,
    /// Last day simulated.
    #[arg(long, value_parser = date_arg)]
    end: NaiveDate,
    /// Folder receiving signals.parquet, history.json, tasks.json and report.html.
    #[arg(long)]
    out: PathBuf,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

/// `qtask online signals`.
#[derive(Debug, Args)]
pub struct SignalsArgs {
    /// Experiment of the model runs.
    #[arg(long)]
    experiment: String,
    #[command(flatten)]
    tracking: TrackingFlags,
    /// Write the signals to this file (.parquet or .csv) instead of printing the last day.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print every row as JSON.
    #[arg(long)]
    json: bool,
}

/// `qtask online status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Experiment of the model runs.
    #[arg(long)]
    experiment: String,
    #[command(flatten)]
    tracking: TrackingFlags,
    /// Print the status as JSON.
    #[arg(long)]
    json: bool,
}

fn date_arg(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| format!("`{s}` is not a YYYY-MM-DD date"))
}

fn stem(p: &std::path::Path) -> String {
    p.file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| "online".into())
}

/// The strategy the generator flags describe, and the Qlib data folder.
fn strategy(g: &GenFlags) -> anyhow::Result<(RollingStrategy, PathBuf)> {
    let template = load_template(&g.template)?;
    let provider =
        resolve_provider_uri(g.provider_uri.as_deref(), template.provider_uri.as_deref());
    let ta = TimeAdjuster::from_provider(&provider).context("cannot load the trading calendar")?;
    let strategy = RollingStrategy::from_settings(&template.tasks, &g.settings(), &ta)
        .with_context(|| format!("{}", g.template.display()))?;
    Ok((strategy, provider))
}

/// What `init` and `simulate` start from: the strategy, the data folder, and the manager's
/// config for `experiment` (default: the template file's name).
fn setup(
    g: &GenFlags,
    experiment: Option<&str>,
    manager: &ManagerFlags,
) -> anyhow::Result<(RollingStrategy, PathBuf, OnlineConfig)> {
    let (strategy, provider) = strategy(g)?;
    let experiment = experiment.map_or_else(|| stem(&g.template), str::to_string);
    Ok((strategy, provider, manager.config(experiment, None)?))
}

/// Runs `qtask online ...`.
pub fn run(cmd: OnlineCommand) -> anyhow::Result<()> {
    match cmd {
        OnlineCommand::Init(a) => init(a),
        OnlineCommand::Routine(a) => routine(a),
        OnlineCommand::Simulate(a) => simulate(a),
        OnlineCommand::Signals(a) => signals(a),
        OnlineCommand::Status(a) => status(a),
    }
}

fn init(a: InitArgs) -> anyhow::Result<()> {
    let (strategy, provider, config) = setup(&a.generate, a.experiment.as_deref(), &a.manager)?;
    let (_, report) = OnlineManager::init(
        config,
        strategy,
        a.begin,
        provider,
        &StopFlag::from_signals()?,
        &Bars::default(),
    )?;
    print_step(&report, a.json)
}

fn routine(a: RoutineArgs) -> anyhow::Result<()> {
    let config = a
        .manager
        .config(a.experiment.clone(), a.provider_uri.clone())?;
    let mut m = OnlineManager::open(config)?;
    let report: StepReport = m.routine(a.time, &StopFlag::from_signals()?, &Bars::default())?;
    print_step(&report, a.json)
}

fn simulate(a: SimulateArgs) -> anyhow::Result<()> {
    let (strategy, provider, config) = setup(&a.generate, a.experiment.as_deref(), &a.manager)?;
    let m = OnlineManager::simulate(
        config,
        strategy,
        a.begin,
        a.end,
        provider,
        &StopFlag::from_signals()?,
        &Bars::default(),
    )?;
    let out = write_outputs(&m, &a.out)?;
    let summary = qtask_study::online::report::summary_json(&m, &out)?;
    if a.json {
        return write_json(&summary, None);
    }
    print_status(&summary, false);
    println!(
        "signals: {}\nhistory: {}\ntasks:   {}\nreport:  {}",
        out.signals.display(),
        out.history.display(),
        out.tasks.display(),
        out.report.display()
    );
    if let Some(dir) = &out.backtest {
        println!("backtest: {}", dir.display());
    }
    Ok(())
}

fn signals(a: SignalsArgs) -> anyhow::Result<()> {
    let config = OnlineConfig {
        tracking_uri: a.tracking.tracking_uri.clone(),
        ..OnlineConfig::new(a.experiment.clone())
    };
    let m = OnlineManager::open(config)?;
    let signals = m.signals()?.with_context(|| {
        format!(
            "experiment `{}` has no signals yet: run a routine first",
            a.experiment
        )
    })?;
    if let Some(out) = &a.out {
        return write_table(&signals, out);
    }
    print_signals(&signals, a.json)
}

fn status(a: StatusArgs) -> anyhow::Result<()> {
    let config = OnlineConfig {
        tracking_uri: a.tracking.tracking_uri.clone(),
        ..OnlineConfig::new(a.experiment.clone())
    };
    let m = OnlineManager::open(config)?;
    let summary = qtask_study::online::report::status_json(&m)?;
    if a.json {
        return write_json(&summary, None);
    }
    print_status(&summary, true);
    Ok(())
}
