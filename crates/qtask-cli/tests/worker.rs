//! `qtask worker` and `qtask train` through the real binary: crash recovery with leases,
//! poison tasks, SIGTERM, trainers.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

fn qtask(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_qtask"));
    c.current_dir(dir)
        .env(
            "QTASK_STORE",
            format!("sqlite:{}", dir.join("pool.db").display()),
        )
        .env(
            "QTASK_TRACKING_URI",
            format!("file:{}", dir.join("mlruns").display()),
        )
        .env_remove("MLFLOW_TRACKING_URI");
    c
}

fn ok(out: Output) -> Output {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn json_of(out: Output) -> Value {
    serde_json::from_slice(&ok(out).stdout).unwrap()
}

fn create(dir: &Path, pool: &str, defs: &[Value]) -> Vec<String> {
    std::fs::write(dir.join("tasks.json"), serde_json::to_string(defs).unwrap()).unwrap();
    let ids = json_of(
        qtask(dir)
            .args(["manage", "-t", pool, "create", "tasks.json", "--json"])
            .output()
            .unwrap(),
    );
    ids.as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

fn tasks(dir: &Path, pool: &str, query: &str) -> Vec<Value> {
    let v = json_of(
        qtask(dir)
            .args(["manage", "-t", pool, "query", query, "--json"])
            .output()
            .unwrap(),
    );
    v.as_array().unwrap().clone()
}

fn spawn_worker(dir: &Path, pool: &str, extra: &[&str]) -> Child {
    qtask(dir)
        .args(["worker", "-t", pool, "--json"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn running_ids(dir: &Path, pool: &str) -> BTreeSet<String> {
    tasks(dir, pool, r#"{"status": "running"}"#)
        .iter()
        .map(|t| t["_id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn killed_workers_lose_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let defs: Vec<Value> = (0..200).map(|i| json!({"i": i})).collect();
    let ids = create(dir, "crash", &defs);
    // Each task sleeps, then echoes the task back as its result.
    let cmd = "python3 -c 'import json,sys,time; t=json.load(sys.stdin); time.sleep(0.15); print(json.dumps(t))'";
    let args = ["--exec", cmd, "--lease", "2"];
    let mut workers: Vec<Child> = (0..3).map(|_| spawn_worker(dir, "crash", &args)).collect();
    let mut killed_tasks = BTreeSet::new();
    for round in 0..2 {
        std::thread::sleep(Duration::from_millis(1500 + 500 * round));
        let victim = workers.remove(0);
        let mut victim = victim;
        victim.kill().unwrap(); // SIGKILL
        victim.wait().unwrap();
        // The victim's task stays running until its lease expires; live workers' tasks change.
        std::thread::sleep(Duration::from_millis(600));
        let a = running_ids(dir, "crash");
        std::thread::sleep(Duration::from_millis(600));
        let b = running_ids(dir, "crash");
        killed_tasks.extend(a.intersection(&b).cloned());
        workers.push(spawn_worker(dir, "crash", &args));
    }
    let deadline = Instant::now() + Duration::from_secs(240);
    for w in workers.iter_mut() {
        while w.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "workers did not finish");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let all = tasks(dir, "crash", "{}");
    assert_eq!(all.len(), 200);
    for t in &all {
        assert_eq!(t["status"], "done", "{t}");
        // The result is the run reference; the run holds this task's own result.
        assert!(t["res"]["run_id"].is_string(), "{t}");
    }
    assert!(
        !killed_tasks.is_empty(),
        "no task was caught mid-run by the kills"
    );
    for id in &killed_tasks {
        let t = all.iter().find(|t| t["_id"] == json!(id)).unwrap();
        assert!(
            t["attempts"].as_u64().unwrap() >= 2,
            "killed task {t} was not reclaimed"
        );
    }
    // Each task's committed run ended FINISHED and belongs to it.
    let runs = json_of(
        qtask(dir)
            .args(["exp", "runs", "crash", "--status", "FINISHED", "--json"])
            .output()
            .unwrap(),
    );
    let finished: BTreeSet<String> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["run_id"].as_str().unwrap().to_string())
        .collect();
    for t in &all {
        assert!(
            finished.contains(t["res"]["run_id"].as_str().unwrap()),
            "{t}"
        );
    }
    assert_eq!(ids.len(), 200);
}

#[test]
fn a_poison_task_ends_failed_with_its_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut defs: Vec<Value> = (0..5).map(|i| json!({"i": i})).collect();
    defs.push(json!({"i": 99, "poison": true}));
    create(dir, "p", &defs);
    let cmd = "python3 -c 'import json,sys; t=json.load(sys.stdin); sys.exit(\"poisoned task \" + str(t[\"i\"])) if t.get(\"poison\") else print(json.dumps(t))'";
    let out = json_of(
        qtask(dir)
            .args(["worker", "-t", "p", "--exec", cmd, "--json"])
            .output()
            .unwrap(),
    );
    assert_eq!(out["committed"], 5);
    assert_eq!(out["failed"], 3);
    let failed = tasks(dir, "p", r#"{"status": "failed"}"#);
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["attempts"], 3);
    assert!(
        failed[0]["error"]
            .as_str()
            .unwrap()
            .contains("poisoned task 99"),
        "{}",
        failed[0]
    );
    assert_eq!(tasks(dir, "p", r#"{"status": "done"}"#).len(), 5);
    // retry puts it back; it fails again, still with its error kept.
    ok(qtask(dir)
        .args(["manage", "-t", "p", "retry"])
        .output()
        .unwrap());
    assert_eq!(tasks(dir, "p", r#"{"status": "waiting"}"#).len(), 1);
}

#[test]
fn sigterm_returns_the_task_in_hand() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let ids = create(dir, "s", &[json!({"i": 1}), json!({"i": 2})]);
    let mut w = spawn_worker(dir, "s", &["--exec", "sleep 60"]);
    let started = Instant::now();
    while running_ids(dir, "s").is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the worker never claimed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    unsafe {
        libc_kill(w.id() as i32, 15);
    }
    let status = w.wait().unwrap();
    assert!(status.success(), "worker exit {status:?}");
    assert!(started.elapsed() < Duration::from_secs(30));
    for id in ids {
        let t = &tasks(dir, "s", &format!(r#"{{"_id": "{id}"}}"#))[0];
        assert_eq!(t["status"], "waiting", "{t}");
        assert_eq!(t["attempts"], 0, "{t}");
    }
}

unsafe extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

#[test]
fn trainers_record_runs_in_input_order() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let defs: Vec<Value> = (0..4)
        .map(|i| json!({"model": {"kwargs": {"lr": i}}, "seg": [1, 2]}))
        .collect();
    std::fs::write(dir.join("t.json"), serde_json::to_string(&defs).unwrap()).unwrap();
    for (trainer, exp) in [
        ("r", "er"),
        ("rm", "erm"),
        ("delay-r", "edr"),
        ("delay-rm", "edrm"),
    ] {
        let out = json_of(
            qtask(dir)
                .args([
                    "train",
                    "t.json",
                    "--experiment",
                    exp,
                    "--trainer",
                    trainer,
                    "--func",
                    "echo",
                    "--json",
                ])
                .args(["--workers", "2", "--end-train"])
                .output()
                .unwrap(),
        );
        let runs: Vec<String> = out["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap().to_string())
            .collect();
        assert_eq!(runs.len(), 4, "{trainer}");
        for run in &runs {
            let show = json_of(
                qtask(dir)
                    .args(["exp", "show", run, "--json"])
                    .output()
                    .unwrap(),
            );
            let text = show.to_string();
            assert!(text.contains("end_task_train"), "{trainer}: {text}");
            assert!(text.contains("FINISHED"), "{trainer}: {text}");
            // echo logged the numeric leaves of task i as metrics.
            assert!(text.contains("\"model.kwargs.lr\""), "{trainer}: {text}");
        }
        if trainer.ends_with("rm") {
            let pool_tasks = tasks(dir, exp, "{}");
            assert_eq!(pool_tasks.len(), 4);
            assert!(
                pool_tasks.iter().all(|t| t["status"] == "done"),
                "{trainer}"
            );
        }
    }
    // Training the same tasks again with an RM trainer retrains nothing.
    let before = json_of(
        qtask(dir)
            .args(["exp", "runs", "erm", "--json"])
            .output()
            .unwrap(),
    );
    json_of(
        qtask(dir)
            .args([
                "train",
                "t.json",
                "--experiment",
                "erm",
                "--trainer",
                "rm",
                "--func",
                "echo",
                "--json",
            ])
            .output()
            .unwrap(),
    );
    let after = json_of(
        qtask(dir)
            .args(["exp", "runs", "erm", "--json"])
            .output()
            .unwrap(),
    );
    assert_eq!(
        before.as_array().unwrap().len(),
        after.as_array().unwrap().len()
    );
}
