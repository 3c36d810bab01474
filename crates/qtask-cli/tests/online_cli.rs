//! `qtask online` and `qtask predict` through the real binary: a routine killed (SIGKILL) at
//! several points and run again ends as one uninterrupted routine does; bad input fails with
//! one line; predictions of a reloaded run equal the run's own.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::{cmd, fails_with, ok};
use qtask_table::PredTable;
use serde_json::{Value, json};

fn template() -> Value {
    json!({
        "model": {"class": "LGBModel", "module_path": "qlib.contrib.model.gbdt",
                  "kwargs": {"num_threads": 1, "num_leaves": 15, "num_boost_round": 60}},
        "dataset": {
            "class": "DatasetH",
            "kwargs": {
                "handler": {"class": "Alpha158", "kwargs": {
                    "start_time": "2018-01-01", "end_time": "2018-10-31",
                    "fit_start_time": "2018-01-01", "fit_end_time": "2018-03-31",
                    "instruments": "all"}},
                "segments": {
                    "train": ["2018-01-01", "2018-03-31"],
                    "valid": ["2018-04-01", "2018-05-31"],
                    "test": ["2018-06-01", "2018-09-10"]
                }
            }
        },
        "record": [{"class": "SignalRecord", "kwargs": {"model": "<MODEL>", "dataset": "<DATASET>"}}]
    })
}

/// A market and a template shared by the managers of one test.
struct Market {
    dir: tempfile::TempDir,
}

impl Market {
    fn new() -> Market {
        let dir = tempfile::tempdir().unwrap();
        let m = Market { dir };
        ok(&m
            .q()
            .args(["data", "synth", "--out"])
            .arg(m.data())
            .args([
                "--instruments",
                "10",
                "--start",
                "2017-01-01",
                "--end",
                "2018-12-31",
                "--seed",
                "5",
            ])
            .output()
            .unwrap());
        std::fs::write(m.template(), template().to_string()).unwrap();
        m
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn template(&self) -> PathBuf {
        self.dir.path().join("tmpl.json")
    }

    /// qtask with the market's feature cache.
    fn q(&self) -> Command {
        let mut c = cmd();
        c.env("QTASK_CACHE_DIR", self.dir.path().join("cache"));
        c
    }

    /// A manager's folder: its runs store and task store.
    fn manager(&self, name: &str) -> Manager<'_> {
        let root = self.dir.path().join(name);
        std::fs::create_dir_all(&root).unwrap();
        Manager { market: self, root }
    }
}

struct Manager<'a> {
    market: &'a Market,
    root: PathBuf,
}

impl Manager<'_> {
    fn stores(&self) -> Vec<String> {
        vec![
            "--experiment".into(),
            "online".into(),
            "--tracking-uri".into(),
            format!("file:{}", self.root.join("mlruns").display()),
            "--store".into(),
            format!("sqlite:{}", self.root.join("qtask.db").display()),
        ]
    }

    fn online(&self, args: &[&str]) -> Command {
        let mut c = self.market.q();
        c.arg("online").args(args).args(self.stores());
        c
    }

    fn init(&self) {
        let out = self
            .online(&["init"])
            .arg(self.market.template())
            .arg("--provider-uri")
            .arg(self.market.data())
            .args([
                "--rolling-step",
                "20",
                "--rtype",
                "sliding",
                "--no-handler-mod",
                "--begin",
                "2018-09-10",
            ])
            .output()
            .unwrap();
        let text = ok(&out);
        assert!(
            text.contains("first_train 2018-09-10: 4 model(s) trained"),
            "{text}"
        );
    }

    fn routine(&self, day: &str) -> Command {
        self.online(&["routine", "--time", day])
    }

    /// `qtask online status|signals --json`.
    fn json(&self, args: &[&str]) -> Value {
        let mut c = self.market.q();
        c.arg("online")
            .args(args)
            .args(&self.stores()[..4])
            .arg("--json");
        serde_json::from_str(&ok(&c.output().unwrap())).unwrap()
    }

    /// Active runs of the experiment: (test segment, status) from the file store.
    fn runs(&self) -> Vec<(Value, String, bool)> {
        let mlruns = self.root.join("mlruns");
        let mut out = Vec::new();
        for exp in std::fs::read_dir(&mlruns).unwrap() {
            let exp = exp.unwrap().path();
            let meta = std::fs::read_to_string(exp.join("meta.yaml")).unwrap_or_default();
            if !meta.contains("name: \"online\"\n") {
                continue;
            }
            for run in std::fs::read_dir(&exp).unwrap() {
                let run = run.unwrap().path();
                let Ok(meta) = std::fs::read_to_string(run.join("meta.yaml")) else {
                    continue;
                };
                let active = meta.contains("lifecycle_stage: \"active\"");
                let status = meta
                    .lines()
                    .find_map(|l| l.strip_prefix("status: "))
                    .unwrap_or("?")
                    .to_string();
                let task = std::fs::read_to_string(run.join("artifacts/task.json"))
                    .map(|t| serde_json::from_str::<Value>(&t).unwrap())
                    .map(|t| t["dataset"]["kwargs"]["segments"]["test"].clone())
                    .unwrap_or(Value::Null);
                out.push((task, status, active));
            }
        }
        out.sort_by_key(|r| r.0.to_string());
        out
    }
}

