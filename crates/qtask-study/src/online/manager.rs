//! Qlib's `OnlineManager` (qlib/workflow/online/manager.py) with one `RollingStrategy`:
//! `first_train`, `routine`, `prepare_signals`, `simulate` and the delay trainers'
//! `delay_prepare`, with every piece of state in the runs store and the task pool.
//!
//! Each step is safe to run again after it was interrupted: a step writes down the online
//! models it starts from before changing anything, tasks that already have a run are not
//! trained again (their run is reused, whichever trainer made it), what a dead process of
//! this machine left half-done is cleaned up first ([`recover`]), and the signals only ever
//! gain days after the last one they hold.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use qtask_collect::{Collector, Key, RecorderCollector, RollingGroup, average_ensemble};
use qtask_core::{TimeAdjuster, task_hash};
use qtask_data::Provider;
use qtask_data::cache::FeatureCache;
use qtask_model::predict::PredUpdate;
use qtask_pool::{DEFAULT_STORE, TaskPool};
use qtask_record::names::{PRED_ARTIFACT, TASK_ARTIFACT};
use qtask_record::{RecordError, RecordStore, RunStatus};
use qtask_runner::train::{STATUS_BEGIN, STATUS_KEY};
use qtask_runner::{RunOptions, StopFlag, TrainOutcome, Trainer, TrainerKind};
use qtask_table::{PredTable, TableBuilder};
use serde_json::{Value, json};

use crate::error::{Result, StudyError};
use crate::exec::ExecSpec;
use crate::observe::{Observer, Quiet, StudyPhase};
use crate::online::recover::{Recovered, recover};
use crate::online::state::{
    ManagerState, ManagerStatus, Pending, STATE_VERSION, StateStore, Step, TrainedEntry,
    manager_experiment,
};
use crate::online::strategy::{RollingStrategy, TestSegment};
use crate::online::tool::{OnlineTool, PredUpdateOutcome};

/// Where an online manager keeps its models and how it trains them.
#[derive(Debug, Clone)]
pub struct OnlineConfig {
    /// The experiment of the model runs (Qlib's strategy `name_id`).
    pub experiment: String,
    /// Qlib data folder (`None`: the one given when the manager was created).
    pub provider_uri: Option<PathBuf>,
    /// Which of Qlib's four trainers.
    pub trainer: TrainerKind,
    /// Local workers draining the pool (RM trainers).
    pub workers: usize,
    /// Task store URL of the RM trainers.
    pub store: String,
    /// Task pool of the RM trainers (`None`: the experiment's name).
    pub pool: Option<String>,
    /// Runs store (`None`: `QTASK_TRACKING_URI`, `MLFLOW_TRACKING_URI`, then `file:mlruns`).
    pub tracking_uri: Option<String>,
    /// What does the work of each task.
    pub exec: ExecSpec,
}

impl OnlineConfig {
    /// The manager of `experiment` with qtask's defaults: TrainerR, one worker, the default
    /// store, `task_train`.
    pub fn new(experiment: impl Into<String>) -> Self {
        OnlineConfig {
            experiment: experiment.into(),
            provider_uri: None,
            trainer: TrainerKind::R,
            workers: 1,
            store: DEFAULT_STORE.to_string(),
            pool: None,
            tracking_uri: None,
            exec: ExecSpec::default(),
        }
    }
}

/// A model a step trained (or found trained by an earlier, interrupted attempt).
#[derive(Debug, Clone, PartialEq)]
pub struct TrainedModel {
    /// Its run.
    pub run_id: String,
    /// Its test segment.
    pub test: TestSegment,
    /// Whether the run existed already (not trained by this call).
    pub reused: bool,
}

/// What `prepare_signals` changed.
#[derive(Debug, Clone, PartialEq)]
pub struct SignalUpdate {
    /// Days appended.
    pub new_days: usize,
    /// Rows appended.
    pub new_rows: usize,
    /// Rows of the signals now.
    pub rows: usize,
    /// The last day of the signals now.
    pub last_day: Option<NaiveDate>,
}

