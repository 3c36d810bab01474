//! RecorderCollector over a real runs store (MLflow file layout in a temp dir), and
//! MergeCollector keys.

mod common;

use common::{assert_rows, table};
use qtask_collect::{
    CollectMap, Collected, Collector, Key, MapCollector, MergeCollector, RecorderCollector,
    RollingGroup, path_filter, path_key,
};
use qtask_record::{RecordStore, RunStatus};
use qtask_table::PredTable;
use serde_json::json;

/// Adds a run: task.json, pred.parquet (unless `pred` is None), a tag, an end status.
/// Runs are started a few ms apart so "newest first" is well defined.
fn add_run(
    store: &RecordStore,
    exp: &str,
    task: serde_json::Value,
    pred: Option<&PredTable>,
    status: RunStatus,
) -> String {
    std::thread::sleep(std::time::Duration::from_millis(3));
    let mut run = store.experiment(exp).unwrap().start_run(None).unwrap();
    run.save_json("task.json", &task).unwrap();
    if let Some(p) = pred {
        run.save_artifact_bytes("pred.parquet", &p.to_parquet_bytes().unwrap())
            .unwrap();
    }
    run.set_tag("kind", task["model"]["class"].as_str().unwrap_or(""))
        .unwrap();
    run.end(status).unwrap();
    run.id().to_string()
}

fn task(model: &str, test: [&str; 2]) -> serde_json::Value {
    json!({"model": {"class": model}, "dataset": {"kwargs": {"segments": {"test": test}}}})
}

fn default_key() -> impl Fn(&qtask_collect::RunContext) -> qtask_collect::Result<Key> {
    path_key(vec![
        "model.class".into(),
        "dataset.kwargs.segments.test".into(),
    ])
}

fn preds(collected: &CollectMap) -> &CollectMap {
    collected.get(&Key::str("pred")).unwrap().as_map().unwrap()
}

#[test]
fn recorder_collector_keeps_finished_runs_newest_first_and_skips_missing_artifacts() {
    let dir = tempfile::tempdir().unwrap();
    let store = RecordStore::open(dir.path().to_str().unwrap()).unwrap();
    let w1 = table(&[("2020-01-02", "A", 1.0)]);
    let w2 = table(&[("2020-01-03", "A", 2.0)]);
    add_run(
        &store,
        "exp",
        task("LGB", ["2020-01-02", "2020-01-02"]),
        Some(&w1),
        RunStatus::Finished,
    );
    add_run(
        &store,
        "exp",
        task("LGB", ["2020-01-03", "2020-01-03"]),
        Some(&w2),
        RunStatus::Finished,
    );
    add_run(
        &store,
        "exp",
        task("LGB", ["2020-01-04", "2020-01-04"]),
        Some(&w2),
        RunStatus::Failed,
    );
    let no_pred = add_run(
        &store,
        "exp",
        task("LGB", ["2020-01-05", "2020-01-05"]),
        None,
        RunStatus::Finished,
    );

    let source = store;
    let c = RecorderCollector::new(&source, "exp").key_fn(default_key());
    let got = c.run().unwrap();
    let keys: Vec<String> = preds(&got).keys().map(|k| k.to_string()).collect();
    // Newest first; the FAILED run is not listed; the run without pred.parquet is skipped.
    assert_eq!(
        keys,
        [
            "('LGB', ('2020-01-03', '2020-01-03'))",
            "('LGB', ('2020-01-02', '2020-01-02'))"
        ]
    );
    assert_eq!(
        c.take_warnings(),
        [format!(
            "run {no_pred} has no artifact `pred.parquet`; skipped"
        )]
    );

    // Any status: the failed run comes in too.
    let all = RecorderCollector::new(&source, "exp")
        .key_fn(default_key())
        .statuses(vec![]);
    assert_eq!(preds(&all.run().unwrap()).len(), 3);

    // Missing artifacts as errors.
    let strict = RecorderCollector::new(&source, "exp")
        .key_fn(default_key())
        .require_artifacts();
    assert_eq!(
        strict.run().unwrap_err().to_string(),
        format!("run {no_pred} has no artifact `pred.parquet`")
    );

    // With a rolling group: one table per model, windows stitched.
    let rolled = RecorderCollector::new(&source, "exp")
        .key_fn(default_key())
        .process(RollingGroup::new());
    let got = rolled.run().unwrap();
    let lgb = preds(&got)
        .get(&Key::tuple([Key::str("LGB")]))
        .unwrap()
        .as_table()
        .unwrap();
    assert_rows(
        lgb,
        &[("2020-01-02", "A", 1.0), ("2020-01-03", "A", 2.0)],
        0.0,
    );
}

