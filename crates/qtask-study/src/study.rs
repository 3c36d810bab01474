//! The rolling study, Qlib's main workflow: generate the template's tasks, train them with a
//! trainer (through the task pool for the RM trainers), collect the windows with
//! `RollingGroup`, ensemble them once, and write the prediction, a summary and the report.

use std::path::{Path, PathBuf};
use std::time::Instant;

use qtask_core::{GenSettings, Template, TimeAdjuster, load_template, resolve_provider_uri};
use qtask_model::records::DailyIc;
use qtask_model::signal::IcSummary;
use qtask_model::workflow::SECONDS_FIT;
use qtask_pool::DEFAULT_STORE;
use qtask_record::RecordStore;
use qtask_report::ReportData;
use qtask_runner::{StopFlag, TrainerKind};
use serde_json::{Value, json};

use crate::analysis::StudyAnalysis;
use crate::ensemble::{Ensembled, ensemble, json_num, window_json};
use crate::error::{Result, StudyError};
use crate::exec::ExecSpec;
use crate::observe::{Observer, StudyPhase};
use crate::report::{analysed_report_data, write_report};
use crate::train::{PoolTarget, TrainSetup, train_tasks};
use crate::windows::{Window, load_windows};

/// Everything a study needs to run.
#[derive(Debug, Clone)]
pub struct StudyConfig {
    /// The template: a task, a list of tasks, or a Qlib workflow config (YAML or JSON).
    pub template: PathBuf,
    /// Qlib data folder (`None`: the config's `qlib_init.provider_uri`, then
    /// `QTASK_PROVIDER_URI`, then Qlib's default folder).
    pub provider_uri: Option<PathBuf>,
    /// The generators applied to the template.
    pub generators: GenSettings,
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
    /// Experiment of the runs (`None`: the template file's stem).
    pub experiment: Option<String>,
    /// What does the work of each task (its `provider_uri` is the study's).
    pub exec: ExecSpec,
    /// Folder receiving `pred.parquet`, `summary.json` and `report.html`.
    pub out: PathBuf,
}

impl StudyConfig {
    /// A study of `template` with qtask's defaults: no generators, TrainerR, one worker, the
    /// default store, `task_train`, output to `rolling_out`.
    pub fn new(template: impl Into<PathBuf>) -> Self {
        StudyConfig {
            template: template.into(),
            provider_uri: None,
            generators: GenSettings::default(),
            trainer: TrainerKind::R,
            workers: 1,
            store: DEFAULT_STORE.to_string(),
            pool: None,
            tracking_uri: None,
            experiment: None,
            exec: ExecSpec::default(),
            out: PathBuf::from("rolling_out"),
        }
    }
}

/// Seconds spent in each phase of a study.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PhaseTimings {
    /// Generating the tasks.
    pub generate: f64,
    /// Training (the whole trainer, `end_train` included).
    pub train: f64,
    /// Of which inside the model library, summed over the windows.
    pub model_fit: f64,
    /// Reading the runs back, ensembling, writing the prediction.
    pub collect: f64,
    /// The signal analysis and the backtest of the ensemble.
    pub analysis: f64,
    /// Writing the report.
    pub report: f64,
    /// The whole study.
    pub total: f64,
}

/// Where a study wrote its outputs.
#[derive(Debug, Clone, PartialEq)]
pub struct StudyPaths {
    /// The ensembled prediction (`datetime`, `instrument`, `score`).
    pub pred: PathBuf,
    /// The summary (`summary.json`).
    pub summary: PathBuf,
    /// The HTML report.
    pub report: PathBuf,
    /// The backtest's folder (`report_normal.parquet`, `positions.parquet`, `risk.json`, ...),
    /// when the template configures a `PortAnaRecord`.
    pub backtest: Option<PathBuf>,
}

/// What a study produced.
#[derive(Debug, Clone)]
pub struct StudyResult {
    /// The experiment of the runs.
    pub experiment: String,
    /// The tasks generated and trained, in order.
    pub tasks: Vec<Value>,
    /// One window per task, in task order.
    pub windows: Vec<Window>,
    /// The ensembled prediction (the first model class's).
    pub ensemble: Ensembled,
    /// Its daily IC and Rank IC, when the windows had labels.
    pub daily_ic: Option<DailyIc>,
    /// Its signal diagnostics and, with a `PortAnaRecord`, its backtest.
    pub analysis: StudyAnalysis,
    /// Seconds per phase.
    pub timings: PhaseTimings,
    /// The files written.
    pub paths: StudyPaths,
    /// The summary as written to `summary.json`.
    pub summary: Value,
}

