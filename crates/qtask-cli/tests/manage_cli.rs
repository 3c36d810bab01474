//! `qtask manage` through the real binary: the documented JSON shapes and one-line errors.

use std::path::Path;
use std::process::Output;

mod common;

use serde_json::{Value, json};

fn qtask(dir: &Path, args: &[&str]) -> Output {
    common::cmd()
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run qtask")
}

fn ok_json(dir: &Path, args: &[&str]) -> Value {
    let out = qtask(dir, args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{args:?} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Asserts a failure with exactly one stderr line starting `error:`; returns that line.
fn one_line_error(out: &Output, code: i32) -> String {
    let err = String::from_utf8_lossy(&out.stderr).trim_end().to_string();
    assert_eq!(out.status.code(), Some(code), "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "one line expected: {err}");
    assert!(err.starts_with("error: "), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

fn write(dir: &Path, name: &str, v: &Value) {
    std::fs::write(dir.join(name), serde_json::to_string(v).unwrap()).unwrap();
}

#[test]
fn lifecycle_with_json_output() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    write(
        d,
        "tasks.json",
        &json!([{"m": "a"}, {"m": "b"}, {"m": "a"}, {"m": "c"}]),
    );
    let ids = ok_json(d, &["manage", "-t", "p", "create", "tasks.json", "--json"]);
    let ids: Vec<String> = serde_json::from_value(ids).unwrap();
    assert_eq!(ids.len(), 4);
    assert_eq!(ids[0], ids[2]);
    assert!(d.join("qtask.db").exists(), "default store is ./qtask.db");

    // Dry run: existing ids, null for new ones, nothing inserted.
    write(d, "more.json", &json!([{"m": "a"}, {"m": "z"}]));
    let dry = ok_json(
        d,
        &[
            "manage",
            "-t",
            "p",
            "create",
            "more.json",
            "--dry-run",
            "--json",
        ],
    );
    assert_eq!(dry, json!([ids[0], null]));

    ok_json(
        d,
        &["manage", "-t", "p", "prioritize", &ids[3], "7", "--json"],
    )
    .to_string();
    let doc = ok_json(d, &["manage", "-t", "p", "fetch", "--json"]);
    let keys: Vec<&str> = doc
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "_id",
            "def",
            "status",
            "priority",
            "res",
            "attempts",
            "error",
            "created_at",
            "started_at",
            "finished_at"
        ]
    );
    assert_eq!(doc["_id"], json!(ids[3]), "highest priority first");
    assert_eq!(doc["status"], "running");
    assert_eq!(doc["priority"], 7);

    let stat = ok_json(d, &["manage", "-t", "p", "task_stat", "--json"]);
    assert_eq!(stat, json!({"waiting": 2, "running": 1}));
    let stat2 = ok_json(d, &["manage", "-t", "p", "task-stat", "--json"]);
    assert_eq!(stat, stat2, "both spellings");

    let out = qtask(
        d,
        &[
            "manage",
            "-t",
            "p",
            "commit",
            &ids[3],
            "--res",
            r#"{"ic": 0.1}"#,
        ],
    );
    assert!(out.status.success());
    let task = ok_json(d, &["manage", "-t", "p", "re_query", &ids[3], "--json"]);
    assert_eq!(
        (task["status"].clone(), task["res"].clone()),
        (json!("done"), json!({"ic": 0.1}))
    );
    assert!(task["finished_at"].as_str().unwrap().ends_with('Z'));

    let found = ok_json(
        d,
        &[
            "manage",
            "-t",
            "p",
            "query",
            r#"{"def.m": {"$in": ["b", "c"]}}"#,
            "--json",
        ],
    );
    let found_ids: Vec<&str> = found
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["_id"].as_str().unwrap())
        .collect();
    assert_eq!(found_ids, [ids[1].as_str(), ids[3].as_str()]);

    // Nothing claimable with an impossible query: null.
    let none = ok_json(
        d,
        &[
            "manage",
            "-t",
            "p",
            "fetch",
            "--query",
            r#"{"def.m": "nope"}"#,
            "--json",
        ],
    );
    assert_eq!(none, Value::Null);

    ok_json(
        d,
        &[
            "manage",
            "-t",
            "p",
            "reset_status",
            "--status",
            "done",
            "--json",
        ],
    );
    let out = qtask(
        d,
        &[
            "manage",
            "-t",
            "p",
            "wait",
            "--timeout",
            "5",
            "--poll",
            "0.05",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    assert_eq!(ok_json(d, &["manage", "list", "--json"]), json!(["p"]));
    let removed = ok_json(
        d,
        &[
            "manage",
            "-t",
            "p",
            "remove",
            "--query",
            r#"{"def.m": "a"}"#,
            "--json",
        ],
    );
    assert_eq!(removed, json!({"count": 1}));
    let removed = ok_json(d, &["manage", "-t", "p", "remove", "--yes", "--json"]);
    assert_eq!(removed, json!({"count": 2}));
    assert_eq!(ok_json(d, &["manage", "list", "--json"]), json!([]));
}

#[test]
fn fenced_commit_and_retry_from_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    write(d, "t.json", &json!({"only": 1}));
    ok_json(
        d,
        &[
            "manage",
            "-t",
            "p",
            "create",
            "t.json",
            "--json",
            "--max-attempts",
            "1",
        ],
    );
    let out = qtask(d, &["manage", "-t", "p", "fetch", "--json"]);
    let err = String::from_utf8_lossy(&out.stderr);
    let token = err
        .split("lease token ")
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = doc["_id"].as_str().unwrap();
    // An administrator resets it; the old holder's commit is refused and changes nothing.
    ok_json(d, &["manage", "-t", "p", "reset_waiting", "--json"]);
    let out = qtask(
        d,
        &[
            "manage", "-t", "p", "commit", id, "--res", "1", "--token", &token,
        ],
    );
    let line = one_line_error(&out, 1);
    assert!(line.contains("no longer leased"), "{line}");
    let task = ok_json(d, &["manage", "-t", "p", "re_query", id, "--json"]);
    assert_eq!(
        (task["status"].clone(), task["res"].clone()),
        (json!("waiting"), Value::Null)
    );

    ok_json(
        d,
        &[
            "manage",
            "-t",
            "p",
            "reset_status",
            "--status",
            "failed",
            "--json",
        ],
    );
    assert_eq!(
        ok_json(d, &["manage", "-t", "p", "retry", "--json"]),
        json!({"count": 1})
    );
    let task = ok_json(d, &["manage", "-t", "p", "re_query", id, "--json"]);
    assert_eq!(task["status"], "waiting");
}

#[test]
fn wait_times_out_with_exit_3() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    write(d, "t.json", &json!([{"x": 1}]));
    ok_json(d, &["manage", "-t", "p", "create", "t.json", "--json"]);
    let out = qtask(
        d,
        &[
            "manage",
            "-t",
            "p",
            "wait",
            "--timeout",
            "0.2",
            "--poll",
            "0.05",
        ],
    );
    let line = one_line_error(&out, 3);
    assert!(line.contains("1 waiting"), "{line}");

    // With --json the counts reach stdout on a timeout too (exit 3 says they are not final).
    let out = qtask(
        d,
        &[
            "manage",
            "-t",
            "p",
            "wait",
            "--timeout",
            "0.2",
            "--poll",
            "0.05",
            "--json",
        ],
    );
    assert_eq!(out.status.code(), Some(3));
    let counts: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    assert_eq!(counts["waiting"], json!(1), "{counts}");
}

#[test]
fn bad_input_is_one_line_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    write(d, "t.json", &json!([{"x": 1}, {"x": 2}]));
    let ids: Vec<String> = serde_json::from_value(ok_json(
        d,
        &["manage", "-t", "p", "create", "t.json", "--json"],
    ))
    .unwrap();
    let before = std::fs::read(d.join("qtask.db")).unwrap();
    let snapshot = || ok_json(d, &["manage", "-t", "p", "query", "--json"]);
    let state = snapshot();

    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["manage", "-t", "p", "query", r#"{"def.x": "#],
            "not valid JSON",
        ),
        (
            vec![
                "manage",
                "-t",
                "p",
                "remove",
                "--query",
                r#"{"def.x": {"$regex": "1"}}"#,
            ],
            "\"$regex\"",
        ),
        (
            vec![
                "manage",
                "-t",
                "p",
                "reset_status",
                "--status",
                "done",
                "--query",
                r#"{"def.x": {"$where": 1}}"#,
            ],
            "\"$where\"",
        ),
        (vec!["manage", "-t", "p", "re_query", "424242"], "424242"),
        (
            vec!["manage", "-t", "p", "commit", "424242", "--res", "1"],
            "424242",
        ),
        (
            vec!["manage", "-t", "p", "commit", &ids[0], "--res", "{bad"],
            "--res",
        ),
        (vec!["manage", "-t", "p", "prioritize", "nope", "3"], "nope"),
        (vec!["manage", "-t", "p", "remove"], "--yes"),
        (
            vec!["manage", "--store", "mysql://h/db", "-t", "p", "query"],
            "mysql://h/db",
        ),
        (
            vec![
                "manage",
                "--store",
                "postgres://u@127.0.0.1:1/db",
                "-t",
                "p",
                "query",
            ],
            "127.0.0.1:1",
        ),
        (
            vec!["manage", "-t", "p", "create", "missing.json"],
            "missing.json",
        ),
        (vec!["manage", "query"], "-t POOL"),
    ];
    for (args, needle) in cases {
        let line = one_line_error(&qtask(d, &args), 1);
        assert!(line.contains(needle), "{args:?}: {line}");
    }
    // A file that is not a task list is refused before anything is inserted.
    write(d, "mixed.json", &json!([{"x": 3}, "not a task"]));
    let line = one_line_error(&qtask(d, &["manage", "-t", "p", "create", "mixed.json"]), 1);
    assert!(
        line.contains("mixed.json") && line.contains("task 1"),
        "{line}"
    );
    assert_eq!(snapshot(), state, "nothing changed");

    std::fs::write(d.join("notes.txt"), b"plain text, not SQLite").unwrap();
    let line = one_line_error(
        &qtask(
            d,
            &["manage", "--store", "sqlite:notes.txt", "-t", "p", "query"],
        ),
        1,
    );
    assert!(line.contains("not a SQLite database"), "{line}");
    assert_eq!(
        std::fs::read(d.join("notes.txt")).unwrap(),
        b"plain text, not SQLite"
    );
    let _ = before;
}

