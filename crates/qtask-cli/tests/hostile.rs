//! The CLI under hostile input and broken environments: each case asserts what is refused (one
//! line, non-zero exit) or what survives, through the real binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;

use serde_json::{Value, json};

fn store(dir: &Path) -> String {
    format!("sqlite:{}", dir.join("pool.db").display())
}

fn runs(dir: &Path) -> String {
    format!("file:{}", dir.join("mlruns").display())
}

/// qtask in `dir`, with its pool and runs store there.
fn qtask(dir: &Path) -> Command {
    let mut c = common::cmd();
    c.current_dir(dir)
        .env("QTASK_STORE", store(dir))
        .env("QTASK_TRACKING_URI", runs(dir));
    c
}

fn run(dir: &Path, args: &[&str]) -> Output {
    qtask(dir).args(args).output().unwrap()
}

fn create(dir: &Path, pool: &str, defs: &[Value]) -> Vec<String> {
    std::fs::write(dir.join("tasks.json"), serde_json::to_string(defs).unwrap()).unwrap();
    let out = run(
        dir,
        &["manage", "-t", pool, "create", "tasks.json", "--json"],
    );
    let ids: Value = serde_json::from_str(&common::ok(&out)).unwrap();
    ids.as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

fn tasks(dir: &Path, pool: &str) -> Vec<Value> {
    let out = run(dir, &["manage", "-t", pool, "query", "--json"]);
    serde_json::from_str::<Value>(&common::ok(&out))
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

/// Every task of `pool` is waiting with no attempt counted and no error.
fn assert_untouched(dir: &Path, pool: &str) {
    for t in tasks(dir, pool) {
        assert_eq!(t["status"], "waiting", "{t}");
        assert_eq!(t["attempts"], 0, "{t}");
        assert!(t["error"].is_null(), "{t}");
    }
}

/// The experiment folder (under mlruns) of the experiment called `name`.
fn experiment_dir(dir: &Path, name: &str) -> PathBuf {
    for entry in std::fs::read_dir(dir.join("mlruns")).unwrap() {
        let p = entry.unwrap().path();
        let meta = p.join("meta.yaml");
        if std::fs::read_to_string(&meta).is_ok_and(|m| m.contains(&format!("name: \"{name}\""))) {
            return p;
        }
    }
    panic!("no experiment {name}");
}

// ---- 1. An environment failure is not a task failure ----

#[test]
fn worker_with_a_missing_program_stops_and_burns_no_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    create(d, "p", &[json!({"a": 1}), json!({"a": 2}), json!({"a": 3})]);
    let out = run(d, &["worker", "-t", "p", "--exec", "/no/such/program"]);
    common::fails_with(
        &out,
        "cannot start `/no/such/program`: No such file or directory",
    );
    assert!(
        stderr(&out).contains("handed back to the pool, attempt not counted"),
        "{}",
        stderr(&out)
    );
    assert_untouched(d, "p");
}

/// Makes the experiment `name`'s artifact location a path no file can be written under.
fn break_artifact_location(dir: &Path, name: &str) {
    let meta = experiment_dir(dir, name).join("meta.yaml");
    let text = std::fs::read_to_string(&meta).unwrap();
    let broken: String = text
        .lines()
        .map(|l| {
            if l.starts_with("artifact_location:") {
                "artifact_location: \"file:///dev/null/artifacts\"".to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&meta, broken).unwrap();
}

#[test]
fn an_unwritable_runs_store_stops_the_worker_in_process_and_with_force_release() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A first task creates the experiment; then its artifact folder becomes unwritable.
    create(d, "p", &[json!({"a": 0})]);
    common::ok(&run(d, &["worker", "-t", "p", "--func", "echo"]));
    break_artifact_location(d, "p");
    common::ok(&run(d, &["manage", "-t", "p", "remove", "--yes"]));
    create(d, "p", &[json!({"a": 1}), json!({"a": 2})]);
    for extra in [&[][..], &["--force-release"][..]] {
        let mut args = vec!["worker", "-t", "p", "--func", "echo"];
        args.extend_from_slice(extra);
        let out = run(d, &args);
        common::fails_with(&out, "worker stopped: ");
        assert!(
            stderr(&out).contains("/dev/null/artifacts"),
            "{extra:?}: {}",
            stderr(&out)
        );
        assert_untouched(d, "p");
    }
}

// ---- 6. One corrupt experiment does not hide the others ----

#[test]
fn a_corrupt_experiment_is_skipped_with_a_warning_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    create(d, "good", &[json!({"a": 1})]);
    common::ok(&run(d, &["worker", "-t", "good", "--func", "echo"]));
    create(d, "other", &[json!({"b": 1})]);
    common::ok(&run(d, &["worker", "-t", "other", "--func", "echo"]));
    let bad = experiment_dir(d, "other");
    std::fs::write(bad.join("meta.yaml"), "name: [unclosed\n").unwrap();
    let bad_id = bad.file_name().unwrap().to_string_lossy().to_string();

    // Listing shows the good experiment and warns about the damaged one.
    let out = run(d, &["exp", "list", "--json"]);
    let list: Value = serde_json::from_str(&common::ok(&out)).unwrap();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"good"), "{list}");
    let warning = stderr(&out);
    assert!(
        warning.starts_with("warning: skipped experiment ") && warning.contains(&bad_id),
        "{warning}"
    );
    assert_eq!(warning.lines().count(), 1, "{warning}");

    // Runs of the good experiment can be listed and shown.
    let out = run(d, &["exp", "runs", "good", "--json"]);
    let listed: Value = serde_json::from_str(&common::ok(&out)).unwrap();
    let run_id = listed[0]["run_id"].as_str().unwrap().to_string();
    common::ok(&run(d, &["exp", "show", &run_id, "--json"]));

    // And a worker recording into the good experiment is not stopped by the damaged one.
    create(d, "good", &[json!({"a": 2})]);
    common::ok(&run(d, &["worker", "-t", "good", "--func", "echo"]));
    assert!(tasks(d, "good").iter().all(|t| t["status"] == "done"));

    // A worker that would create a new experiment cannot tell whether the damaged one is it:
    // it stops without burning any attempt, naming the damaged file.
    create(d, "fresh", &[json!({"c": 1}), json!({"c": 2})]);
    let out = run(d, &["worker", "-t", "fresh", "--func", "echo"]);
    common::fails_with(&out, "it may be experiment `fresh`");
    assert!(
        stderr(&out).contains(&format!("{bad_id}/meta.yaml")),
        "{}",
        stderr(&out)
    );
    assert_untouched(d, "fresh");
}

