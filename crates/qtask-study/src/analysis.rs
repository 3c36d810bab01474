//! What a study adds after the IC: the signal diagnostics of the ensembled prediction (Qlib's
//! `model_performance_graph`) and, when the template configures a `PortAnaRecord`, Qlib's
//! backtest of it, as Qlib's rolling examples run on the collected prediction.

use std::path::Path;

use qtask_backtest::analysis::SignalAnalysis;
use qtask_backtest::result::write_folder;
use qtask_backtest::{BacktestConfig, BacktestResult};
use qtask_data::Provider;
use qtask_model::RecordSpec;
use serde_json::Value;

use crate::ensemble::Ensembled;
use crate::error::Result;

/// Score quantile groups of the signal analysis (Qlib's `N`).
pub const SIGNAL_GROUPS: usize = 5;

/// The analyses of a study's ensembled prediction.
#[derive(Debug, Clone, Default)]
pub struct StudyAnalysis {
    /// Signal diagnostics, when the windows had labels.
    pub signal: Option<SignalAnalysis>,
    /// The backtest, when the template configures a `PortAnaRecord`.
    pub backtest: Option<BacktestResult>,
}

impl StudyAnalysis {
    /// Analyses `ens`: its signal against its labels, and its backtest when `task` (a task of
    /// the study) configures a `PortAnaRecord`, on the market data in `provider`.
    pub fn of(ens: &Ensembled, task: &Value, provider: Option<&Path>) -> Result<StudyAnalysis> {
        let signal = match &ens.label {
            Some(label) => Some(SignalAnalysis::compute(&ens.pred, label, SIGNAL_GROUPS)?),
            None => None,
        };
        let backtest = match (port_analysis(task)?, provider) {
            (Some(cfg), Some(provider)) => {
                let provider = Provider::open(provider)?;
                Some(qtask_backtest::backtest(&provider, &ens.pred, &cfg)?)
            }
            _ => None,
        };
        Ok(StudyAnalysis { signal, backtest })
    }

    /// Writes the backtest's files (`report_normal.parquet`, `positions.parquet`, `risk.json`,
    /// ...) into the folder `out`, whole or not at all; nothing without a backtest.
    pub fn write_backtest(&self, out: &Path) -> Result<()> {
        if let Some(bt) = &self.backtest {
            write_folder(out, &bt.files()?)?;
        }
        Ok(())
    }
}

/// The backtest configured by the first `PortAnaRecord` in `task`'s records, if any: its
/// strategy, exchange and times as Qlib's benchmark YAML writes them.
pub fn port_analysis(task: &Value) -> Result<Option<BacktestConfig>> {
    Ok(RecordSpec::list_from(task.get("record"))?
        .into_iter()
        .find_map(|spec| match spec {
            RecordSpec::PortAna(cfg) => Some(*cfg),
            _ => None,
        }))
}
