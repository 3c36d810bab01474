//! Generators on a synthetic weekday calendar: horizons, grids, chaining, calendar-unit steps,
//! the future calendar, handler_mod rules and bad input.

use chrono::{Datelike, NaiveDate, Weekday};
use qtask_core::generators::{SEGMENTS_PATH, read_segments};
use qtask_core::{
    Calendar, GridGen, MultiHorizonGen, RollStep, RollType, RollingGen, TaskGen, TimeAdjuster,
    task_generator,
};
use serde_json::{Value, json};

fn weekdays(from: &str, to: &str) -> Vec<NaiveDate> {
    let mut d = NaiveDate::parse_from_str(from, "%Y-%m-%d").unwrap();
    let to = NaiveDate::parse_from_str(to, "%Y-%m-%d").unwrap();
    let mut out = Vec::new();
    while d <= to {
        if !matches!(d.weekday(), Weekday::Sat | Weekday::Sun) {
            out.push(d);
        }
        d = d.succ_opt().unwrap();
    }
    out
}

fn adjuster(from: &str, to: &str) -> TimeAdjuster {
    let cal = Calendar::new(weekdays(from, to)).unwrap();
    let last = cal.last();
    TimeAdjuster::new(cal, last)
}

fn task(train: [&str; 2], valid: [&str; 2], test: [Value; 2]) -> Value {
    json!({
        "model": {"class": "LGBModel", "kwargs": {"loss": "mse"}},
        "dataset": {"class": "DatasetH", "kwargs": {
            "handler": {"class": "Alpha158", "kwargs": {
                "start_time": train[0], "end_time": "2012-06-29", "instruments": "csi300"}},
            "segments": {"train": train, "valid": valid, "test": test}}},
    })
}

fn seg(t: &Value, k: &str) -> (Value, Value) {
    let s = &t["dataset"]["kwargs"]["segments"][k];
    (s[0].clone(), s[1].clone())
}

#[test]
fn multi_horizon_sets_label_and_truncates() {
    let ta = adjuster("2010-01-01", "2012-12-31");
    let mut g = MultiHorizonGen::new(&ta);
    g.horizons = vec![1, 5];
    let t = task(
        ["2010-01-01", "2011-12-31"],
        ["2012-01-01", "2012-03-31"],
        [json!("2012-04-02"), json!(null)],
    );
    let out = g.generate(&t).unwrap();
    assert_eq!(out.len(), 2);
    assert_eq!(
        out[0]["dataset"]["kwargs"]["handler"]["kwargs"]["label"],
        json!(["Ref($close, -2) / Ref($close, -1) - 1"])
    );
    assert_eq!(out[1]["extra"]["horizon"], json!(5));
    assert_eq!(
        out[1]["dataset"]["kwargs"]["handler"]["kwargs"]["label"],
        json!(["Ref($close, -6) / Ref($close, -1) - 1"])
    );
    // 2012-04-02 is a Monday; h=5, leak 2: valid ends 7 weekdays before it (2012-03-22).
    assert_eq!(seg(&out[1], "valid").1, json!("2012-03-22"));
    // h=1: 3 weekdays before (2012-03-28); the train end is unaffected (already earlier).
    assert_eq!(seg(&out[0], "valid").1, json!("2012-03-28"));
    assert_eq!(
        seg(&out[0], "train"),
        (json!("2010-01-01"), json!("2011-12-30"))
    );
    // The test segment is only aligned.
    assert_eq!(seg(&out[0], "test"), (json!("2012-04-02"), json!(null)));
}

