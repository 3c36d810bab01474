//! External commands are contained: whatever ends a command (its own exit, `--task-timeout`,
//! a stop request, a result over the stdout limit) ends its whole process group, grandchildren
//! holding stdout included; output cannot grow the worker's memory without bound; logging
//! metrics from a result is bounded.
//!
//! Elapsed times here only catch hangs (a worker waiting for a grandchild): the bounds are
//! generous, far above what the work takes.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use qtask_pool::{CreateOptions, Status, TaskPool};
use qtask_record::RecordStore;
use qtask_runner::train::{
    MAX_LOGGED_METRICS, MAX_LOGGED_PARAMS, METRICS_SKIPPED_TAG, PARAMS_SKIPPED_TAG, Phase,
};
use qtask_runner::{ExternalCommand, RecordedTask, RunOptions, StopFlag, TaskFunc, run_task};
use serde_json::{Value, json};

fn pool(dir: &Path) -> Box<dyn TaskPool> {
    let p = qtask_pool::open(&format!("sqlite:{}", dir.join("pool.db").display()), "c").unwrap();
    p.set_max_attempts(Some(1)).unwrap();
    p
}

fn one_task(p: &dyn TaskPool) -> String {
    p.create_tasks(&[json!({"x": 1})], &CreateOptions::default())
        .unwrap()
        .remove(0)
        .id
        .unwrap()
}

/// Runs `func` over the pool with `stop`; returns how long it took.
fn drain(p: &dyn TaskPool, func: &dyn TaskFunc, stop: &StopFlag) -> Duration {
    let started = Instant::now();
    run_task(p, func, &RunOptions::default(), stop, &|_| {}).unwrap();
    started.elapsed()
}

/// Whether the process whose pid is in `file` is still alive.
fn alive(file: &Path) -> bool {
    let pid: i32 = std::fs::read_to_string(file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // A zombie is dead for our purposes: its parent (the shell) is gone too.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    !stat.is_empty() && !stat.contains(") Z ")
}

fn sh(script: &str) -> ExternalCommand {
    ExternalCommand::from_argv(vec!["sh".into(), "-c".into(), script.into()]).unwrap()
}

#[test]
fn a_background_grandchild_holding_stdout_neither_blocks_the_worker_nor_survives() {
    let dir = tempfile::tempdir().unwrap();
    let p = pool(dir.path());
    let id = one_task(&*p);
    let pidfile = dir.path().join("grandchild.pid");
    let cmd = sh(&format!(
        "sleep 30 & echo $! > {}; echo '{{\"ok\": 1}}'",
        pidfile.display()
    ));
    let took = drain(&*p, &cmd, &StopFlag::new());
    assert!(took < Duration::from_secs(15), "the worker waited {took:?}");
    let t = p.re_query(&id).unwrap();
    assert_eq!((t.status, t.res), (Status::Done, Some(json!({"ok": 1}))));
    assert!(!alive(&pidfile), "the grandchild outlived its task");
}

#[test]
fn a_timeout_ends_the_whole_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let p = pool(dir.path());
    let id = one_task(&*p);
    let pidfile = dir.path().join("grandchild.pid");
    let cmd = sh(&format!(
        "sleep 30 & echo $! > {}; sleep 30",
        pidfile.display()
    ))
    .with_timeout(Some(Duration::from_millis(500)));
    let took = drain(&*p, &cmd, &StopFlag::new());
    assert!(took < Duration::from_secs(15), "the worker waited {took:?}");
    let t = p.re_query(&id).unwrap();
    assert_eq!(t.status, Status::Failed);
    let err = t.error.unwrap();
    assert!(
        err.contains("timed out after 0.5 s; its process group was ended"),
        "{err}"
    );
    assert!(!alive(&pidfile), "the grandchild outlived the timeout");
}

