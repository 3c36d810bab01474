//! `qtask run` on Qlib's own workflow configs (`tests/data/qlib_configs/`): a config qtask
//! cannot honour fails before any run starts, with one line naming the file and the key; a
//! config's `experiment_name` is where the run goes unless `--experiment` says otherwise.

use std::path::{Path, PathBuf};
use std::process::Output;

mod common;
use common::{fails_with, ok};

use serde_json::Value;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn qtask(dir: &Path, args: &[&str]) -> Output {
    common::cmd()
        .args(args)
        .current_dir(dir)
        .env("QTASK_CACHE_DIR", dir.join("cache"))
        .output()
        .expect("run qtask")
}

#[test]
fn refused_configs_name_the_file_and_the_key_and_start_no_run() {
    let dir = tempfile::tempdir().unwrap();
    for (name, key) in [
        (
            "workflow_config_lightgbm_Alpha158_multi_freq.yaml",
            "dataset.kwargs.handler.kwargs.freq",
        ),
        (
            "workflow_config_catboost_Alpha158.yaml",
            "model.class: `CatBoostModel` is refused",
        ),
    ] {
        let config = repo().join("tests/data/qlib_configs").join(name);
        let out = qtask(
            dir.path(),
            &[
                "run",
                config.to_str().unwrap(),
                "--tracking-uri",
                "file:mlruns",
            ],
        );
        fails_with(&out, &format!("{}: {key}", config.display()));
    }
    assert!(
        !dir.path().join("mlruns").exists(),
        "no run store was even opened"
    );
    // What the refusal points to: the same config through an external command, which reads
    // the task itself (here `cat` hands it back as the result).
    let config = repo().join("tests/data/qlib_configs/workflow_config_catboost_Alpha158.yaml");
    let out = ok(&qtask(
        dir.path(),
        &[
            "run",
            config.to_str().unwrap(),
            "--exec",
            "cat",
            "--tracking-uri",
            "file:mlruns",
            "--json",
        ],
    ));
    let runs: Vec<Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(runs[0]["metrics"]["model.kwargs.max_depth"], 6.0);
}

#[test]
fn experiment_name_of_the_config_unless_the_flag_says_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&qtask(
        d,
        &[
            "data",
            "synth",
            "--out",
            "data",
            "--instruments",
            "6",
            "--start",
            "2008-01-01",
            "--end",
            "2010-12-31",
            "--seed",
            "5",
        ],
    ));
    std::fs::write(
        d.join("w.yaml"),
        r#"qlib_init: {provider_uri: data, region: cn}
experiment_name: from_config
task:
    model: {class: LinearModel, module_path: qlib.contrib.model.linear, kwargs: {estimator: ols}}
    dataset:
        class: DatasetH
        module_path: qlib.data.dataset
        kwargs:
            handler:
                class: Alpha158
                module_path: qlib.contrib.data.handler
                kwargs: {start_time: 2008-01-01, end_time: 2010-12-31, instruments: all,
                         fit_start_time: 2008-01-01, fit_end_time: 2009-06-30,
                         infer_processors: [{class: RobustZScoreNorm, kwargs: {fields_group: feature}},
                                            {class: Fillna, kwargs: {fields_group: feature}}]}
            segments:
                train: [2008-01-01, 2009-06-30]
                test: [2010-01-01, 2010-12-31]
    record:
        - {class: SignalRecord, module_path: qlib.workflow.record_temp}
"#,
    )
    .unwrap();
    let run = |extra: &[&str]| -> Value {
        let mut args = vec!["run", "w.yaml", "--tracking-uri", "file:mlruns", "--json"];
        args.extend_from_slice(extra);
        serde_json::from_str(&ok(&qtask(d, &args))).unwrap()
    };
    assert_eq!(run(&[])[0]["experiment"], "from_config");
    assert_eq!(run(&["--experiment", "flag"])[0]["experiment"], "flag");
}
