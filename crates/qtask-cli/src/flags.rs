//! Flags shared by several commands, declared once and flattened into each.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use qtask_core::{
    GenSettings, GridAxis, RollStep, RollType, TimeAdjuster, load_template, resolve_provider_uri,
};
use qtask_pool::{DEFAULT_STORE, Status};
use qtask_record::RecordStore;
use qtask_runner::TrainerKind;
use qtask_study::ExecSpec;
use serde_json::Value;

use crate::output;

/// The task store.
#[derive(Debug, Clone, Args)]
pub struct StoreFlags {
    /// Task store: sqlite:PATH, postgres://USER@HOST/DB or mongodb://HOST/DB.
    #[arg(long, env = "QTASK_STORE", default_value = DEFAULT_STORE, global = true)]
    pub store: String,
}

/// The runs store.
#[derive(Debug, Clone, Args)]
pub struct TrackingFlags {
    /// Runs store: file:PATH or http://HOST:PORT [env: QTASK_TRACKING_URI, MLFLOW_TRACKING_URI; default: file:mlruns].
    #[arg(long, global = true, value_name = "URI")]
    pub tracking_uri: Option<String>,
}

impl TrackingFlags {
    /// Opens the runs store (`create`: make a missing file store).
    pub fn open(&self, create: bool) -> anyhow::Result<RecordStore> {
        Ok(RecordStore::from_env(self.tracking_uri.as_deref(), create)?)
    }
}

/// `--trainer`'s values, listed by `--help` (Qlib's class names are accepted too).
pub fn trainer_values() -> impl TypedValueParser<Value = TrainerKind> {
    PossibleValuesParser::new([
        PossibleValue::new("r").alias("TrainerR"),
        PossibleValue::new("rm").alias("TrainerRM"),
        PossibleValue::new("delay-r").alias("DelayTrainerR"),
        PossibleValue::new("delay-rm").alias("DelayTrainerRM"),
    ])
    .try_map(|s| s.parse::<TrainerKind>())
}

/// `--rtype`'s values, listed by `--help` (Qlib's short forms are accepted too).
pub fn rtype_values() -> impl TypedValueParser<Value = RollType> {
    PossibleValuesParser::new([
        PossibleValue::new("expanding").alias("ex"),
        PossibleValue::new("sliding").alias("sd"),
    ])
    .try_map(|s| s.parse::<RollType>())
}

/// A task status flag's values, listed by `--help`.
pub fn status_values() -> impl TypedValueParser<Value = Status> {
    PossibleValuesParser::new(Status::ALL.map(|s| s.as_str())).try_map(|s| s.parse::<Status>())
}

/// How tasks are executed.
#[derive(Debug, Clone, Args)]
pub struct ExecFlags {
    /// Run this command for each task (task JSON on stdin, JSON result on stdout).
    #[arg(long, conflicts_with = "func")]
    pub exec: Option<String>,
    /// Run this built-in task function: task_train (the quant workflow; the default) or echo
    /// (the task is its own result; its numbers become metrics).
    #[arg(long)]
    pub func: Option<String>,
    /// Kill a task's command (and fail the attempt) after this many seconds.
    #[arg(long, value_name = "SECS")]
    pub task_timeout: Option<f64>,
}

impl ExecFlags {
    /// The executor these flags name, `task_train` reading market data from `provider_uri`.
    pub fn spec(&self, provider_uri: Option<PathBuf>) -> anyhow::Result<ExecSpec> {
        let task_timeout = self
            .task_timeout
            .map(|s| {
                Duration::try_from_secs_f64(s).map_err(|_| {
                    anyhow::anyhow!("--task-timeout must be a non-negative number of seconds")
                })
            })
            .transpose()?;
        Ok(ExecSpec {
            command: self.exec.clone(),
            func: self.func.clone(),
            task_timeout,
            provider_uri,
        })
    }
}