fn kill(mut child: Child) {
    // SIGKILL: no handler runs, nothing is cleaned up.
    let _ = child.kill();
    let _ = child.wait();
}

fn signal(child: &Child, sig: &str) {
    let _ = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status();
}

/// Runs `child` in short slices (SIGSTOP between them) and SIGKILLs it, while it is stopped,
/// once `cond` holds after at least `min_slices` slices. False when it exited first.
fn kill_when(mut child: Child, min_slices: usize, cond: impl Fn() -> bool) -> bool {
    signal(&child, "-STOP");
    let mut slices = 0;
    let deadline = Instant::now() + Duration::from_secs(300);
    while Instant::now() < deadline {
        if slices >= min_slices && cond() {
            kill(child);
            return true;
        }
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        signal(&child, "-CONT");
        std::thread::sleep(Duration::from_millis(3));
        signal(&child, "-STOP");
        slices += 1;
    }
    panic!("timed out");
}

#[test]
fn a_routine_killed_mid_way_and_run_again_ends_as_an_uninterrupted_one() {
    let market = Market::new();
    let reference = market.manager("reference");
    let killed = market.manager("killed");
    reference.init();
    killed.init();
    ok(&reference.routine("2018-09-21").output().unwrap());

    let w5 = json!(["2018-09-21", "2018-10-18"]);
    let has_w5 = |status: &str| {
        killed
            .runs()
            .iter()
            .any(|r| r.0 == w5 && r.1 == status && r.2)
    };
    // Killed at once, while it cleans up and reads its state.
    kill_when(killed.routine("2018-09-21").spawn().unwrap(), 1, || true);
    // Killed while fitting the window that came due (its run exists, not finished).
    assert!(
        kill_when(killed.routine("2018-09-21").spawn().unwrap(), 0, || has_w5(
            "1"
        )),
        "the routine finished before it could be killed mid-training"
    );
    kill_when(killed.routine("2018-09-21").spawn().unwrap(), 5, || true);
    // Killed once the model is fitted: switching, predictions and signals left to do.
    assert!(
        kill_when(killed.routine("2018-09-21").spawn().unwrap(), 0, || has_w5(
            "3"
        )),
        "the routine finished before it could be killed after fitting"
    );
    // Killed at later moments (or not at all, when it finishes first).
    for slices in [2, 8, 20, 60] {
        kill_when(
            killed.routine("2018-09-21").spawn().unwrap(),
            slices,
            || true,
        );
    }
    ok(&killed.routine("2018-09-21").output().unwrap());

    // One active run per task, every one finished; half-trained attempts deleted, not kept.
    let active = |m: &Manager| -> Vec<(Value, String)> {
        m.runs()
            .into_iter()
            .filter(|r| r.2)
            .map(|r| (r.0, r.1))
            .collect()
    };
    assert_eq!(active(&killed), active(&reference));
    assert_eq!(active(&reference).len(), 5);
    assert!(active(&killed).iter().all(|r| r.1 == "3"));
    // The same state: online models, history, tasks trained, no unfinished step.
    let status = |m: &Manager| {
        let mut s = m.json(&["status"]);
        for k in ["provider_uri", "online"] {
            s.as_object_mut().unwrap().remove(k);
        }
        s
    };
    let (a, b) = (status(&reference), status(&killed));
    assert_eq!(a, b);
    assert_eq!(b["pending"], Value::Null);
    assert_eq!(b["models_trained"], json!(5));
    let tests = |m: &Manager| -> Vec<Value> {
        m.json(&["status"])["online"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["test"].clone())
            .collect()
    };
    assert_eq!(tests(&killed), vec![json!(["2018-09-21", "2018-10-18"])]);
    assert_eq!(tests(&killed), tests(&reference));
    // Signals complete and equal (the window was fitted again, deterministically).
    assert_eq!(killed.json(&["signals"]), reference.json(&["signals"]));
}

