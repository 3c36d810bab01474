//! `task_train`: the built-in quant executor. Builds the dataset and model a task describes,
//! fits, saves the model and the fitted processor state, and runs the task's records.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use qtask_core::placeholder::fill_placeholder;
use qtask_core::template::resolve_provider_uri;
use qtask_data::Provider;
use qtask_data::cache::FeatureCache;
use qtask_data::dataset::{DataKey, DatasetH};
use qtask_data::frame::Frame;
use qtask_record::Run;
use qtask_runner::error::TaskError;
use qtask_runner::func::TaskContext;
use qtask_runner::train::{ExecRegistry, Executor};
use serde_json::{Map, Value, json};

use crate::error::{ModelError, Result};
use crate::model::{Fitted, LearnData, ModelSpec};
use crate::records::{RecordSpec, RecordState, TEST_SEGMENT, TestSegment};

/// The artifact holding the dataset's fitted processors (their learned state, not the data).
pub const DATASET_STATE_ARTIFACT: &str = "dataset_state.json";
/// The artifact holding LightGBM's feature importance.
pub const IMPORTANCE_ARTIFACT: &str = "feature_importance.json";
/// Metric: seconds spent building the dataset (features from the cache or computed).
pub const SECONDS_DATA: &str = "qtask.seconds.dataset";
/// Metric: seconds spent inside the model library while fitting.
pub const SECONDS_FIT: &str = "qtask.seconds.fit";
/// Metric: seconds spent in the records.
pub const SECONDS_RECORDS: &str = "qtask.seconds.records";

/// The name of the built-in quant task function, the default of workers and trainers.
pub const TASK_TRAIN: &str = "task_train";

/// Every built-in task function: the runner's own (`echo`) and [`TASK_TRAIN`], reading market
/// data from `provider_uri` and features through the shared on-disk cache.
pub fn builtin_registry(provider_uri: Option<&Path>) -> ExecRegistry {
    let mut r = ExecRegistry::with_builtins();
    r.register(
        TASK_TRAIN,
        Arc::new(TaskTrain {
            provider_uri: provider_uri.map(Path::to_path_buf),
            cache: FeatureCache::default_dir().map(FeatureCache::new),
        }),
    );
    r
}

/// The `task_train` executor.
#[derive(Debug, Clone, Default)]
pub struct TaskTrain {
    /// Qlib data folder; `None` uses `QTASK_PROVIDER_URI`, then `~/.qlib/qlib_data/cn_data`.
    pub provider_uri: Option<PathBuf>,
    /// Feature cache shared by the tasks of a study (`None` computes every time).
    pub cache: Option<FeatureCache>,
}

fn cancelled(ctx: &TaskContext) -> Result<()> {
    if ctx.is_cancelled() {
        return Err(ModelError::Invalid("cancelled".into()));
    }
    Ok(())
}