#[test]
fn a_command_ignoring_sigterm_is_killed_after_the_grace() {
    let dir = tempfile::tempdir().unwrap();
    let p = pool(dir.path());
    let id = one_task(&*p);
    let cmd = sh("trap '' TERM; sleep 30").with_timeout(Some(Duration::from_millis(300)));
    let took = drain(&*p, &cmd, &StopFlag::new());
    assert!(took < Duration::from_secs(15), "the worker waited {took:?}");
    assert_eq!(p.re_query(&id).unwrap().status, Status::Failed);
}

#[test]
fn a_stop_request_ends_the_group_and_hands_the_task_back() {
    let dir = tempfile::tempdir().unwrap();
    let p = pool(dir.path());
    let id = one_task(&*p);
    let pidfile = dir.path().join("grandchild.pid");
    let cmd = sh(&format!(
        "sleep 30 & echo $! > {}; sleep 30",
        pidfile.display()
    ));
    let stop = StopFlag::new();
    let stopper = {
        let stop = stop.clone();
        let pidfile = pidfile.clone();
        std::thread::spawn(move || {
            while !pidfile.exists() {
                std::thread::sleep(Duration::from_millis(20));
            }
            stop.stop();
        })
    };
    let took = drain(&*p, &cmd, &stop);
    stopper.join().unwrap();
    assert!(took < Duration::from_secs(15), "the worker waited {took:?}");
    let t = p.re_query(&id).unwrap();
    assert_eq!((t.status, t.attempts), (Status::Waiting, 0), "{t:?}");
    assert!(!alive(&pidfile), "the grandchild outlived the stop request");
}

#[test]
fn a_grandchild_that_left_the_group_cannot_keep_the_worker_waiting() {
    let dir = tempfile::tempdir().unwrap();
    let p = pool(dir.path());
    let id = one_task(&*p);
    let pidfile = dir.path().join("escaped.pid");
    // `setsid` puts the sleeper in a session of its own, out of reach of the group signal.
    let cmd = sh(&format!(
        "setsid sh -c 'echo $$ > {}; exec sleep 30' & echo '{{\"ok\": 2}}'",
        pidfile.display()
    ));
    let took = drain(&*p, &cmd, &StopFlag::new());
    assert!(took < Duration::from_secs(15), "the worker waited {took:?}");
    assert_eq!(p.re_query(&id).unwrap().res, Some(json!({"ok": 2})));
    if let Ok(pid) = std::fs::read_to_string(&pidfile) {
        // SAFETY: signalling the stray sleeper this test started.
        unsafe { libc_kill(pid.trim().parse().unwrap()) };
    }
}

unsafe fn libc_kill(pid: i32) {
    unsafe extern "C" {
        fn kill(pid: i32, sig: i32) -> i32;
    }
    unsafe {
        kill(pid, 9);
    }
}

#[test]
fn a_result_over_the_stdout_limit_is_a_clear_task_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = pool(dir.path());
    let id = one_task(&*p);
    // 100 MB on stdout against a 1 MiB limit: refused after 1 MiB, not read to the end.
    let cmd = sh("head -c 100000000 /dev/zero | tr '\\0' 1").with_stdout_limit(1 << 20);
    let took = drain(&*p, &cmd, &StopFlag::new());
    assert!(took < Duration::from_secs(30), "the worker took {took:?}");
    let t = p.re_query(&id).unwrap();
    assert_eq!(t.status, Status::Failed);
    let err = t.error.unwrap();
    assert!(
        err.contains("printed more than 1 MiB on stdout, the limit for a result"),
        "{err}"
    );
}

#[test]
fn the_default_stdout_limit_is_16_mib() {
    let dir = tempfile::tempdir().unwrap();
    let p = pool(dir.path());
    let id = one_task(&*p);
    let cmd = sh("head -c 20000000 /dev/zero | tr '\\0' 1");
    drain(&*p, &cmd, &StopFlag::new());
    let err = p.re_query(&id).unwrap().error.unwrap();
    assert!(err.contains("printed more than 16 MiB on stdout"), "{err}");
}

