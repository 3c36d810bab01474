//! Property tests of the calendar rules and of rolling windows.

use chrono::{Duration, NaiveDate};
use proptest::prelude::*;
use qtask_core::{
    Calendar, RollStep, RollType, RollingGen, Segment, ShiftKind, Side, TaskGen, TimeAdjuster,
};
use serde_json::{Value, json};

/// A calendar of `n` days starting 2015-01-01 with random gaps of 1..=4 days.
fn calendar_strategy() -> impl Strategy<Value = TimeAdjuster> {
    prop::collection::vec(1i64..=4, 30..400).prop_map(|gaps| {
        let mut d = NaiveDate::from_ymd_opt(2015, 1, 1).unwrap();
        let mut days = Vec::with_capacity(gaps.len());
        for g in gaps {
            days.push(d);
            d += Duration::days(g);
        }
        let cal = Calendar::new(days).unwrap();
        let last = cal.last();
        TimeAdjuster::new(cal, last)
    })
}

fn at(ta: &TimeAdjuster, offset_days: i64) -> chrono::NaiveDateTime {
    (ta.calendar().first() + Duration::days(offset_days))
        .and_hms_opt(0, 0, 0)
        .unwrap()
}

fn test_windows(out: &[Value]) -> Vec<(Option<NaiveDate>, Option<NaiveDate>)> {
    let d = |v: &Value| {
        v.as_str()
            .map(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap())
    };
    out.iter()
        .map(|t| {
            let s = &t["dataset"]["kwargs"]["segments"]["test"];
            (d(&s[0]), d(&s[1]))
        })
        .collect()
}

proptest! {
    #[test]
    fn alignment_is_monotone(ta in calendar_strategy(), a in -20i64..1500, b in -20i64..1500) {
        let (lo, hi) = (a.min(b), a.max(b));
        for side in [Side::Start, Side::End] {
            prop_assert!(ta.align_idx(at(&ta, lo), side) <= ta.align_idx(at(&ta, hi), side));
        }
        // Start alignment never lands before the point, end alignment never after it.
        let p = at(&ta, a);
        if let Some(d) = ta.get(Some(ta.align_idx(p, Side::Start))) { prop_assert!(d.and_hms_opt(0,0,0).unwrap() >= p); }
        if let Some(d) = ta.get(Some(ta.align_idx(p, Side::End))) { prop_assert!(d.and_hms_opt(0,0,0).unwrap() <= p); }
    }

    #[test]
    fn shift_then_unshift_is_identity(ta in calendar_strategy(), s in 0usize..400, len in 0usize..50, step in -100i64..100) {
        let n = ta.calendar().len();
        let s = s % n;
        let e = (s + len).min(n - 1);
        let seg = Segment { start: Some(ta.calendar().days()[s]), end: Some(ta.calendar().days()[e]) };
        let inside = |i: i64| i >= 0 && i < n as i64;
        prop_assume!(inside(s as i64 + step) && inside(e as i64 + step));
        for kind in [ShiftKind::Sliding, ShiftKind::Expanding] {
            if kind == ShiftKind::Expanding && (e as i64 + step) < s as i64 { continue; }
            let there = ta.shift(seg, step, kind).unwrap();
            let back = ta.shift(there, -step, kind).unwrap();
            prop_assert_eq!(back, seg);
        }
    }

    #[test]
    fn sliding_windows_start_on_trading_days_and_never_overlap(
        ta in calendar_strategy(),
        test_off in 0usize..300,
        step in prop_oneof![ (1i64..60).prop_map(RollStep::Days), Just("1W".parse::<RollStep>().unwrap()), Just("1M".parse::<RollStep>().unwrap()) ],
        rtype in prop_oneof![Just(RollType::Sliding), Just(RollType::Expanding)],
    ) {
        let days = ta.calendar().days();
        let test_start = days[test_off % days.len()];
        let task = json!({"dataset": {"kwargs": {"segments": {
            "train": [days[0].to_string(), null],
            "test": [test_start.to_string(), null]}}}});
        let mut g = RollingGen::new(&ta);
        g.step = step;
        g.rtype = rtype;
        let out = g.generate(&task).unwrap();
        let windows = test_windows(&out);
        prop_assert!(!windows.is_empty());
        prop_assert_eq!(windows[0].0, Some(test_start));
        for (s, _) in &windows {
            let s = s.expect("every window has a start");
            prop_assert!(days.binary_search(&s).is_ok(), "{} is not a trading day", s);
            prop_assert!(s <= ta.data_last_day());
        }
        for pair in windows.windows(2) {
            let end = pair[0].1.expect("only the last window may be open");
            prop_assert!(end < pair[1].0.unwrap(), "windows overlap: {:?}", pair);
            // Consecutive windows are contiguous: no trading day is skipped.
            let next = days.binary_search(&end).unwrap() + 1;
            prop_assert_eq!(Some(days[next]), pair[1].0);
        }
    }
}
