//! Inference from a trained run and Qlib's PredUpdater, on a small synthetic market with a real
//! LightGBM and a real runs store.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use qtask_data::cache::FeatureCache;
use qtask_data::synth::{SynthConfig, synth};
use qtask_data::{NaiveDate, Provider};
use qtask_model::predict::{PredUpdate, RunPredictor, day_ns, update_pred};
use qtask_model::records::PRED_ARTIFACT;
use qtask_model::workflow::DATASET_STATE_ARTIFACT;
use qtask_model::{TaskTrain, predict_run};
use qtask_record::{RecordStore, Run};
use qtask_runner::func::{TaskContext, TaskFunc};
use qtask_runner::train::{Phase, RecordedTask};
use qtask_table::{PredTable, TableBuilder};
use serde_json::{Value, json};

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

/// A CSI100-style task: fitted infer processors (RobustZScoreNorm on the train segment) so that
/// inference has state to carry.
fn task() -> Value {
    json!({
        "model": {"class": "LGBModel", "module_path": "qlib.contrib.model.gbdt",
                  "kwargs": {"loss": "mse", "learning_rate": 0.1, "num_leaves": 15,
                             "num_threads": 2}},
        "dataset": {
            "class": "DatasetH",
            "kwargs": {
                "handler": {
                    "class": "Alpha158",
                    "kwargs": {
                        "start_time": "2008-01-01", "end_time": "2011-06-30",
                        "fit_start_time": "<dataset.kwargs.segments.train.0>",
                        "fit_end_time": "<dataset.kwargs.segments.train.1>",
                        "instruments": "all",
                        "infer_processors": [
                            {"class": "RobustZScoreNorm",
                             "kwargs": {"fields_group": "feature", "clip_outlier": true}},
                            {"class": "Fillna", "kwargs": {"fields_group": "feature"}}
                        ],
                        "learn_processors": [
                            "DropnaLabel",
                            {"class": "CSRankNorm", "kwargs": {"fields_group": "label"}}
                        ]
                    }
                },
                "segments": {
                    "train": ["2008-01-01", "2009-12-31"],
                    "valid": ["2010-01-01", "2010-12-31"],
                    "test": ["2011-01-01", "2011-06-30"]
                }
            }
        },
        "record": [{"class": "SignalRecord", "kwargs": {"model": "<MODEL>", "dataset": "<DATASET>"}}]
    })
}

struct Setup {
    dir: tempfile::TempDir,
    run: Run,
    provider: Provider,
    cache: FeatureCache,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    synth(
        &data,
        &SynthConfig {
            instruments: 10,
            start: day("2008-01-01"),
            end: day("2011-12-31"),
            seed: 11,
        },
        &|| {},
    )
    .unwrap();
    let store =
        RecordStore::open(&format!("file:{}", dir.path().join("mlruns").display())).unwrap();
    let cache = FeatureCache::new(dir.path().join("cache"));
    let func = RecordedTask {
        store: store.clone(),
        experiment: "exp".into(),
        exec: Arc::new(TaskTrain {
            provider_uri: Some(data.clone()),
            cache: Some(cache.clone()),
        }),
        phase: Phase::Full,
    };
    let ctx = TaskContext {
        task_id: "t1".into(),
        pool: "p".into(),
        attempt: 1,
        experiment: Some("exp".into()),
        tracking_uri: None,
        cancel: Arc::new(AtomicBool::new(false)),
    };
    let res = func.call(&ctx, &task()).unwrap();
    let run = store.run(res["run_id"].as_str().unwrap()).unwrap();
    Setup {
        provider: Provider::open(&data).unwrap(),
        dir,
        run,
        cache,
    }
}

/// Rows as (day, instrument, score bits), sorted: equality is bit for bit.
fn rows(t: &PredTable) -> Vec<(i64, String, u64)> {
    let mut v: Vec<_> = (0..t.len())
        .map(|r| {
            (
                t.datetimes_ns()[r],
                t.instrument(r).to_string(),
                t.column_at(0)[r].to_bits(),
            )
        })
        .collect();
    v.sort();
    v
}

fn saved_pred(run: &Run) -> PredTable {
    PredTable::from_parquet_bytes(&run.load_artifact_bytes(PRED_ARTIFACT).unwrap()).unwrap()
}

