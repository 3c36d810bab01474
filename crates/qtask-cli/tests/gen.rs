//! `qtask gen` through the real binary: Qlib's fixture, flags, and bad input.

use std::path::{Path, PathBuf};
use std::process::Output;

mod common;

use serde_json::Value;

fn data() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/rolling")
}

fn qtask(args: &[&str], cwd: &Path) -> Output {
    common::cmd()
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("run qtask")
}

fn stderr_line(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "expected one line on stderr, got: {err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    err.trim_end().to_string()
}

#[test]
fn reproduces_every_fixture_case() {
    let dir = data();
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("expected_rolling_csi100_lgb.json")).unwrap(),
    )
    .unwrap();
    let provider = dir.join("provider");
    let template = dir.join("template_csi100_lgb.json");
    for case in expected["cases"].as_array().unwrap() {
        let r = &case["rolling"];
        let step = r.get("step").map_or("40".to_string(), |s| s.to_string());
        let mut args = vec![
            "gen".to_string(),
            template.to_string_lossy().to_string(),
            "--provider-uri".into(),
            provider.to_string_lossy().to_string(),
            "--rolling-step".into(),
            step,
        ];
        if let Some(rt) = r.get("rtype").and_then(Value::as_str) {
            args.extend(["--rtype".into(), rt.to_string()]);
        }
        if let Some(t) = r.get("trunc_days") {
            args.extend(["--trunc-days".into(), t.to_string()]);
        }
        if !case["handler_mod"].as_bool().unwrap() {
            args.push("--no-handler-mod".into());
        }
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = qtask(&argv, &dir);
        assert!(
            out.status.success(),
            "{}: {}",
            case["name"],
            String::from_utf8_lossy(&out.stderr)
        );
        let got: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(got, case["tasks"], "{}", case["name"]);
    }
}

#[test]
fn out_file_env_provider_and_workflow_config() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("workflow.yaml");
    std::fs::write(
        &cfg,
        format!(
            "qlib_init:\n  provider_uri: {}\ntask:\n  model: {{class: LinearModel}}\n  dataset:\n    kwargs:\n      \
             handler: {{class: Alpha158, kwargs: {{end_time: 2020-08-01}}}}\n      segments:\n        \
             train: [2008-01-01, 2014-12-31]\n        test: [2017-01-01, 2020-08-01]\n",
            data().join("provider").display()
        ),
    )
    .unwrap();
    let out = qtask(
        &[
            "gen",
            "workflow.yaml",
            "--rolling-step",
            "1Y",
            "--horizons",
            "1,5",
            "--grid",
            "model.kwargs.alpha=0.1,1",
            "--out",
            "tasks.json",
        ],
        tmp.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("wrote 16 task(s) to tasks.json ("), "{err}");
    let tasks: Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("tasks.json")).unwrap())
            .unwrap();
    let tasks = tasks.as_array().unwrap();
    // 2 horizons x 4 yearly windows (2017..2020) x 2 alphas.
    assert_eq!(tasks.len(), 16);
    assert_eq!(
        tasks[0]["dataset"]["kwargs"]["segments"]["test"],
        serde_json::json!(["2017-01-02", "2017-12-29"])
    );
    assert_eq!(
        tasks[15]["dataset"]["kwargs"]["segments"]["test"][0],
        "2020-01-02"
    );
    assert_eq!(tasks[15]["extra"]["horizon"], 5);
    assert_eq!(tasks[15]["model"]["kwargs"]["alpha"], 1);
}

