//! An environment failure is not a task failure: a worker whose program is missing, whose runs
//! store is unreadable, unwritable or full hands the task back without counting an attempt
//! (keeping the task's last error) and stops with an error, instead of draining the pool into
//! `failed`. A task's own failure still counts.

use std::sync::Arc;
use std::sync::Mutex;

use qtask_pool::{CreateOptions, Status, TaskPool};
use qtask_record::RecordStore;
use qtask_runner::{
    Echo, ExternalCommand, RecordedTask, RunEvent, RunOptions, StopFlag, TaskContext, TaskError,
    TaskFunc, run_task, train::Phase,
};
use serde_json::{Value, json};

fn pool(dir: &tempfile::TempDir) -> Box<dyn TaskPool> {
    qtask_pool::open(
        &format!("sqlite:{}", dir.path().join("pool.db").display()),
        "env",
    )
    .unwrap()
}

fn add(pool: &dyn TaskPool, n: usize) -> Vec<String> {
    let defs: Vec<Value> = (0..n).map(|i| json!({"x": i})).collect();
    pool.create_tasks(&defs, &CreateOptions::default())
        .unwrap()
        .into_iter()
        .map(|c| c.id.unwrap())
        .collect()
}

/// Runs `func` over the pool; returns the error text (the run must fail) and the events.
fn run_expecting_error(
    p: &dyn TaskPool,
    func: &dyn TaskFunc,
    concurrency: usize,
) -> (String, Vec<RunEvent>) {
    let events = Mutex::new(Vec::new());
    let record = |e: &RunEvent| events.lock().unwrap().push(e.clone());
    let opts = RunOptions {
        concurrency,
        ..Default::default()
    };
    let err = run_task(p, func, &opts, &StopFlag::new(), &record)
        .expect_err("an environment failure must stop the worker with an error");
    (err.to_string(), events.into_inner().unwrap())
}

fn assert_untouched(p: &dyn TaskPool, ids: &[String]) {
    for id in ids {
        let t = p.re_query(id).unwrap();
        assert_eq!(
            (t.status, t.attempts, t.error.as_deref()),
            (Status::Waiting, 0, None),
            "task {id} must be handed back untouched: {t:?}"
        );
    }
}

fn claims(events: &[RunEvent]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, RunEvent::Claimed { .. }))
        .count()
}

#[test]
fn a_missing_program_hands_the_task_back_and_stops_the_worker() {
    let dir = tempfile::tempdir().unwrap();
    let p = pool(&dir);
    let ids = add(&*p, 5);
    let exec = ExternalCommand::parse("/no/such/program --flag").unwrap();
    let (err, events) = run_expecting_error(&*p, &exec, 1);
    assert!(
        err.starts_with("worker stopped: cannot start `/no/such/program`: No such file"),
        "{err}"
    );
    assert!(
        err.ends_with("(task 1 handed back to the pool, attempt not counted)"),
        "{err}"
    );
    // One claim, not one per task: the worker stopped at the first environment failure.
    assert_eq!(claims(&events), 1, "{events:?}");
    assert!(!events.iter().any(|e| matches!(e, RunEvent::Failed { .. })));
    assert_untouched(&*p, &ids);
}

#[test]
fn many_slots_failing_together_never_drain_the_pool() {
    let dir = tempfile::tempdir().unwrap();
    let p = pool(&dir);
    let ids = add(&*p, 20);
    let exec = ExternalCommand::parse("/no/such/program").unwrap();
    let (err, events) = run_expecting_error(&*p, &exec, 4);
    assert!(err.contains("cannot start `/no/such/program`"), "{err}");
    assert!(claims(&events) <= 4, "{events:?}");
    assert_untouched(&*p, &ids);
}

#[test]
fn the_attempt_is_given_back_and_the_tasks_last_error_kept() {
    let dir = tempfile::tempdir().unwrap();
    let p = pool(&dir);
    let ids = add(&*p, 1);
    let boom = |_: &TaskContext, _: &Value| -> Result<Value, TaskError> {
        Err(TaskError::new("boom: the task's own failure"))
    };
    let once = RunOptions {
        max_tasks: Some(1),
        ..Default::default()
    };
    run_task(&*p, &boom, &once, &StopFlag::new(), &|_| {}).unwrap();
    let t = p.re_query(&ids[0]).unwrap();
    assert_eq!((t.status, t.attempts), (Status::Waiting, 1));

    let exec = ExternalCommand::parse("/no/such/program").unwrap();
    run_expecting_error(&*p, &exec, 1);
    let t = p.re_query(&ids[0]).unwrap();
    assert_eq!(
        (t.status, t.attempts, t.error.as_deref()),
        (Status::Waiting, 1, Some("boom: the task's own failure"))
    );
}

