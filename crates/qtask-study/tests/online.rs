//! Online serving as a library, on a small synthetic market with a real LightGBM: what a
//! simulation serves is checked against expectations computed here from the calendar and from
//! `predict_run`, not from the manager's own bookkeeping.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use qtask_core::RollStep;
use qtask_data::synth::{SynthConfig, synth};
use qtask_data::{NaiveDate, Provider};
use qtask_model::predict::{day_ns, predict_run};
use qtask_record::RecordStore;
use qtask_runner::{StopFlag, TrainerKind};
use qtask_study::Quiet;
use qtask_study::online::state::{Pending, StateStore, Step};
use qtask_study::online::{
    OnlineConfig, OnlineManager, OnlineTool, PredUpdateOutcome, RollingSpec, RollingStrategy,
    write_outputs,
};
use qtask_table::PredTable;
use serde_json::{Value, json};

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

/// Qlib's online example (examples/online_srv/online_management_simulate.py), LightGBM only,
/// with a small model so the test is quick.
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

struct Setup {
    dir: tempfile::TempDir,
    provider: PathBuf,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let provider = dir.path().join("data");
        synth(
            &provider,
            &SynthConfig {
                instruments: 10,
                start: day("2017-01-01"),
                end: day("2018-12-31"),
                seed: 5,
            },
            &|| {},
        )
        .unwrap();
        Setup { dir, provider }
    }

    fn config(&self, trainer: TrainerKind) -> OnlineConfig {
        OnlineConfig {
            trainer,
            tracking_uri: Some(self.tracking()),
            store: format!("sqlite:{}", self.dir.path().join("qtask.db").display()),
            ..OnlineConfig::new("online")
        }
    }

    fn tracking(&self) -> String {
        format!("file:{}", self.dir.path().join("mlruns").display())
    }

    fn records(&self) -> RecordStore {
        RecordStore::open(&self.tracking()).unwrap()
    }

    fn calendar(&self) -> Vec<NaiveDate> {
        std::fs::read_to_string(self.provider.join("calendars/day.txt"))
            .unwrap()
            .lines()
            .map(day)
            .collect()
    }
}

fn strategy(t: Value) -> RollingStrategy {
    let rolling = RollingSpec {
        rtype: "sliding".into(),
        handler_mod: false,
        ..RollingSpec::new(RollStep::Days(20))
    };
    RollingStrategy::new(vec![t], rolling).unwrap()
}

type Window = (NaiveDate, Option<NaiveDate>);

/// The rolling windows, from the calendar alone: 20 trading days each from the first trading
/// day on or after the template's test start.
fn windows(cal: &[NaiveDate], first: NaiveDate, until: NaiveDate) -> Vec<Window> {
    let i0 = cal.iter().position(|d| *d >= first).unwrap();
    (i0..cal.len())
        .step_by(20)
        .map(|i| (cal[i], cal.get(i + 19).copied()))
        .take_while(|w| w.0 <= until)
        .collect()
}

fn seg(v: &Value) -> Window {
    (day(v[0].as_str().unwrap()), v[1].as_str().map(day))
}