/// What one step (first_train or a routine) did.
#[derive(Debug, Clone, PartialEq)]
pub struct StepReport {
    /// The step's time.
    pub time: NaiveDate,
    /// Which step.
    pub step: Step,
    /// The tasks it trained, in order.
    pub trained: Vec<TrainedModel>,
    /// The online models before it.
    pub online_before: Vec<String>,
    /// The online models after it.
    pub online: Vec<String>,
    /// Their test segments, in the same order.
    pub online_tests: Vec<TestSegment>,
    /// Online predictions updated (online status only).
    pub pred_updates: Vec<(String, PredUpdateOutcome)>,
    /// The signals prepared (`None`: postponed to the end of a simulation, or first_train).
    pub signals: Option<SignalUpdate>,
    /// What a dead process had left, cleaned up first.
    pub recovered: Recovered,
}

impl StepReport {
    /// The report as JSON (dates as `YYYY-MM-DD`, open ends as null), for `--json` output.
    pub fn to_json(&self) -> Value {
        use crate::online::report::segment_json;
        let updates: Vec<Value> = self
            .pred_updates
            .iter()
            .map(|(run, u)| {
                let what = match u {
                    PredUpdateOutcome::NoPrediction => json!({"status": "no prediction"}),
                    PredUpdateOutcome::Updated(PredUpdate::UpToDate { last }) => {
                        json!({"status": "up to date", "last": last.to_string()})
                    }
                    PredUpdateOutcome::Updated(PredUpdate::Extended {
                        from,
                        to,
                        new_rows,
                        rows,
                    }) => json!({
                        "status": "extended", "from": from.to_string(), "to": to.to_string(),
                        "new_rows": new_rows, "rows": rows,
                    }),
                };
                json!({"run_id": run, "update": what})
            })
            .collect();
        json!({
            "time": self.time.to_string(),
            "step": match self.step { Step::FirstTrain => "first_train", Step::Routine => "routine" },
            "trained": self.trained.iter().map(|m| json!({
                "run_id": m.run_id, "test": segment_json(m.test), "reused": m.reused,
            })).collect::<Vec<_>>(),
            "online_before": self.online_before,
            "online": self.online.iter().zip(&self.online_tests).map(|(id, t)| json!({
                "run_id": id, "test": segment_json(*t),
            })).collect::<Vec<_>>(),
            "switched": self.switched(),
            "pred_updates": updates,
            "signals": self.signals.as_ref().map(|s| json!({
                "new_days": s.new_days, "new_rows": s.new_rows, "rows": s.rows,
                "last_day": s.last_day.map(|d| d.to_string()),
            })),
            "recovered": {
                "deleted_runs": self.recovered.deleted_runs,
                "returned_tasks": self.recovered.returned_tasks,
                "committed_tasks": self.recovered.committed_tasks,
            },
        })
    }

    /// Whether the online models changed.
    pub fn switched(&self) -> bool {
        let a: BTreeSet<&String> = self.online_before.iter().collect();
        let b: BTreeSet<&String> = self.online.iter().collect();
        a != b
    }
}

/// An online manager with its state read from the runs store.
pub struct OnlineManager {
    config: OnlineConfig,
    records: RecordStore,
    states: StateStore,
    state: ManagerState,
    provider: PathBuf,
    tool: OnlineTool,
    trainer: Trainer,
    pool: Option<Arc<dyn TaskPool>>,
    cache: Option<FeatureCache>,
    /// Task hashes of runs already read (a run's task never changes).
    task_of_run: HashMap<String, Option<(String, Value)>>,
}

fn trading_day_error(what: &str, day: NaiveDate, ta: &TimeAdjuster, provider: &Path) -> StudyError {
    StudyError::Invalid(format!(
        "{what} {day} is after the data's last day {} ({})",
        ta.data_last_day(),
        provider.join("calendars/day.txt").display()
    ))
}

