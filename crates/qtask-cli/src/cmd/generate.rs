//! `qtask gen`: print the tasks a template generates.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use serde_json::Value;

use crate::output;
use qtask_core::{
    GridAxis, GridGen, MultiHorizonGen, RollStep, RollType, RollingGen, TaskGen, TimeAdjuster,
    load_template, resolve_provider_uri,
};

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
    /// Rolling type.
    #[arg(long, default_value = "expanding")]
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
    /// Whether any generator needs the trading calendar.
    fn needs_calendar(&self) -> bool {
        self.rolling_step.is_some() || self.horizons.is_some()
    }

    /// The Qlib data folder: `--provider-uri`, else the config's `qlib_init.provider_uri`, else
    /// `QTASK_PROVIDER_URI`, else `~/.qlib/qlib_data/cn_data`.
    pub fn data_dir(&self) -> anyhow::Result<PathBuf> {
        let template = load_template(&self.template)?;
        Ok(resolve_provider_uri(
            self.provider_uri.as_deref(),
            template.provider_uri.as_deref(),
        ))
    }

    /// Reads the template and applies the generators: horizons -> rolling -> grid.
    pub fn generate(&self) -> anyhow::Result<Vec<Value>> {
        let template = load_template(&self.template)?;
        let ta = if self.needs_calendar() {
            let provider = resolve_provider_uri(
                self.provider_uri.as_deref(),
                template.provider_uri.as_deref(),
            );
            Some(
                TimeAdjuster::from_provider(&provider)
                    .context("cannot load the trading calendar")?,
            )
        } else {
            None
        };
        if let Some(days) = self.trunc_days {
            anyhow::ensure!(days >= 0, "--trunc-days must not be negative (got {days})");
        }
        let mut gens: Vec<Box<dyn TaskGen + '_>> = Vec::new();
        if let (Some(horizons), Some(ta)) = (&self.horizons, &ta) {
            let mut g = MultiHorizonGen::new(ta);
            g.horizons = horizons.clone();
            g.label_leak_n = self.label_leak;
            g.test_key = self.test_key.clone();
            gens.push(Box::new(g));
        }
        if let (Some(step), Some(ta)) = (self.rolling_step, &ta) {
            let mut g = RollingGen::new(ta);
            g.step = step;
            g.rtype = self.rtype;
            g.trunc_days = self.trunc_days;
            g.test_key = self.test_key.clone();
            g.train_key = (self.train_key != "none").then(|| self.train_key.clone());
            g.handler_mod = !self.no_handler_mod;
            gens.push(Box::new(g));
        }
        if !self.grids.is_empty() {
            gens.push(Box::new(GridGen {
                axes: self.grids.clone(),
            }));
        }
        let pb = output::bar(template.tasks.len() as u64, "generating");
        let mut tasks = Vec::new();
        for t in &template.tasks {
            let mut batch = vec![t.clone()];
            for g in &gens {
                let mut next = Vec::new();
                for t in &batch {
                    next.extend(g.generate(t)?);
                }
                batch = next;
            }
            tasks.extend(batch);
            pb.inc(1);
        }
        pb.finish_and_clear();
        Ok(tasks)
    }
}

/// Arguments of `qtask gen`.
#[derive(Debug, Args)]
pub struct GenArgs {
    #[command(flatten)]
    pub flags: GenFlags,
    /// Write the JSON array here instead of stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Runs `qtask gen`.
pub fn run(args: GenArgs) -> anyhow::Result<()> {
    let tasks = args.flags.generate()?;
    output::write_json(&tasks, args.out.as_deref())
}
