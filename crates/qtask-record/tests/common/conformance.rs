//! Every store operation, checked the same way on each backend.

use std::collections::BTreeMap;
use std::time::Duration;

use qtask_record::{RecordError, RecordStore, Run, RunStatus};
use serde_json::json;

/// What [`exercise`] wrote, for read-back checks by real MLflow.
pub struct Written {
    /// Experiment name.
    pub experiment: String,
    /// The finished run.
    pub finished: String,
    /// The failed run (resumed then killed).
    pub killed: String,
    /// The run left running.
    pub running: String,
    /// Bytes of `sig_analysis/ic.parquet` in the finished run.
    pub blob: Vec<u8>,
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Distinct start times, so "newest first" has one right answer.
fn tick() {
    std::thread::sleep(Duration::from_millis(15));
}

/// Runs every operation of the store API against `store` and checks the results.
/// Leaves the experiment in place (not deleted) and returns what it wrote.
pub fn exercise(store: &RecordStore) -> Written {
    let name = format!(
        "conformance {}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );

    // Get-or-create is idempotent.
    let exp = store.experiment(&name).unwrap();
    let again = store.experiment(&name).unwrap();
    assert_eq!(exp.id(), again.id());
    assert_eq!(exp.name(), name);
    assert!(store.experiments().unwrap().iter().any(|e| e.name == name));
    assert!(
        store
            .find_experiment("no such experiment xyz")
            .unwrap()
            .is_none()
    );

    // A run: id, name, status.
    let mut first = exp.start_run(Some("first")).unwrap();
    assert_eq!(first.id().len(), 32);
    assert!(first.id().chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(first.info().status, RunStatus::Running);
    assert_eq!(first.info().end_time, None);
    assert_eq!(first.info().run_name, "first");
    assert_eq!(first.info().experiment_id, exp.id());

    // Params: flattened like Qlib's flatten_dict, values as Python's str().
    let task = json!({
        "model": {"class": "LGBModel", "kwargs": {"lr": 0.1, "num_leaves": 210}},
        "dataset": {"segments": {"test": ["2017-01-01", null]}},
        "record": [],
    });
    first.log_params(&task).unwrap();
    let expected_params = map(&[
        ("model.class", "LGBModel"),
        ("model.kwargs.lr", "0.1"),
        ("model.kwargs.num_leaves", "210"),
        ("dataset.segments.test", "['2017-01-01', None]"),
        ("record", "[]"),
    ]);
    assert_eq!(first.params().unwrap(), expected_params);
    // Same value again: fine. Another value: refused, nothing changes.
    first
        .log_params(&json!({"model": {"class": "LGBModel"}}))
        .unwrap();
    let err = first
        .log_params(&json!({"model": {"class": "XGB"}, "fresh": 1}))
        .unwrap_err();
    assert!(matches!(err, RecordError::ParamChanged { .. }), "{err:?}");
    assert!(err.to_string().contains("param `model.class`"), "{err}");
    assert_eq!(first.params().unwrap(), expected_params);
    // A key MLflow rejects: refused before anything is written.
    let err = first
        .log_param_strings(&[("ok".into(), "1".into()), ("bad*key".into(), "1".into())])
        .unwrap_err();
    assert!(err.to_string().contains("param key `bad*key`"), "{err}");
    assert_eq!(first.params().unwrap(), expected_params);

    // Metrics: history kept, latest by step.
    first.log_metric("IC", 0.05, 0).unwrap();
    first.log_metric("IC", 0.07, 1).unwrap();
    first
        .log_metrics(&[("Rank IC".into(), f64::NAN), ("ICIR".into(), -1.5)], 0)
        .unwrap();
    let metrics = first.metrics().unwrap();
    let by_key: BTreeMap<&str, (f64, i64)> = metrics
        .iter()
        .map(|m| (m.key.as_str(), (m.value, m.step)))
        .collect();
    assert_eq!(by_key.len(), 3);
    assert_eq!(by_key["IC"], (0.07, 1));
    assert_eq!(by_key["ICIR"], (-1.5, 0));
    assert!(by_key["Rank IC"].0.is_nan());
    let history: Vec<(f64, i64)> = first
        .metric_history("IC")
        .unwrap()
        .iter()
        .map(|m| (m.value, m.step))
        .collect();
    assert_eq!(history, [(0.05, 0), (0.07, 1)]);
    assert!(first.log_metric("bad\nkey", 1.0, 0).is_err());

    // Tags: Qlib's, including a key with spaces; overwritable.
    first
        .set_tags(&[
            ("train_status".into(), "begin_task_train".into()),
            ("_id in TaskManager".into(), "6512ab".into()),
            ("hostname".into(), "worker-1".into()),
        ])
        .unwrap();
    first.set_tag("train_status", "end_task_train").unwrap();
    let tags = first.tags().unwrap();
    assert_eq!(tags["train_status"], "end_task_train");
    assert_eq!(tags["_id in TaskManager"], "6512ab");
    assert_eq!(tags["hostname"], "worker-1");
    assert_eq!(tags["mlflow.runName"], "first");

    // Artifacts: bytes, JSON, nested paths, listings.
    let blob: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
    first
        .save_artifact_bytes("sig_analysis/ic.parquet", &blob)
        .unwrap();
    first.save_json("task.json", &task).unwrap();
    assert_eq!(
        first
            .load_artifact_bytes("sig_analysis/ic.parquet")
            .unwrap(),
        blob
    );
    assert_eq!(
        first.load_json::<serde_json::Value>("task.json").unwrap(),
        task
    );
    let root: Vec<(String, bool)> = first
        .list_artifacts(None)
        .unwrap()
        .into_iter()
        .map(|e| (e.path, e.is_dir))
        .collect();
    assert_eq!(
        root,
        [
            ("sig_analysis".to_string(), true),
            ("task.json".to_string(), false)
        ]
    );
    let inner = first.list_artifacts(Some("sig_analysis")).unwrap();
    assert_eq!(inner.len(), 1);
    assert_eq!(inner[0].path, "sig_analysis/ic.parquet");
    assert_eq!(inner[0].size, Some(1000));
    let all: Vec<String> = first
        .all_artifacts()
        .unwrap()
        .into_iter()
        .map(|e| e.path)
        .collect();
    assert_eq!(all, ["sig_analysis/ic.parquet", "task.json"]);
    let err = first
        .load_artifact_bytes("missing/pred.parquet")
        .unwrap_err();
    assert!(matches!(err, RecordError::NoArtifact { .. }), "{err:?}");
    assert!(first.save_artifact_bytes("../escape", b"x").is_err());
    // Overwriting an artifact replaces it.
    first.save_artifact_bytes("note.txt", b"one").unwrap();
    first.save_artifact_bytes("note.txt", b"two").unwrap();
    assert_eq!(first.load_artifact_bytes("note.txt").unwrap(), b"two");

    first.end(RunStatus::Finished).unwrap();
    assert_eq!(first.info().status, RunStatus::Finished);
    let end = first.info().end_time.expect("end time set");
    assert!(end >= first.info().start_time);
    assert!(first.end(RunStatus::Running).is_err());

    // Reopen by id: same metadata.
    let reopened = store.run(first.id()).unwrap();
    assert_eq!(reopened.info(), first.info());
    assert!(matches!(
        store.run("0123456789abcdef0123456789abcdef"),
        Err(RecordError::NoRun(_))
    ));

    tick();
    let mut second = exp.start_run(None).unwrap();
    assert!(
        second.info().run_name.starts_with("run-"),
        "{}",
        second.info().run_name
    );
    second.end(RunStatus::Failed).unwrap();
    tick();
    // A deleted run: no longer listed, still readable (marked deleted), no longer changeable.
    let mut gone = exp.start_run(Some("deleted")).unwrap();
    gone.set_tag("train_status", "begin_task_train").unwrap();
    gone.delete().unwrap();
    assert_eq!(gone.info().lifecycle_stage, "deleted");
    assert_eq!(
        store.run(gone.id()).unwrap().info().lifecycle_stage,
        "deleted"
    );
    assert!(gone.set_tag("train_status", "end_task_train").is_err());
    tick();
    let third: Run = exp.start_run(Some("third")).unwrap();

    // Newest first, filtered by status.
    let ids = |s: Option<RunStatus>| -> Vec<String> {
        exp.runs(s).unwrap().into_iter().map(|r| r.run_id).collect()
    };
    assert_eq!(ids(None), [third.id(), second.id(), first.id()]);
    assert_eq!(ids(Some(RunStatus::Finished)), [first.id()]);
    assert_eq!(ids(Some(RunStatus::Failed)), [second.id()]);
    assert_eq!(ids(Some(RunStatus::Running)), [third.id()]);
    assert!(ids(Some(RunStatus::Killed)).is_empty());

    // Resume: RUNNING again, loggable, then killed.
    let mut resumed = store.resume_run(second.id()).unwrap();
    assert_eq!(resumed.info().status, RunStatus::Running);
    resumed.log_metric("IC", 0.01, 0).unwrap();
    resumed.end(RunStatus::Killed).unwrap();
    assert_eq!(
        store.run(second.id()).unwrap().info().status,
        RunStatus::Killed
    );

    Written {
        experiment: name,
        finished: first.id().to_string(),
        killed: second.id().to_string(),
        running: third.id().to_string(),
        blob,
    }
}

/// Deletes the experiment `written` holds and checks MLflow's deletion semantics.
pub fn check_delete(store: &RecordStore, written: &Written) {
    let info = store.delete_experiment(&written.experiment).unwrap();
    assert!(
        store
            .find_experiment(&written.experiment)
            .unwrap()
            .is_none()
    );
    assert!(!store.experiments().unwrap().iter().any(|e| e.id == info.id));
    // The name stays reserved, as in MLflow.
    let err = store.experiment(&written.experiment).unwrap_err();
    assert!(
        matches!(err, RecordError::ExperimentDeleted { .. }),
        "{err:?}"
    );
    // Its runs still exist, marked deleted.
    let run = store.run(&written.finished).unwrap();
    assert_eq!(run.info().lifecycle_stage, "deleted");
    assert!(matches!(
        store.delete_experiment(&written.experiment),
        Err(RecordError::NoExperiment(_))
    ));
}
