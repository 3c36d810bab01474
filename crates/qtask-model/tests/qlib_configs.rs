//! Qlib's own benchmark workflow configs (`tests/data/qlib_configs/`, byte-for-byte copies)
//! load and pass every config check, or fail with one line naming the key.
//! Their `PortAnaRecord` and their model classes (LGBModel, LinearModel, XGBModel,
//! DEnsembleModel) are checked as written.

use std::path::PathBuf;

use qtask_core::load_template;
use qtask_model::check_task;
use qtask_model::model::SUPPORTED_MODELS;
use qtask_model::records::RecordSpec;
use serde_json::{Value, json};

fn config(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data/qlib_configs")
        .join(name)
}

/// The one task of a config, with its PortAnaRecord and model class as Qlib wrote them.
fn checkable_task(name: &str) -> Value {
    let t = load_template(&config(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(t.tasks.len(), 1, "{name}");
    let task = t.tasks[0].clone();
    let records = task["record"].as_array().unwrap();
    let port = records
        .iter()
        .find(|r| r["class"] == "PortAnaRecord")
        .expect("every benchmark config has a PortAnaRecord");
    RecordSpec::from_value(port).unwrap_or_else(|e| panic!("{name}: PortAnaRecord: {e}"));
    let class = task["model"]["class"].as_str().unwrap();
    assert!(SUPPORTED_MODELS.contains(&class), "{name}: {class}");
    task
}

#[test]
fn benchmark_configs_load_and_pass_the_checks() {
    for name in [
        "workflow_config_lightgbm_Alpha158.yaml",
        "workflow_config_lightgbm_Alpha360_csi500.yaml",
        "workflow_config_lightgbm_configurable_dataset.yaml",
        "workflow_config_xgboost_Alpha158.yaml",
        "workflow_config_linear_Alpha158_csi500.yaml",
        "workflow_config_doubleensemble_Alpha158.yaml",
        "workflow_config_doubleensemble_Alpha360_csi500.yaml",
    ] {
        let t = load_template(&config(name)).unwrap();
        assert_eq!(t.region.as_deref(), Some("cn"), "{name}");
        let home = std::env::var("HOME").unwrap();
        assert_eq!(
            t.provider_uri,
            Some(PathBuf::from(home).join(".qlib/qlib_data/cn_data")),
            "{name}"
        );
        assert_eq!(t.experiment_name, None, "{name}");
        if let Err(e) = check_task(&checkable_task(name)) {
            panic!("{name}: {e}");
        }
    }
}

#[test]
fn the_configs_say_what_they_mean() {
    // Anchors and the handler's kwargs came through: csi500, Alpha360 with Qlib's label.
    let t = load_template(&config(
        "workflow_config_doubleensemble_Alpha360_csi500.yaml",
    ))
    .unwrap();
    let h = &t.tasks[0]["dataset"]["kwargs"]["handler"];
    assert_eq!(h["kwargs"]["instruments"], "csi500");
    let cfg = qtask_data::dataset::DatasetConfig::from_value(&t.tasks[0]["dataset"]).unwrap();
    assert_eq!(cfg.handler.features.len(), 360);
    assert_eq!(
        cfg.handler.labels[0].1,
        "Ref($close, -2) / Ref($close, -1) - 1"
    );
    assert!(cfg.handler.infer_processors.is_empty());
    // CRLF line ends (as the file has in Qlib) read like LF.
    let t = load_template(&config("workflow_config_doubleensemble_Alpha158.yaml")).unwrap();
    assert_eq!(t.tasks[0]["model"]["kwargs"]["epochs"], 28);
    assert_eq!(t.tasks[0]["model"]["kwargs"]["enable_sr"], true);
}

#[test]
fn configs_qtask_cannot_run_fail_with_one_line_naming_the_key() {
    for (name, want) in [
        (
            "workflow_config_lightgbm_Alpha158_multi_freq.yaml",
            "dataset.kwargs.handler.kwargs.freq: `{\"label\":\"day\",\"feature\":\"1min\"}` is \
             refused: qtask reads daily data only",
        ),
        (
            "workflow_config_lightgbm_multi_freq.yaml",
            "unknown handler class `Avg15minHandler` at dataset.kwargs.handler.class",
        ),
        (
            "workflow_config_catboost_Alpha158.yaml",
            "model.class: `CatBoostModel` is refused",
        ),
        (
            "workflow_config_gru_Alpha158.yaml",
            "model.class: `GRU` is refused",
        ),
    ] {
        let t = load_template(&config(name)).unwrap();
        let err = check_task(&t.tasks[0]).unwrap_err().to_string();
        assert!(err.starts_with(want), "{name}: {err}");
        assert_eq!(err.lines().count(), 1, "{name}: {err}");
    }
    // The GRU config's dataset alone is refused too (time-series samples).
    let t = load_template(&config("workflow_config_gru_Alpha158.yaml")).unwrap();
    let err = qtask_data::dataset::DatasetConfig::from_value(&t.tasks[0]["dataset"])
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("dataset.class: `TSDatasetH` is refused"),
        "{err}"
    );
}

#[test]
fn task_level_keys_and_model_modules() {
    let task = checkable_task("workflow_config_lightgbm_Alpha158.yaml");
    let mut t = task.clone();
    t["reweighter"] = json!({"class": "MyReweighter"});
    assert!(
        check_task(&t)
            .unwrap_err()
            .to_string()
            .starts_with("reweighter is refused")
    );
    let mut t = task.clone();
    t["recrod"] = json!([]);
    assert_eq!(
        check_task(&t).unwrap_err().to_string(),
        "task.recrod: unknown key (a task has model, dataset and record)"
    );
    let mut t = task.clone();
    t["model"]["module_path"] = json!("my_models");
    assert!(
        check_task(&t)
            .unwrap_err()
            .to_string()
            .starts_with("model.module_path: `my_models` is refused: LGBModel is Qlib's")
    );
    // Placeholders are filled before the dataset is checked, as task_train fills them.
    let mut t = task;
    t["dataset"]["kwargs"]["handler"]["kwargs"]["fit_end_time"] =
        json!("<dataset.kwargs.segments.train.1>");
    check_task(&t).unwrap();
    t["dataset"]["kwargs"]["handler"]["kwargs"]["fit_end_time"] =
        json!("<dataset.kwargs.segments.trian.1>");
    assert!(
        check_task(&t)
            .unwrap_err()
            .to_string()
            .contains("names nothing in the task")
    );
}