impl TaskTrain {
    /// Trains one task into `run`; returns the record metrics and timings.
    pub fn train(&self, task: &Value, run: &Run, ctx: &TaskContext) -> Result<Value> {
        // What an earlier task of this process freed is not this task's to keep.
        crate::memory::release_freed();
        // Resolve `<dataset.kwargs.segments.train.0>`-style placeholders before anything is
        // built, so the handler's processors are fitted on this window's own train segment
        // (Qlib fills them only after building the dataset: microsoft/qlib#1620). `<MODEL>`
        // and `<DATASET>` are not paths of the task and stay for the records.
        let mut task = task.clone();
        fill_placeholder(&mut task, &Map::new());

        // Read every config first: a typo fails in milliseconds, not after the features.
        let model_v = task
            .get("model")
            .ok_or_else(|| ModelError::Invalid("the task has no `model` block".into()))?;
        let spec = ModelSpec::from_value(model_v)?;
        let records = RecordSpec::list_from(task.get("record"))?;
        let dataset_v = task
            .get("dataset")
            .ok_or_else(|| ModelError::Invalid("the task has no `dataset` block".into()))?;
        match dataset_v.get("class").and_then(Value::as_str) {
            None | Some("DatasetH") => {}
            Some(other) => {
                return Err(ModelError::Invalid(format!(
                    "unknown dataset class `{other}` (supported: DatasetH)"
                )));
            }
        }
        let task_uri = task
            .pointer("/qlib_init/provider_uri")
            .and_then(Value::as_str)
            .map(PathBuf::from);
        let uri = resolve_provider_uri(self.provider_uri.as_deref(), task_uri.as_deref());

        let t0 = Instant::now();
        let provider = Provider::open(&uri)?;
        for r in &records {
            r.check_data(&provider)?;
        }
        let ds = DatasetH::from_value(&provider, dataset_v, self.cache.as_ref(), &|| {})?;
        let processor_state = ds.handler.processor_state();
        let with_test = records.iter().any(|r| matches!(r, RecordSpec::Signal));
        let (learn, test) = take_inputs(&spec, ds, with_test)?;
        crate::memory::release_freed();
        let data_secs = t0.elapsed().as_secs_f64();
        cancelled(ctx)?;

        let (fitted, report) = spec.fit(learn)?;
        cancelled(ctx)?;
        if let Some(log) = &report.log {
            log_curves(run, log)?;
        }
        fitted.save(run, &report.feature_names)?;
        run.save_json(DATASET_STATE_ARTIFACT, &processor_state)?;
        if let Some(imp) = fitted.importance(&report.feature_names)? {
            run.save_json(IMPORTANCE_ARTIFACT, &imp)?;
        }
        drop(fitted);

        // The records use the model as saved, so a model that cannot be read back fails here
        // rather than when someone needs it.
        let t1 = Instant::now();
        let (model, _) = Fitted::load(run)?;
        let mut state = RecordState::default();
        for r in &records {
            r.generate(&model, test.as_ref(), &provider, run, &mut state)?;
            cancelled(ctx)?;
        }
        let rec_secs = t1.elapsed().as_secs_f64();
        let fit_secs = report.fit_time.as_secs_f64();
        run.log_metrics(
            &[
                (SECONDS_DATA.to_string(), data_secs),
                (SECONDS_FIT.to_string(), fit_secs),
                (SECONDS_RECORDS.to_string(), rec_secs),
            ],
            0,
        )?;
        let metrics: Map<String, Value> = state
            .metrics
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        Ok(json!({
            "model": spec.class(),
            "train_rows": report.train_rows,
            "best_iteration": report.log.as_ref().map(|l| l.best_iteration),
            "metrics": metrics,
            "seconds": {"dataset": data_secs, "fit": fit_secs, "records": rec_secs},
        }))
    }
}

/// Moves what the model and the records read out of the dataset, which is gone afterwards:
/// the dataset's frames are freed column by column as the segments are taken, and training,
/// when LightGBM's own memory peaks, starts without them.
fn take_inputs(
    spec: &ModelSpec,
    ds: DatasetH,
    with_test: bool,
) -> Result<(LearnData, Option<TestSegment>)> {
    let segments = ds.segments.clone();
    let nf = ds.handler.n_features;
    // Raw labels are small and need no features: take them before the frames go.
    let raw_labels = with_test
        .then(|| ds.prepare_labels(TEST_SEGMENT, DataKey::Raw))
        .transpose()?;
    let mut requests: Vec<(&str, DataKey)> = ["train", "valid"]
        .into_iter()
        .filter(|s| segments.contains_key(*s))
        .map(|s| (s, DataKey::Learn))
        .collect();
    if with_test {
        requests.push((TEST_SEGMENT, DataKey::Infer));
    }
    let mut frames: HashMap<&str, Frame> = requests
        .iter()
        .map(|r| r.0)
        .zip(ds.into_frames(&requests)?)
        .collect();
    let test = match raw_labels {
        Some(labels) => {
            let infer = frames.remove(TEST_SEGMENT).unwrap_or_default();
            Some(TestSegment::new(&infer, labels, nf, &segments)?)
        }
        None => None,
    };
    let learn = spec.learn_data(
        frames.remove("train"),
        frames.remove("valid"),
        nf,
        &segments,
    )?;
    Ok((learn, test))
}

/// Logs LightGBM's evaluation per iteration as Qlib does (`l2.train`, `l2.valid`, step = epoch).
fn log_curves(run: &Run, log: &crate::lgb::TrainLog) -> Result<()> {
    for (step, train) in log.train.iter().enumerate() {
        let mut m: Vec<(String, f64)> = Vec::new();
        for (name, v) in log.metrics.iter().zip(train) {
            m.push((format!("{}.train", name.replace('@', "_")), *v));
        }
        if let Some(valid) = log.valid.get(step) {
            for (name, v) in log.metrics.iter().zip(valid) {
                m.push((format!("{}.valid", name.replace('@', "_")), *v));
            }
        }
        if !m.is_empty() {
            run.log_metrics(&m, step as i64)?;
        }
    }
    Ok(())
}

impl Executor for TaskTrain {
    fn execute(&self, task: &Value, run: &Run, ctx: &TaskContext) -> Result<Value, TaskError> {
        self.train(task, run, ctx)
            .map_err(|e| TaskError::from_error(&e))
    }
}
