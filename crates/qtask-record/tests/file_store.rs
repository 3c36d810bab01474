//! The MLflow file-store backend: every operation, the on-disk layout, concurrency, bad input,
//! and (with `QTASK_TEST_MLFLOW=1`) real MLflow reading what qtask wrote and vice versa.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use qtask_record::{RecordError, RecordStore, RunStatus};

fn open(dir: &Path) -> RecordStore {
    RecordStore::open(&format!("file:{}", dir.display())).unwrap()
}

fn exp_dir(root: &Path, store: &RecordStore, name: &str) -> std::path::PathBuf {
    root.join(store.find_experiment(name).unwrap().unwrap().id())
}

#[test]
fn every_operation_on_the_file_store() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("mlruns");
    let store = open(&root);
    let written = common::conformance::exercise(&store);

    // The layout MLflow's FileStore uses (checked against MLflow 3.17's own output).
    let exp = exp_dir(&root, &store, &written.experiment);
    let run = exp.join(&written.finished);
    assert!(root.join("0/meta.yaml").is_file(), "Default experiment");
    assert!(root.join(".trash").is_dir());
    let meta = fs::read_to_string(run.join("meta.yaml")).unwrap();
    for line in [
        "status: 3\n",
        "source_type: 4\n",
        "tags: []\n",
        "lifecycle_stage: \"active\"\n",
        &format!("run_id: \"{}\"\n", written.finished),
        &format!("run_uuid: \"{}\"\n", written.finished),
        &format!("artifact_uri: \"file://{}/artifacts\"\n", run.display()),
    ] {
        assert!(meta.contains(line), "{line:?} not in {meta}");
    }
    assert_eq!(
        fs::read_to_string(run.join("params/model.kwargs.lr")).unwrap(),
        "0.1"
    );
    assert_eq!(
        fs::read_to_string(run.join("tags/_id in TaskManager")).unwrap(),
        "6512ab"
    );
    let ic = fs::read_to_string(run.join("metrics/IC")).unwrap();
    let fields: Vec<Vec<&str>> = ic.lines().map(|l| l.split(' ').collect()).collect();
    assert_eq!(fields.len(), 2);
    assert_eq!(&fields[0][1..], ["0.05", "0"]);
    assert_eq!(&fields[1][1..], ["0.07", "1"]);
    let rank_ic = fs::read_to_string(run.join("metrics/Rank IC")).unwrap();
    assert!(rank_ic.ends_with(" nan 0\n"), "{rank_ic}");
    assert_eq!(
        fs::read(run.join("artifacts/sig_analysis/ic.parquet")).unwrap(),
        written.blob
    );
    // No temporary file survives.
    let leftovers: Vec<String> = common::rel_files(&root)
        .into_iter()
        .filter(|f| f.contains(".qtask-tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    let id = exp.file_name().unwrap().to_owned();
    common::conformance::check_delete(&store, &written);
    // MLflow's .trash semantics: moved, marked deleted, runs marked deleted.
    assert!(!exp.exists());
    let trashed = root.join(".trash").join(&id);
    let meta = fs::read_to_string(trashed.join("meta.yaml")).unwrap();
    assert!(meta.contains("lifecycle_stage: \"deleted\""), "{meta}");
    let run_meta = fs::read_to_string(trashed.join(&written.finished).join("meta.yaml")).unwrap();
    assert!(
        run_meta.contains("lifecycle_stage: \"deleted\"") && run_meta.contains("deleted_time: ")
    );
}

#[test]
fn default_experiment_cannot_be_deleted() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    let err = store.delete_experiment("Default").unwrap_err();
    assert!(err.to_string().contains("cannot be deleted"), "{err}");
    assert!(tmp.path().join("0/meta.yaml").is_file());
}

#[test]
fn a_missing_store_is_not_created_by_readers() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nope");
    let err = RecordStore::from_env(Some(&format!("file:{}", missing.display())), false)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("no run store at") && err.contains("nope"),
        "{err}"
    );
    assert!(!missing.exists());
}

