//! `qtask`: generate, store, train and collect many model-training tasks.

mod cmd;
mod flags;
mod output;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// qtask: Qlib-compatible task management (generate, pool, train, collect).
#[derive(Debug, Parser)]
#[command(name = "qtask", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate tasks from a template (rolling windows, horizons, parameter grids).
    Gen(cmd::generate::GenArgs),
    /// Qlib-format market data: synthetic markets, CSV import, features.
    #[command(subcommand)]
    Data(cmd::data::DataCommand),
    /// The task pool: create, fetch, commit, query, wait (Qlib's `manage -t POOL ...`).
    Manage(cmd::manage::ManageArgs),
    /// Collect an experiment's runs into prediction tables (group, ensemble, write).
    Collect(cmd::collect::CollectArgs),
    /// Combine prediction files with a rolling or average ensemble.
    Ensemble(cmd::ensemble::EnsembleArgs),
    /// Experiments and runs (MLflow file store or tracking server): list, runs, show, rm.
    Exp(cmd::exp::ExpArgs),
    /// Drain a task pool: claim, run, commit (Qlib's run_task / Trainer.worker).
    Worker(cmd::worker::WorkerArgs),
    /// Generate tasks and train them with TrainerR, TrainerRM, DelayTrainerR or DelayTrainerRM.
    Train(cmd::train::TrainArgs),
    /// Train one Qlib workflow config into a run and print its metrics (Qlib's qrun).
    Run(cmd::qrun::RunArgs),
    /// Generate rolling tasks, train them, collect with RollingGroup; write prediction, summary, report.
    Rolling(cmd::rolling::RollingArgs),
    /// Write a self-contained HTML report of an experiment's study.
    Report(cmd::report::ReportArgs),
    /// A trained run's predictions for any dates (no retraining, no training data).
    Predict(cmd::predict::PredictArgs),
    /// Online serving: first_train, daily routines, simulation, signals (Qlib's OnlineManager).
    #[command(subcommand)]
    Online(cmd::online::OnlineCommand),
    /// Backtest a prediction table as Qlib does (TopkDropoutStrategy, costs, limits, risk).
    Backtest(Box<cmd::backtest::BacktestArgs>),
    /// Ready-made studies on a synthetic market (the README's main command).
    #[command(subcommand)]
    Example(cmd::example::ExampleCommand),
    /// Run one recorded task in a child process (used by `worker --force-release`).
    #[command(hide = true)]
    WorkerTask(cmd::worker::WorkerTaskArgs),
    /// Serve the web dashboard: pools, tasks, experiments, runs and study reports.
    Ui(cmd::ui::UiArgs),
    /// Benchmarks (figures quoted in the README come from these).
    #[command(subcommand)]
    Bench(cmd::bench::BenchCommand),
}

/// An error that carries its own exit code (e.g. `wait --timeout` exits 3).
#[derive(Debug)]
pub struct ExitWith(pub u8, pub String);

impl std::fmt::Display for ExitWith {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.1)
    }
}

impl std::error::Error for ExitWith {}

/// The exit status of a process ended by SIGPIPE, as shells report it: what `qtask ... | head`
/// exits with once `head` stops reading (quietly, like any Unix filter).
const BROKEN_PIPE_EXIT: u8 = 141;

fn main() -> ExitCode {
    output::quiet_on_broken_pipe(BROKEN_PIPE_EXIT);
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help and --version.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            // One line: clap's first line already says what and where.
            let rendered = e.render().to_string();
            let line = rendered
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("error: bad arguments");
            // A bad value of an enum flag: the values it takes belong on the same line.
            let values = rendered
                .lines()
                .map(str::trim)
                .find(|l| l.starts_with("[possible values:"));
            match values {
                Some(v) => eprintln!("{line} {v}"),
                None => eprintln!("{line}"),
            }
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Gen(args) => cmd::generate::run(args),
        Command::Data(cmd) => cmd::data::run(cmd),
        Command::Manage(args) => cmd::manage::run(args),
        Command::Collect(args) => cmd::collect::run(args),
        Command::Ensemble(args) => cmd::ensemble::run(args),
        Command::Exp(args) => cmd::exp::run(args),
        Command::Worker(args) => cmd::worker::run(args),
        Command::Train(args) => cmd::train::run(args),
        Command::Run(args) => cmd::qrun::run(args),
        Command::Rolling(args) => cmd::rolling::run(args),
        Command::Report(args) => cmd::report::run(args),
        Command::Predict(args) => cmd::predict::run(args),
        Command::Online(cmd) => cmd::online::run(cmd),
        Command::Backtest(args) => cmd::backtest::run(*args),
        Command::Example(cmd) => cmd::example::run(cmd),
        Command::WorkerTask(args) => cmd::worker::run_child(args),
        Command::Ui(args) => cmd::ui::run(args),
        Command::Bench(cmd) => cmd::bench::run(cmd),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if output::is_broken_pipe(&e) => ExitCode::from(BROKEN_PIPE_EXIT),
        Err(e) => {
            let code = e.downcast_ref::<ExitWith>().map_or(1, |x| x.0);
            eprintln!("error: {}", output::one_line(&e));
            ExitCode::from(code)
        }
    }
}
