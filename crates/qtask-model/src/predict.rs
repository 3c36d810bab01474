//! Inference from a trained run (Qlib's `RMDLoader` and `model.predict`): the model and the
//! dataset's fitted processors are read back from the run, features are computed for any
//! dates, and nothing is fitted again. [`update_pred`] is Qlib's `PredUpdater`: it extends a
//! run's `pred.parquet` to a new last day.

use chrono::NaiveDate;
use qtask_core::placeholder::fill_placeholder;
use qtask_data::Provider;
use qtask_data::cache::FeatureCache;
use qtask_data::dataset::{DatasetConfig, Prepared};
use qtask_data::handler::{Handler, HandlerConfig};
use qtask_data::processor::Processor;
use qtask_record::Run;
use qtask_record::names::{PRED_ARTIFACT, TASK_ARTIFACT};
use qtask_table::{PredTable, TableBuilder};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::{ModelError, Result};
use crate::model::{Fitted, ModelMeta};
use crate::workflow::DATASET_STATE_ARTIFACT;

/// The column of a prediction table (Qlib's `score`).
pub const SCORE: &str = "score";

/// The fitted processors a run saved (`dataset_state.json`, see
/// [`Handler::processor_state`]).
#[derive(Debug, Clone, Deserialize)]
struct ProcessorState {
    #[serde(default)]
    shared_processors: Vec<Processor>,
    infer_processors: Vec<Processor>,
    learn_processors: Vec<Processor>,
}

/// A trained run ready to predict: its model, and its handler with the fitted processors.
pub struct RunPredictor {
    run_id: String,
    task: Value,
    handler: HandlerConfig,
    model: Fitted,
    meta: ModelMeta,
}

fn artifact_error(run: &Run, artifact: &str, msg: impl Into<String>) -> ModelError {
    ModelError::Artifact {
        run: run.id().to_string(),
        artifact: artifact.to_string(),
        msg: msg.into(),
    }
}

/// Checks that the saved processors are the task's, in order (a state written for another
/// task would otherwise be applied silently).
fn same_kinds(run: &Run, what: &str, task: &[Processor], saved: &[Processor]) -> Result<()> {
    let kinds = |p: &[Processor]| p.iter().map(|p| p.kind).collect::<Vec<_>>();
    if kinds(task) != kinds(saved) {
        return Err(artifact_error(
            run,
            DATASET_STATE_ARTIFACT,
            format!(
                "its {what} ({:?}) are not the task's ({:?})",
                kinds(saved),
                kinds(task)
            ),
        ));
    }
    Ok(())
}

impl RunPredictor {
    /// Reads the run's task, model and fitted processors; a run that lacks one of them (not
    /// trained by `task_train`, or a delay trainer's run not fitted yet) is an error naming
    /// the artifact.
    pub fn load(run: &Run) -> Result<RunPredictor> {
        let mut task: Value = run
            .load_json(TASK_ARTIFACT)
            .map_err(|e| artifact_error(run, TASK_ARTIFACT, e.to_string()))?;
        // As task_train read it: `<dataset.kwargs.segments.train.0>`-style paths resolved.
        fill_placeholder(&mut task, &Map::new());
        let dataset = task
            .get("dataset")
            .ok_or_else(|| artifact_error(run, TASK_ARTIFACT, "the task has no `dataset` block"))?;
        let mut handler = DatasetConfig::from_value(dataset)?.handler;
        let state: ProcessorState = run
            .load_json(DATASET_STATE_ARTIFACT)
            .map_err(|e| artifact_error(run, DATASET_STATE_ARTIFACT, e.to_string()))?;
        same_kinds(
            run,
            "shared processors",
            &handler.shared_processors,
            &state.shared_processors,
        )?;
        same_kinds(
            run,
            "infer processors",
            &handler.infer_processors,
            &state.infer_processors,
        )?;
        same_kinds(
            run,
            "learn processors",
            &handler.learn_processors,
            &state.learn_processors,
        )?;
        handler.shared_processors = state.shared_processors;
        handler.infer_processors = state.infer_processors;
        handler.learn_processors = state.learn_processors;
        let (model, meta) = Fitted::load(run)?;
        Ok(RunPredictor {
            run_id: run.id().to_string(),
            task,
            handler,
            model,
            meta,
        })
    }

    /// The run's id.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// The task the run trained (placeholders resolved).
    pub fn task(&self) -> &Value {
        &self.task
    }

    /// The Qlib data folder to predict on: `flag`, else the task's `qlib_init.provider_uri`
    /// (as `task_train` reads it), else `QTASK_PROVIDER_URI`, else Qlib's default folder.
    pub fn provider_uri(&self, flag: Option<&std::path::Path>) -> std::path::PathBuf {
        let task_uri = self
            .task
            .pointer("/qlib_init/provider_uri")
            .and_then(Value::as_str)
            .map(std::path::PathBuf::from);
        qtask_core::template::resolve_provider_uri(flag, task_uri.as_deref())
    }