#[test]
fn a_stderr_flood_keeps_only_its_tail() {
    let dir = tempfile::tempdir().unwrap();
    let p = pool(dir.path());
    let id = one_task(&*p);
    let cmd = sh("head -c 50000000 /dev/zero | tr '\\0' e >&2; echo last-words >&2; exit 4");
    drain(&*p, &cmd, &StopFlag::new());
    let err = p.re_query(&id).unwrap().error.unwrap();
    assert!(err.contains("exited with status 4"), "{}", &err[..100]);
    assert!(err.ends_with("last-words"), "{}", &err[err.len() - 100..]);
    assert!(err.len() < 2200, "{} bytes kept", err.len());
}

fn recorded(store: &RecordStore, exec: ExternalCommand) -> RecordedTask {
    RecordedTask {
        store: store.clone(),
        experiment: "m".into(),
        exec: Arc::new(exec),
        phase: Phase::Full,
    }
}

#[test]
fn logging_metrics_from_a_large_result_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let p = pool(dir.path());
    one_task(&*p);
    let store =
        RecordStore::open(&format!("file:{}", dir.path().join("mlruns").display())).unwrap();
    // A 2 MB result: 200,000 numbers, plus two scalars that come first in document order.
    let cmd = sh(
        "python3 -c 'import json; print(json.dumps({\"IC\": 0.5, \"loss\": 1.25, \
         \"pred\": [i * 0.001 for i in range(200000)]}))'",
    );
    let func = recorded(&store, cmd);
    let took = drain(&*p, &func, &StopFlag::new());
    assert!(took < Duration::from_secs(60), "the worker took {took:?}");
    let exp = store.find_experiment("m").unwrap().unwrap();
    let runs = exp.runs(None).unwrap();
    let run = store.run(&runs[0].run_id).unwrap();
    let metrics = run.metrics().unwrap();
    assert_eq!(metrics.len(), MAX_LOGGED_METRICS);
    let ic = metrics.iter().find(|m| m.key == "IC").unwrap();
    assert_eq!(ic.value, 0.5);
    assert!(metrics.iter().any(|m| m.key == "loss"));
    let tags = run.tags().unwrap();
    assert_eq!(
        tags.get(METRICS_SKIPPED_TAG).map(String::as_str),
        Some((200_002 - MAX_LOGGED_METRICS).to_string().as_str())
    );
    // The whole result is kept as an artifact.
    let saved: Value = run.load_json("result.json").unwrap();
    assert_eq!(saved["pred"].as_array().unwrap().len(), 200_000);
}

#[test]
fn logging_params_from_a_large_task_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let p = pool(dir.path());
    // A task holding a 50,000-entry table: one param file each would take minutes.
    let table: serde_json::Map<String, Value> =
        (0..50_000).map(|i| (format!("k{i}"), json!(i))).collect();
    p.create_tasks(
        &[json!({"model": {"lr": 0.1}, "table": table})],
        &CreateOptions::default(),
    )
    .unwrap();
    let store =
        RecordStore::open(&format!("file:{}", dir.path().join("mlruns").display())).unwrap();
    let func = recorded(&store, sh("cat >/dev/null; echo '{\"ok\": 1}'"));
    let took = drain(&*p, &func, &StopFlag::new());
    assert!(took < Duration::from_secs(60), "the worker took {took:?}");
    let exp = store.find_experiment("m").unwrap().unwrap();
    let run = store.run(&exp.runs(None).unwrap()[0].run_id).unwrap();
    let params = run.params().unwrap();
    assert_eq!(params.len(), MAX_LOGGED_PARAMS);
    assert_eq!(params.get("model.lr").map(String::as_str), Some("0.1"));
    assert_eq!(
        run.tags()
            .unwrap()
            .get(PARAMS_SKIPPED_TAG)
            .map(String::as_str),
        Some((50_001 - MAX_LOGGED_PARAMS).to_string().as_str())
    );
    let task: Value = run.load_json("task.json").unwrap();
    assert_eq!(task["table"].as_object().unwrap().len(), 50_000);
}