#[test]
fn chain_is_template_major() {
    let ta = adjuster("2010-01-01", "2012-12-31");
    let mut h = MultiHorizonGen::new(&ta);
    h.horizons = vec![1, 5];
    let mut r = RollingGen::new(&ta);
    r.step = RollStep::Days(20);
    r.rtype = RollType::Sliding;
    let grid = GridGen {
        axes: vec!["model.kwargs.loss=mse,huber".parse().unwrap()],
    };
    let t = task(
        ["2010-01-01", "2011-12-31"],
        ["2012-01-01", "2012-03-31"],
        [json!("2012-04-02"), json!("2012-06-29")],
    );
    let out = task_generator(&[t], &[&h, &r, &grid]).unwrap();
    // 2012-04-02 .. 2012-06-29 is 65 weekdays: 4 windows of 20 days (the last starts 06-25).
    assert_eq!(out.len(), 2 * 4 * 2);
    let key = |t: &Value| {
        (
            t["extra"]["horizon"].as_i64().unwrap(),
            seg(t, "test").0.as_str().unwrap().to_string(),
            t["model"]["kwargs"]["loss"].as_str().unwrap().to_string(),
        )
    };
    assert_eq!(key(&out[0]), (1, "2012-04-02".into(), "mse".into()));
    assert_eq!(key(&out[1]), (1, "2012-04-02".into(), "huber".into()));
    assert_eq!(key(&out[2]), (1, "2012-04-30".into(), "mse".into()));
    assert_eq!(key(&out[8]), (5, "2012-04-02".into(), "mse".into()));
    assert_eq!(key(&out[15]), (5, "2012-06-25".into(), "huber".into()));
}

#[test]
fn monthly_windows_start_on_first_trading_day_of_month() {
    let ta = adjuster("2010-01-01", "2012-12-31");
    let mut r = RollingGen::new(&ta);
    r.step = "1M".parse().unwrap();
    r.rtype = RollType::Sliding;
    let t = task(
        ["2010-01-01", "2011-12-31"],
        ["2012-01-01", "2012-01-31"],
        [json!("2012-02-01"), json!("2012-05-15")],
    );
    let out = r.generate(&t).unwrap();
    let tests: Vec<_> = out.iter().map(|t| seg(t, "test")).collect();
    assert_eq!(
        tests,
        vec![
            (json!("2012-02-01"), json!("2012-02-29")),
            (json!("2012-03-01"), json!("2012-03-30")),
            (json!("2012-04-02"), json!("2012-04-30")),
            (json!("2012-05-01"), json!("2012-05-31")),
        ]
    );
    // Other segments slide by the same number of trading days as the test start moved.
    assert_eq!(
        seg(&out[1], "valid"),
        (json!("2012-01-31"), json!("2012-02-29"))
    );
}

#[test]
fn quarterly_expanding_keeps_train_start() {
    let ta = adjuster("2010-01-01", "2012-12-31");
    let mut r = RollingGen::new(&ta);
    r.step = "3M".parse().unwrap();
    let t = task(
        ["2010-01-04", "2011-12-30"],
        ["2012-01-02", "2012-03-30"],
        [json!("2012-04-02"), json!(null)],
    );
    let out = r.generate(&t).unwrap();
    let starts: Vec<_> = out.iter().map(|t| seg(t, "test").0).collect();
    assert_eq!(
        starts,
        vec![
            json!("2012-04-02"),
            json!("2012-07-02"),
            json!("2012-10-01")
        ]
    );
    // The last quarter runs past the calendar's end: open.
    assert_eq!(seg(&out[2], "test").1, json!(null));
    assert!(out.iter().all(|t| seg(t, "train").0 == json!("2010-01-04")));
    // The handler's end_time follows the test end (open at the end).
    assert_eq!(
        out[0]["dataset"]["kwargs"]["handler"]["kwargs"]["end_time"],
        json!("2012-06-29")
    );
    assert_eq!(
        out[1]["dataset"]["kwargs"]["handler"]["kwargs"]["end_time"],
        json!("2012-09-28")
    );
    assert_eq!(
        out[2]["dataset"]["kwargs"]["handler"]["kwargs"]["end_time"],
        json!(null)
    );
}

#[test]
fn future_calendar_aligns_but_data_calendar_ends_rolling() {
    let dir = tempfile::tempdir().unwrap();
    let cals = dir.path().join("calendars");
    std::fs::create_dir_all(&cals).unwrap();
    let fmt = |days: Vec<NaiveDate>| days.iter().map(|d| format!("{d}\n")).collect::<String>();
    std::fs::write(
        cals.join("day.txt"),
        fmt(weekdays("2012-01-02", "2012-03-30")),
    )
    .unwrap();
    std::fs::write(
        cals.join("day_future.txt"),
        fmt(weekdays("2012-01-02", "2012-06-29")),
    )
    .unwrap();
    let ta = TimeAdjuster::from_provider(dir.path()).unwrap();
    assert_eq!(ta.data_last_day().to_string(), "2012-03-30");
    let mut r = RollingGen::new(&ta);
    r.step = RollStep::Days(10);
    r.rtype = RollType::Sliding;
    let t = task(
        ["2012-01-02", "2012-01-31"],
        ["2012-02-01", "2012-02-29"],
        [json!("2012-03-01"), json!(null)],
    );
    let out = r.generate(&t).unwrap();
    // Test starts 03-01, 03-15, 03-29; the next (04-12) is past day.txt's last day.
    assert_eq!(out.len(), 3);
    // The last window ends on a future trading day rather than being open.
    assert_eq!(
        seg(&out[2], "test"),
        (json!("2012-03-29"), json!("2012-04-11"))
    );
}

