//! `qtask exp`: the real binary on a file store written with qtask-record.

use std::path::Path;
use std::process::Output;

mod common;

use qtask_record::{RecordStore, RunStatus};
use serde_json::Value;

fn qtask(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = common::cmd();
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn json_of(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn stderr_line(out: &Output) -> String {
    let text = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(text.lines().count(), 1, "not one line: {text}");
    text.trim_end().to_string()
}

/// Two runs in `rolling` (one finished with params, metrics, tags, artifacts; one failed).
fn fill(root: &Path) -> (String, String) {
    let store = RecordStore::open(&format!("file:{}", root.display())).unwrap();
    let exp = store.experiment("rolling").unwrap();
    let mut done = exp.start_run(Some("task 1")).unwrap();
    done.log_params(&serde_json::json!({"model": {"class": "LGBModel"}}))
        .unwrap();
    done.log_metric("IC", 0.25, 0).unwrap();
    done.set_tag("_id in TaskManager", "t1").unwrap();
    done.save_artifact_bytes("sig_analysis/ic.parquet", b"PAR1")
        .unwrap();
    done.end(RunStatus::Finished).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(15));
    let mut failed = exp.start_run(Some("task 2")).unwrap();
    failed.end(RunStatus::Failed).unwrap();
    (done.id().to_string(), failed.id().to_string())
}

#[test]
fn list_runs_show_and_rm() {
    let tmp = tempfile::tempdir().unwrap();
    let (done, failed) = fill(tmp.path());
    let uri = format!("file:{}", tmp.path().display());

    let list = json_of(&qtask(
        &["exp", "list", "--json", "--tracking-uri", &uri],
        &[],
    ));
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["rolling", "Default"]);

    let runs = json_of(&qtask(
        &["exp", "--tracking-uri", &uri, "runs", "rolling", "--json"],
        &[],
    ));
    let ids: Vec<&str> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["run_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [failed.as_str(), done.as_str()]);
    let finished = json_of(&qtask(
        &[
            "exp",
            "runs",
            "rolling",
            "--status",
            "finished",
            "--json",
            "--tracking-uri",
            &uri,
        ],
        &[],
    ));
    assert_eq!(finished.as_array().unwrap().len(), 1);
    assert_eq!(finished[0]["run_id"], done.as_str());
    assert_eq!(finished[0]["status"], "FINISHED");

    let show = json_of(&qtask(
        &["exp", "show", &done, "--json", "--tracking-uri", &uri],
        &[],
    ));
    assert_eq!(show["info"]["run_name"], "task 1");
    assert_eq!(show["params"]["model.class"], "LGBModel");
    assert_eq!(show["metrics"]["IC"]["value"], 0.25);
    assert_eq!(show["tags"]["_id in TaskManager"], "t1");
    assert_eq!(show["artifacts"][0]["path"], "sig_analysis/ic.parquet");
    assert_eq!(show["artifacts"][0]["size"], 4);

    // Human output names what matters.
    let out = qtask(&["exp", "show", &done, "--tracking-uri", &uri], &[]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("status     FINISHED"), "{text}");
    assert!(text.contains("model.class  LGBModel"), "{text}");
    assert!(text.contains("sig_analysis/ic.parquet  4 B"), "{text}");
    let out = qtask(&["exp", "runs", "rolling", "--tracking-uri", &uri], &[]);
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("RUN ID"), "{text}");
    assert!(
        lines[1].starts_with(&failed) && lines[1].contains("FAILED"),
        "{text}"
    );

    // rm: gone from the listings, kept in .trash.
    let removed = json_of(&qtask(
        &["exp", "rm", "rolling", "--json", "--tracking-uri", &uri],
        &[],
    ));
    let id = removed["id"].as_str().unwrap();
    assert!(tmp.path().join(".trash").join(id).join(&done).is_dir());
    let list = json_of(&qtask(
        &["exp", "list", "--json", "--tracking-uri", &uri],
        &[],
    ));
    assert_eq!(list.as_array().unwrap().len(), 1);
    let out = qtask(&["exp", "rm", "rolling", "--tracking-uri", &uri], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr_line(&out).contains("no experiment `rolling`"));
}

#[test]
fn tracking_uri_comes_from_the_environment() {
    let tmp = tempfile::tempdir().unwrap();
    fill(tmp.path());
    let uri = format!("file:{}", tmp.path().display());
    for var in ["QTASK_TRACKING_URI", "MLFLOW_TRACKING_URI"] {
        let list = json_of(&qtask(&["exp", "list", "--json"], &[(var, &uri)]));
        assert_eq!(list.as_array().unwrap().len(), 2, "{var}");
    }
    // QTASK_TRACKING_URI wins over MLflow's variable.
    let list = json_of(&qtask(
        &["exp", "list", "--json"],
        &[
            ("QTASK_TRACKING_URI", &uri),
            ("MLFLOW_TRACKING_URI", "file:/nonexistent/x"),
        ],
    ));
    assert_eq!(list.as_array().unwrap().len(), 2);
}

#[test]
fn bad_input_is_one_line_and_exit_1() {
    let tmp = tempfile::tempdir().unwrap();
    let uri = format!("file:{}", tmp.path().join("missing").display());
    let out = qtask(&["exp", "list", "--tracking-uri", &uri], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr_line(&out).starts_with("error: no run store at"));
    assert!(!tmp.path().join("missing").exists());

    let out = qtask(
        &["exp", "list", "--tracking-uri", "http://127.0.0.1:1"],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    let line = stderr_line(&out);
    assert!(
        line.contains("cannot reach MLflow tracking server at http://127.0.0.1:1/"),
        "{line}"
    );

    let out = qtask(&["exp", "list", "--tracking-uri", "sqlite:///x.db"], &[]);
    assert!(stderr_line(&out).contains("scheme `sqlite` is not supported"));

    fill(tmp.path());
    let uri = format!("file:{}", tmp.path().display());
    let out = qtask(
        &[
            "exp",
            "show",
            "0123456789abcdef0123456789abcdef",
            "--tracking-uri",
            &uri,
        ],
        &[],
    );
    assert_eq!(
        stderr_line(&out),
        "error: no run `0123456789abcdef0123456789abcdef`"
    );
    let out = qtask(
        &[
            "exp",
            "runs",
            "rolling",
            "--status",
            "done",
            "--tracking-uri",
            &uri,
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr_line(&out).contains("done"));

    // A corrupt experiment folder is skipped (as MLflow does) with one warning line naming
    // the file; nothing rewritten.
    let exp_dir = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| std::fs::read_to_string(p.join("meta.yaml")).is_ok_and(|m| m.contains("rolling")))
        .unwrap();
    std::fs::write(exp_dir.join("meta.yaml"), "{{{").unwrap();
    let out = qtask(&["exp", "list", "--tracking-uri", &uri], &[]);
    assert_eq!(out.status.code(), Some(0));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("rolling"));
    let line = stderr_line(&out);
    assert!(
        line.starts_with("warning: skipped experiment ")
            && line.contains("meta.yaml: corrupt experiment metadata"),
        "{line}"
    );
    assert_eq!(
        std::fs::read_to_string(exp_dir.join("meta.yaml")).unwrap(),
        "{{{"
    );
}
