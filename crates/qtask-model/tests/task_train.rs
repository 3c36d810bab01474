//! `task_train` end to end on a small synthetic market: a real LightGBM, a real runs store.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use qtask_data::NaiveDate;
use qtask_data::synth::{SynthConfig, synth};
use qtask_model::TaskTrain;
use qtask_model::model::{Fitted, LGB_ARTIFACT};
use qtask_model::records::{IC_ARTIFACT, LABEL_ARTIFACT, PRED_ARTIFACT, RIC_ARTIFACT};
use qtask_model::workflow::DATASET_STATE_ARTIFACT;
use qtask_record::{RecordStore, RunStatus};
use qtask_runner::func::{TaskContext, TaskFunc};
use qtask_runner::train::{Phase, RecordedTask};
use qtask_table::{DateSeries, PredTable};
use qtask_testkit::Suite;
use serde_json::{Value, json};

fn market(dir: &Path) {
    let cfg = SynthConfig {
        instruments: 12,
        start: NaiveDate::from_ymd_opt(2008, 1, 1).unwrap(),
        end: NaiveDate::from_ymd_opt(2011, 12, 31).unwrap(),
        seed: 7,
    };
    synth(dir, &cfg, &|| {}).unwrap();
}

fn task(model: Value) -> Value {
    json!({
        "model": model,
        "dataset": {
            "class": "DatasetH",
            "module_path": "qlib.data.dataset",
            "kwargs": {
                "handler": {
                    "class": "Alpha158",
                    "module_path": "qlib.contrib.data.handler",
                    "kwargs": {
                        "start_time": "2008-01-01", "end_time": "2011-12-31",
                        "fit_start_time": "<dataset.kwargs.segments.train.0>",
                        "fit_end_time": "<dataset.kwargs.segments.train.1>",
                        "instruments": "all"
                    }
                },
                "segments": {
                    "train": ["2008-01-01", "2009-12-31"],
                    "valid": ["2010-01-01", "2010-12-31"],
                    "test": ["2011-01-01", "2011-12-31"]
                }
            }
        },
        "record": [
            {"class": "SignalRecord", "module_path": "qlib.workflow.record_temp",
             "kwargs": {"model": "<MODEL>", "dataset": "<DATASET>"}},
            {"class": "SigAnaRecord", "module_path": "qlib.workflow.record_temp",
             "kwargs": {"ana_long_short": true, "ann_scaler": 252}}
        ]
    })
}

fn lgb() -> Value {
    json!({"class": "LGBModel", "module_path": "qlib.contrib.model.gbdt",
           "kwargs": {"loss": "mse", "learning_rate": 0.1, "num_leaves": 31, "num_threads": 2}})
}

struct Setup {
    _dir: tempfile::TempDir,
    store: RecordStore,
    func: RecordedTask,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    market(&dir.path().join("data"));
    let store =
        RecordStore::open(&format!("file:{}", dir.path().join("mlruns").display())).unwrap();
    let func = RecordedTask {
        store: store.clone(),
        experiment: "exp".into(),
        exec: Arc::new(TaskTrain {
            provider_uri: Some(dir.path().join("data")),
            cache: Some(qtask_data::cache::FeatureCache::new(
                dir.path().join("cache"),
            )),
        }),
        phase: Phase::Full,
    };
    Setup {
        _dir: dir,
        store,
        func,
    }
}

fn ctx() -> TaskContext {
    TaskContext {
        task_id: "t1".into(),
        pool: "p".into(),
        attempt: 1,
        experiment: Some("exp".into()),
        tracking_uri: None,
        cancel: Arc::new(AtomicBool::new(false)),
    }
}

fn only_run(s: &Setup) -> qtask_record::Run {
    let exp = s.store.find_experiment("exp").unwrap().unwrap();
    let runs = exp.runs(None).unwrap();
    assert_eq!(runs.len(), 1);
    exp.run(&runs[0].run_id).unwrap()
}