#[test]
fn a_simulation_serves_the_newest_window_and_exactly_its_predictions() {
    let s = Setup::new();
    let cal = s.calendar();
    let (begin, end) = (day("2018-09-10"), day("2018-10-31"));
    let m = OnlineManager::simulate(
        s.config(TrainerKind::R),
        strategy(template()),
        begin,
        end,
        s.provider.clone(),
        &StopFlag::new(),
        &Quiet,
    )
    .unwrap();
    let out = s.dir.path().join("out");
    let files = write_outputs(&m, &out).unwrap();

    // Tasks: first_train rolls the template up to its test end (2018-09-10), the routines add
    // each later window on its first day.
    let first = windows(&cal, day("2018-06-01"), day("2018-09-10"));
    let all = windows(&cal, day("2018-06-01"), end);
    assert_eq!(first.len(), 4);
    assert!(all.len() >= 6);
    let tasks: Vec<Window> =
        serde_json::from_str::<Value>(&std::fs::read_to_string(&files.tasks).unwrap())
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .map(seg)
            .collect();
    assert_eq!(tasks, all);

    // Online models of each routine: the newest window whose test start is on or before the
    // day; before the first window trained by a routine, every window of first_train (Qlib
    // sets all of them online and a routine that trains nothing keeps them).
    let history: Value =
        serde_json::from_str(&std::fs::read_to_string(&files.history).unwrap()).unwrap();
    let days: Vec<NaiveDate> = cal
        .iter()
        .copied()
        .filter(|d| *d >= begin && *d <= end)
        .collect();
    let history = history.as_array().unwrap();
    assert_eq!(history.len(), days.len());
    for (h, d) in history.iter().zip(&days) {
        assert_eq!(day(h["time"].as_str().unwrap()), *d);
        let online: Vec<Window> = h["online"].as_array().unwrap().iter().map(seg).collect();
        let newest = *all.iter().rev().find(|w| w.0 <= *d).unwrap();
        let expected = if first.contains(&newest) {
            first.clone()
        } else {
            vec![newest]
        };
        assert_eq!(online, expected, "online models on {d}");
    }

    // Signals: each day from the window that covers it (the one online then), its predictions
    // as predict_run gives them for that run, z-scored within the day (sample std).
    let records = s.records();
    let exp = records.find_experiment("online").unwrap().unwrap();
    let provider = Provider::open(&s.provider).unwrap();
    let mut run_of: BTreeMap<Window, String> = BTreeMap::new();
    for info in exp.runs(None).unwrap() {
        let task: Value = records
            .run(&info.run_id)
            .unwrap()
            .load_json("task.json")
            .unwrap();
        let w = seg(&task["dataset"]["kwargs"]["segments"]["test"]);
        assert!(run_of.insert(w, info.run_id).is_none(), "one run per task");
    }
    assert_eq!(run_of.len(), all.len());
    let signals = PredTable::read_parquet(&files.signals).unwrap();
    let mut by_day: BTreeMap<i64, Vec<(String, f64)>> = BTreeMap::new();
    for r in 0..signals.len() {
        by_day
            .entry(signals.datetimes_ns()[r])
            .or_default()
            .push((signals.instrument(r).to_string(), signals.column_at(0)[r]));
    }
    let data_days: BTreeSet<i64> = cal
        .iter()
        .filter(|d| **d >= day("2018-06-01") && **d <= day("2018-10-31"))
        .map(|d| day_ns(*d))
        .collect();
    assert_eq!(by_day.keys().copied().collect::<BTreeSet<_>>(), data_days);
    let mut preds: BTreeMap<Window, PredTable> = BTreeMap::new();
    for (w, id) in &run_of {
        let run = records.run(id).unwrap();
        let to = w.1.unwrap_or(day("2018-10-31")).min(day("2018-10-31"));
        preds.insert(*w, predict_run(&run, &provider, w.0, to).unwrap());
    }
    let mut checked = 0;
    for (t, rows) in &by_day {
        let d = qtask_table::ns_to_datetime(*t).date();
        let w = *all.iter().rev().find(|w| w.0 <= d).unwrap();
        if d >= begin {
            let h = &history[days.iter().position(|x| *x == d).unwrap()];
            let online: Vec<Window> = h["online"].as_array().unwrap().iter().map(seg).collect();
            assert!(online.contains(&w), "{d}: the signal's model is online");
        }
        let p = &preds[&w];
        let day_rows: Vec<(String, f64)> = (0..p.len())
            .filter(|&r| p.datetimes_ns()[r] == *t)
            .map(|r| (p.instrument(r).to_string(), p.column_at(0)[r]))
            .collect();
        let n = day_rows.len() as f64;
        let mean = day_rows.iter().map(|r| r.1).sum::<f64>() / n;
        let sd = (day_rows.iter().map(|r| (r.1 - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
        let expected: BTreeMap<&str, f64> = day_rows
            .iter()
            .map(|(i, v)| (i.as_str(), (v - mean) / sd))
            .collect();
        let got: BTreeMap<&str, f64> = rows.iter().map(|(i, v)| (i.as_str(), *v)).collect();
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            expected.keys().collect::<Vec<_>>(),
            "{d}"
        );
        for (i, v) in &expected {
            assert!((got[i] - v).abs() < 1e-12, "{d} {i}: {} vs {v}", got[i]);
        }
        checked += 1;
    }
    assert_eq!(checked, data_days.len());
    let html = std::fs::read_to_string(&files.report).unwrap();
    assert!(html.contains("qtask online: online"));
    assert!(
        html.contains("online 2018-09-21 .. "),
        "the report shows when each model served"
    );
}

#[test]
fn routines_resume_what_an_interrupted_one_left_and_run_twice_change_nothing() {
    let s = Setup::new();
    let config = s.config(TrainerKind::R);
    let (mut m, first) = OnlineManager::init(
        config.clone(),
        strategy(template()),
        Some(day("2018-09-10")),
        s.provider.clone(),
        &StopFlag::new(),
        &Quiet,
    )
    .unwrap();
    assert_eq!(first.trained.len(), 4);
    assert_eq!(first.online.len(), 4);
    let first_ids: Vec<String> = first.online.clone();
    let records = s.records();
    let exp = records.find_experiment("online").unwrap().unwrap();

    // Online status: the routine extends the online models' predictions to its day. The
    // oldest window (2018-06-01..06-28) is predicted on to 2018-09-12 with its own model.
    let r = m
        .routine(Some(day("2018-09-12")), &StopFlag::new(), &Quiet)
        .unwrap();
    assert!(r.trained.is_empty() && !r.switched());
    let oldest = first.trained[0].run_id.clone();
    let (_, update) = r.pred_updates.iter().find(|(id, _)| *id == oldest).unwrap();
    assert!(
        matches!(update, PredUpdateOutcome::Updated(qtask_model::PredUpdate::Extended { from, to, .. })
            if *from == day("2018-06-29") && *to == day("2018-09-12")),
        "{update:?}"
    );
    let run = records.run(&oldest).unwrap();
    let pred =
        PredTable::from_parquet_bytes(&run.load_artifact_bytes("pred.parquet").unwrap()).unwrap();
    let provider = Provider::open(&s.provider).unwrap();
    let later = predict_run(&run, &provider, day("2018-06-29"), day("2018-09-12")).unwrap();
    let tail: Vec<u64> = (0..pred.len())
        .filter(|&r| pred.datetimes_ns()[r] >= day_ns(day("2018-06-29")))
        .map(|r| pred.column_at(0)[r].to_bits())
        .collect();
    assert_eq!(
        tail,
        later
            .column_at(0)
            .iter()
            .map(|v| v.to_bits())
            .collect::<Vec<_>>()
    );
    let signals_before = m.signals().unwrap().unwrap();

    // A routine interrupted after it trained the window of 2018-09-21 and switched to it: the
    // state still holds the step and the models it started from.
    let r = m
        .routine(Some(day("2018-09-21")), &StopFlag::new(), &Quiet)
        .unwrap();
    assert_eq!(r.trained.len(), 1);
    assert!(!r.trained[0].reused);
    let w5 = r.trained[0].run_id.clone();
    let signals_done = m.signals().unwrap().unwrap();
    assert!(signals_done.len() > signals_before.len());
    let states = StateStore::find(&records, "online").unwrap().unwrap();
    let mut state = states.load().unwrap().unwrap();
    state.pending = Some(Pending {
        time: day("2018-09-21"),
        step: Step::Routine,
        base_online: first_ids.clone(),
    });
    state.history.pop();
    states.save(&state).unwrap();
    states.save_signals(&signals_before).unwrap();
    OnlineTool::new(&records, "online")
        .reset_online_tag(&first_ids)
        .unwrap();

    let runs_before = exp.runs(None).unwrap().len();
    let mut m = OnlineManager::open(config.clone()).unwrap();
    let r = m
        .routine(Some(day("2018-09-21")), &StopFlag::new(), &Quiet)
        .unwrap();
    assert_eq!(
        r.online_before, first_ids,
        "resumed from the models it started from"
    );
    assert_eq!(r.trained.len(), 1);
    assert!(r.trained[0].reused, "the window was not trained twice");
    assert_eq!(r.trained[0].run_id, w5);
    assert_eq!(r.online, vec![w5.clone()]);
    assert_eq!(exp.runs(None).unwrap().len(), runs_before);
    let signals = m.signals().unwrap().unwrap();
    assert_eq!(signals.len(), signals_done.len());
    assert_eq!(signals.column_at(0), signals_done.column_at(0));

    // The same day again: nothing trained, nothing switched, no signal added.
    let again = m
        .routine(Some(day("2018-09-21")), &StopFlag::new(), &Quiet)
        .unwrap();
    assert!(again.trained.is_empty() && !again.switched());
    assert_eq!(again.signals.as_ref().unwrap().new_rows, 0);
    let st = m.state();
    assert!(st.pending.is_none());
    assert_eq!(st.trained.len(), 5);
    assert_eq!(
        st.history
            .iter()
            .filter(|h| h.step == Step::Routine)
            .count(),
        2,
        "one entry per routine day"
    );
}

#[test]
fn a_dead_process_half_trained_run_is_cleaned_up_and_the_task_trained_once() {
    let s = Setup::new();
    let config = s.config(TrainerKind::R);
    let (mut m, first) = OnlineManager::init(
        config,
        strategy(template()),
        Some(day("2018-09-10")),
        s.provider.clone(),
        &StopFlag::new(),
        &Quiet,
    )
    .unwrap();
    // What a process killed while fitting the window of 2018-09-21 leaves: a RUNNING run with
    // its task, tagged with its host and (now dead) process id.
    let records = s.records();
    let exp = records.find_experiment("online").unwrap().unwrap();
    let latest: Value = records
        .run(&first.trained[3].run_id)
        .unwrap()
        .load_json("task.json")
        .unwrap();
    let ta = qtask_core::TimeAdjuster::from_provider(&s.provider).unwrap();
    let due = m
        .strategy()
        .rolling
        .generator(&ta)
        .unwrap()
        .gen_following_tasks(&latest, day("2018-09-21"))
        .unwrap();
    assert_eq!(due.len(), 1);
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = child.id();
    child.wait().unwrap();
    let owner = qtask_pool::default_owner();
    let host = owner.rsplit_once(':').unwrap().0;
    let half = exp.start_run(None).unwrap();
    half.set_tags(&[
        ("hostname".into(), host.into()),
        ("qtask.pid".into(), dead_pid.to_string()),
    ])
    .unwrap();
    half.save_json("task.json", &due[0]).unwrap();
    // A live process's run (this one) is left alone.
    let live = exp.start_run(None).unwrap();
    live.set_tags(&[
        ("hostname".into(), host.into()),
        ("qtask.pid".into(), std::process::id().to_string()),
    ])
    .unwrap();

    let r = m
        .routine(Some(day("2018-09-21")), &StopFlag::new(), &Quiet)
        .unwrap();
    assert_eq!(r.recovered.deleted_runs, vec![half.id().to_string()]);
    assert_eq!(r.trained.len(), 1);
    assert!(!r.trained[0].reused);
    assert_ne!(r.trained[0].run_id, half.id());
    let active: Vec<String> = exp
        .runs(None)
        .unwrap()
        .into_iter()
        .map(|r| r.run_id)
        .collect();
    assert!(!active.contains(&half.id().to_string()));
    assert!(active.contains(&live.id().to_string()));
    // One run per task: the four first windows, the new one, and the unrelated live run.
    assert_eq!(active.len(), 6);
    assert_eq!(
        records.run(half.id()).unwrap().info().lifecycle_stage,
        "deleted"
    );
}

#[test]
fn bad_input_is_refused_with_one_clear_message() {
    let s = Setup::new();
    // A template without a test segment.
    let mut t = template();
    t["dataset"]["kwargs"]["segments"]
        .as_object_mut()
        .unwrap()
        .remove("test");
    let err = RollingStrategy::new(vec![t], RollingSpec::new(RollStep::Days(20)))
        .unwrap_err()
        .to_string();
    assert!(err.contains("dataset.kwargs.segments.test"), "{err}");

    // No manager yet.
    let err = OnlineManager::open(s.config(TrainerKind::R))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("has no online manager"), "{err}");

    let (mut m, _) = OnlineManager::init(
        s.config(TrainerKind::R),
        strategy(template()),
        Some(day("2018-09-10")),
        s.provider.clone(),
        &StopFlag::new(),
        &Quiet,
    )
    .unwrap();
    let err = m
        .routine(Some(day("2018-09-07")), &StopFlag::new(), &Quiet)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "the routine date 2018-09-07 is before the manager's begin time 2018-09-10"
    );
    let err = m
        .routine(Some(day("2019-01-02")), &StopFlag::new(), &Quiet)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("the routine date 2019-01-02 is after the data's last day 2018-12-31"),
        "{err}"
    );
    // Another strategy on the same experiment.
    let mut other = template();
    other["model"]["kwargs"]["num_leaves"] = json!(7);
    let err = OnlineManager::init(
        s.config(TrainerKind::R),
        strategy(other),
        Some(day("2018-09-10")),
        s.provider.clone(),
        &StopFlag::new(),
        &Quiet,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("already has an online manager"), "{err}");
    // No online model left.
    OnlineTool::new(&s.records(), "online")
        .reset_online_tag(&[])
        .unwrap();
    let err = m
        .routine(Some(day("2018-09-12")), &StopFlag::new(), &Quiet)
        .unwrap_err()
        .to_string();
    assert!(err.contains("has no online model"), "{err}");
    let _ = Path::new("");
}