#[test]
fn exit_status_75_says_the_environment_failed() {
    let dir = tempfile::tempdir().unwrap();
    let p = pool(&dir);
    let ids = add(&*p, 3);
    let exec = ExternalCommand::parse("sh -c 'echo no GPU left >&2; exit 75'").unwrap();
    let (err, _) = run_expecting_error(&*p, &exec, 1);
    assert!(
        err.contains("exited with status 75: its environment failed; stderr: no GPU left"),
        "{err}"
    );
    assert_untouched(&*p, &ids);
}

fn recorded(store: RecordStore) -> RecordedTask {
    RecordedTask {
        store,
        experiment: "env".into(),
        exec: Arc::new(Echo),
        phase: Phase::Full,
    }
}

#[test]
fn an_unwritable_runs_store_is_the_workers_failure() {
    let dir = tempfile::tempdir().unwrap();
    let p = pool(&dir);
    let ids = add(&*p, 4);
    let root = dir.path().join("mlruns");
    let store = RecordStore::open(&format!("file:{}", root.display())).unwrap();
    // The store's folder is replaced by a file after the worker opened it.
    std::fs::remove_dir_all(&root).unwrap();
    std::fs::write(&root, "not a folder").unwrap();
    let (err, events) = run_expecting_error(&*p, &recorded(store), 1);
    assert!(err.starts_with("worker stopped: runs store: "), "{err}");
    assert!(err.contains("mlruns"), "{err}");
    assert_eq!(claims(&events), 1);
    assert_untouched(&*p, &ids);
}

#[test]
fn a_task_the_runs_store_refuses_still_counts_an_attempt() {
    // MLflow rejects the param key `a*b`: the task's own data, not the environment.
    let dir = tempfile::tempdir().unwrap();
    let p = pool(&dir);
    p.set_max_attempts(Some(1)).unwrap();
    let ids: Vec<String> = p
        .create_tasks(&[json!({"a*b": 1})], &CreateOptions::default())
        .unwrap()
        .into_iter()
        .map(|c| c.id.unwrap())
        .collect();
    let store =
        RecordStore::open(&format!("file:{}", dir.path().join("mlruns").display())).unwrap();
    let s = run_task(
        &*p,
        &recorded(store),
        &RunOptions::default(),
        &StopFlag::new(),
        &|_| {},
    )
    .unwrap();
    assert_eq!(s.failed, 1);
    let t = p.re_query(&ids[0]).unwrap();
    assert_eq!((t.status, t.attempts), (Status::Failed, 1));
    let err = t.error.unwrap();
    assert!(err.contains("param key `a*b`"), "{err}");
}

/// A tmpfs of 256 KiB mounted for one test and unmounted when dropped.
struct TinyDisk {
    path: std::path::PathBuf,
}

impl TinyDisk {
    fn mount(path: &std::path::Path) -> Option<TinyDisk> {
        std::fs::create_dir_all(path).unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=256k", "tmpfs"])
            .arg(path)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| TinyDisk {
            path: path.to_path_buf(),
        })
    }
}

impl Drop for TinyDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(&self.path)
            .status();
    }
}

#[test]
fn a_full_disk_under_the_runs_store_is_the_workers_failure() {
    let dir = tempfile::tempdir().unwrap();
    let Some(disk) = TinyDisk::mount(&dir.path().join("disk")) else {
        eprintln!(
            "SKIPPED a_full_disk_under_the_runs_store_is_the_workers_failure: cannot mount a tmpfs (needs root)"
        );
        return;
    };
    let p = pool(&dir);
    let root = disk.path.join("mlruns");
    let store = RecordStore::open(&format!("file:{}", root.display())).unwrap();
    // Fill the disk, leaving the store itself intact.
    let filler = disk.path.join("filler");
    let mut f = std::fs::File::create(&filler).unwrap();
    let chunk = vec![7u8; 4096];
    while std::io::Write::write_all(&mut f, &chunk).is_ok() {}
    drop(f);
    // Tasks big enough that their params and task.json cannot fit in what is left.
    let defs: Vec<Value> = (0..3)
        .map(|i| json!({"x": i, "blob": "y".repeat(5000)}))
        .collect();
    let ids: Vec<String> = p
        .create_tasks(&defs, &CreateOptions::default())
        .unwrap()
        .into_iter()
        .map(|c| c.id.unwrap())
        .collect();
    let (err, _) = run_expecting_error(&*p, &recorded(store), 1);
    assert!(err.contains("No space left on device"), "{err}");
    assert_untouched(&*p, &ids);
}