fn between(t: &PredTable, from: &str, to: &str) -> Vec<(i64, String, u64)> {
    let (a, b) = (day_ns(day(from)), day_ns(day(to)));
    rows(t)
        .into_iter()
        .filter(|r| r.0 >= a && r.0 <= b)
        .collect()
}

#[test]
fn a_reloaded_run_predicts_its_test_segment_bit_for_bit_and_new_days_alike() {
    let s = setup();
    let own = saved_pred(&s.run);
    assert!(own.len() > 500, "{} rows", own.len());

    // The test segment, through the default path (default feature cache or none).
    let again = predict_run(&s.run, &s.provider, day("2011-01-01"), day("2011-06-30")).unwrap();
    assert_eq!(rows(&again), rows(&own));

    // Beyond the data the run was trained with: every day of the range has rows, and a day's
    // prediction does not depend on the range it was asked in.
    let p = RunPredictor::load(&s.run).unwrap();
    assert_eq!(p.meta().class, "LGBModel");
    let long = p
        .predict(
            &s.provider,
            day("2011-01-01"),
            day("2011-09-30"),
            Some(&s.cache),
        )
        .unwrap();
    let later = p
        .predict(
            &s.provider,
            day("2011-07-01"),
            day("2011-09-30"),
            Some(&s.cache),
        )
        .unwrap();
    assert_eq!(between(&long, "2011-01-01", "2011-06-30"), rows(&own));
    assert_eq!(between(&long, "2011-07-01", "2011-09-30"), rows(&later));
    let days: std::collections::BTreeSet<i64> = later.datetimes_ns().iter().copied().collect();
    // Weekdays of 2011-07-01 .. 2011-09-30, less days when every instrument was suspended.
    assert!(days.len() >= 60 && days.len() <= 66, "{} days", days.len());
    assert!(later.column_at(0).iter().all(|v| v.is_finite()));
    assert!(later.is_sorted());
}

#[test]
fn inference_applies_the_saved_processor_state_without_refitting() {
    let s = setup();
    let own = saved_pred(&s.run);
    // Shift the fitted medians of RobustZScoreNorm: a predictor that refits would not notice.
    let mut state: Value = s.run.load_json(DATASET_STATE_ARTIFACT).unwrap();
    let fitted = &mut state["infer_processors"][0]["fitted"];
    assert!(
        fitted.is_object(),
        "RobustZScoreNorm saved its statistics: {state}"
    );
    for v in fitted["shift"].as_array_mut().unwrap() {
        *v = json!(v.as_f64().unwrap() + 1.0e3);
    }
    s.run.save_json(DATASET_STATE_ARTIFACT, &state).unwrap();
    let tampered = RunPredictor::load(&s.run)
        .unwrap()
        .predict(
            &s.provider,
            day("2011-01-01"),
            day("2011-06-30"),
            Some(&s.cache),
        )
        .unwrap();
    assert_eq!(tampered.len(), own.len());
    assert_ne!(rows(&tampered), rows(&own));
    // Every present feature is now clipped to -3 (missing ones filled with 0): rows share
    // a handful of predictions.
    let distinct: std::collections::BTreeSet<u64> =
        tampered.column_at(0).iter().map(|v| v.to_bits()).collect();
    let own_distinct: std::collections::BTreeSet<u64> =
        own.column_at(0).iter().map(|v| v.to_bits()).collect();
    assert!(
        distinct.len() * 10 < own_distinct.len(),
        "{} vs {}",
        distinct.len(),
        own_distinct.len()
    );
}

fn truncated(t: &PredTable, last: &str) -> PredTable {
    let cut = day_ns(day(last));
    let mut b = TableBuilder::new(["score"]);
    for r in 0..t.len() {
        if t.datetimes_ns()[r] <= cut {
            b.push_ns(t.datetimes_ns()[r], t.instrument(r), &[t.column_at(0)[r]])
                .unwrap();
        }
    }
    b.finish()
}