#[test]
fn corrupt_experiment_meta_is_one_clear_error_and_nothing_else_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let store = open(root);
    let mut run = store
        .experiment("good")
        .unwrap()
        .start_run(Some("r"))
        .unwrap();
    run.log_metric("IC", 0.1, 0).unwrap();
    let bad = root.join(store.experiment("bad").unwrap().id());
    fs::write(bad.join("meta.yaml"), "name: [unterminated\n").unwrap();
    let before: Vec<(String, Vec<u8>)> = common::rel_files(root)
        .into_iter()
        .map(|f| (f.clone(), fs::read(root.join(&f)).unwrap()))
        .collect();

    // Listing skips the damaged experiment (as MLflow does) and warns, naming its file.
    let names: Vec<String> = store
        .experiments()
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, ["good", "Default"]);
    let warnings = store.take_warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains(&format!("{}", bad.join("meta.yaml").display()))
            && warnings[0].contains("corrupt experiment metadata"),
        "{warnings:?}"
    );
    // An existing experiment is still found.
    assert_eq!(store.experiment("good").unwrap().name(), "good");
    // Creating an experiment cannot tell whether the broken one has that name: refuse.
    let err = store.experiment("another").unwrap_err();
    assert!(matches!(err, RecordError::Corrupt { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("{}", bad.join("meta.yaml").display()))
            && text.contains("corrupt experiment metadata: it may be experiment `another`"),
        "{text}"
    );

    let after: Vec<(String, Vec<u8>)> = common::rel_files(root)
        .into_iter()
        .map(|f| (f.clone(), fs::read(root.join(&f)).unwrap()))
        .collect();
    assert_eq!(before, after, "the store changed");
    // The healthy run is still usable by id.
    run.end(RunStatus::Finished).unwrap();
}

#[test]
fn a_deleted_run_cannot_be_written() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    let run = store.experiment("gone").unwrap().start_run(None).unwrap();
    store.delete_experiment("gone").unwrap();
    let err = run.log_metric("IC", 1.0, 0).unwrap_err();
    assert!(err.to_string().contains("is deleted"), "{err}");
    assert!(
        store
            .experiment("gone")
            .unwrap_err()
            .to_string()
            .contains(".trash")
    );
}

/// Entry point of the child processes of [`processes_share_one_experiment`]; does nothing in a
/// normal test run.
#[test]
fn child_process_entry() {
    let Ok(root) = std::env::var("QTASK_RECORD_CHILD_ROOT") else {
        return;
    };
    let store = open(Path::new(&root));
    let exp = store.experiment("shared").unwrap();
    let mut run = exp.start_run(None).unwrap();
    run.log_params(&serde_json::json!({"worker": std::process::id()}))
        .unwrap();
    run.save_artifact_bytes("pred.parquet", &[7u8; 4096])
        .unwrap();
    run.end(RunStatus::Finished).unwrap();
}

#[test]
fn processes_share_one_experiment() {
    let tmp = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..6)
        .map(|_| {
            Command::new(&exe)
                .args(["--exact", "child_process_entry", "--test-threads=1"])
                .env("QTASK_RECORD_CHILD_ROOT", tmp.path())
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    let store = open(tmp.path());
    let shared: Vec<_> = store
        .experiments()
        .unwrap()
        .into_iter()
        .filter(|e| e.name == "shared")
        .collect();
    assert_eq!(shared.len(), 1, "{shared:?}");
    let exp = store.experiment("shared").unwrap();
    let runs = exp.runs(Some(RunStatus::Finished)).unwrap();
    assert_eq!(runs.len(), 6);
    for info in runs {
        let run = store.run(&info.run_id).unwrap();
        assert_eq!(
            run.load_artifact_bytes("pred.parquet").unwrap(),
            [7u8; 4096]
        );
        assert_eq!(run.params().unwrap().len(), 1);
    }
}

#[test]
fn threads_share_one_store_handle() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    std::thread::scope(|s| {
        for i in 0..4 {
            let store = store.clone();
            s.spawn(move || {
                let mut run = store
                    .experiment("threads")
                    .unwrap()
                    .start_run(None)
                    .unwrap();
                run.log_metric("i", f64::from(i), 0).unwrap();
                run.end(RunStatus::Finished).unwrap();
            });
        }
    });
    assert_eq!(store.experiments().unwrap().len(), 2, "Default + threads");
    let exp = store.experiment("threads").unwrap();
    let mut values: Vec<f64> = exp
        .runs(None)
        .unwrap()
        .iter()
        .map(|r| store.run(&r.run_id).unwrap().metrics().unwrap()[0].value)
        .collect();
    values.sort_by(f64::total_cmp);
    assert_eq!(values, [0.0, 1.0, 2.0, 3.0]);
}

