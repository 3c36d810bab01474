//! `qtask example rolling`: the README's main job. Makes a synthetic market if the folder has
//! none, writes Qlib's CSI100 LightGBM rolling config, and runs `qtask rolling` on it through
//! the embedded SQLite pool.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use qtask_data::NaiveDate;
use qtask_data::synth::{SynthConfig, synth};

use crate::cmd::rolling::{RollingArgs, print_table, run_study};
use crate::output::{bar, write_atomic};

/// Example studies.
#[derive(Debug, Subcommand)]
pub enum ExampleCommand {
    /// Qlib's rolling LightGBM example (CSI100, Alpha158, RollingGen step 550 sliding) on a
    /// synthetic market.
    Rolling(ExampleArgs),
}

/// Arguments of `qtask example rolling`.
#[derive(Debug, Args)]
pub struct ExampleArgs {
    /// Working folder: market data, config, pool, runs and outputs go here.
    #[arg(long, default_value = "qtask_example")]
    pub dir: PathBuf,
    /// Instruments of the synthetic market (used only when the folder has no market yet).
    #[arg(long, default_value_t = 50)]
    pub instruments: usize,
    /// Local workers draining the pool.
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Market of the study: csi100 (Qlib's example: about 60% of the instruments) or all.
    #[arg(long, default_value = "csi100")]
    pub market: String,
    /// Seed of the synthetic market.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Qlib's rolling example config, as the repository ships it (`examples/`).
const EXAMPLE_CONFIG: &str = include_str!("../../../../examples/csi100_lgb_rolling.yaml");

/// The example config with the data folder and market filled in. `num_threads: 20` is left
/// out: on a small machine LightGBM's default (one thread per core) is much faster.
fn config_text(provider: &Path, market: &str) -> anyhow::Result<String> {
    let mut text = String::from(
        "# Written by `qtask example rolling` from examples/csi100_lgb_rolling.yaml.\n",
    );
    for line in EXAMPLE_CONFIG.lines() {
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];
        let line = if trimmed.starts_with("provider_uri:") {
            format!("{indent}provider_uri: \"{}\"", provider.display())
        } else if trimmed.starts_with("market: &market") {
            format!("{indent}market: &market {market}")
        } else if trimmed.starts_with("num_threads:") {
            continue;
        } else {
            line.to_string()
        };
        text.push_str(&line);
        text.push('\n');
    }
    // The example file is ours; fail loudly if it ever stops having what is replaced here.
    anyhow::ensure!(
        text.contains(&format!("market: &market {market}")) && !text.contains("~/.qlib"),
        "examples/csi100_lgb_rolling.yaml no longer has `provider_uri` and `market` lines to fill"
    );
    Ok(text)
}

/// Makes the market (if missing) and the config; returns the config path.
pub fn prepare(dir: &Path, instruments: usize, market: &str, seed: u64) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let dir = dir
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", dir.display()))?;
    let data = dir.join("data");
    if !data.join("calendars/day.txt").exists() {
        let cfg = SynthConfig {
            instruments,
            start: NaiveDate::from_ymd_opt(2008, 1, 1).expect("valid date"),
            end: NaiveDate::from_ymd_opt(2020, 12, 31).expect("valid date"),
            seed,
        };
        let pb = bar(instruments as u64, "synthetic market");
        synth(&data, &cfg, &|| pb.inc(1))?;
        pb.finish_and_clear();
        eprintln!(
            "wrote a synthetic market of {instruments} instruments to {}",
            data.display()
        );
    }
    let config = dir.join(format!("{market}_lgb_rolling.yaml"));
    write_atomic(&config, config_text(&data, market)?.as_bytes())?;
    Ok(config)
}

/// The `qtask rolling` arguments of the example.
pub fn rolling_args(
    dir: &Path,
    config: &Path,
    workers: usize,
    json: bool,
) -> anyhow::Result<RollingArgs> {
    #[derive(Parser)]
    struct Wrap {
        #[command(flatten)]
        r: RollingArgs,
    }
    let s = |p: &Path| p.to_string_lossy().to_string();
    let mut argv = vec![
        "qtask-rolling".to_string(),
        s(config),
        "--rolling-step".into(),
        "550".into(),
        "--rtype".into(),
        "sliding".into(),
        "--trainer".into(),
        "rm".into(),
        "--workers".into(),
        workers.to_string(),
        "--store".into(),
        format!("sqlite:{}", s(&dir.join("qtask.db"))),
        "--tracking-uri".into(),
        format!("file:{}", s(&dir.join("mlruns"))),
        "--out".into(),
        s(&dir.join("rolling_out")),
    ];
    if json {
        argv.push("--json".into());
    }
    Ok(Wrap::try_parse_from(argv)?.r)
}

/// Runs `qtask example ...`.
pub fn run(cmd: ExampleCommand) -> anyhow::Result<()> {
    let ExampleCommand::Rolling(a) = cmd;
    let config = prepare(&a.dir, a.instruments, &a.market, a.seed)?;
    let dir = config.parent().map(Path::to_path_buf).unwrap_or_default();
    eprintln!("config: {}", config.display());
    let done = run_study(rolling_args(&dir, &config, a.workers, a.json)?)?;
    if a.json {
        return crate::output::write_json(&done.summary, None);
    }
    print_table(&done.summary, "window");
    println!("\nreport: {}", done.report.display());
    Ok(())
}