#[test]
fn lightgbm_task_learns_the_planted_signal_and_saves_everything() {
    let s = setup();
    let res = s.func.call(&ctx(), &task(lgb())).unwrap();
    assert!(res["run_id"].is_string());
    let run = only_run(&s);
    assert_eq!(run.info().status, RunStatus::Finished);

    let metrics: std::collections::BTreeMap<String, f64> = run
        .metrics()
        .unwrap()
        .into_iter()
        .map(|m| (m.key, m.value))
        .collect();
    let ic = metrics["IC"];
    let ric = metrics["Rank IC"];
    assert!(ic > 0.02, "IC {ic}");
    assert!(ric > 0.02, "Rank IC {ric}");
    assert!(metrics["ICIR"].is_finite() && metrics["Rank ICIR"].is_finite());
    for k in [
        "Long-Short Ann Return",
        "Long-Short Ann Sharpe",
        "Long-Avg Ann Return",
        "Long-Avg Ann Sharpe",
    ] {
        assert!(metrics.contains_key(k), "missing {k}");
    }
    // Qlib's per-iteration curves; early stopping keeps the iteration with the best valid
    // loss (the first of equal ones), as LightGBM's Python package does.
    let valid = run.metric_history("l2.valid").unwrap();
    assert!(!valid.is_empty());
    let best = valid
        .iter()
        .enumerate()
        .fold((0, f64::INFINITY), |b, (i, m)| {
            if m.value < b.1 { (i, m.value) } else { b }
        })
        .0;

    let pred =
        PredTable::from_parquet_bytes(&run.load_artifact_bytes(PRED_ARTIFACT).unwrap()).unwrap();
    let label =
        PredTable::from_parquet_bytes(&run.load_artifact_bytes(LABEL_ARTIFACT).unwrap()).unwrap();
    assert_eq!(pred.column_names(), ["score"]);
    assert_eq!(label.column_names(), ["label"]);
    assert_eq!(pred.len(), label.len());
    let (first, last) = pred.datetime_range().unwrap();
    assert!(first.date() >= NaiveDate::from_ymd_opt(2011, 1, 1).unwrap());
    assert!(last.date() <= NaiveDate::from_ymd_opt(2011, 12, 31).unwrap());
    assert!(pred.column("score").unwrap().iter().all(|v| v.is_finite()));

    let ic_series =
        DateSeries::from_parquet_bytes(&run.load_artifact_bytes(IC_ARTIFACT).unwrap()).unwrap();
    let ric_series =
        DateSeries::from_parquet_bytes(&run.load_artifact_bytes(RIC_ARTIFACT).unwrap()).unwrap();
    assert_eq!(ic_series.values.len(), ric_series.values.len());
    // The IC metric is the mean of the saved daily series.
    let mean = qtask_model::signal::nanmean(&ic_series.values);
    assert!((mean - ic).abs() < 1e-9);

    // The processors were fitted on this window's own train segment (placeholders resolved
    // before the dataset was built).
    let state: Value = run.load_json(DATASET_STATE_ARTIFACT).unwrap();
    let text = state.to_string();
    assert!(
        !text.contains("<dataset"),
        "unresolved placeholder in {text}"
    );

    // The saved model loads back and predicts what was recorded.
    assert!(!run.load_artifact_bytes(LGB_ARTIFACT).unwrap().is_empty());
    let (model, meta) = Fitted::load(&run).unwrap();
    assert_eq!(meta.feature_names.len(), 158);
    assert_eq!(meta.best_iteration.unwrap(), best + 1);
    // Training stopped `early_stopping_rounds` (50) after the best iteration, or ran out.
    assert!(
        valid.len() == best + 51 || valid.len() == 1000,
        "{} iterations",
        valid.len()
    );
    let imp: Value = run.load_json("feature_importance.json").unwrap();
    assert_eq!(imp.as_array().unwrap().len(), 158);
    drop(model);
}

#[test]
fn linear_models_train_through_the_same_path() {
    let s = setup();
    let model = json!({"class": "LinearModel", "kwargs": {"estimator": "ridge", "alpha": 1.0}});
    let mut t = task(model);
    // Linear models need finite features: fill NaNs at inference and learning.
    t["dataset"]["kwargs"]["handler"]["kwargs"]["infer_processors"] = json!([
        {"class": "ProcessInf"}, {"class": "Fillna", "kwargs": {"fill_value": 0}}
    ]);
    s.func.call(&ctx(), &t).unwrap();
    let run = only_run(&s);
    assert_eq!(run.info().status, RunStatus::Finished);
    let coef: Value = run.load_json("model.json").unwrap();
    assert_eq!(coef["coef"].as_array().unwrap().len(), 158);
    let ic = run
        .metrics()
        .unwrap()
        .into_iter()
        .find(|m| m.key == "IC")
        .unwrap()
        .value;
    assert!(ic > 0.0, "IC {ic}");
}

fn failed_with(t: Value, needle: &str) {
    let s = setup();
    let err = s.func.call(&ctx(), &t).unwrap_err().message;
    assert!(err.contains(needle), "error `{err}` lacks `{needle}`");
    let run = only_run(&s);
    assert_eq!(run.info().status, RunStatus::Failed);
    assert!(run.tags().unwrap()["error"].contains(needle));
}

#[test]
fn unknown_model_class_fails_the_run_listing_the_supported_ones() {
    failed_with(
        task(json!({"class": "MyModel"})),
        "unknown model class `MyModel` (supported: LGBModel, LinearModel, XGBModel, \
         DEnsembleModel)",
    );
}