    /// The model's class and feature columns.
    pub fn meta(&self) -> &ModelMeta {
        &self.meta
    }

    /// The handler as inference loads it: the task's fields, the fitted processors, data from
    /// `start`'s look-back to `end`.
    ///
    /// Data starts where the run's own handler started (unless `start` is earlier): the
    /// rolling kernels carry floating-point state from the first day they read (pandas'
    /// online sums), so starting anywhere else could change the last bits of a feature, and
    /// a reloaded run would not predict exactly what it predicted when it was trained. The
    /// feature cache makes that history cheap.
    fn handler_for(&self, start: NaiveDate, end: NaiveDate) -> HandlerConfig {
        let mut h = self.handler.clone();
        h.start_time = match h.start_time {
            Some(s) if s > start => Some(start),
            other => other,
        };
        h.end_time = Some(end);
        h
    }

    /// Predictions for every day in `[start, end]` (inclusive) on `provider`'s data: one
    /// `score` per (datetime, instrument) row of the handler's infer data, sorted.
    pub fn predict(
        &self,
        provider: &Provider,
        start: NaiveDate,
        end: NaiveDate,
        cache: Option<&FeatureCache>,
    ) -> Result<PredTable> {
        if end < start {
            return Err(ModelError::Invalid(format!(
                "cannot predict from {start} to {end}: the range ends before it starts"
            )));
        }
        let cal = provider.calendar();
        let (first, last) = match (cal.first(), cal.last()) {
            (Some(f), Some(l)) => (*f, *l),
            _ => return Err(ModelError::Data("the calendar is empty".into())),
        };
        if start > last || end < first {
            return Err(ModelError::Data(format!(
                "no trading day between {start} and {end}: the data runs {first} .. {last}"
            )));
        }
        let config = self.handler_for(start, end);
        let handler = Handler::load_fitted(provider, &config, cache, &|| {})?;
        let rows = handler.infer().rows_between(Some(start), Some(end));
        let prepared = Prepared::from_frame(&rows, handler.n_features);
        drop(rows);
        drop(handler);
        if prepared.feature_names != self.meta.feature_names {
            return Err(ModelError::Invalid(format!(
                "run {}: the model reads {} features ({}...), the handler gives {} ({}...)",
                self.run_id,
                self.meta.feature_names.len(),
                self.meta.feature_names.first().map_or("", String::as_str),
                prepared.feature_names.len(),
                prepared.feature_names.first().map_or("", String::as_str),
            )));
        }
        let mut b = TableBuilder::new([SCORE]);
        if prepared.is_empty() {
            return Ok(b.finish());
        }
        let scores = self.model.predict(&prepared)?;
        b.reserve(prepared.len());
        for ((d, inst), s) in prepared
            .datetime
            .iter()
            .zip(&prepared.instruments)
            .zip(&scores)
        {
            b.push_ns(day_ns(*d), inst, &[*s])?;
        }
        let mut t = b.finish();
        t.sort();
        Ok(t)
    }
}

/// Nanoseconds since the epoch of a day's midnight (how prediction tables key days).
pub fn day_ns(d: NaiveDate) -> i64 {
    d.and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        .and_utc()
        .timestamp_nanos_opt()
        .expect("dates of market data fit in nanoseconds")
}

fn ns_day(ns: i64) -> NaiveDate {
    qtask_table::ns_to_datetime(ns).date()
}

/// Predictions of a trained run for `[start, end]`, without retraining and without its
/// training data: its model and fitted processors read back, features from `provider`
/// through the default feature cache. On the run's own test segment they equal its
/// `pred.parquet` bit for bit.
pub fn predict_run(
    run: &Run,
    provider: &Provider,
    start: NaiveDate,
    end: NaiveDate,
) -> Result<PredTable> {
    let cache = FeatureCache::default_dir().map(FeatureCache::new);
    RunPredictor::load(run)?.predict(provider, start, end, cache.as_ref())
}

/// What [`update_pred`] did to a run's prediction.
#[derive(Debug, Clone, PartialEq)]
pub enum PredUpdate {
    /// The prediction already reached the day asked (its last day with a score).
    UpToDate {
        /// The last day of the prediction.
        last: NaiveDate,
    },
    /// Days were predicted and the artifact replaced.
    Extended {
        /// The first day predicted.
        from: NaiveDate,
        /// The last day asked.
        to: NaiveDate,
        /// Rows predicted.
        new_rows: usize,
        /// Rows of the prediction now.
        rows: usize,
    },
}