impl OnlineManager {
    fn build(
        config: OnlineConfig,
        records: RecordStore,
        states: StateStore,
        state: ManagerState,
        provider: PathBuf,
    ) -> Result<OnlineManager> {
        let exec = ExecSpec {
            provider_uri: Some(provider.clone()),
            ..config.exec.clone()
        };
        let pool: Option<Arc<dyn TaskPool>> = if config.trainer.uses_pool() {
            let name = config
                .pool
                .clone()
                .unwrap_or_else(|| config.experiment.clone());
            Some(Arc::from(qtask_pool::open(&config.store, &name)?))
        } else {
            None
        };
        let trainer = Trainer {
            kind: config.trainer,
            store: records.clone(),
            experiment: config.experiment.clone(),
            exec: exec.executor()?,
            pool: pool.clone(),
            run: RunOptions {
                concurrency: config.workers.max(1),
                ..RunOptions::default()
            },
            poll: Duration::from_millis(500),
        };
        Ok(OnlineManager {
            tool: OnlineTool::new(&records, &config.experiment),
            cache: FeatureCache::default_dir().map(FeatureCache::new),
            config,
            records,
            states,
            state,
            provider,
            trainer,
            pool,
            task_of_run: HashMap::new(),
        })
    }

    /// Creates the manager of `config.experiment` (Qlib's `OnlineManager(RollingStrategy(...),
    /// trainer, begin_time)`; `None`: the data's last day) and runs `first_train`. Calling it
    /// again with the same strategy and begin time finishes an interrupted first_train (nothing
    /// trained twice); a manager that already ran routines, or was created with another
    /// strategy, is an error.
    pub fn init(
        config: OnlineConfig,
        strategy: RollingStrategy,
        begin_time: Option<NaiveDate>,
        provider_uri: PathBuf,
        stop: &StopFlag,
        observer: &dyn Observer,
    ) -> Result<(OnlineManager, StepReport)> {
        let mut m = OnlineManager::create(
            config,
            strategy,
            begin_time,
            provider_uri,
            ManagerStatus::Online,
        )?;
        if m.state.history.iter().any(|h| h.step == Step::Routine) {
            return Err(StudyError::Invalid(format!(
                "experiment `{}` already has an online manager that ran routines (last {}); run \
                 `qtask online routine` instead",
                m.config.experiment,
                m.state
                    .history
                    .last()
                    .map(|h| h.time.to_string())
                    .unwrap_or_default()
            )));
        }
        let report = m.first_train(stop, observer)?;
        Ok((m, report))
    }

    fn create(
        config: OnlineConfig,
        strategy: RollingStrategy,
        begin_time: Option<NaiveDate>,
        provider_uri: PathBuf,
        status: ManagerStatus,
    ) -> Result<OnlineManager> {
        let records = RecordStore::from_env(config.tracking_uri.as_deref(), true)?;
        let ta = TimeAdjuster::from_provider(&provider_uri)?;
        let begin = begin_time.unwrap_or(ta.data_last_day());
        if begin > ta.data_last_day() {
            return Err(trading_day_error(
                "the begin time",
                begin,
                &ta,
                &provider_uri,
            ));
        }
        let states = StateStore::open_or_create(&records, &config.experiment)?;
        let state = match states.load()? {
            Some(old) => {
                if old.strategy != strategy || old.begin_time != begin {
                    return Err(StudyError::Invalid(format!(
                        "experiment `{}` already has an online manager with another template, \
                         rolling or begin time ({}); choose another --experiment, or delete \
                         experiments `{}` and `{}` first",
                        config.experiment,
                        old.begin_time,
                        config.experiment,
                        manager_experiment(&config.experiment)
                    )));
                }
                ManagerState { status, ..old }
            }
            None => ManagerState {
                version: STATE_VERSION,
                experiment: config.experiment.clone(),
                strategy,
                begin_time: begin,
                provider_uri: provider_uri.clone(),
                status,
                history: Vec::new(),
                trained: Vec::new(),
                pending: None,
            },
        };
        states.save(&state)?;
        OnlineManager::build(config, records, states, state, provider_uri)
    }