#[test]
fn pytorch_and_catboost_models_fail_pointing_to_exec() {
    failed_with(
        task(
            json!({"class": "GRU", "module_path": "qlib.contrib.model.pytorch_gru_ts",
                    "kwargs": {"d_feat": 20}}),
        ),
        "model `GRU` (qlib.contrib.model.pytorch_gru_ts) is a PyTorch model that task_train \
         does not implement; run it with `qtask worker --exec",
    );
    failed_with(
        task(json!({"class": "CatBoostModel", "module_path": "qlib.contrib.model.catboost_model"})),
        "model `CatBoostModel` (qlib.contrib.model.catboost_model) is CatBoost",
    );
}

fn metric_map(run: &qtask_record::Run) -> std::collections::BTreeMap<String, f64> {
    run.metrics()
        .unwrap()
        .into_iter()
        .map(|m| (m.key, m.value))
        .collect()
}

/// The records' outputs of a finished run: predictions and labels of the test segment, the
/// daily IC series, and IC metrics that find the planted signal.
fn check_records(run: &qtask_record::Run) {
    assert_eq!(run.info().status, RunStatus::Finished);
    let metrics = metric_map(run);
    assert!(metrics["IC"] > 0.02, "IC {}", metrics["IC"]);
    assert!(metrics["Rank IC"] > 0.02, "Rank IC {}", metrics["Rank IC"]);
    let pred =
        PredTable::from_parquet_bytes(&run.load_artifact_bytes(PRED_ARTIFACT).unwrap()).unwrap();
    let label =
        PredTable::from_parquet_bytes(&run.load_artifact_bytes(LABEL_ARTIFACT).unwrap()).unwrap();
    assert_eq!(pred.len(), label.len());
    assert!(pred.column("score").unwrap().iter().all(|v| v.is_finite()));
    let ic_series =
        DateSeries::from_parquet_bytes(&run.load_artifact_bytes(IC_ARTIFACT).unwrap()).unwrap();
    let mean = qtask_model::signal::nanmean(&ic_series.values);
    assert!((mean - metrics["IC"]).abs() < 1e-9);
}

/// Reads the run's saved model back and checks it predicts what `SignalRecord` recorded.
fn saved_model_predicts_the_recorded_scores(run: &qtask_record::Run, class: &str) {
    let (model, meta) = Fitted::load(run).unwrap();
    assert_eq!(meta.class, class);
    assert_eq!(meta.feature_names.len(), 158);
    let imp: Value = run.load_json("feature_importance.json").unwrap();
    let imp = imp.as_array().unwrap();
    assert_eq!(imp.len(), 158);
    assert!(imp.iter().any(|r| r["split"].as_f64().unwrap() > 0.0));
    let pred =
        PredTable::from_parquet_bytes(&run.load_artifact_bytes(PRED_ARTIFACT).unwrap()).unwrap();
    // Predicting a constant row gives one score; the model must at least load and run.
    let scores = model.predict_rows(&vec![0.0; 2 * 158], 158).unwrap();
    assert_eq!(scores.len(), 2);
    assert_eq!(scores[0], scores[1]);
    assert!(!pred.is_empty());
}

#[test]
fn xgboost_task_trains_with_qlibs_benchmark_model_block() {
    let test = "xgboost_task_trains_with_qlibs_benchmark_model_block";
    if qtask_testkit::enabled(Suite::Xgboost, test).is_none() {
        return;
    }
    if let Err(e) = qtask_model::xgb::library() {
        panic!("{test}: QTASK_TEST_XGBOOST=1 but {e}");
    }
    let s = setup();
    // The benchmark's block (workflow_config_xgboost_Alpha158.yaml), fewer threads.
    let model = json!({"class": "XGBModel", "module_path": "qlib.contrib.model.xgboost",
        "kwargs": {"eval_metric": "rmse", "colsample_bytree": 0.8879, "eta": 0.0421,
                   "max_depth": 8, "n_estimators": 647, "subsample": 0.8789, "nthread": 2}});
    s.func.call(&ctx(), &task(model)).unwrap();
    let run = only_run(&s);
    check_records(&run);
    // Both evaluation sets logged per round, as Qlib's evals_result; training stopped 50
    // rounds after the best valid rmse (or ran all 1000), and the model keeps every round.
    let valid = run.metric_history("rmse.valid").unwrap();
    let train = run.metric_history("rmse.train").unwrap();
    assert_eq!(valid.len(), train.len());
    let best = valid
        .iter()
        .enumerate()
        .fold((0, f64::INFINITY), |b, (i, m)| {
            if m.value < b.1 { (i, m.value) } else { b }
        })
        .0;
    assert!(
        valid.len() == best + 51 || valid.len() == 1000,
        "{}",
        valid.len()
    );
    let (_, meta) = Fitted::load(&run).unwrap();
    assert_eq!(meta.best_iteration, Some(best + 1));
    let saved = run
        .load_artifact_bytes(qtask_model::model::XGB_ARTIFACT)
        .unwrap();
    let doc: Value = serde_json::from_slice(&saved).unwrap();
    // XGBoost's own JSON: every round's tree, the best round as an attribute.
    let trees = doc["learner"]["gradient_booster"]["model"]["trees"]
        .as_array()
        .unwrap();
    assert_eq!(trees.len(), valid.len());
    assert_eq!(
        doc["learner"]["attributes"]["best_iteration"],
        json!(best.to_string())
    );
    saved_model_predicts_the_recorded_scores(&run, "XGBModel");
}

