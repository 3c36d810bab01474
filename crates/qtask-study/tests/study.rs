//! The rolling study as a library: `Study::run` on a small synthetic market, no binary.

use std::path::Path;

use qtask_core::{GenSettings, RollStep, RollType, RollingGen, TimeAdjuster, task_generator};
use qtask_data::NaiveDate;
use qtask_data::synth::{SynthConfig, synth};
use qtask_record::RecordStore;
use qtask_runner::{StopFlag, TrainerKind};
use qtask_study::{Quiet, Study, StudyConfig, StudyError, StudyResult};
use qtask_table::PredTable;
use serde_json::{Value, json};

fn market(dir: &Path) {
    let cfg = SynthConfig {
        instruments: 10,
        start: NaiveDate::from_ymd_opt(2008, 1, 1).unwrap(),
        end: NaiveDate::from_ymd_opt(2011, 12, 31).unwrap(),
        seed: 3,
    };
    synth(dir, &cfg, &|| {}).unwrap();
}

fn template(provider: &Path, model_class: &str) -> Value {
    json!({
        "qlib_init": {"provider_uri": provider.display().to_string()},
        "task": {
            "model": {"class": model_class, "module_path": "qlib.contrib.model.gbdt",
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
                            "instruments": "all"
                        }
                    },
                    "segments": {
                        "train": ["2008-01-01", "2009-12-31"],
                        "valid": ["2010-01-01", "2010-12-31"],
                        "test": ["2011-01-01", "2011-06-30"]
                    }
                }
            },
            "record": [
                {"class": "SignalRecord", "kwargs": {"model": "<MODEL>", "dataset": "<DATASET>"}},
                {"class": "SigAnaRecord", "kwargs": {"ana_long_short": false, "ann_scaler": 252}}
            ]
        }
    })
}

struct Setup {
    dir: tempfile::TempDir,
    config: StudyConfig,
}

fn setup(model_class: &str, trainer: TrainerKind) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    market(&data);
    let path = dir.path().join("study.json");
    std::fs::write(&path, template(&data, model_class).to_string()).unwrap();
    let config = StudyConfig {
        generators: GenSettings {
            rolling_step: Some(RollStep::Days(40)),
            rtype: RollType::Sliding,
            ..GenSettings::default()
        },
        trainer,
        store: format!("sqlite:{}", dir.path().join("qtask.db").display()),
        tracking_uri: Some(format!("file:{}", dir.path().join("mlruns").display())),
        out: dir.path().join("out"),
        ..StudyConfig::new(path)
    };
    Setup { dir, config }
}

fn test_segment(task: &Value) -> Value {
    task.pointer("/dataset/kwargs/segments/test")
        .cloned()
        .unwrap()
}

#[test]
fn a_rolling_study_runs_as_a_library() {
    let s = setup("LGBModel", TrainerKind::R);
    let study = Study::open(s.config.clone()).unwrap();
    assert_eq!(study.experiment(), "study");
    let done = study.run(&StopFlag::new(), &Quiet).unwrap();

    // The tasks are the rolling generator's, computed here on its own.
    let ta = TimeAdjuster::from_provider(&s.dir.path().join("data")).unwrap();
    let mut rolling = RollingGen::new(&ta);
    rolling.step = RollStep::Days(40);
    rolling.rtype = RollType::Sliding;
    let tmpl = qtask_core::load_template(&s.config.template).unwrap();
    let expected = task_generator(&tmpl.tasks, &[&rolling]).unwrap();
    assert!(expected.len() >= 3, "{} windows", expected.len());
    assert_eq!(done.tasks, expected);

    // One finished window per task, in task order, each predicting its own test segment.
    assert_eq!(done.windows.len(), expected.len());
    let mut rows = 0;
    for (w, t) in done.windows.iter().zip(&expected) {
        assert_eq!(w.task, *t);
        assert_eq!(w.info.status.as_str(), "FINISHED");
        let pred = w.pred.as_ref().expect("each window saved a prediction");
        let (first, last) = pred.datetime_range().unwrap();
        let seg = test_segment(t);
        assert!(first.date().to_string().as_str() >= seg[0].as_str().unwrap());
        if let Some(end) = seg[1].as_str() {
            assert!(last.date().to_string().as_str() <= end);
        }
        assert!(w.metric("IC").is_finite());
        rows += pred.len();
    }
    // Sliding test windows do not overlap: the ensemble stitches every row once.
    assert_eq!(done.ensemble.pred.len(), rows);

    // What was written is what was returned.
    let written = PredTable::read_parquet(&done.paths.pred).unwrap();
    assert_eq!(written.len(), done.ensemble.pred.len());
    assert_eq!(written.column_at(0), done.ensemble.pred.column_at(0));
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(&done.paths.summary).unwrap()).unwrap();
    assert_eq!(summary["tasks"], json!(expected.len()));
    assert_eq!(summary["ensemble"]["rows"], json!(rows));
    let daily = done.daily_ic.as_ref().expect("windows had labels");
    let days: std::collections::BTreeSet<i64> = written.datetimes_ns().iter().copied().collect();
    assert_eq!(daily.ic.len(), days.len());
    let html = std::fs::read_to_string(&done.paths.report).unwrap();
    for t in &expected {
        assert!(html.contains(test_segment(t)[0].as_str().unwrap()));
    }
}