    /// Opens the manager `init` left in the runs store.
    pub fn open(config: OnlineConfig) -> Result<OnlineManager> {
        let records =
            RecordStore::from_env(config.tracking_uri.as_deref(), false).map_err(|e| {
                StudyError::Invalid(format!(
                    "experiment `{}` has no online manager: {e} (run `qtask online init` first)",
                    config.experiment
                ))
            })?;
        let missing = || {
            StudyError::Invalid(format!(
                "experiment `{}` has no online manager in {} (run `qtask online init` first)",
                config.experiment,
                records.uri()
            ))
        };
        let states = StateStore::find(&records, &config.experiment)?.ok_or_else(missing)?;
        let state = states.load()?.ok_or_else(missing)?;
        let provider = config
            .provider_uri
            .clone()
            .unwrap_or_else(|| state.provider_uri.clone());
        OnlineManager::build(config, records, states, state, provider)
    }

    /// The trading calendar of the data folder, read anew (a routine may run on a later day
    /// than the last one, after the data grew).
    pub fn calendar(&self) -> Result<TimeAdjuster> {
        Ok(TimeAdjuster::from_provider(&self.provider)?)
    }

    /// The saved state.
    pub fn state(&self) -> &ManagerState {
        &self.state
    }

    /// The runs store.
    pub fn records(&self) -> &RecordStore {
        &self.records
    }

    /// The Qlib data folder read.
    pub fn provider_uri(&self) -> &Path {
        &self.provider
    }

    /// The online tool of the experiment.
    pub fn tool(&self) -> &OnlineTool {
        &self.tool
    }

    /// The strategy.
    pub fn strategy(&self) -> &RollingStrategy {
        &self.state.strategy
    }

    /// Qlib's `_postpone_action`: a delay trainer inside `simulate` fits, and signals are
    /// prepared, at the end of the simulation.
    fn postpone(&self) -> bool {
        self.state.status == ManagerStatus::Simulating && self.config.trainer.is_delay()
    }

    /// A run's task and its hash (`None`: the run has no task).
    fn task_of(&mut self, run_id: &str) -> Result<Option<(String, Value)>> {
        if let Some(t) = self.task_of_run.get(run_id) {
            return Ok(t.clone());
        }
        let run = self.records.run(run_id)?;
        let task = match run.load_json::<Value>(TASK_ARTIFACT) {
            Ok(t) => Some((task_hash(&t), t)),
            Err(RecordError::NoArtifact { .. }) => None,
            Err(e) => return Err(e.into()),
        };
        self.task_of_run.insert(run_id.to_string(), task.clone());
        Ok(task)
    }

    /// The task of a model run, which must have one.
    fn model_task(&mut self, run_id: &str) -> Result<Value> {
        self.task_of(run_id)?.map(|t| t.1).ok_or_else(|| {
            StudyError::Invalid(format!(
                "online run {run_id} has no {TASK_ARTIFACT}: it was not trained from a task"
            ))
        })
    }

    /// Runs of the experiment that hold a task already trained (finished) or recorded by a
    /// delay trainer, by task hash; a finished run wins, then the newest.
    fn runs_by_task(&mut self) -> Result<HashMap<String, String>> {
        let mut finished: HashMap<String, String> = HashMap::new();
        let mut recorded: HashMap<String, String> = HashMap::new();
        for info in self.tool.runs()? {
            let slot = match info.status {
                RunStatus::Finished => &mut finished,
                RunStatus::Running => {
                    let tags = self.records.run(&info.run_id)?.tags()?;
                    if !tags.contains_key(STATUS_KEY) {
                        continue;
                    }
                    &mut recorded
                }
                _ => continue,
            };
            let key = match self.task_of_run.get(&info.run_id) {
                Some(t) => t.as_ref().map(|t| t.0.clone()),
                None => {
                    let run = self.records.run(&info.run_id)?;
                    let task = match run.load_json::<Value>(TASK_ARTIFACT) {
                        Ok(t) => Some((task_hash(&t), t)),
                        Err(RecordError::NoArtifact { .. }) => None,
                        Err(e) => return Err(e.into()),
                    };
                    let key = task.as_ref().map(|t| t.0.clone());
                    self.task_of_run.insert(info.run_id.clone(), task);
                    key
                }
            };
            if let Some(k) = key {
                slot.entry(k).or_insert(info.run_id.clone());
            }
        }
        for (k, v) in recorded {
            finished.entry(k).or_insert(v);
        }
        Ok(finished)
    }