/// Qlib's `PredUpdater.update`: extends the run's `pred.parquet` to `to_date` (`None`, or a day
/// after the data: the calendar's last day), predicting only the days after the last day that
/// has a score (or from `from_date` when given), and replaces the artifact atomically (written
/// whole to a temporary file, then renamed: never half-written). Rows of the days predicted
/// are replaced, every other row is kept.
pub fn update_pred(
    run: &Run,
    provider: &Provider,
    to_date: Option<NaiveDate>,
    from_date: Option<NaiveDate>,
    cache: Option<&FeatureCache>,
) -> Result<PredUpdate> {
    let cal = provider.calendar();
    let latest = *cal
        .last()
        .ok_or_else(|| ModelError::Data("the calendar is empty".into()))?;
    let to = to_date.map_or(latest, |d| d.min(latest));
    let bytes = run.load_artifact_bytes(PRED_ARTIFACT)?;
    let old = PredTable::from_parquet_bytes(&bytes)?;
    // Qlib's `dropna()`: the last day of a row without a missing value.
    let last_end = match from_date {
        Some(f) => {
            let i = cal.partition_point(|d| *d < f);
            if i == 0 { None } else { Some(cal[i - 1]) }
        }
        None => (0..old.len())
            .filter(|&r| {
                old.column_names()
                    .iter()
                    .enumerate()
                    .all(|(c, _)| !old.column_at(c)[r].is_nan())
            })
            .map(|r| old.datetimes_ns()[r])
            .max()
            .map(ns_day),
    };
    if let Some(last) = last_end
        && last >= to
    {
        return Ok(PredUpdate::UpToDate { last });
    }
    let from = match last_end {
        Some(last) => match cal.iter().find(|d| **d > last) {
            Some(d) => *d,
            None => return Ok(PredUpdate::UpToDate { last }),
        },
        None => cal[0],
    };
    let new = RunPredictor::load(run)?.predict(provider, from, to, cache)?;
    if new.is_empty() {
        return Ok(PredUpdate::Extended {
            from,
            to,
            new_rows: 0,
            rows: old.len(),
        });
    }
    let merged = replace_range(&old, &new)?;
    run.save_artifact_bytes(PRED_ARTIFACT, &merged.to_parquet_bytes()?)?;
    Ok(PredUpdate::Extended {
        from,
        to,
        new_rows: new.len(),
        rows: merged.len(),
    })
}

/// Qlib's `_replace_range`: the rows of `old` outside the days `new` spans, then `new`; a key
/// present twice keeps its last row; sorted.
fn replace_range(old: &PredTable, new: &PredTable) -> Result<PredTable> {
    let (lo, hi) = {
        let d = new.datetimes_ns();
        (
            *d.iter().min().expect("not empty"),
            *d.iter().max().expect("not empty"),
        )
    };
    let names = new.column_names().to_vec();
    let old_cols: Vec<usize> = names
        .iter()
        .map(|n| {
            old.column_names()
                .iter()
                .position(|m| m == n)
                .ok_or_else(|| {
                    ModelError::Invalid(format!(
                        "{PRED_ARTIFACT} has columns {:?}, the prediction {:?}",
                        old.column_names(),
                        names
                    ))
                })
        })
        .collect::<Result<_>>()?;
    let mut rows: Vec<(i64, &str, Vec<f64>)> = Vec::with_capacity(old.len() + new.len());
    for r in 0..old.len() {
        let dt = old.datetimes_ns()[r];
        if dt >= lo && dt <= hi {
            continue;
        }
        rows.push((
            dt,
            old.instrument(r),
            old_cols.iter().map(|&c| old.column_at(c)[r]).collect(),
        ));
    }
    for r in 0..new.len() {
        rows.push((
            new.datetimes_ns()[r],
            new.instrument(r),
            (0..names.len()).map(|c| new.column_at(c)[r]).collect(),
        ));
    }
    // Stable: of two rows with one key, the later stays last and wins below.
    rows.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    let mut b = TableBuilder::new(names.clone());
    b.reserve(rows.len());
    let mut i = 0;
    while i < rows.len() {
        let mut j = i;
        while j + 1 < rows.len() && (rows[j + 1].0, rows[j + 1].1) == (rows[i].0, rows[i].1) {
            j += 1;
        }
        b.push_ns(rows[j].0, rows[j].1, &rows[j].2)?;
        i = j + 1;
    }
    let mut t = b.finish();
    t.sort();
    Ok(t)
}

/// Whether a run has a prediction to update (Qlib's updater skips those without one).
pub fn has_pred(run: &Run) -> Result<bool> {
    Ok(run
        .list_artifacts(None)?
        .iter()
        .any(|a| !a.is_dir && a.path == PRED_ARTIFACT))
}