/// A study ready to run: its template read and its runs store opened, once.
pub struct Study {
    config: StudyConfig,
    template: Template,
    provider: PathBuf,
    experiment: String,
    records: RecordStore,
}

fn stem(p: &Path) -> String {
    p.file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| "rolling".into())
}

impl Study {
    /// Reads the template and opens the runs store.
    pub fn open(config: StudyConfig) -> Result<Study> {
        let template = load_template(&config.template)?;
        let provider = resolve_provider_uri(
            config.provider_uri.as_deref(),
            template.provider_uri.as_deref(),
        );
        let experiment = config
            .experiment
            .clone()
            .unwrap_or_else(|| stem(&config.template));
        let records = RecordStore::from_env(config.tracking_uri.as_deref(), true)?;
        Ok(Study {
            config,
            template,
            provider,
            experiment,
            records,
        })
    }

    /// The experiment the runs go to.
    pub fn experiment(&self) -> &str {
        &self.experiment
    }

    /// The Qlib data folder the study reads.
    pub fn provider_uri(&self) -> &Path {
        &self.provider
    }

    /// The runs store.
    pub fn records(&self) -> &RecordStore {
        &self.records
    }

    /// The study's configuration.
    pub fn config(&self) -> &StudyConfig {
        &self.config
    }

    /// The template's tasks through the configured generators.
    pub fn generate(&self, observer: &dyn Observer) -> Result<Vec<Value>> {
        let ta = if self.config.generators.needs_calendar() {
            Some(TimeAdjuster::from_provider(&self.provider)?)
        } else {
            None
        };
        observer.begin(StudyPhase::Generate, self.template.tasks.len() as u64);
        let tasks = self
            .config
            .generators
            .generate(&self.template.tasks, ta.as_ref(), &|| observer.step());
        observer.end();
        tasks.map_err(Into::into)
    }