    /// Trains the tasks that have no run yet, through the trainer (and its pool); returns
    /// every task's run in task order.
    fn train(
        &mut self,
        tasks: &[Value],
        stop: &StopFlag,
        observer: &dyn Observer,
    ) -> Result<Vec<TrainedModel>> {
        let existing = self.runs_by_task()?;
        let mut slots: Vec<Option<(String, bool)>> = tasks
            .iter()
            .map(|t| existing.get(&task_hash(t)).map(|id| (id.clone(), true)))
            .collect();
        let todo: Vec<usize> = (0..tasks.len()).filter(|&i| slots[i].is_none()).collect();
        if !todo.is_empty() {
            let subset: Vec<Value> = todo.iter().map(|&i| tasks[i].clone()).collect();
            let on_event = |e: &qtask_runner::RunEvent| observer.event(e);
            observer.begin(StudyPhase::Train, subset.len() as u64);
            let outcome = self.trainer.train(&subset, stop, &on_event);
            observer.end();
            let outcome = outcome?;
            check_outcome(&outcome, subset.len())?;
            for (&i, run) in todo.iter().zip(&outcome.runs) {
                slots[i] = run.clone().map(|r| (r, false));
            }
        }
        let mut out = Vec::with_capacity(tasks.len());
        for (task, slot) in tasks.iter().zip(slots) {
            let (run_id, reused) = slot.ok_or_else(|| {
                StudyError::Invalid("training was interrupted before every task ran".into())
            })?;
            if reused {
                // Its process may have died after fitting, before the trainer tagged it.
                let run = self.records.run(&run_id)?;
                if !run.tags()?.contains_key(STATUS_KEY) {
                    run.set_tag(STATUS_KEY, STATUS_BEGIN)?;
                }
            }
            out.push(TrainedModel {
                test: self.state.strategy.test_segment(task)?,
                run_id,
                reused,
            });
        }
        Ok(out)
    }

    fn end_train(
        &self,
        run_ids: &[String],
        stop: &StopFlag,
        observer: &dyn Observer,
    ) -> Result<()> {
        if run_ids.is_empty() {
            return Ok(());
        }
        let on_event = |e: &qtask_runner::RunEvent| observer.event(e);
        let kind = self.config.trainer;
        if kind.is_delay() {
            observer.begin(StudyPhase::EndTrain, run_ids.len() as u64);
        }
        let outcome = self.trainer.end_train(run_ids, stop, &on_event);
        if kind.is_delay() {
            observer.end();
        }
        check_outcome(&outcome?, run_ids.len())
    }

    fn recover(&self) -> Result<Recovered> {
        recover(&self.records, &self.config.experiment, self.pool.as_deref())
    }

    /// The online models a routine starts from: those an interrupted routine started from,
    /// else the runs tagged online now.
    fn routine_base(&self) -> Result<Vec<String>> {
        match &self.state.pending {
            Some(p) if p.step == Step::Routine => Ok(p.base_online.clone()),
            _ => self.tool.online_models(),
        }
    }

    /// Writes down the step about to run and the online models it starts from.
    fn begin_step(&mut self, time: NaiveDate, step: Step, base: &[String]) -> Result<()> {
        self.state.pending = Some(Pending {
            time,
            step,
            base_online: base.to_vec(),
        });
        self.states.save(&self.state)
    }

    fn record_trained(&mut self, time: NaiveDate, step: Step, models: &[TrainedModel]) {
        for m in models {
            self.state.add_trained(TrainedEntry {
                time,
                step,
                run_id: m.run_id.clone(),
                test: m.test,
            });
        }
    }