#[test]
fn the_pool_trainer_does_not_train_a_done_task_twice() {
    let mut s = setup("LGBModel", TrainerKind::Rm);
    s.config.generators.rolling_step = Some(RollStep::Days(70));
    let first = Study::open(s.config.clone())
        .unwrap()
        .run(&StopFlag::new(), &Quiet)
        .unwrap();
    let again = Study::open(s.config.clone())
        .unwrap()
        .run(&StopFlag::new(), &Quiet)
        .unwrap();
    let ids = |r: &StudyResult| -> Vec<String> {
        r.windows.iter().map(|w| w.info.run_id.clone()).collect()
    };
    assert_eq!(ids(&first), ids(&again));
    let store = RecordStore::open(s.config.tracking_uri.as_deref().unwrap()).unwrap();
    let runs = store.experiment("study").unwrap().runs(None).unwrap();
    assert_eq!(runs.len(), first.windows.len());
    assert!(first.windows.iter().all(|w| w.task_id.is_some()));
}

#[test]
fn a_failing_task_fails_the_study_with_its_error() {
    let s = setup("NoSuchModel", TrainerKind::R);
    let err = Study::open(s.config.clone())
        .unwrap()
        .run(&StopFlag::new(), &Quiet)
        .unwrap_err();
    assert!(matches!(err, StudyError::TasksFailed { failed, total, .. } if failed == total));
    assert!(
        err.to_string()
            .contains("unknown model class `NoSuchModel`"),
        "{err}"
    );
    assert!(!s.config.out.join("pred.parquet").exists());
}

#[test]
fn a_port_ana_record_backtests_the_ensembled_prediction() {
    let mut s = setup("LGBModel", TrainerKind::R);
    s.config.generators.rolling_step = Some(RollStep::Days(70));
    let mut tmpl: Value =
        serde_json::from_str(&std::fs::read_to_string(&s.config.template).unwrap()).unwrap();
    let port = json!({"class": "PortAnaRecord", "module_path": "qlib.workflow.record_temp",
        "kwargs": {"config": {
            "strategy": {"class": "TopkDropoutStrategy",
                         "module_path": "qlib.contrib.strategy.signal_strategy",
                         "kwargs": {"signal": "<PRED>", "topk": 3, "n_drop": 1}},
            "backtest": {"start_time": null, "end_time": null, "account": 10_000_000,
                         "benchmark": "SH000300",
                         "exchange_kwargs": {"limit_threshold": 0.095, "deal_price": "close",
                                             "open_cost": 0.0005, "close_cost": 0.0015,
                                             "min_cost": 5}}}}});
    tmpl["task"]["record"]
        .as_array_mut()
        .unwrap()
        .push(port.clone());
    std::fs::write(&s.config.template, tmpl.to_string()).unwrap();

    let done = Study::open(s.config.clone())
        .unwrap()
        .run(&StopFlag::new(), &Quiet)
        .unwrap();
    let bt = done
        .analysis
        .backtest
        .as_ref()
        .expect("a backtest of the ensemble");
    // The backtest is of the ensembled prediction as written, with the record's config.
    let provider = qtask_data::Provider::open(s.dir.path().join("data")).unwrap();
    let pred = PredTable::read_parquet(&done.paths.pred).unwrap();
    let cfg = qtask_study::port_analysis(&json!({"record": [port]}))
        .unwrap()
        .unwrap();
    let direct = qtask_backtest::backtest(&provider, &pred, &cfg).unwrap();
    assert_eq!(bt.report, direct.report);
    let dir = done.paths.backtest.as_ref().unwrap();
    for f in ["report_normal.parquet", "positions.parquet", "risk.json"] {
        assert!(dir.join(f).is_file(), "{f}");
    }
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(&done.paths.summary).unwrap()).unwrap();
    assert!(summary["backtest"]["excess_return_with_cost"]["annualized_return"].is_number());
    assert!(done.analysis.signal.is_some());
    let html = std::fs::read_to_string(&done.paths.report).unwrap();
    assert!(html.contains("Backtest: risk analysis"));
}