#[test]
fn bad_input_fails_with_one_line_and_writes_nothing() {
    let market = Market::new();
    let m = market.manager("m");
    // No manager yet.
    fails_with(
        &m.routine("2018-09-21").output().unwrap(),
        "experiment `online` has no online manager",
    );
    // A template without a test segment.
    let mut t = template();
    t["dataset"]["kwargs"]["segments"]
        .as_object_mut()
        .unwrap()
        .remove("test");
    let bad = market.dir.path().join("no_test.json");
    std::fs::write(&bad, t.to_string()).unwrap();
    let out = m
        .online(&["init"])
        .arg(&bad)
        .arg("--provider-uri")
        .arg(market.data())
        .output()
        .unwrap();
    fails_with(&out, "dataset.kwargs.segments.test");

    m.init();
    fails_with(
        &m.routine("2018-09-07").output().unwrap(),
        "the routine date 2018-09-07 is before the manager's begin time 2018-09-10",
    );
    fails_with(
        &m.routine("2019-03-01").output().unwrap(),
        "the routine date 2019-03-01 is after the data's last day 2018-12-31",
    );
    // A simulation ending before it begins: nothing written.
    let out_dir = market.dir.path().join("sim");
    let out = m
        .online(&["simulate"])
        .arg(market.template())
        .arg("--provider-uri")
        .arg(market.data())
        .args(["--begin", "2018-10-01", "--end", "2018-09-01", "--out"])
        .arg(&out_dir)
        .output()
        .unwrap();
    fails_with(&out, "ends on 2018-09-01, before it begins on 2018-10-01");
    assert!(!out_dir.exists());
    // No online model: every run's online_status tag set offline by hand.
    for (tags, _) in tag_dirs(&m.root.join("mlruns")) {
        std::fs::write(tags.join("online_status"), "offline").unwrap();
    }
    fails_with(
        &m.routine("2018-09-21").output().unwrap(),
        "experiment `online` has no online model",
    );
    // predict: dates outside the data.
    let run = tag_dirs(&m.root.join("mlruns"))[0].1.clone();
    let out = market
        .q()
        .args([
            "predict",
            "--run",
            &run,
            "--start",
            "2019-02-01",
            "--end",
            "2019-02-28",
        ])
        .args(["--out"])
        .arg(market.dir.path().join("p.parquet"))
        .arg("--provider-uri")
        .arg(market.data())
        .args([
            "--tracking-uri",
            &format!("file:{}", m.root.join("mlruns").display()),
        ])
        .output()
        .unwrap();
    fails_with(&out, "no trading day between 2019-02-01 and 2019-02-28");
    assert!(!market.dir.path().join("p.parquet").exists());
}