#[test]
fn duplicate_keys_warn_and_the_later_listed_older_run_wins() {
    let dir = tempfile::tempdir().unwrap();
    let store = RecordStore::open(dir.path().to_str().unwrap()).unwrap();
    let older = table(&[("2020-01-02", "A", 1.0)]);
    let newer = table(&[("2020-01-02", "A", 2.0)]);
    let other = table(&[("2020-01-02", "A", 3.0)]);
    let old_id = add_run(
        &store,
        "exp",
        task("LGB", ["a", "b"]),
        Some(&older),
        RunStatus::Finished,
    );
    add_run(
        &store,
        "exp",
        task("Linear", ["a", "b"]),
        Some(&other),
        RunStatus::Finished,
    );
    add_run(
        &store,
        "exp",
        task("LGB", ["a", "b"]),
        Some(&newer),
        RunStatus::Finished,
    );
    let source = store;
    let c = RecorderCollector::new(&source, "exp").key_fn(path_key(vec!["model.class".into()]));
    let got = c.run().unwrap();
    let p = preds(&got);
    // Listed newest first: LGB (newer), Linear, LGB (older). The older run overrides the
    // value but the key keeps its first position, as a Python dict does.
    let keys: Vec<String> = p.keys().map(|k| k.to_string()).collect();
    assert_eq!(keys, ["'LGB'", "'Linear'"]);
    assert_rows(
        p.get(&Key::str("LGB")).unwrap().as_table().unwrap(),
        &[("2020-01-02", "A", 1.0)],
        0.0,
    );
    assert_eq!(
        c.take_warnings(),
        [format!(
            "key 'LGB' is duplicated; run {old_id} (older) overrides the previous value"
        )]
    );
}

#[test]
fn filters_unknown_paths_and_empty_experiments() {
    let dir = tempfile::tempdir().unwrap();
    let store = RecordStore::open(dir.path().to_str().unwrap()).unwrap();
    let t = table(&[("2020-01-02", "A", 1.0)]);
    let lgb = add_run(
        &store,
        "exp",
        task("LGB", ["a", "b"]),
        Some(&t),
        RunStatus::Finished,
    );
    add_run(
        &store,
        "exp",
        task("Linear", ["a", "b"]),
        Some(&t),
        RunStatus::Finished,
    );
    store.experiment("empty").unwrap();
    let source = store;

    let by_task = RecorderCollector::new(&source, "exp")
        .filter_fn(path_filter(vec![("model.class".into(), "LGB".into())]));
    let keys: Vec<Key> = preds(&by_task.run().unwrap()).keys().cloned().collect();
    assert_eq!(keys, [Key::str(lgb.clone())]);

    let by_tag = RecorderCollector::new(&source, "exp")
        .filter_fn(path_filter(vec![("tags.kind".into(), "Linear".into())]));
    assert_eq!(preds(&by_tag.run().unwrap()).len(), 1);

    let bad = RecorderCollector::new(&source, "exp").key_fn(path_key(vec!["model.klass".into()]));
    let msg = bad.run().unwrap_err().to_string();
    assert!(
        msg.ends_with(": no `model.klass` in its task (task.json)"),
        "{msg}"
    );

    let bad_tag = RecorderCollector::new(&source, "exp").key_fn(path_key(vec!["tags.nope".into()]));
    assert!(
        bad_tag
            .run()
            .unwrap_err()
            .to_string()
            .ends_with(": no `tags.nope` in its tags")
    );

    // An empty experiment collects nothing; an unknown one is the source's error.
    assert!(
        RecorderCollector::new(&source, "empty")
            .run()
            .unwrap()
            .is_empty()
    );
    let msg = RecorderCollector::new(&source, "nope")
        .run()
        .unwrap_err()
        .to_string();
    // The store's one RunSource names the store too (`... in file:///...`).
    assert!(msg.starts_with("no experiment `nope` in "), "{msg}");
}

#[test]
fn merge_collector_keys_are_name_and_inner_key() {
    let t = table(&[("2020-01-02", "A", 1.0)]);
    let mut a = CollectMap::new();
    a.insert(Key::str("pred"), t.clone());
    let mut b = CollectMap::new();
    b.insert(Key::str("pred"), t.clone());
    b.insert(Key::str("label"), t.clone());
    let merged = MergeCollector::new()
        .with("lgb", MapCollector::new(a.clone()))
        .with("linear", MapCollector::new(b.clone()))
        .run()
        .unwrap();
    let keys: Vec<String> = merged.keys().map(|k| k.to_string()).collect();
    assert_eq!(
        keys,
        [
            "('lgb', 'pred')",
            "('linear', 'pred')",
            "('linear', 'label')"
        ]
    );

    let named = MergeCollector::new()
        .with("lgb", MapCollector::new(a))
        .merge_fn(|name, key| Key::str(format!("{}/{}", name.label(), key.label())))
        .run()
        .unwrap();
    assert!(matches!(
        named.get(&Key::str("lgb/pred")),
        Some(Collected::Table(_))
    ));
}
