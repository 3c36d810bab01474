//! Many real processes on one store: exactly-once claims and race-free creation.
//! SQLite always; PostgreSQL too when `QTASK_TEST_POSTGRES` holds a server URL.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;

use serde_json::{Value, json};

mod common;
use common::cmd as bin;

fn stores(dir: &std::path::Path) -> Vec<String> {
    let mut v = vec![format!("sqlite:{}", dir.join("pool.db").display())];
    if let Some(pg) = qtask_testkit::enabled(qtask_testkit::Suite::Postgres, "manage_processes") {
        v.push(pg);
    }
    v
}

fn unique_pool(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{tag}-{nanos:x}-{}", std::process::id())
}

fn manage_json(store: &str, pool: &str, args: &[&str]) -> Value {
    let out = bin()
        .args(["manage", "--store", store, "-t", pool])
        .args(args)
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn eight_processes_drain_1000_tasks_exactly_once() {
    let tmp = tempfile::tempdir().unwrap();
    for store in stores(tmp.path()) {
        let pool = unique_pool("drain");
        let defs: Vec<Value> = (0..1000).map(|i| json!({"n": i})).collect();
        let file = tmp.path().join("drain.json");
        std::fs::write(&file, serde_json::to_string(&defs).unwrap()).unwrap();
        let ids = manage_json(&store, &pool, &["create", file.to_str().unwrap()]);
        assert_eq!(ids.as_array().unwrap().len(), 1000);

        // Start the eight workers together: each connects, says ready, then waits for go.
        let mut workers: Vec<_> = (0..8)
            .map(|_| {
                let mut child = bin()
                    .args([
                        "bench",
                        "pool",
                        "--store",
                        &store,
                        "--pool",
                        &pool,
                        "--role",
                        "claim",
                        "--print-ids",
                    ])
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .spawn()
                    .unwrap();
                let mut out = BufReader::new(child.stdout.take().unwrap());
                let mut line = String::new();
                out.read_line(&mut line).unwrap();
                assert_eq!(line.trim(), "ready");
                (child, out)
            })
            .collect();
        for (child, _) in &mut workers {
            writeln!(child.stdin.as_mut().unwrap(), "go").unwrap();
        }
        let mut commits: HashMap<String, usize> = HashMap::new();
        let mut busy_workers = 0;
        for (mut child, out) in workers {
            let mut mine = 0;
            for line in out.lines() {
                if let Some(id) = line.unwrap().strip_prefix("id ") {
                    *commits.entry(id.to_string()).or_default() += 1;
                    mine += 1;
                }
            }
            assert!(child.wait().unwrap().success());
            busy_workers += usize::from(mine > 0);
        }
        assert_eq!(commits.len(), 1000, "{store}: every task committed");
        assert!(
            commits.values().all(|&n| n == 1),
            "{store}: a task was committed twice"
        );
        let all: Vec<String> = serde_json::from_value(ids).unwrap();
        assert!(all.iter().all(|id| commits.contains_key(id)));
        assert!(busy_workers > 1, "{store}: the work was shared");
        let stat = manage_json(&store, &pool, &["task_stat"]);
        assert_eq!(stat, json!({"done": 1000}), "{store}");
        manage_json(&store, &pool, &["remove", "--yes"]);
    }
}

#[test]
fn four_processes_create_the_same_500_tasks() {
    let tmp = tempfile::tempdir().unwrap();
    for store in stores(tmp.path()) {
        let pool = unique_pool("create");
        let defs: Vec<Value> = (0..500)
            .map(|i| json!({"n": i, "model": {"lr": 0.1}}))
            .collect();
        let file = tmp.path().join("same.json");
        std::fs::write(&file, serde_json::to_string(&defs).unwrap()).unwrap();
        let children: Vec<_> = (0..4)
            .map(|_| {
                bin()
                    .args([
                        "manage",
                        "--store",
                        &store,
                        "-t",
                        &pool,
                        "create",
                        file.to_str().unwrap(),
                        "--json",
                    ])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let outputs: Vec<Vec<String>> = children
            .into_iter()
            .map(|c| {
                let out = c.wait_with_output().unwrap();
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                serde_json::from_slice(&out.stdout).unwrap()
            })
            .collect();
        assert!(
            outputs.iter().all(|o| o == &outputs[0]),
            "{store}: same ids everywhere"
        );
        let rows = manage_json(&store, &pool, &["query"]);
        assert_eq!(rows.as_array().unwrap().len(), 500, "{store}");
        manage_json(&store, &pool, &["remove", "--yes"]);
    }
}

#[test]
fn bench_pool_reports_every_round_and_leaves_nothing_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let store = format!("sqlite:{}", tmp.path().join("bench.db").display());
    let out = bin()
        .args(["bench", "pool", "--store", &store])
        .args(["--tasks", "60", "--workers", "2", "--rounds", "3"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["exactly_once"], json!(true));
    assert_eq!(report["rounds"], json!(3));
    let ratios: Vec<f64> = report["round_ratios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_f64().unwrap())
        .collect();
    assert_eq!(ratios.len(), 3);
    assert!(ratios.iter().all(|r| *r > 0.0), "{ratios:?}");
    // The reported ratio is the median of the rounds' own ratios.
    let mut sorted = ratios.clone();
    sorted.sort_by(f64::total_cmp);
    let ratio = report["ratio"].as_f64().unwrap();
    assert!((ratio - sorted[1]).abs() < 0.0015, "{ratio} vs {sorted:?}");
    // The bench pool is removed afterwards.
    let pools = manage_json(&store, "any", &["list"]);
    assert_eq!(pools, json!([]));
}