    /// Runs the study: generate, train, collect, ensemble, write the outputs.
    pub fn run(&self, stop: &StopFlag, observer: &dyn Observer) -> Result<StudyResult> {
        let started = Instant::now();
        let tasks = self.generate(observer)?;
        if tasks.is_empty() {
            return Err(StudyError::Invalid(
                "the template generated no tasks".into(),
            ));
        }
        let t_gen = started.elapsed().as_secs_f64();

        let t = Instant::now();
        let cfg = &self.config;
        let exec = ExecSpec {
            provider_uri: Some(self.provider.clone()),
            ..cfg.exec.clone()
        };
        let pool = cfg.pool.clone().unwrap_or_else(|| self.experiment.clone());
        let outcome = train_tasks(
            &self.records,
            &tasks,
            &TrainSetup {
                exec: &exec,
                kind: cfg.trainer,
                experiment: &self.experiment,
                pool: Some(PoolTarget {
                    store: &cfg.store,
                    name: &pool,
                }),
                workers: cfg.workers,
                end_train: cfg.trainer.is_delay(),
            },
            stop,
            observer,
        )?;
        if let Some((i, e)) = outcome.failed.first() {
            return Err(StudyError::TasksFailed {
                failed: outcome.failed.len(),
                total: tasks.len(),
                first: *i,
                error: e.clone(),
            });
        }
        let t_train = t.elapsed().as_secs_f64();

        let t = Instant::now();
        observer.begin(StudyPhase::Collect, 2);
        let windows = load_windows(&self.records, &self.experiment, Some(&outcome.run_ids()))?;
        observer.step();
        let first = ensemble(&windows)?
            .into_iter()
            .next()
            .ok_or_else(|| StudyError::Invalid("no run saved a pred.parquet to collect".into()))?;
        let daily = first.daily_ic()?;
        std::fs::create_dir_all(&cfg.out).map_err(|e| StudyError::write(&cfg.out, e))?;
        let mut paths = StudyPaths {
            pred: cfg.out.join("pred.parquet"),
            summary: cfg.out.join("summary.json"),
            report: cfg.out.join("report.html"),
            backtest: None,
        };
        first.pred.write_parquet(&paths.pred)?;
        observer.step();
        observer.end();
        let t_collect = t.elapsed().as_secs_f64();

        let t = Instant::now();
        let analysis = StudyAnalysis::of(&first, &tasks[0], Some(&self.provider))?;
        if analysis.backtest.is_some() {
            let dir = cfg.out.join("backtest");
            analysis.write_backtest(&dir)?;
            paths.backtest = Some(dir);
        }
        let t_analysis = t.elapsed().as_secs_f64();

        let ens_metrics = daily
            .as_ref()
            .map(|d| IcSummary::of(&d.ic, &d.rank_ic).metrics())
            .unwrap_or_default();
        let range = first.pred.datetime_range();
        let fit_secs: f64 = windows
            .iter()
            .filter_map(|w| w.metrics.get(SECONDS_FIT))
            .sum();
        let mut summary = json!({
            "experiment": self.experiment,
            "config": cfg.template,
            "trainer": cfg.trainer.qlib_name(),
            "tasks": tasks.len(),
            "test_segments": windows.iter().map(|w| w.task.pointer("/dataset/kwargs/segments/test")).collect::<Vec<_>>(),
            "windows": windows.iter().map(window_json).collect::<Vec<_>>(),
            "ensemble": {
                "key": first.key,
                "rows": first.pred.len(),
                "start": range.map(|r| r.0.date().to_string()),
                "end": range.map(|r| r.1.date().to_string()),
                "metrics": ens_metrics.iter().map(|(k, v)| (k.clone(), json_num(*v))).collect::<serde_json::Map<_, _>>(),
            },
            "seconds": {
                "generate": t_gen,
                "train": t_train,
                "model_fit": fit_secs,
                "collect": t_collect,
                "analysis": t_analysis,
            },
        });
        if let Some(bt) = &analysis.backtest {
            summary["backtest"] = bt.risk_json();
        }

        let t = Instant::now();
        observer.begin(StudyPhase::Report, 1);
        write_report(
            &paths.report,
            &format!("qtask rolling: {}", self.experiment),
            &self.experiment,
            &windows,
            Some((&first, daily.as_ref())),
            &analysis,
            vec![
                format!("config: {}", cfg.template.display()),
                format!("{} tasks, trainer {}", tasks.len(), cfg.trainer.qlib_name()),
                format!(
                    "seconds: generate {t_gen:.2}, train {t_train:.2} (model fit {fit_secs:.2}), collect {t_collect:.2}"
                ),
            ]
            .into_iter()
            .chain(qtask_data::synth::synthetic_note(&self.provider))
            .collect(),
        )?;
        observer.step();
        observer.end();
        let t_report = t.elapsed().as_secs_f64();
        let total = started.elapsed().as_secs_f64();
        summary["seconds"]["report"] = json!(t_report);
        summary["seconds"]["total"] = json!(total);
        let text = serde_json::to_string_pretty(&summary)
            .map_err(|e| StudyError::Invalid(e.to_string()))?;
        qtask_core::fsutil::write_atomic(&paths.summary, text.as_bytes())
            .map_err(|e| StudyError::write(&paths.summary, e))?;
        Ok(StudyResult {
            experiment: self.experiment.clone(),
            tasks,
            windows,
            ensemble: first,
            daily_ic: daily,
            analysis,
            timings: PhaseTimings {
                generate: t_gen,
                train: t_train,
                model_fit: fit_secs,
                collect: t_collect,
                analysis: t_analysis,
                report: t_report,
                total,
            },
            paths,
            summary,
        })
    }
}

/// The report of an experiment's study (its latest run of every task): with the signal
/// analysis of the ensemble, and its backtest when the tasks configure a `PortAnaRecord` and
/// `provider` holds the market data. Returns the windows it read as well.
pub fn experiment_report(
    records: &RecordStore,
    experiment: &str,
    provider: Option<&Path>,
    title: &str,
    mut notes: Vec<String>,
) -> Result<(ReportData, Vec<Window>)> {
    notes.extend(provider.and_then(qtask_data::synth::synthetic_note));
    let windows = load_windows(records, experiment, None)?;
    let ens = ensemble(&windows)?;
    let first = ens.first();
    let (daily, analysis) = match (first, windows.first()) {
        (Some(e), Some(w)) => (e.daily_ic()?, StudyAnalysis::of(e, &w.task, provider)?),
        _ => (None, StudyAnalysis::default()),
    };
    let data = analysed_report_data(
        title,
        experiment,
        &windows,
        first.map(|e| (e, daily.as_ref())),
        &analysis,
        notes,
    );
    Ok((data, windows))
}

/// Writes [`experiment_report`] to `out` as one HTML file.
pub fn report_experiment(
    records: &RecordStore,
    experiment: &str,
    provider: Option<&Path>,
    out: &Path,
    title: &str,
    notes: Vec<String>,
) -> Result<Vec<Window>> {
    let (data, windows) = experiment_report(records, experiment, provider, title, notes)?;
    qtask_core::fsutil::write_atomic(out, qtask_report::render(&data).as_bytes())
        .map_err(|e| StudyError::write(out, e))?;
    Ok(windows)
}