    /// The test segments of model runs (from the tasks trained, else their `task.json`).
    pub fn tests_of(&self, run_ids: &[String]) -> Result<Vec<TestSegment>> {
        let mut out = Vec::with_capacity(run_ids.len());
        for id in run_ids {
            if let Some(t) = self.state.trained.iter().find(|t| &t.run_id == id) {
                out.push(t.test);
                continue;
            }
            let task: Value = self.records.run(id)?.load_json(TASK_ARTIFACT)?;
            out.push(self.state.strategy.test_segment(&task)?);
        }
        Ok(out)
    }

    /// Qlib's `first_train`: the strategy's first tasks trained and set online.
    pub fn first_train(&mut self, stop: &StopFlag, observer: &dyn Observer) -> Result<StepReport> {
        let recovered = self.recover()?;
        let time = self.state.begin_time;
        let before = self.tool.online_models()?;
        self.begin_step(time, Step::FirstTrain, &before)?;
        let tasks = self.state.strategy.first_tasks(&self.calendar()?)?;
        let models = self.train(&tasks, stop, observer)?;
        self.record_trained(time, Step::FirstTrain, &models);
        let ids: Vec<String> = models.iter().map(|m| m.run_id.clone()).collect();
        let online = self.prepare_online_models(&ids, before.clone())?;
        self.state
            .set_history(time, Step::FirstTrain, online.clone());
        if !self.postpone() {
            self.end_train(&ids, stop, observer)?;
        }
        self.state.pending = None;
        self.states.save(&self.state)?;
        let online_tests = self.tests_of(&online)?;
        Ok(StepReport {
            time,
            step: Step::FirstTrain,
            trained: models,
            online_before: before,
            online,
            online_tests,
            pred_updates: Vec::new(),
            signals: None,
            recovered,
        })
    }

    /// Qlib's `prepare_online_models`: the models trained go online (every other run
    /// offline); without any, the online models stay.
    fn prepare_online_models(
        &self,
        trained: &[String],
        current: Vec<String>,
    ) -> Result<Vec<String>> {
        if trained.is_empty() {
            return Ok(current);
        }
        self.tool.reset_online_tag(trained)?;
        Ok(trained.to_vec())
    }

    /// Qlib's `routine(cur_time)` (`None`: the data's last day): trains the windows that came
    /// due by `cur_time` after the latest online ones, puts the new models online, extends the
    /// online predictions to `cur_time` (online status) and prepares the signals.
    pub fn routine(
        &mut self,
        cur_time: Option<NaiveDate>,
        stop: &StopFlag,
        observer: &dyn Observer,
    ) -> Result<StepReport> {
        let ta = self.calendar()?;
        let time = cur_time.unwrap_or(ta.data_last_day());
        if time < self.state.begin_time {
            return Err(StudyError::Invalid(format!(
                "the routine date {time} is before the manager's begin time {}",
                self.state.begin_time
            )));
        }
        if time > ta.data_last_day() {
            return Err(trading_day_error(
                "the routine date",
                time,
                &ta,
                &self.provider,
            ));
        }
        if let Some(p) = &self.state.pending
            && p.step == Step::FirstTrain
        {
            return Err(StudyError::Invalid(format!(
                "the first_train of experiment `{}` (begin time {}) did not finish: run `qtask                  online init` again to finish it",
                self.config.experiment, p.time
            )));
        }
        let recovered = self.recover()?;
        let before = self.routine_base()?;
        if before.is_empty() {
            return Err(StudyError::Invalid(format!(
                "experiment `{}` has no online model: run `qtask online init` (or put models \
                 online) first",
                self.config.experiment
            )));
        }
        self.begin_step(time, Step::Routine, &before)?;
        let mut online_tasks = Vec::with_capacity(before.len());
        for id in &before {
            online_tasks.push(self.model_task(id)?);
        }
        let tasks = self
            .state
            .strategy
            .prepare_tasks(&ta, &online_tasks, time)?;
        let models = self.train(&tasks, stop, observer)?;
        self.record_trained(time, Step::Routine, &models);
        let ids: Vec<String> = models.iter().map(|m| m.run_id.clone()).collect();
        let online = self.prepare_online_models(&ids, before.clone())?;
        self.state.set_history(time, Step::Routine, online.clone());
        // The online models may have changed above: updating their predictions comes last.
        let pred_updates = if self.state.status == ManagerStatus::Online {
            let provider = Provider::open(&self.provider)?;
            self.tool
                .update_online_pred(&provider, Some(time), self.cache.as_ref())?
        } else {
            Vec::new()
        };
        let signals = if self.postpone() {
            None
        } else {
            self.end_train(&ids, stop, observer)?;
            Some(self.prepare_signals()?)
        };
        self.state.pending = None;
        self.states.save(&self.state)?;
        let online_tests = self.tests_of(&online)?;
        Ok(StepReport {
            time,
            step: Step::Routine,
            trained: models,
            online_before: before,
            online,
            online_tests,
            pred_updates,
            signals,
            recovered,
        })
    }