/// The tags folder and id of every model run (runs holding a task).
fn tag_dirs(mlruns: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    for exp in std::fs::read_dir(mlruns).unwrap() {
        let exp = exp.unwrap().path();
        if !exp.is_dir() {
            continue;
        }
        for run in std::fs::read_dir(&exp).unwrap() {
            let run = run.unwrap().path();
            if run.join("artifacts/task.json").exists() {
                let id = run.file_name().unwrap().to_string_lossy().to_string();
                out.push((run.join("tags"), id));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_simulation_writes_its_outputs_and_predict_reproduces_a_run() {
    let market = Market::new();
    let m = market.manager("sim");
    let out_dir = m.root.join("out");
    let summary: Value = serde_json::from_str(&ok(&m
        .online(&["simulate"])
        .arg(market.template())
        .arg("--provider-uri")
        .arg(market.data())
        .args([
            "--rolling-step",
            "20",
            "--rtype",
            "sliding",
            "--no-handler-mod",
            "--begin",
            "2018-09-10",
            "--end",
            "2018-10-05",
            "--json",
            "--out",
        ])
        .arg(&out_dir)
        .output()
        .unwrap()))
    .unwrap();
    assert_eq!(summary["status"], "online");
    assert_eq!(summary["routines"], json!(20));
    let tasks: Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("tasks.json")).unwrap())
            .unwrap();
    assert_eq!(tasks.as_array().unwrap().len(), 5);
    assert_eq!(tasks[4], json!(["2018-09-21", "2018-10-18"]));
    let history: Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("history.json")).unwrap())
            .unwrap();
    assert_eq!(history.as_array().unwrap().len(), 20);
    assert_eq!(history[0]["time"], "2018-09-10");
    assert_eq!(history[0]["online"].as_array().unwrap().len(), 4);
    assert_eq!(history[19]["time"], "2018-10-05");
    assert_eq!(history[19]["online"], json!([["2018-09-21", "2018-10-18"]]));
    assert!(
        std::fs::read_to_string(out_dir.join("report.html"))
            .unwrap()
            .contains("<svg")
    );

    // signals.parquet is what `online signals` prints.
    let signals = PredTable::read_parquet(&out_dir.join("signals.parquet")).unwrap();
    assert_eq!(signals.column_names(), ["score"]);
    let printed = m.json(&["signals"]);
    let rows = printed.as_array().unwrap();
    assert_eq!(rows.len(), signals.len());
    assert_eq!(rows[0]["datetime"], signals.datetime(0).date().to_string());
    assert_eq!(rows[0]["score"].as_f64().unwrap(), signals.column_at(0)[0]);

    // `qtask predict` on the newest run's test segment gives its pred.parquet bit for bit.
    let online = &summary["online"][0];
    let run = online["run_id"].as_str().unwrap();
    let pred_out = m.root.join("p.parquet");
    let printed: Value = serde_json::from_str(&ok(&market
        .q()
        .args(["predict", "--run", run, "--experiment", "online"])
        .args([
            "--start",
            "2018-09-21",
            "--end",
            "2018-10-18",
            "--json",
            "--out",
        ])
        .arg(&pred_out)
        .arg("--provider-uri")
        .arg(market.data())
        .args([
            "--tracking-uri",
            &format!("file:{}", m.root.join("mlruns").display()),
        ])
        .output()
        .unwrap()))
    .unwrap();
    let ours = PredTable::read_parquet(&pred_out).unwrap();
    assert_eq!(printed["rows"], json!(ours.len()));
    let run_dir = tag_dirs(&m.root.join("mlruns"))
        .into_iter()
        .find(|(_, id)| id == run)
        .unwrap()
        .0;
    let own =
        PredTable::read_parquet(&run_dir.parent().unwrap().join("artifacts/pred.parquet")).unwrap();
    let key = |t: &PredTable| -> Vec<(i64, String, u64)> {
        let mut v: Vec<_> = (0..t.len())
            .map(|r| {
                (
                    t.datetimes_ns()[r],
                    t.instrument(r).to_string(),
                    t.column_at(0)[r].to_bits(),
                )
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(key(&ours), key(&own));
}
