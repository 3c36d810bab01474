//! `qtask ui` as a user runs it: the real binary serving a store that `qtask manage` and
//! `qtask worker` filled, its figures compared with `qtask manage`'s own.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::Duration;

use common::{cmd, fails_with, ok, qtask};
use serde_json::Value;

const TOKEN: &str = "cli-test-token";

/// A running `qtask ui`, killed on drop.
struct Ui(Child, String);

impl Drop for Ui {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_ui(store: &str) -> Ui {
    let mut child = cmd()
        .args([
            "ui",
            "--store",
            store,
            "--bind",
            "127.0.0.1:0",
            "--token",
            TOKEN,
        ])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    Ui(child, url)
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

fn get_json(url: &str) -> Value {
    let mut r = agent().get(url).call().unwrap();
    assert_eq!(r.status(), 200, "{url}");
    serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap()
}

#[test]
fn the_dashboard_counts_what_manage_counts() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite:{}", dir.path().join("q.db").display());
    let tasks = dir.path().join("tasks.json");
    let defs: Vec<Value> = (0..9).map(|i| serde_json::json!({"i": i})).collect();
    std::fs::write(&tasks, serde_json::to_string(&defs).unwrap()).unwrap();
    let tasks = tasks.to_str().unwrap();
    let mlruns = format!("file:{}", dir.path().join("mlruns").display());
    ok(&qtask(&[
        "manage",
        "--store",
        &store,
        "-t",
        "p",
        "create",
        tasks,
        "--max-attempts",
        "1",
    ]));
    ok(&qtask(&[
        "worker",
        "--store",
        &store,
        "-t",
        "p",
        "--func",
        "echo",
        "--max-tasks",
        "4",
        "--tracking-uri",
        &mlruns,
    ]));
    // Two attempts that fail: a command exiting non-zero.
    let _ = qtask(&[
        "worker",
        "--store",
        &store,
        "-t",
        "p",
        "--exec",
        "false",
        "--max-tasks",
        "2",
        "--tracking-uri",
        &mlruns,
    ]);
    let stat: Value = serde_json::from_str(&ok(&qtask(&[
        "manage",
        "--store",
        &store,
        "-t",
        "p",
        "task_stat",
        "--json",
    ])))
    .unwrap();
    assert_eq!(stat["failed"], 2, "{stat}");

    let ui = start_ui(&store);
    let pools = get_json(&format!("{}/api/pools", ui.1));
    assert_eq!(pools[0]["pool"], "p");
    assert_eq!(pools[0]["counts"], stat);
    for status in ["failed", "done", "waiting"] {
        let api = get_json(&format!("{}/api/pools/p/tasks?status={status}", ui.1));
        let cli: Value = serde_json::from_str(&ok(&qtask(&[
            "manage",
            "--store",
            &store,
            "-t",
            "p",
            "query",
            &format!(r#"{{"status": "{status}"}}"#),
            "--json",
        ])))
        .unwrap();
        assert_eq!(api, cli, "{status}");
    }

    // An action without the token is refused and changes nothing.
    let failed = get_json(&format!("{}/api/pools/p/tasks?status=failed", ui.1));
    let id = failed[0]["_id"].as_str().unwrap();
    let url = format!("{}/api/pools/p/tasks/{id}/retry", ui.1);
    let r = agent().post(&url).send_empty().unwrap();
    assert_eq!(r.status(), 401);
    let again: Value = serde_json::from_str(&ok(&qtask(&[
        "manage",
        "--store",
        &store,
        "-t",
        "p",
        "task_stat",
        "--json",
    ])))
    .unwrap();
    assert_eq!(again, stat);
    let r = agent()
        .post(&url)
        .header("Authorization", &format!("Bearer {TOKEN}"))
        .send_empty()
        .unwrap();
    assert_eq!(r.status(), 200);
    let after: Value = serde_json::from_str(&ok(&qtask(&[
        "manage",
        "--store",
        &store,
        "-t",
        "p",
        "task_stat",
        "--json",
    ])))
    .unwrap();
    assert_eq!(after["failed"], 1);
}

#[test]
fn a_public_address_needs_a_token() {
    let out = qtask(&["ui", "--store", "sqlite:x.db", "--bind", "0.0.0.0:0"]);
    fails_with(&out, "--token");
    let out = qtask(&["ui", "--store", "nonsense", "--bind", "127.0.0.1:0"]);
    fails_with(&out, "nonsense");
}