/// `manage query` shows what tells tasks apart (here the test segment of rolling windows),
/// not the long prefix their definitions share.
#[test]
fn query_shows_the_fields_that_differ() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let task = |test: [&str; 2]| {
        json!({
            "model": {"class": "LGBModel", "kwargs": {"num_leaves": 210, "learning_rate": 0.2}},
            "dataset": {"class": "DatasetH", "kwargs": {
                "handler": {"class": "Alpha158", "kwargs": {"instruments": "csi100"}},
                "segments": {"train": ["2008-01-01", "2014-12-31"], "test": test}}}
        })
    };
    write(
        d,
        "t.json",
        &json!([
            task(["2017-01-03", "2017-06-30"]),
            task(["2017-07-03", "2017-12-29"])
        ]),
    );
    ok_json(d, &["manage", "-t", "p", "create", "t.json", "--json"]);
    let out = qtask(d, &["manage", "-t", "p", "query"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].contains("the fields that differ"), "{text}");
    assert!(
        lines[1].ends_with(r#"dataset.kwargs.segments.test=["2017-01-03","2017-06-30"]"#),
        "{text}"
    );
    assert!(
        lines[2].ends_with(r#"dataset.kwargs.segments.test=["2017-07-03","2017-12-29"]"#),
        "{text}"
    );
    assert!(!text.contains("LGBModel"), "{text}");
}