// ---- 2. No path leaves its folder ----

fn synth_market(dir: &Path) -> PathBuf {
    let m = dir.join("m");
    common::ok(&common::qtask(&[
        "data",
        "synth",
        "--out",
        m.to_str().unwrap(),
        "--instruments",
        "3",
        "--start",
        "2018-01-01",
        "--end",
        "2019-03-31",
        "--seed",
        "1",
    ]));
    m
}

/// Nothing named `evil*` exists anywhere under `dir` or its parent.
fn assert_nothing_escaped(dir: &Path) {
    for base in [dir, dir.parent().unwrap()] {
        for entry in walk(base) {
            assert!(
                !entry.to_string_lossy().contains("evil"),
                "{} was written",
                entry.display()
            );
        }
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() && p.starts_with(dir) && !p.is_symlink() && p.components().count() < 12 {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}

#[test]
fn csv_symbols_and_columns_that_would_leave_the_folder_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("work");
    std::fs::create_dir_all(&d).unwrap();
    let out = d.join("prov");
    let cases = [
        (
            "symbol,date,close\nSH1,2020-01-02,1\n../../evil,2020-01-02,2\n",
            "line 3: instrument \"../../EVIL\": '/' is not allowed",
        ),
        (
            "symbol,date,../../evil\nSH1,2020-01-02,1\n",
            "line 1: column \"../../evil\": '/' is not allowed",
        ),
        (
            "symbol,date,close\n..,2020-01-02,1\n",
            "line 2: instrument \"..\": `.` and `..` name folders",
        ),
        (
            "symbol,date,.evil\nSH1,2020-01-02,1\n",
            "line 1: column \".evil\": a name cannot start with `.`",
        ),
    ];
    for (csv, needle) in cases {
        let src = d.join("in.csv");
        std::fs::write(&src, csv).unwrap();
        let res = common::qtask(&[
            "data",
            "import-csv",
            "--csv",
            src.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        common::fails_with(&res, needle);
        assert!(stderr(&res).contains("in.csv"), "{}", stderr(&res));
        assert!(!out.exists(), "nothing may be written: {csv}");
    }
    // A file name is a symbol too (a folder of <SYMBOL>.csv files).
    let folder = d.join("csvs");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join(".hidden.csv"), "date,close\n2020-01-02,1\n").unwrap();
    let res = common::qtask(&[
        "data",
        "import-csv",
        "--csv",
        folder.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    common::fails_with(&res, "instrument \".HIDDEN\": a name cannot start with `.`");
    assert!(!out.exists());
    assert_nothing_escaped(&d);
}

#[test]
fn instrument_and_market_names_from_flags_and_files_stay_inside() {
    let dir = tempfile::tempdir().unwrap();
    let m = synth_market(dir.path());
    let features = |extra: &[&str]| {
        let mut args = vec![
            "data",
            "features",
            "--provider-uri",
            m.to_str().unwrap(),
            "--expr",
            "$close",
        ];
        args.extend_from_slice(extra);
        common::qtask(&args)
    };
    common::fails_with(
        &features(&["--market", "../../../etc/passwd"]),
        "market \"../../../etc/passwd\": '/' is not allowed",
    );
    common::fails_with(
        &features(&["--instruments", "SH600000,../../x"]),
        "instrument \"../../X\": '/' is not allowed",
    );
    // Reading is as strict as writing: a symbol in an instruments file is checked by the
    // same rule, and the error names the file and the line.
    let all = m.join("instruments/all.txt");
    let mut text = std::fs::read_to_string(&all).unwrap();
    text.push_str("../../evil\t2018-01-02\t2019-03-29\n");
    std::fs::write(&all, &text).unwrap();
    let res = features(&["--market", "all"]);
    common::fails_with(
        &res,
        "instruments/all.txt: line 4: instrument \"../../EVIL\"",
    );
}

#[test]
fn pit_symbols_and_fields_stay_inside() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = d.join("prov");
    for (csv, needle) in [
        (
            "symbol,date,period,field,value\n../evil,2020-04-20,202001,roe_q,0.1\n",
            "line 2: instrument \"../evil\": '/' is not allowed",
        ),
        (
            "symbol,date,period,field,value\n.evil,2020-04-20,202001,roe_q,0.1\n",
            "line 2: instrument \".evil\": a name cannot start with `.`",
        ),
    ] {
        let src = d.join("pit.csv");
        std::fs::write(&src, csv).unwrap();
        let res = common::qtask(&[
            "data",
            "import-pit",
            "--csv",
            src.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        common::fails_with(&res, needle);
        assert!(!out.exists());
    }
}

// ---- 5. Wrong input is refused, not reinterpreted ----

#[test]
fn integers_beyond_64_bits_are_kept_exactly_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let defs = r#"[{"seed": 18446744073709551616}, {"seed": 18446744073709551617},
                   {"seed": -123456789012345678901234567890, "lr": 1e-3}]"#;
    std::fs::write(d.join("big.json"), defs).unwrap();
    let out = run(d, &["manage", "-t", "big", "create", "big.json", "--json"]);
    let ids: Value = serde_json::from_str(&common::ok(&out)).unwrap();
    assert_eq!(ids.as_array().unwrap().len(), 3);
    // Three different tasks (they differ beyond the 53 bits of a float).
    let ids: std::collections::BTreeSet<&str> = ids
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 3);
    let listed = common::ok(&run(d, &["manage", "-t", "big", "query", "--json"]));
    for digits in [
        "18446744073709551616",
        "18446744073709551617",
        "-123456789012345678901234567890",
    ] {
        assert!(listed.contains(digits), "{listed}");
    }
    assert!(listed.contains("0.001"), "{listed}");
    // A worker's command receives them exactly and returns them exactly.
    let echo = d.join("echo.py");
    std::fs::write(
        &echo,
        "import json, sys\nt = json.load(sys.stdin)\nprint(json.dumps({'seed': t['seed'], 'plus1': t['seed'] + 1}))\n",
    )
    .unwrap();
    common::ok(&run(
        d,
        &[
            "worker",
            "-t",
            "big",
            "--exec",
            &format!("python3 {}", echo.display()),
        ],
    ));
    assert!(tasks(d, "big").iter().all(|t| t["status"] == "done"));
    let files = walk(&d.join("mlruns"));
    let results: Vec<String> = files
        .iter()
        .filter(|p| p.ends_with("artifacts/result.json"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    assert!(
        results
            .iter()
            .any(|r| r.contains("18446744073709551617") && r.contains("18446744073709551618")),
        "{results:?}"
    );
    // Params are written as Python's str() would: the integer exactly.
    let params: Vec<String> = files
        .iter()
        .filter(|p| p.ends_with("params/seed"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    assert!(
        params.contains(&"18446744073709551617".to_string()),
        "{params:?}"
    );
    // The same through a YAML template.
    std::fs::write(
        d.join("t.yaml"),
        "- seed: 18446744073709551617\n- seed: 18446744073709551616\n",
    )
    .unwrap();
    let generated = common::ok(&run(d, &["gen", "t.yaml"]));
    assert!(
        generated.contains("18446744073709551617") && generated.contains("18446744073709551616"),
        "{generated}"
    );
    // A float beyond the f64 range is refused, naming where it is.
    std::fs::write(d.join("inf.json"), r#"[{"a": {"b": 1e400}}]"#).unwrap();
    common::fails_with(
        &run(d, &["manage", "-t", "big", "create", "inf.json"]),
        "number 1e+400 at `0.a.b` is out of range",
    );
}

#[test]
fn an_unknown_train_key_is_refused_like_an_unknown_test_key() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let template = root.join("examples/csi100_lgb_rolling.yaml");
    let provider = root.join("tests/data/rolling/provider");
    let generate = |key_flag: &str, key: &str| {
        run(
            d,
            &[
                "gen",
                template.to_str().unwrap(),
                "--provider-uri",
                provider.to_str().unwrap(),
                "--rolling-step",
                "550",
                key_flag,
                key,
            ],
        )
    };
    common::fails_with(
        &generate("--train-key", "nope"),
        "task has no `dataset.kwargs.segments.nope` (expanding rolling grows the train segment; \
         the segments are train, valid, test",
    );
    common::fails_with(
        &generate("--test-key", "nope"),
        "task has no `dataset.kwargs.segments.nope`",
    );
    common::ok(&generate("--train-key", "none"));
}

#[test]
fn limits_are_stated_and_bad_instrument_lines_named() {
    let dir = tempfile::tempdir().unwrap();
    let m = synth_market(dir.path());
    let features = |expr: &str| {
        common::qtask(&[
            "data",
            "features",
            "--provider-uri",
            m.to_str().unwrap(),
            "--instruments",
            "SH600000",
            "--expr",
            expr,
        ])
    };
    common::fails_with(
        &features("Mean($close, 100000000)"),
        "Mean's window must be a whole number of days from 0 to 9999999",
    );
    // One bad instrument line: named by file and line.
    let all = m.join("instruments/all.txt");
    let mut text = std::fs::read_to_string(&all).unwrap();
    text.push_str("SH600009\t2019-03-01\t2018-01-01\n");
    std::fs::write(&all, &text).unwrap();
    let res = common::qtask(&[
        "data",
        "features",
        "--provider-uri",
        m.to_str().unwrap(),
        "--market",
        "all",
        "--expr",
        "$close",
    ]);
    common::fails_with(
        &res,
        "instruments/all.txt: line 4: instrument SH600009 ends (2018-01-01) before it starts (2019-03-01)",
    );
}
