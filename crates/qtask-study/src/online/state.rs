//! What an online manager remembers between routines, kept in the runs store (nothing only in
//! memory): one run of the experiment `<experiment>.online` holds `online_state.json` (the
//! strategy, the history of online models, the tasks trained, an unfinished routine) and
//! `signals.parquet`. Each artifact is replaced atomically, so a routine killed at any point
//! leaves the state of the last step that completed.

use std::path::PathBuf;

use chrono::NaiveDate;
use qtask_record::{RecordError, RecordStore, Run, RunStatus};
use qtask_table::PredTable;
use serde::{Deserialize, Serialize};

use crate::error::{Result, StudyError};
use crate::online::strategy::{RollingStrategy, TestSegment};

/// The artifact holding the manager's state.
pub const STATE_ARTIFACT: &str = "online_state.json";
/// The artifact holding the signals prepared so far.
pub const SIGNALS_ARTIFACT: &str = "signals.parquet";
/// The name of the manager's run.
pub const MANAGER_RUN: &str = "online_manager";
/// Version of the state layout.
pub const STATE_VERSION: u32 = 1;

/// The experiment holding the manager run of `experiment`.
pub fn manager_experiment(experiment: &str) -> String {
    format!("{experiment}.online")
}

/// Qlib's `OnlineManager.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ManagerStatus {
    /// Routines update online predictions (`STATUS_ONLINE`).
    Online,
    /// Inside `simulate` (`STATUS_SIMULATING`): no prediction updates; a delay trainer's
    /// fitting and the signals wait for the end of the simulation.
    Simulating,
}

/// What produced a history entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// `first_train`.
    FirstTrain,
    /// A routine.
    Routine,
}

/// The online models after a step (Qlib's `history[cur_time]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// The step's time (`begin_time` for first_train, the routine's day).
    pub time: NaiveDate,
    /// Which step.
    pub step: Step,
    /// The online runs.
    pub online: Vec<String>,
}

/// A task the trainer was given (or whose run an earlier, interrupted attempt left).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainedEntry {
    /// The step's time.
    pub time: NaiveDate,
    /// Which step.
    pub step: Step,
    /// The run.
    pub run_id: String,
    /// The task's test segment.
    pub test: TestSegment,
}

/// A step that started and has not finished: a later call resumes from its base.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    /// The step's time.
    pub time: NaiveDate,
    /// Which step.
    pub step: Step,
    /// The online models it started from.
    pub base_online: Vec<String>,
}

/// The manager's state (`online_state.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManagerState {
    /// Layout version.
    pub version: u32,
    /// The experiment of the model runs (Qlib's strategy `name_id`).
    pub experiment: String,
    /// The strategy.
    pub strategy: RollingStrategy,
    /// Qlib's `begin_time`: no routine before it.
    pub begin_time: NaiveDate,
    /// The Qlib data folder given at init (a routine may read another one).
    pub provider_uri: PathBuf,
    /// Online or simulating.
    pub status: ManagerStatus,
    /// Online models after each step, in order; a step run again replaces its entry.
    pub history: Vec<HistoryEntry>,
    /// Every task trained, in training order.
    pub trained: Vec<TrainedEntry>,
    /// The step in progress, if the last one did not finish.
    pub pending: Option<Pending>,
}

impl ManagerState {
    /// Records the online models after a step (replacing an entry of the same time and step,
    /// as Qlib's history dict does).
    pub fn set_history(&mut self, time: NaiveDate, step: Step, online: Vec<String>) {
        match self
            .history
            .iter_mut()
            .find(|h| h.time == time && h.step == step)
        {
            Some(h) => h.online = online,
            None => self.history.push(HistoryEntry { time, step, online }),
        }
    }

    /// Records a trained run once (a resumed step finds runs it already recorded).
    pub fn add_trained(&mut self, entry: TrainedEntry) {
        if !self.trained.iter().any(|t| t.run_id == entry.run_id) {
            self.trained.push(entry);
        }
    }

    /// The online models after the last routine (or first_train).
    pub fn last_online(&self) -> Option<&HistoryEntry> {
        self.history.last()
    }
}

/// The manager's run: where the state and the signals live.
#[derive(Debug, Clone)]
pub struct StateStore {
    run: Run,
}

impl StateStore {
    /// The manager run of `experiment`, `None` when the experiment has no manager.
    pub fn find(records: &RecordStore, experiment: &str) -> Result<Option<StateStore>> {
        let Some(exp) = records.find_experiment(&manager_experiment(experiment))? else {
            return Ok(None);
        };
        for info in exp.runs(None)? {
            if info.run_name == MANAGER_RUN {
                return Ok(Some(StateStore {
                    run: records.run(&info.run_id)?,
                }));
            }
        }
        Ok(None)
    }

    /// The manager run of `experiment`, created when missing.
    pub fn open_or_create(records: &RecordStore, experiment: &str) -> Result<StateStore> {
        if let Some(s) = StateStore::find(records, experiment)? {
            return Ok(s);
        }
        let exp = records.experiment(&manager_experiment(experiment))?;
        let mut run = exp.start_run(Some(MANAGER_RUN))?;
        run.set_tag("qtask.online.experiment", experiment)?;
        // Ended at once: it is a record, not work in progress.
        run.end(RunStatus::Finished)?;
        Ok(StateStore { run })
    }

    /// The run's id.
    pub fn run_id(&self) -> &str {
        self.run.id()
    }

    /// The saved state, `None` before the first save.
    pub fn load(&self) -> Result<Option<ManagerState>> {
        match self.run.load_json::<ManagerState>(STATE_ARTIFACT) {
            Ok(s) if s.version == STATE_VERSION => Ok(Some(s)),
            Ok(s) => Err(StudyError::Invalid(format!(
                "{STATE_ARTIFACT} of run {} has layout version {}, this qtask reads {}",
                self.run.id(),
                s.version,
                STATE_VERSION
            ))),
            Err(RecordError::NoArtifact { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Saves the state (replacing the artifact atomically).
    pub fn save(&self, state: &ManagerState) -> Result<()> {
        Ok(self.run.save_json(STATE_ARTIFACT, state)?)
    }

    /// The signals prepared so far, `None` before the first.
    pub fn signals(&self) -> Result<Option<PredTable>> {
        match self.run.load_artifact_bytes(SIGNALS_ARTIFACT) {
            Ok(bytes) => Ok(Some(PredTable::from_parquet_bytes(&bytes)?)),
            Err(RecordError::NoArtifact { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Replaces the signals (atomically).
    pub fn save_signals(&self, signals: &PredTable) -> Result<()> {
        Ok(self
            .run
            .save_artifact_bytes(SIGNALS_ARTIFACT, &signals.to_parquet_bytes()?)?)
    }
}