/// Which trainer, and how many local workers drain its pool.
#[derive(Debug, Clone, Args)]
pub struct TrainerFlags {
    /// r (TrainerR), rm (TrainerRM), delay-r (DelayTrainerR) or delay-rm (DelayTrainerRM).
    #[arg(long, default_value = "r", value_parser = trainer_values())]
    pub trainer: TrainerKind,
    /// Local workers draining the pool (RM trainers); other machines may join with `qtask worker`.
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Task pool of the RM trainers (default: the experiment name).
    #[arg(short = 't', long = "task-pool")]
    pub pool: Option<String>,
}

/// Flags that turn a template into tasks (shared by `gen`, `train` and `rolling`).
#[derive(Debug, Clone, Args)]
pub struct GenFlags {
    /// Template file: a task, a list of tasks, or a Qlib workflow config (YAML or JSON).
    pub template: PathBuf,
    /// Qlib data folder holding calendars/day.txt [env: QTASK_PROVIDER_URI; default: the
    /// config's qlib_init.provider_uri, else ~/.qlib/qlib_data/cn_data].
    #[arg(long)]
    pub provider_uri: Option<PathBuf>,
    /// Roll the test window: N trading days, or a calendar unit (1W, 1M, 3M, 1Y). Absent: no rolling.
    #[arg(long)]
    pub rolling_step: Option<RollStep>,
    /// Rolling type: the train segment grows (expanding) or moves with the test (sliding).
    #[arg(long, default_value = "expanding", value_parser = rtype_values())]
    pub rtype: RollType,
    /// Trading days cut between every non-test segment and the test start.
    #[arg(long)]
    pub trunc_days: Option<i64>,
    /// Do not extend the handler's end_time to each test end.
    #[arg(long)]
    pub no_handler_mod: bool,
    /// Name of the test segment.
    #[arg(long, default_value = "test")]
    pub test_key: String,
    /// Name of the segment that expands (`none`: every segment slides).
    #[arg(long, default_value = "train")]
    pub train_key: String,
    /// Label horizons in trading days, e.g. 1,5,10 (one task per horizon).
    #[arg(long, value_delimiter = ',')]
    pub horizons: Option<Vec<i64>>,
    /// Days of label leakage cut on top of the horizon.
    #[arg(long, default_value_t = 2)]
    pub label_leak: i64,
    /// Parameter grid over a dotted path: PATH=V1,V2 (repeat for a product).
    #[arg(long = "grid", value_name = "PATH=V1,V2")]
    pub grids: Vec<GridAxis>,
}

impl GenFlags {
    /// The generator settings these flags describe.
    pub fn settings(&self) -> GenSettings {
        GenSettings {
            rolling_step: self.rolling_step,
            rtype: self.rtype,
            trunc_days: self.trunc_days,
            handler_mod: !self.no_handler_mod,
            test_key: self.test_key.clone(),
            train_key: (self.train_key != "none").then(|| self.train_key.clone()),
            horizons: self.horizons.clone(),
            label_leak: self.label_leak,
            grids: self.grids.clone(),
        }
    }

    /// Reads the template and generates its tasks (with a progress bar); also returns the
    /// Qlib data folder: `--provider-uri`, else the config's `qlib_init.provider_uri`, else
    /// `QTASK_PROVIDER_URI`, else `~/.qlib/qlib_data/cn_data`.
    pub fn generate(&self) -> anyhow::Result<(Vec<Value>, PathBuf)> {
        let template = load_template(&self.template)?;
        let provider = resolve_provider_uri(
            self.provider_uri.as_deref(),
            template.provider_uri.as_deref(),
        );
        let settings = self.settings();
        let ta = if settings.needs_calendar() {
            Some(
                TimeAdjuster::from_provider(&provider)
                    .context("cannot load the trading calendar")?,
            )
        } else {
            None
        };
        let pb = output::bar(template.tasks.len() as u64, "generating");
        let tasks = settings.generate(&template.tasks, ta.as_ref(), &|| pb.inc(1));
        pb.finish_and_clear();
        Ok((tasks?, provider))
    }
}
