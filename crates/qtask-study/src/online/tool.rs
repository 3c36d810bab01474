//! Qlib's `OnlineToolR` (qlib/workflow/online/utils.py): which runs of an experiment serve
//! online, kept as the `online_status` tag of each run.

use chrono::NaiveDate;
use qtask_data::Provider;
use qtask_data::cache::FeatureCache;
use qtask_model::predict::{PredUpdate, has_pred, update_pred};
use qtask_record::{RecordStore, RunInfo};

use crate::error::Result;

/// The tag holding a run's online status (Qlib's `OnlineTool.ONLINE_KEY`).
pub const ONLINE_KEY: &str = "online_status";
/// The status of a run serving online.
pub const ONLINE_TAG: &str = "online";
/// The status of every other run (also what a run without the tag is).
pub const OFFLINE_TAG: &str = "offline";

/// Online and offline runs of one experiment.
#[derive(Debug, Clone)]
pub struct OnlineTool {
    records: RecordStore,
    experiment: String,
}

/// What updating one online run's prediction did.
#[derive(Debug, Clone, PartialEq)]
pub enum PredUpdateOutcome {
    /// The run has no `pred.parquet` (e.g. a delay trainer's run not fitted yet): skipped, as
    /// Qlib's updater skips it.
    NoPrediction,
    /// The updater ran.
    Updated(PredUpdate),
}

impl OnlineTool {
    /// The tool of `experiment` in `records`.
    pub fn new(records: &RecordStore, experiment: &str) -> Self {
        OnlineTool {
            records: records.clone(),
            experiment: experiment.to_string(),
        }
    }

    /// The experiment's active runs, newest first (an experiment not created yet has none).
    pub fn runs(&self) -> Result<Vec<RunInfo>> {
        Ok(match self.records.find_experiment(&self.experiment)? {
            Some(exp) => exp.runs(None)?,
            None => Vec::new(),
        })
    }

    /// Sets `tag` (`online` or `offline`) on each run.
    pub fn set_online_tag(&self, tag: &str, run_ids: &[String]) -> Result<()> {
        for id in run_ids {
            self.records.run(id)?.set_tag(ONLINE_KEY, tag)?;
        }
        Ok(())
    }

    /// A run's online status; a run without the tag is `offline`.
    pub fn online_tag(&self, run_id: &str) -> Result<String> {
        Ok(self
            .records
            .run(run_id)?
            .tags()?
            .get(ONLINE_KEY)
            .cloned()
            .unwrap_or_else(|| OFFLINE_TAG.to_string()))
    }

    /// Qlib's `reset_online_tag`: every run of the experiment offline, then `run_ids` online.
    /// Runs already in their target state are not written again.
    pub fn reset_online_tag(&self, run_ids: &[String]) -> Result<()> {
        for info in self.runs()? {
            if run_ids.contains(&info.run_id) {
                continue;
            }
            if self.online_tag(&info.run_id)? != OFFLINE_TAG {
                self.set_online_tag(OFFLINE_TAG, std::slice::from_ref(&info.run_id))?;
            }
        }
        for id in run_ids {
            if self.online_tag(id)? != ONLINE_TAG {
                self.set_online_tag(ONLINE_TAG, std::slice::from_ref(id))?;
            }
        }
        Ok(())
    }

    /// Qlib's `online_models`: the runs tagged online, newest first.
    pub fn online_models(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for info in self.runs()? {
            if self.online_tag(&info.run_id)? == ONLINE_TAG {
                out.push(info.run_id);
            }
        }
        Ok(out)
    }

    /// Qlib's `update_online_pred`: extends the prediction of every online run to `to_date`
    /// (see [`update_pred`]); runs without a prediction are skipped.
    pub fn update_online_pred(
        &self,
        provider: &Provider,
        to_date: Option<NaiveDate>,
        cache: Option<&FeatureCache>,
    ) -> Result<Vec<(String, PredUpdateOutcome)>> {
        let mut out = Vec::new();
        for id in self.online_models()? {
            let run = self.records.run(&id)?;
            let outcome = if has_pred(&run)? {
                PredUpdateOutcome::Updated(update_pred(&run, provider, to_date, None, cache)?)
            } else {
                PredUpdateOutcome::NoPrediction
            };
            out.push((id, outcome));
        }
        Ok(out)
    }
}
