//! Equivalence with Qlib: `OnlineManager.simulate` with a `RollingStrategy`, recorded by
//! pyqlib 0.9.7 (scripts/fixtures/qlib_online.py) on a synthetic market, against qtask's
//! simulation of the same template on the same market.
//!
//! Compared exactly: the tasks first_train trains, and after every routine the tasks it
//! trained and the online models (as test segments). Compared within a tolerance: the final
//! signals (see `SIGNAL_TOLERANCE`). Every fixture file in tests/data/online/qlib_*.json is
//! checked; `QTASK_ONLINE_FIXTURES=DIR` checks the fixtures of another folder instead (a
//! fixture written for another market must name its `qtask data synth` parameters, or
//! `QTASK_ONLINE_MARKET=DIR` gives the market).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use qtask_core::RollStep;
use qtask_data::NaiveDate;
use qtask_data::synth::{SynthConfig, synth};
use qtask_runner::{StopFlag, TrainerKind};
use qtask_study::Quiet;
use qtask_study::online::{
    OnlineConfig, OnlineManager, RollingSpec, RollingStrategy, Step, TestSegment, segment_json,
};
use serde_json::{Value, json};

/// How far qtask's signal may be from Qlib's: the signal is a per-day z-score (unit scale) of
/// LightGBM predictions. qtask's features equal Qlib's (checked against pyqlib operator by
/// operator) and LightGBM is the same library with the same parameters and one thread, so the
/// trees agree; what is left is float rounding (LightGBM reads float32 features from numpy in
/// Qlib and from columns here, and pandas sums the z-score statistics in its own order).
const SIGNAL_TOLERANCE: f64 = 1e-6;

fn fixtures() -> Vec<PathBuf> {
    let dir = std::env::var_os("QTASK_ONLINE_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/online"));
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("qlib_") && n.ends_with(".json"))
        })
        .collect();
    out.sort();
    assert!(
        !out.is_empty(),
        "no qlib_*.json fixture in {}",
        dir.display()
    );
    out
}

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn market(fx: &Value, dir: &Path) -> PathBuf {
    if let Some(m) = std::env::var_os("QTASK_ONLINE_MARKET") {
        return PathBuf::from(m);
    }
    let s = &fx["market"]["synth"];
    assert!(
        s.is_object(),
        "the fixture names no synthetic market: {}",
        fx["market"]
    );
    let out = dir.join("data");
    synth(
        &out,
        &SynthConfig {
            instruments: s["instruments"].as_u64().unwrap() as usize,
            start: day(s["start"].as_str().unwrap()),
            end: day(s["end"].as_str().unwrap()),
            seed: s["seed"].as_u64().unwrap(),
        },
        &|| {},
    )
    .unwrap();
    out
}

fn segs(v: &Value) -> Vec<Value> {
    v.as_array().unwrap().clone()
}

fn check(path: &Path) {
    let fx: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    let dir = tempfile::tempdir().unwrap();
    let provider = market(&fx, dir.path());
    let trainer = match fx["trainer"].as_str().unwrap() {
        "r" => TrainerKind::R,
        "delay-r" => TrainerKind::DelayR,
        other => panic!("{name}: trainer {other}"),
    };
    let mut rolling = RollingSpec::new(RollStep::Days(fx["step"].as_i64().unwrap()));
    rolling.rtype = fx["rtype"].as_str().unwrap().to_string();
    rolling.handler_mod = fx["handler_mod"].as_bool().unwrap();
    let strategy = RollingStrategy::new(vec![fx["template"].clone()], rolling).unwrap();
    let config = OnlineConfig {
        trainer,
        tracking_uri: Some(format!("file:{}", dir.path().join("mlruns").display())),
        store: format!("sqlite:{}", dir.path().join("qtask.db").display()),
        ..OnlineConfig::new("online_simulate")
    };
    let m = OnlineManager::simulate(
        config,
        strategy,
        day(fx["begin"].as_str().unwrap()),
        day(fx["end"].as_str().unwrap()),
        provider,
        &StopFlag::new(),
        &Quiet,
    )
    .unwrap();
    let state = m.state();

    // Tasks trained by first_train and by each routine, as test segments, in order.
    let trained_at = |step: Step, time: Option<NaiveDate>| -> Vec<Value> {
        state
            .trained
            .iter()
            .filter(|t| t.step == step && time.is_none_or(|d| t.time == d))
            .map(|t| segment_json(t.test))
            .collect()
    };
    assert_eq!(
        trained_at(Step::FirstTrain, None),
        segs(&fx["first_train"]),
        "{name}: first_train"
    );
    let tests: BTreeMap<&str, TestSegment> = state
        .trained
        .iter()
        .map(|t| (t.run_id.as_str(), t.test))
        .collect();
    let routines: Vec<_> = state
        .history
        .iter()
        .filter(|h| h.step == Step::Routine)
        .collect();
    let expected = fx["routines"].as_array().unwrap();
    assert_eq!(routines.len(), expected.len(), "{name}: routines");
    for (got, want) in routines.iter().zip(expected) {
        let time = want["time"].as_str().unwrap();
        assert_eq!(got.time, day(time), "{name}");
        assert_eq!(
            trained_at(Step::Routine, Some(got.time)),
            segs(&want["trained"]),
            "{name}: tasks trained on {time}"
        );
        let mut online: Vec<TestSegment> = got.online.iter().map(|id| tests[id.as_str()]).collect();
        online.sort_by_key(|s| qtask_study::online::strategy::seg_key(*s));
        let online: Vec<Value> = online.into_iter().map(segment_json).collect();
        assert_eq!(
            online,
            segs(&want["online"]),
            "{name}: online models on {time}"
        );
    }

    // The final signals: the same rows, scores within the tolerance.
    let signals = m.signals().unwrap().expect("signals were prepared");
    let mut ours: BTreeMap<(String, String), f64> = BTreeMap::new();
    for r in 0..signals.len() {
        let key = (
            signals.datetime(r).date().to_string(),
            signals.instrument(r).to_string(),
        );
        assert!(
            ours.insert(key.clone(), signals.column_at(0)[r]).is_none(),
            "{name}: {key:?} twice in the signals"
        );
    }
    let theirs: BTreeMap<(String, String), Option<f64>> = fx["signals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                (
                    r[0].as_str().unwrap().to_string(),
                    r[1].as_str().unwrap().to_string(),
                ),
                r[2].as_f64(),
            )
        })
        .collect();
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        theirs.keys().collect::<Vec<_>>(),
        "{name}: signal rows"
    );
    let mut worst = 0f64;
    for (k, q) in &theirs {
        let o = ours[k];
        match q {
            None => assert!(o.is_nan(), "{name}: {k:?} is NaN in Qlib, {o} here"),
            Some(q) => worst = worst.max((o - q).abs()),
        }
    }
    assert!(
        worst <= SIGNAL_TOLERANCE,
        "{name}: signals differ from Qlib's by up to {worst:e}"
    );
    eprintln!(
        "{name}: {} routines, {} signal rows, largest difference {worst:e}",
        routines.len(),
        ours.len()
    );
    let _ = json!(null);
}

#[test]
fn the_simulation_matches_qlibs_online_manager() {
    for f in fixtures() {
        check(&f);
    }
}