#[test]
fn the_updater_extends_a_prediction_with_only_the_days_missing() {
    let s = setup();
    let own = saved_pred(&s.run);
    // As if the run had been trained on 2011-03-31: its prediction stops there.
    let old = truncated(&own, "2011-03-31");
    s.run
        .save_artifact_bytes(PRED_ARTIFACT, &old.to_parquet_bytes().unwrap())
        .unwrap();

    let up = update_pred(
        &s.run,
        &s.provider,
        Some(day("2011-06-30")),
        None,
        Some(&s.cache),
    )
    .unwrap();
    let PredUpdate::Extended {
        from,
        to,
        new_rows,
        rows: n,
    } = up
    else {
        panic!("expected an extension, got {up:?}");
    };
    // 2011-04-01 is a Friday: the first trading day after the last one predicted.
    assert_eq!((from, to), (day("2011-04-01"), day("2011-06-30")));
    assert_eq!(new_rows, own.len() - old.len());
    assert_eq!(n, own.len());
    assert_eq!(rows(&saved_pred(&s.run)), rows(&own));

    // Up to date: nothing predicted, nothing written.
    let before = std::fs::read(artifact_file(&s.run)).unwrap();
    assert_eq!(
        update_pred(
            &s.run,
            &s.provider,
            Some(day("2011-06-30")),
            None,
            Some(&s.cache)
        )
        .unwrap(),
        PredUpdate::UpToDate {
            last: day("2011-06-30")
        }
    );
    assert_eq!(std::fs::read(artifact_file(&s.run)).unwrap(), before);

    // A day after the data is clipped to the data's last day (2011-12-30, a Friday).
    let up = update_pred(
        &s.run,
        &s.provider,
        Some(day("2012-06-01")),
        None,
        Some(&s.cache),
    )
    .unwrap();
    assert!(
        matches!(up, PredUpdate::Extended { from, to, .. }
            if from == day("2011-07-01") && to == day("2011-12-30")),
        "{up:?}"
    );
    let full = saved_pred(&s.run);
    assert_eq!(between(&full, "2011-01-01", "2011-06-30"), rows(&own));
    let direct = RunPredictor::load(&s.run)
        .unwrap()
        .predict(
            &s.provider,
            day("2011-07-01"),
            day("2011-12-30"),
            Some(&s.cache),
        )
        .unwrap();
    assert_eq!(between(&full, "2011-07-01", "2011-12-30"), rows(&direct));

    // from_date re-predicts from that day on, keeping the rows before it.
    let up = update_pred(
        &s.run,
        &s.provider,
        None,
        Some(day("2011-12-01")),
        Some(&s.cache),
    )
    .unwrap();
    assert!(
        matches!(up, PredUpdate::Extended { from, .. } if from == day("2011-12-01")),
        "{up:?}"
    );
    assert_eq!(rows(&saved_pred(&s.run)), rows(&full));
    // The artifact was replaced by a rename: no temporary file is left beside it.
    let dir = artifact_file(&s.run).parent().unwrap().to_path_buf();
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.contains("pred"))
        .collect();
    assert_eq!(names, vec![PRED_ARTIFACT.to_string()]);
}

fn artifact_file(run: &Run) -> std::path::PathBuf {
    let uri = &run.info().artifact_uri;
    Path::new(uri.strip_prefix("file://").unwrap()).join(PRED_ARTIFACT)
}

#[test]
fn bad_inference_requests_say_what_is_wrong() {
    let s = setup();
    let p = RunPredictor::load(&s.run).unwrap();
    let err = p
        .predict(&s.provider, day("2011-06-30"), day("2011-01-01"), None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("ends before it starts"), "{err}");
    let err = p
        .predict(&s.provider, day("2013-01-01"), day("2013-02-01"), None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no trading day between 2013-01-01 and 2013-02-01"),
        "{err}"
    );

    // A run without the fitted processor state (not trained by task_train) names what it lacks.
    let store =
        RecordStore::open(&format!("file:{}", s.dir.path().join("mlruns").display())).unwrap();
    let bare = store.experiment("exp").unwrap().start_run(None).unwrap();
    bare.save_json("task.json", &task()).unwrap();
    let err = RunPredictor::load(&bare).err().unwrap().to_string();
    assert!(err.contains(DATASET_STATE_ARTIFACT), "{err}");
    assert!(err.contains(bare.id()), "{err}");
}
