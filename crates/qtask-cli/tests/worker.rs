//! `qtask worker` and `qtask train` through the real binary: crash recovery with leases,
//! poison tasks, SIGTERM, trainers.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

mod common;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

fn sqlite_store(dir: &Path) -> String {
    format!("sqlite:{}", dir.join("pool.db").display())
}

fn qtask(dir: &Path) -> Command {
    qtask_on(dir, &sqlite_store(dir))
}

fn qtask_on(dir: &Path, store: &str) -> Command {
    let mut c = common::cmd();
    c.current_dir(dir).env("QTASK_STORE", store).env(
        "QTASK_TRACKING_URI",
        format!("file:{}", dir.join("mlruns").display()),
    );
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
    create_on(dir, &sqlite_store(dir), pool, defs)
}

fn create_on(dir: &Path, store: &str, pool: &str, defs: &[Value]) -> Vec<String> {
    std::fs::write(dir.join("tasks.json"), serde_json::to_string(defs).unwrap()).unwrap();
    let out = qtask_on(dir, store)
        .args(["manage", "-t", pool, "create", "tasks.json", "--json"])
        .output();
    let ids = json_of(out.unwrap());
    ids.as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

fn tasks(dir: &Path, pool: &str, query: &str) -> Vec<Value> {
    tasks_on(dir, &sqlite_store(dir), pool, query)
}

fn tasks_on(dir: &Path, store: &str, pool: &str, query: &str) -> Vec<Value> {
    let out = qtask_on(dir, store)
        .args(["manage", "-t", pool, "query", query, "--json"])
        .output();
    json_of(out.unwrap()).as_array().unwrap().clone()
}

fn spawn_worker(dir: &Path, pool: &str, extra: &[&str]) -> Child {
    spawn_worker_on(dir, &sqlite_store(dir), pool, extra)
}

fn spawn_worker_on(dir: &Path, store: &str, pool: &str, extra: &[&str]) -> Child {
    qtask_on(dir, store)
        .args(["worker", "-t", pool, "--json"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// 3 workers drain 200 sleeping tasks; one worker is killed with SIGKILL mid-task twice (and,
/// with `restart`, the database server is restarted once). Every task must end done, committed
/// once to a FINISHED run of its own, and the killed tasks reclaimed (attempts >= 2).
fn crash_test(dir: &Path, store: &str, pool: &str, lease: &str, restart: Option<&str>) {
    let defs: Vec<Value> = (0..200).map(|i| json!({"i": i})).collect();
    create_on(dir, store, pool, &defs);
    // Each task logs its start and end with its worker's pid, sleeps, and echoes the task back.
    let log = dir.join("starts.log");
    let cmd = format!(
        "python3 -c 'import json,os,sys,time\nt=json.load(sys.stdin)\nw=lambda s: open(\"{log}\",\"a\").write(\"%s %s %d\\n\" % (s, os.environ[\"QTASK_TASK_ID\"], os.getppid()))\nw(\"start\"); time.sleep(0.15); w(\"end\"); print(json.dumps(t))'",
        log = log.display()
    );
    let args = ["--exec", cmd.as_str(), "--lease", lease];
    let mut workers: Vec<Child> = (0..3)
        .map(|_| spawn_worker_on(dir, store, pool, &args))
        .collect();
    let mut killed_tasks = BTreeSet::new();
    // The victim's task in hand: the last one its commands started and did not end.
    let open_task = |pid: u32| -> Option<String> {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let pid = pid.to_string();
        let mine: Vec<(&str, &str)> = text
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split(' ').collect();
                (f.len() == 3 && f[2] == pid).then(|| (f[0], f[1]))
            })
            .collect();
        let (_, id) = mine.iter().rev().find(|(kind, _)| *kind == "start")?;
        let ended = mine
            .iter()
            .any(|(kind, other)| *kind == "end" && other == id);
        (!ended).then(|| id.to_string())
    };
    for round in 0..2 {
        let mut victim = workers.remove(0);
        let waiting = Instant::now();
        while open_task(victim.id()).is_none() {
            assert!(
                waiting.elapsed() < Duration::from_secs(120),
                "the worker never started a task"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        victim.kill().unwrap(); // SIGKILL, mid-task
        victim.wait().unwrap();
        std::thread::sleep(Duration::from_millis(300));
        // (If its command ended right at the kill, the task may have been committed.)
        if let Some(id) = open_task(victim.id()) {
            killed_tasks.insert(id);
        }
        workers.push(spawn_worker_on(dir, store, pool, &args));
        if let (Some(cmd), 0) = (restart, round) {
            let st = Command::new("sh").args(["-c", cmd]).status().unwrap();
            assert!(st.success(), "restart command failed: {cmd}");
        }
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    for w in workers.iter_mut() {
        while w.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "workers did not finish");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let all = tasks_on(dir, store, pool, "{}");
    assert_eq!(all.len(), 200);
    for t in &all {
        assert_eq!(t["status"], "done", "{t}");
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
    // Each task's committed run ended FINISHED, holds this task, and no run is committed twice.
    let runs = json_of(
        qtask_on(dir, store)
            .args(["exp", "runs", pool, "--status", "FINISHED", "--json"])
            .output()
            .unwrap(),
    );
    let finished: BTreeSet<String> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["run_id"].as_str().unwrap().to_string())
        .collect();
    let committed: BTreeSet<&str> = all
        .iter()
        .map(|t| t["res"]["run_id"].as_str().unwrap())
        .collect();
    assert_eq!(committed.len(), 200, "two tasks share a run");
    for t in &all {
        assert!(
            finished.contains(t["res"]["run_id"].as_str().unwrap()),
            "{t}"
        );
    }
}

#[test]
fn killed_workers_lose_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    crash_test(tmp.path(), &sqlite_store(tmp.path()), "crash", "2", None);
}

/// The same on PostgreSQL (`QTASK_TEST_POSTGRES`), restarting the server mid-run when
/// `QTASK_TEST_PG_RESTART` holds the command that restarts it.
#[test]
fn killed_workers_lose_nothing_on_postgres() {
    let Some(url) = qtask_testkit::enabled(
        qtask_testkit::Suite::Postgres,
        "killed_workers_lose_nothing_on_postgres",
    ) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let pool = format!(
        "crash_{}_{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos()
    );
    let restart = std::env::var("QTASK_TEST_PG_RESTART").ok();
    crash_test(tmp.path(), &url, &pool, "4", restart.as_deref());
    let _ = qtask_on(tmp.path(), &url)
        .args(["manage", "-t", &pool, "remove", "--yes"])
        .output();
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
    while tasks(dir, "s", r#"{"status": "running"}"#).is_empty() {
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
    let again = |extra: &[&str]| {
        let out = qtask(dir)
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
            .args(extra)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        (json_of(out), err)
    };
    let runs = |exp: &str| {
        json_of(
            qtask(dir)
                .args(["exp", "runs", exp, "--json"])
                .output()
                .unwrap(),
        )
        .as_array()
        .unwrap()
        .len()
    };
    let (_, err) = again(&[]);
    assert!(
        err.contains("4 task(s) already done in pool `erm`; nothing to train"),
        "{err}"
    );
    assert!(err.contains("--retrain"), "{err}");
    assert_eq!(runs("erm"), before.as_array().unwrap().len());
    // --retrain trains them again: four new runs, and no note.
    let (out, err) = again(&["--retrain"]);
    assert_eq!(out["runs"].as_array().unwrap().len(), 4);
    assert!(!err.contains("already done"), "{err}");
    assert_eq!(runs("erm"), before.as_array().unwrap().len() + 4);
}

#[test]
fn force_release_runs_each_task_in_its_own_process() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    create(
        dir,
        "fr",
        &(0..3).map(|i| json!({"i": i})).collect::<Vec<_>>(),
    );
    create(
        dir,
        "inproc",
        &(0..3).map(|i| json!({"j": i})).collect::<Vec<_>>(),
    );
    let pids = |pool: &str| -> BTreeSet<String> {
        let runs = json_of(
            qtask(dir)
                .args(["exp", "runs", pool, "--json"])
                .output()
                .unwrap(),
        );
        runs.as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let id = r["run_id"].as_str().unwrap();
                let show = json_of(
                    qtask(dir)
                        .args(["exp", "show", id, "--json"])
                        .output()
                        .unwrap(),
                );
                show["tags"]["qtask.pid"].as_str().unwrap().to_string()
            })
            .collect()
    };
    let out = json_of(
        qtask(dir)
            .args([
                "worker",
                "-t",
                "fr",
                "--func",
                "echo",
                "--force-release",
                "--json",
            ])
            .output()
            .unwrap(),
    );
    assert_eq!(out["committed"], 3);
    assert_eq!(pids("fr").len(), 3, "each task in a fresh process");
    json_of(
        qtask(dir)
            .args(["worker", "-t", "inproc", "--func", "echo", "--json"])
            .output()
            .unwrap(),
    );
    assert_eq!(pids("inproc").len(), 1, "without it, one process");
    assert!(tasks(dir, "fr", "{}").iter().all(|t| t["status"] == "done"));
}
