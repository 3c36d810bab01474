//! `qtask example rolling`, the README's main job, as a library: a synthetic market (made once
//! per folder), Qlib's CSI100 LightGBM rolling config pointed at it, and the study's
//! configuration (RollingGen step 550, sliding, TrainerRM through the embedded SQLite pool).

use std::path::{Path, PathBuf};

use qtask_core::{GenSettings, RollStep, RollType};
use qtask_data::NaiveDate;
use qtask_data::synth::{SynthConfig, synth};
use qtask_runner::TrainerKind;

use crate::error::{Result, StudyError};
use crate::observe::{Observer, StudyPhase};
use crate::study::StudyConfig;

/// Qlib's rolling example config, as the repository ships it (`examples/`).
const EXAMPLE_CONFIG: &str = include_str!("../../../examples/csi100_lgb_rolling.yaml");

/// The markets (`instruments/<name>.txt`) `qtask data synth` writes.
const SYNTH_MARKETS: [&str; 3] = ["csi100", "csi300", "all"];

/// The example study's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    /// Working folder: market data, config, pool, runs and outputs go here.
    pub dir: PathBuf,
    /// Instruments of the synthetic market (used only when the folder has no market yet).
    pub instruments: usize,
    /// Local workers draining the pool.
    pub workers: usize,
    /// Market of the study: `csi100` (Qlib's example: about 60% of the instruments) or `all`.
    pub market: String,
    /// Seed of the synthetic market.
    pub seed: u64,
}

impl Example {
    /// The example with its defaults in `dir`: 50 instruments, one worker, csi100, seed 0.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Example {
            dir: dir.into(),
            instruments: 50,
            workers: 1,
            market: "csi100".into(),
            seed: 0,
        }
    }

    /// Makes the market (if the folder has none) and writes the config; returns the study's
    /// configuration, with every path inside the (absolute) working folder.
    pub fn prepare(&self, observer: &dyn Observer) -> Result<StudyConfig> {
        // Checked before minutes go into writing a market the study could not use.
        if !SYNTH_MARKETS.contains(&self.market.as_str()) {
            return Err(StudyError::Invalid(format!(
                "--market {}: the synthetic market has {}",
                self.market,
                SYNTH_MARKETS.join(", ")
            )));
        }
        if self.workers == 0 {
            return Err(StudyError::Invalid("--workers must be at least 1".into()));
        }
        std::fs::create_dir_all(&self.dir).map_err(|e| StudyError::write(&self.dir, e))?;
        let dir = self
            .dir
            .canonicalize()
            .map_err(|e| StudyError::write(&self.dir, e))?;
        let data = dir.join("data");
        if !data.join("calendars/day.txt").exists() {
            let cfg = SynthConfig {
                instruments: self.instruments,
                start: NaiveDate::from_ymd_opt(2008, 1, 1).expect("valid date"),
                end: NaiveDate::from_ymd_opt(2020, 12, 31).expect("valid date"),
                seed: self.seed,
            };
            observer.begin(StudyPhase::Market, self.instruments as u64);
            let made = synth(&data, &cfg, &|| observer.step());
            observer.end();
            made?;
        }
        let config = dir.join(format!("{}_lgb_rolling.yaml", self.market));
        qtask_core::fsutil::write_atomic(&config, config_text(&data, &self.market)?.as_bytes())
            .map_err(|e| StudyError::write(&config, e))?;
        Ok(StudyConfig {
            generators: GenSettings {
                rolling_step: Some(RollStep::Days(550)),
                rtype: RollType::Sliding,
                ..GenSettings::default()
            },
            trainer: TrainerKind::Rm,
            workers: self.workers,
            store: format!("sqlite:{}", dir.join("qtask.db").display()),
            tracking_uri: Some(format!("file:{}", dir.join("mlruns").display())),
            out: dir.join("rolling_out"),
            ..StudyConfig::new(config)
        })
    }
}

/// The example config with the data folder and market filled in. `num_threads: 20` is left
/// out: on a small machine LightGBM's default (one thread per core) is much faster.
fn config_text(provider: &Path, market: &str) -> Result<String> {
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
    if !text.contains(&format!("market: &market {market}")) || text.contains("~/.qlib") {
        return Err(StudyError::Invalid(
            "examples/csi100_lgb_rolling.yaml no longer has `provider_uri` and `market` lines to fill"
                .into(),
        ));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Quiet;

    #[test]
    fn a_bad_market_fails_before_the_market_is_written() {
        let tmp = tempfile::tempdir().unwrap();
        let ex = Example {
            market: "csi500".into(),
            ..Example::new(tmp.path().join("ex"))
        };
        let err = ex.prepare(&Quiet).unwrap_err().to_string();
        assert!(
            err.contains("--market csi500") && err.contains("csi300"),
            "{err}"
        );
        assert!(!tmp.path().join("ex/data").exists(), "a market was written");
    }
}