#[test]
fn no_generator_flags_prints_the_template() {
    let dir = data();
    let out = qtask(&["gen", "template_csi100_lgb.json"], &dir);
    assert!(out.status.success());
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();
    let template: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("template_csi100_lgb.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(got, Value::Array(vec![template]));
}

#[test]
fn bad_input_gives_one_line_and_nonzero_exit() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path();
    let provider = data().join("provider");
    let prov = provider.to_str().unwrap();
    let write = |name: &str, text: &str| std::fs::write(p.join(name), text).unwrap();
    write("bad.yaml", "task:\n  model: [a, b\n  dataset: 1\n");
    write(
        "noseg.yaml",
        "model: {class: LGBModel}\ndataset: {kwargs: {}}\n",
    );
    write(
        "late.yaml",
        "dataset: {kwargs: {segments: {train: [2008-01-01, 2010-01-01], test: [2030-01-01, null]}}}\n",
    );
    write(
        "notdate.yaml",
        "dataset: {kwargs: {segments: {train: [2008-01-01, soon], test: [2017-01-01, null]}}}\n",
    );
    write(
        "ok.yaml",
        "dataset: {kwargs: {segments: {train: [2008-01-01, 2010-01-01], test: [2017-01-01, null]}}}\n",
    );
    std::fs::create_dir_all(p.join("empty/calendars")).unwrap();
    write("empty/calendars/day.txt", "");

    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "gen",
                "bad.yaml",
                "--rolling-step",
                "40",
                "--provider-uri",
                prov,
            ],
            "bad.yaml:3:",
        ),
        (
            vec![
                "gen",
                "noseg.yaml",
                "--rolling-step",
                "40",
                "--provider-uri",
                prov,
            ],
            "dataset.kwargs.segments",
        ),
        (
            vec![
                "gen",
                "late.yaml",
                "--rolling-step",
                "40",
                "--provider-uri",
                prov,
            ],
            "after the last trading day",
        ),
        (
            vec![
                "gen",
                "notdate.yaml",
                "--rolling-step",
                "40",
                "--provider-uri",
                prov,
            ],
            "`soon` is not a date",
        ),
        (
            vec![
                "gen",
                "ok.yaml",
                "--rolling-step",
                "40",
                "--rtype",
                "bogus",
                "--provider-uri",
                prov,
            ],
            "bogus",
        ),
        (
            vec![
                "gen",
                "ok.yaml",
                "--rolling-step",
                "0",
                "--provider-uri",
                prov,
            ],
            "bad rolling step",
        ),
        (
            vec![
                "gen",
                "ok.yaml",
                "--rolling-step",
                "40",
                "--provider-uri",
                "nowhere",
            ],
            "file not found",
        ),
        (
            vec![
                "gen",
                "ok.yaml",
                "--rolling-step",
                "40",
                "--provider-uri",
                "empty",
            ],
            "empty",
        ),
        (vec!["gen", "missing.yaml"], "cannot read missing.yaml"),
        (
            vec!["gen", "ok.yaml", "--grid", "model.kwargs.loss"],
            "PATH=V1,V2",
        ),
    ];
    for (args, needle) in cases {
        let out = qtask(&args, p);
        assert!(!out.status.success(), "{args:?} should fail");
        let line = stderr_line(&out);
        assert!(
            line.contains(needle),
            "{args:?}: `{line}` does not mention `{needle}`"
        );
        assert!(out.stdout.is_empty(), "{args:?} printed tasks");
    }
}

/// `--help` says which values an enum flag takes, and the built-in task functions.
#[test]
fn help_lists_the_values_of_enum_flags() {
    let tmp = tempfile::tempdir().unwrap();
    let help = |args: &[&str]| {
        let out = qtask(args, tmp.path());
        assert!(out.status.success(), "{args:?}");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let train = help(&["train", "--help"]);
    assert!(
        train.contains("[possible values: r, rm, delay-r, delay-rm]"),
        "{train}"
    );
    assert!(
        train.contains("[possible values: expanding, sliding]"),
        "{train}"
    );
    assert!(
        train.contains("task_train") && train.contains("echo"),
        "{train}"
    );
    let worker = help(&["worker", "--help"]);
    assert!(
        worker.contains("[possible values: waiting, running, part_done, done, failed]"),
        "{worker}"
    );
    let out = qtask(
        &[
            "train",
            "missing.yaml",
            "--experiment",
            "e",
            "--trainer",
            "x",
        ],
        tmp.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("possible values: r, rm, delay-r, delay-rm"),
        "{err}"
    );
    // Qlib's short names still parse.
    let out = qtask(&["gen", "missing.yaml", "--rtype", "sd"], tmp.path());
    assert!(
        stderr_line(&out).contains("missing.yaml"),
        "sd is accepted; the missing file is the error"
    );
}