#[test]
fn handler_mod_only_extends_and_skips_non_maps() {
    let ta = adjuster("2010-01-01", "2012-12-31");
    let mut r = RollingGen::new(&ta);
    r.step = RollStep::Days(5);
    let mut t = task(
        ["2010-01-01", "2011-12-31"],
        ["2012-01-01", "2012-03-31"],
        [json!("2012-04-02"), json!("2012-04-13")],
    );
    // A later end_time than any test end stays as written (even in another spelling).
    t["dataset"]["kwargs"]["handler"]["kwargs"]["end_time"] = json!("2012-12-31 00:00:00");
    let out = r.generate(&t).unwrap();
    assert_eq!(out.len(), 2);
    assert!(
        out.iter()
            .all(|t| t["dataset"]["kwargs"]["handler"]["kwargs"]["end_time"]
                == json!("2012-12-31 00:00:00"))
    );
    // A handler given as a file path is left alone.
    t["dataset"]["kwargs"]["handler"] = json!("file:///tmp/handler.pkl");
    let out = r.generate(&t).unwrap();
    assert_eq!(
        out[0]["dataset"]["kwargs"]["handler"],
        json!("file:///tmp/handler.pkl")
    );
    // A null end_time is left alone.
    t["dataset"]["kwargs"]["handler"] = json!({"kwargs": {"end_time": null}});
    let out = r.generate(&t).unwrap();
    assert_eq!(
        out[1]["dataset"]["kwargs"]["handler"]["kwargs"]["end_time"],
        json!(null)
    );
}

#[test]
fn rolling_stops_when_start_lands_exactly_at_calendar_end() {
    // 10 weekdays; test starts on index 5, step 5: the next start is index 10 == n.
    let ta = adjuster("2020-01-06", "2020-01-17");
    let mut r = RollingGen::new(&ta);
    r.step = RollStep::Days(5);
    r.rtype = RollType::Sliding;
    let t = task(
        ["2020-01-06", "2020-01-08"],
        ["2020-01-09", "2020-01-10"],
        [json!("2020-01-13"), json!(null)],
    );
    let out = r.generate(&t).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(
        seg(&out[0], "test"),
        (json!("2020-01-13"), json!("2020-01-17"))
    );
}

#[test]
fn truncation_may_reach_day_zero_but_not_before() {
    let ta = adjuster("2020-01-06", "2020-01-17");
    let mut r = RollingGen::new(&ta);
    r.step = RollStep::Days(2);
    r.trunc_days = Some(3);
    let t = task(
        ["2020-01-06", "2020-01-07"],
        ["2020-01-08", "2020-01-08"],
        [json!("2020-01-09"), json!(null)],
    );
    let out = r.generate(&t).unwrap();
    // Test start index 3, minus 3 days: index 0 (Qlib asserts > 0 here and fails).
    assert_eq!(
        seg(&out[0], "valid"),
        (json!("2020-01-06"), json!("2020-01-06"))
    );
    r.trunc_days = Some(4);
    let err = r.generate(&t).unwrap_err().to_string();
    assert!(err.contains("before the first trading day"), "{err}");
}