    /// Qlib's `prepare_signals` with its default `AverageEnsemble`: every finished run's
    /// prediction collected with `RollingGroup` over `(model class, test segment)`, the groups
    /// z-scored per day and averaged; days after the last one already held are appended,
    /// earlier ones kept.
    pub fn prepare_signals(&self) -> Result<SignalUpdate> {
        let test_key = self.state.strategy.rolling.test_key.clone();
        let collector = RecorderCollector::new(&self.records, self.config.experiment.clone())
            .artifacts(vec![("pred".into(), PRED_ARTIFACT.into())])
            .filter_fn(|run| Ok(run.task()?.is_some()))
            .key_fn(move |run| {
                let task = run.task()?.cloned().unwrap_or(Value::Null);
                let class = task.pointer("/model/class").cloned().unwrap_or(Value::Null);
                let seg = task
                    .pointer(&format!("/dataset/kwargs/segments/{test_key}"))
                    .cloned()
                    .unwrap_or(Value::Null);
                Ok(Key::tuple([Key::from_json(&class), Key::from_json(&seg)]))
            })
            .process(RollingGroup::new());
        let pieces: Vec<(String, PredTable)> = collector
            .run()?
            .flatten()
            .into_iter()
            .map(|(path, t)| {
                let label = path.iter().map(|k| k.label()).collect::<Vec<_>>().join("/");
                (label, t)
            })
            .collect();
        if pieces.is_empty() {
            return Err(StudyError::Invalid(format!(
                "no finished run of experiment `{}` saved a {PRED_ARTIFACT} to make signals \
                 from (does the template record a SignalRecord?)",
                self.config.experiment
            )));
        }
        let refs: Vec<(&str, &PredTable)> = pieces.iter().map(|(k, t)| (k.as_str(), t)).collect();
        let mut fresh = average_ensemble(&refs)?;
        fresh.sort();
        let old = self.states.signals()?;
        let (merged, new_rows) = append_after(old.as_ref(), &fresh)?;
        let old_days = old.as_ref().map_or(0, day_count);
        let new_days = day_count(&merged) - old_days;
        if new_rows > 0 || old.is_none() {
            self.states.save_signals(&merged)?;
        }
        Ok(SignalUpdate {
            new_days,
            new_rows,
            rows: merged.len(),
            last_day: merged.datetime_range().map(|(_, last)| last.date()),
        })
    }

    /// Qlib's `get_signals`: the signals prepared so far.
    pub fn signals(&self) -> Result<Option<PredTable>> {
        self.states.signals()
    }