#[test]
fn double_ensemble_task_trains_with_qlibs_benchmark_model_block() {
    let s = setup();
    // The benchmark's block (workflow_config_doubleensemble_Alpha158.yaml), with three
    // sub-models and fewer threads to keep the test short.
    let model = json!({"class": "DEnsembleModel",
        "module_path": "qlib.contrib.model.double_ensemble",
        "kwargs": {"base_model": "gbm", "loss": "mse", "num_models": 3, "enable_sr": true,
                   "enable_fs": true, "alpha1": 1, "alpha2": 1, "bins_sr": 10, "bins_fs": 5,
                   "decay": 0.5, "sample_ratios": [0.8, 0.7, 0.6, 0.5, 0.4],
                   "sub_weights": [1, 0.2, 0.2], "epochs": 28, "colsample_bytree": 0.8879,
                   "learning_rate": 0.2, "subsample": 0.8789, "lambda_l1": 205.6999,
                   "lambda_l2": 580.9768, "max_depth": 8, "num_leaves": 210,
                   "num_threads": 2, "verbosity": -1}});
    s.func.call(&ctx(), &task(model)).unwrap();
    let run = only_run(&s);
    check_records(&run);
    let saved: Value = serde_json::from_slice(
        &run.load_artifact_bytes(qtask_model::model::DENS_ARTIFACT)
            .unwrap(),
    )
    .unwrap();
    let subs = saved["sub_models"].as_array().unwrap();
    assert_eq!(subs.len(), 3);
    assert_eq!(saved["sub_weights"], json!([1.0, 0.2, 0.2]));
    assert_eq!(subs[0]["features"].as_array().unwrap().len(), 158);
    assert!(subs[2]["features"].as_array().unwrap().len() < 158);
    // Each sub-model is LightGBM's own model text, with trees (at most the 28 epochs: no
    // early stopping, and rounds that find no split under lambda_l1 add none).
    for s in subs {
        let trees = s["lightgbm"].as_str().unwrap().matches("\nTree=").count();
        assert!((1..=28).contains(&trees), "{trees} trees");
    }
    saved_model_predicts_the_recorded_scores(&run, "DEnsembleModel");
}

#[test]
fn unknown_record_class_fails_the_run() {
    let mut t = task(lgb());
    t["record"] = json!([{"class": "MyRecord"}]);
    failed_with(t, "unknown record class `MyRecord`");
}

#[test]
fn a_segment_without_data_fails_the_run() {
    let mut t = task(lgb());
    t["dataset"]["kwargs"]["segments"]["test"] = json!(["2030-01-01", "2030-12-31"]);
    failed_with(t, "segment `test` [2030-01-01, 2030-12-31] has no data");
}

#[test]
fn an_all_nan_label_fails_the_run() {
    let mut t = task(lgb());
    // A label reaching beyond the data is NaN everywhere.
    t["dataset"]["kwargs"]["handler"]["kwargs"]["label"] =
        json!([["Ref($close, -100000)"], ["LABEL0"]]);
    failed_with(t.clone(), "Empty data from dataset");
    // Without DropnaLabel the label reaches the model: still a clear error.
    t["dataset"]["kwargs"]["handler"]["kwargs"]["learn_processors"] = json!([]);
    failed_with(t, "is NaN on all");
}

#[test]
fn a_model_artifact_that_does_not_load_is_a_clear_error() {
    let s = setup();
    let exp = s.store.experiment("exp").unwrap();
    let run = exp.start_run(None).unwrap();
    run.save_json(
        "model_meta.json",
        &json!({"class": "LGBModel", "feature_names": ["a"], "best_iteration": 1}),
    )
    .unwrap();
    run.save_artifact_bytes(LGB_ARTIFACT, b"this is not a LightGBM model")
        .unwrap();
    let err = Fitted::load(&run)
        .err()
        .expect("corrupt model must not load")
        .to_string();
    assert!(err.contains("model artifact `model.txt`"), "{err}");
    assert!(err.contains(run.id()), "{err}");
}