#[test]
fn bad_input_errors() {
    let ta = adjuster("2010-01-01", "2012-12-31");
    let r = RollingGen::new(&ta);
    let err = r.generate(&json!({"model": {}})).unwrap_err().to_string();
    assert_eq!(
        err,
        "task has no `dataset.kwargs.segments` (needed by the rolling generator)"
    );
    let t = task(
        ["2010-01-01", "2011-12-31"],
        ["2012-01-01", "2012-03-31"],
        [json!("2013-04-02"), json!(null)],
    );
    let err = r.generate(&t).unwrap_err().to_string();
    assert!(
        err.contains("segment `test` starts on 2013-04-02 after the last trading day"),
        "{err}"
    );
    let t = task(
        ["2010-01-01", "2011-13-31"],
        ["2012-01-01", "2012-03-31"],
        [json!("2012-04-02"), json!(null)],
    );
    let err = r.generate(&t).unwrap_err().to_string();
    assert_eq!(
        err,
        format!("`2011-13-31` is not a date (expected YYYY-MM-DD) at {SEGMENTS_PATH}.train.1")
    );
    let mut t = task(
        ["2010-01-01", "2011-12-31"],
        ["2012-01-01", "2012-03-31"],
        [json!("2012-04-02"), json!(null)],
    );
    t["dataset"]["kwargs"]["segments"]["test"] = json!(["2012-04-02"]);
    let err = r.generate(&t).unwrap_err().to_string();
    assert!(err.contains("must be a [start, end] pair"), "{err}");
    t["dataset"]["kwargs"]["segments"] = json!({"train": ["2010-01-01", "2011-12-31"]});
    let err = r.generate(&t).unwrap_err().to_string();
    assert!(err.contains("dataset.kwargs.segments.test"), "{err}");
    assert!(read_segments(&json!({}), &ta, "x").is_err());
}

#[test]
fn following_tasks_are_the_windows_due_by_a_day() {
    // Weekdays only: 2012-01-02 is a Monday, so a 5-day step is one calendar week.
    let ta = adjuster("2011-01-03", "2012-03-30");
    let mut g = RollingGen::new(&ta);
    g.step = RollStep::Days(5);
    g.rtype = RollType::Sliding;
    g.handler_mod = false;
    let t = task(
        ["2011-01-03", "2011-06-30"],
        ["2011-07-01", "2011-12-30"],
        [json!("2012-01-02"), json!("2012-01-13")],
    );
    let all = g.generate(&t).unwrap();
    // 2012-01-02 and 2012-01-09 start on or before the template's test end (2012-01-13);
    // 2012-01-16 does not.
    assert_eq!(all.len(), 2);

    // Due by Friday 2012-01-20: the windows of 01-09 (as generated) and 01-16.
    let due = g
        .gen_following_tasks(&all[0], NaiveDate::from_ymd_opt(2012, 1, 20).unwrap())
        .unwrap();
    assert_eq!(due.len(), 2);
    assert_eq!(due[0], all[1]);
    assert_eq!(
        seg(&due[1], "test"),
        (json!("2012-01-16"), json!("2012-01-20"))
    );
    // Sliding: every segment moved two steps (10 weekdays) from the first window.
    assert_eq!(
        seg(&due[1], "train"),
        (json!("2011-01-17"), json!("2011-07-14"))
    );
    // A window is due on its first day, not before.
    let day = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
    assert!(
        g.gen_following_tasks(&all[1], day("2012-01-13"))
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        g.gen_following_tasks(&all[1], day("2012-01-16"))
            .unwrap()
            .len(),
        1
    );
    // Windows stop at the calendar: the last one ends on its last day.
    let rest = g.gen_following_tasks(&all[1], day("2099-01-01")).unwrap();
    let last = rest.last().unwrap();
    assert_eq!(
        seg(last, "test"),
        (json!("2012-03-26"), json!("2012-03-30"))
    );
    // Following tasks copy the task they follow: other keys are kept.
    let mut marked = all[1].clone();
    marked["extra"] = json!({"tag": 1});
    let next = g.gen_following_tasks(&marked, day("2012-01-16")).unwrap();
    assert_eq!(next[0]["extra"], json!({"tag": 1}));
    // A task without a test segment is an error naming it.
    let mut no_test = all[0].clone();
    no_test["dataset"]["kwargs"]["segments"]
        .as_object_mut()
        .unwrap()
        .remove("test");
    let err = g
        .gen_following_tasks(&no_test, day("2012-01-16"))
        .unwrap_err();
    assert!(
        err.to_string().contains("dataset.kwargs.segments.test"),
        "{err}"
    );
}