    /// Qlib's `simulate(end_time)` from the manager's begin time: `first_train`, a routine for
    /// every trading day up to `end` (no prediction updates while simulating), then, for a
    /// delay trainer, `delay_prepare`. Run again after an interruption, it replays the same
    /// steps and trains nothing twice.
    pub fn simulate(
        config: OnlineConfig,
        strategy: RollingStrategy,
        begin: NaiveDate,
        end: NaiveDate,
        provider_uri: PathBuf,
        stop: &StopFlag,
        observer: &dyn Observer,
    ) -> Result<OnlineManager> {
        if end < begin {
            return Err(StudyError::Invalid(format!(
                "the simulation ends on {end}, before it begins on {begin}"
            )));
        }
        let ta = TimeAdjuster::from_provider(&provider_uri)?;
        if end > ta.data_last_day() {
            return Err(trading_day_error(
                "the simulation end",
                end,
                &ta,
                &provider_uri,
            ));
        }
        let mut m = OnlineManager::create(
            config,
            strategy,
            Some(begin),
            provider_uri,
            ManagerStatus::Simulating,
        )?;
        m.first_train(stop, observer)?;
        let days: Vec<NaiveDate> = ta
            .calendar()
            .days()
            .iter()
            .copied()
            .filter(|d| *d >= begin && *d <= end && *d <= ta.data_last_day())
            .collect();
        observer.begin(StudyPhase::Routines, days.len() as u64);
        for d in days {
            if stop.is_stopped() {
                observer.end();
                return Err(StudyError::Invalid(format!(
                    "the simulation was interrupted before the routine of {d}; run it again \
                     to resume"
                )));
            }
            let r = m.routine(Some(d), stop, &Quiet);
            observer.step();
            if let Err(e) = r {
                observer.end();
                return Err(e);
            }
        }
        observer.end();
        if m.postpone() {
            m.delay_prepare(stop, observer)?;
        }
        m.state.status = ManagerStatus::Online;
        m.states.save(&m.state)?;
        Ok(m)
    }

    /// Qlib's `delay_prepare`: walking the history, each new set of online models is fitted
    /// (`end_train`), put online and the signals prepared with the models fitted so far.
    pub fn delay_prepare(&mut self, stop: &StopFlag, observer: &dyn Observer) -> Result<()> {
        let mut last: BTreeSet<String> = BTreeSet::new();
        for entry in self.state.history.clone() {
            let set: BTreeSet<String> = entry.online.iter().cloned().collect();
            if set != last {
                self.end_train(&entry.online, stop, observer)?;
                self.tool.reset_online_tag(&entry.online)?;
                self.prepare_signals()?;
            }
            last = set;
        }
        Ok(())
    }
}

fn check_outcome(outcome: &TrainOutcome, total: usize) -> Result<()> {
    if let Some((i, e)) = outcome.failed.first() {
        return Err(StudyError::TasksFailed {
            failed: outcome.failed.len(),
            total,
            first: *i,
            error: e.clone(),
        });
    }
    Ok(())
}

fn day_count(t: &PredTable) -> usize {
    let mut days: Vec<i64> = t.datetimes_ns().to_vec();
    days.sort_unstable();
    days.dedup();
    days.len()
}

/// `old` followed by the rows of `fresh` dated after `old`'s last day (Qlib appends
/// `signals.loc[old_max:]`, which repeats the last day it held; its rows are kept once, the
/// first time). Returns the table and the rows appended.
fn append_after(old: Option<&PredTable>, fresh: &PredTable) -> Result<(PredTable, usize)> {
    let Some(old) = old.filter(|o| !o.is_empty()) else {
        return Ok((fresh.clone(), fresh.len()));
    };
    let old_max = *old.datetimes_ns().iter().max().expect("not empty");
    let names = old.column_names().to_vec();
    let mut b = TableBuilder::new(names.clone());
    b.reserve(old.len() + fresh.len());
    for r in 0..old.len() {
        let vals: Vec<f64> = (0..names.len()).map(|c| old.column_at(c)[r]).collect();
        b.push_ns(old.datetimes_ns()[r], old.instrument(r), &vals)?;
    }
    let mut added = 0;
    for r in 0..fresh.len() {
        if fresh.datetimes_ns()[r] > old_max {
            let vals: Vec<f64> = (0..names.len()).map(|c| fresh.column_at(c)[r]).collect();
            b.push_ns(fresh.datetimes_ns()[r], fresh.instrument(r), &vals)?;
            added += 1;
        }
    }
    let mut t = b.finish();
    t.sort();
    Ok((t, added))
}