#[test]
fn mlflow_python_reads_the_file_store() {
    if !common::mlflow_enabled("mlflow_python_reads_the_file_store") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    let written = common::conformance::exercise(&store);
    common::readback::check_with_mlflow(&format!("file:{}", tmp.path().display()), &written);
}

#[test]
fn qtask_reads_a_store_mlflow_wrote() {
    if !common::mlflow_enabled("qtask_reads_a_store_mlflow_wrote") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let uri = format!("file:{}", tmp.path().display());
    let ids = common::run_python(
        r#"
import json, sys, mlflow
from mlflow.tracking import MlflowClient
mlflow.set_tracking_uri(sys.argv[1])
c = MlflowClient()
eid = c.create_experiment("from python")
r = c.create_run(eid, run_name="py run")
c.log_param(r.info.run_id, "model.kwargs.lr", 0.1)
c.log_metric(r.info.run_id, "IC", 0.5, step=2)
c.set_tag(r.info.run_id, "_id in TaskManager", "x1")
c.log_text(r.info.run_id, "hello", "sig/a.txt")
c.set_terminated(r.info.run_id, "FAILED")
print(json.dumps({"run": r.info.run_id}))
"#,
        &[&uri],
        &[],
    );
    let store = open(tmp.path());
    let exp = store
        .find_experiment("from python")
        .unwrap()
        .expect("experiment");
    let runs = exp.runs(Some(RunStatus::Failed)).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].run_id, ids["run"].as_str().unwrap());
    assert_eq!(runs[0].run_name, "py run");
    let run = store.run(&runs[0].run_id).unwrap();
    assert_eq!(run.params().unwrap()["model.kwargs.lr"], "0.1");
    assert_eq!(run.tags().unwrap()["_id in TaskManager"], "x1");
    let m = &run.metrics().unwrap()[0];
    assert_eq!((m.key.as_str(), m.value, m.step), ("IC", 0.5, 2));
    assert_eq!(run.load_artifact_bytes("sig/a.txt").unwrap(), b"hello");
}

#[test]
fn damaged_experiments_and_runs_are_skipped_with_a_warning_naming_them() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("mlruns");
    let store = open(&root);
    let good = store.experiment("good").unwrap();
    let kept = good.start_run(None).unwrap().id().to_string();
    let broken_run = good.start_run(None).unwrap().id().to_string();
    store.experiment("other").unwrap();
    let other = exp_dir(&root, &store, "other");
    let other_id = other.file_name().unwrap().to_string_lossy().to_string();
    fs::write(other.join("meta.yaml"), "name: [unclosed\n").unwrap();
    let run_dir = exp_dir(&root, &store, "good").join(&broken_run);
    fs::write(run_dir.join("meta.yaml"), "status: {\n").unwrap();

    let names: Vec<String> = store
        .experiments()
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert!(names.contains(&"good".to_string()), "{names:?}");
    assert!(!names.contains(&"other".to_string()));
    let runs: Vec<String> = good
        .runs(None)
        .unwrap()
        .into_iter()
        .map(|r| r.run_id)
        .collect();
    assert_eq!(runs, vec![kept.clone()]);
    // The experiment can still be found and written to.
    store.experiment("good").unwrap().start_run(None).unwrap();

    let warnings = store.take_warnings();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(
        warnings.iter().any(|w| w.starts_with(&format!(
            "skipped experiment {other_id}, which is damaged: "
        )) && w.contains("corrupt experiment metadata")),
        "{warnings:?}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.starts_with(&format!("skipped run {broken_run}, which is damaged: "))),
        "{warnings:?}"
    );
    // Each is reported once, however often it was met.
    assert!(store.take_warnings().is_empty());
    // Asking for the damaged run itself is an error naming its file.
    let err = store.run(&broken_run).unwrap_err().to_string();
    assert!(err.contains("corrupt run metadata"), "{err}");
}
