//! Shared test data: a realistic three-window rolling study.

#![allow(dead_code)]

use qtask_report::{DailyIc, MetricRow, ReportData, TaskRow, WindowMetrics};

/// Deterministic xorshift generator so fixtures need no extra crate.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }
    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Calendar days from 2017-01-01 skipping weekends, as `YYYY-MM-DD`.
pub fn business_days(count: usize) -> Vec<String> {
    let mut out = Vec::with_capacity(count);
    let (mut y, mut m, mut d, mut weekday) = (2017u32, 1u32, 1u32, 6u32); // 2017-01-01 was a Sunday
    let month_len = |y: u32, m: u32| match m {
        2 if y.is_multiple_of(4) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    while out.len() < count {
        if weekday < 5 {
            out.push(format!("{y:04}-{m:02}-{d:02}"));
        }
        weekday = (weekday + 1) % 7;
        d += 1;
        if d > month_len(y, m) {
            d = 1;
            m += 1;
            if m > 12 {
                m = 1;
                y += 1;
            }
        }
    }
    out
}

/// Three windows, ~900 days, 30 features, with a few NaN days and awkward names.
pub fn realistic_data() -> ReportData {
    let mut rng = Rng::new(42);
    let names = [
        "rolling_2017 <train 2010-2016>",
        "rolling_2018 & co",
        "rolling_2019 \"last\"",
    ];
    let tests = [
        ("2017-01-03", "2017-12-29"),
        ("2018-01-02", "2018-12-28"),
        ("2019-01-02", "2020-06-30"),
    ];
    let tasks = names
        .iter()
        .zip(tests)
        .enumerate()
        .map(|(i, (name, (s, e)))| TaskRow {
            name: name.to_string(),
            run_id: format!("{:032x}", 0xabc0_0000_u64 + i as u64),
            task_id: Some(format!("64f0c2{i:018}")),
            train: Some((format!("{}-01-01", 2008 + i), format!("{}-12-31", 2014 + i))),
            valid: Some((format!("{}-01-01", 2015 + i), format!("{}-12-31", 2016 + i))),
            test: Some((s.to_string(), e.to_string())),
            status: "done".into(),
            attempts: 1 + (i as u32 % 2),
            duration_secs: Some(95.0 + 300.0 * i as f64),
        })
        .collect();
    let windows = names
        .iter()
        .enumerate()
        .map(|(i, n)| WindowMetrics {
            name: n.to_string(),
            ic: [0.045, -0.012, 0.031][i],
            icir: [0.38, -0.09, 0.27][i],
            rank_ic: [0.052, 0.004, 0.029][i],
            rank_icir: [0.41, 0.03, 0.25][i],
        })
        .collect();
    let ensemble_daily = business_days(900)
        .into_iter()
        .enumerate()
        .map(|(i, date)| {
            let ic = if i % 97 == 13 {
                f64::NAN
            } else {
                0.04 + 0.2 * (rng.next_f64() - 0.5)
            };
            let rank_ic = 0.035 + 0.2 * (rng.next_f64() - 0.5);
            DailyIc { date, ic, rank_ic }
        })
        .collect();
    let metrics = vec![
        MetricRow {
            name: "IC".into(),
            values: vec![Some(0.045123), Some(-0.0123456), Some(0.031)],
            ensemble: Some(0.0398765),
        },
        MetricRow {
            name: "ICIR".into(),
            values: vec![Some(0.38), None, Some(f64::NAN)],
            ensemble: Some(0.3321),
        },
        MetricRow {
            name: "Rank IC".into(),
            values: vec![Some(0.052), Some(0.004), Some(0.029)],
            ensemble: Some(0.041),
        },
        MetricRow {
            name: "annualized_return <excess>".into(),
            values: vec![Some(0.1234), Some(-0.02), Some(0.087)],
            ensemble: None,
        },
    ];
    let importance = (0..30)
        .map(|i| {
            let name = if i == 3 {
                "Ref($close, 5)/$close & <vol>".to_string()
            } else {
                format!(
                    "FEATURE_{i:02}_{}",
                    ["KMID", "ROC20", "STD60", "CORR10"][i % 4]
                )
            };
            (name, 1000.0 * (30 - i) as f64 * (0.5 + rng.next_f64()))
        })
        .collect();
    ReportData {
        title: "qtask rolling: csi100_lgb".into(),
        generated_at: "2026-11-21 17:05:00 UTC".into(),
        experiment: "csi100_lgb_rolling".into(),
        tasks,
        windows,
        ensemble_daily,
        metrics,
        importance,
        notes: vec![
            "config: examples/csi100_lgb.yaml".into(),
            "phases: train 412.3 s, predict 35.1 s, ensemble 2.2 s <fast>".into(),
        ],
        ..ReportData::default()
    }
}

/// The `<svg …>…</svg>` fragments of a document.
pub fn svg_fragments(html: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<svg") {
        let end = rest[start..].find("</svg>").expect("unclosed svg") + start + "</svg>".len();
        out.push(&rest[start..end]);
        rest = &rest[end..];
    }
    out
}

/// The fragment of the SVG whose `id` is `id`.
pub fn svg_by_id<'a>(html: &'a str, id: &str) -> Option<&'a str> {
    let needle = format!(r#"id="{id}""#);
    svg_fragments(html).into_iter().find(|s| {
        let open_end = s.find('>').unwrap_or(s.len());
        s[..open_end].contains(&needle)
    })
}

/// Every attribute value (`name="value"`) inside tags of `fragment`.
pub fn attribute_values(fragment: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = fragment;
    while let Some(lt) = rest.find('<') {
        let Some(gt) = rest[lt..].find('>') else {
            break;
        };
        let tag = &rest[lt..lt + gt];
        let mut t = tag;
        while let Some(eq) = t.find("=\"") {
            let after = &t[eq + 2..];
            let close = after.find('"').expect("unterminated attribute");
            out.push(&after[..close]);
            t = &after[close + 1..];
        }
        rest = &rest[lt + gt + 1..];
    }
    out
}

/// The points of the polyline with class `class` in `svg`, as (x, y) pairs.
pub fn polyline_points(svg: &str, class: &str) -> Vec<(f64, f64)> {
    let needle = format!(r#"<polyline class="{class}""#);
    let start = svg.find(&needle).expect("polyline missing");
    let tag = &svg[start..start + svg[start..].find("/>").unwrap()];
    let p = tag.find(r#"points=""#).unwrap() + r#"points=""#.len();
    let points = &tag[p..p + tag[p..].find('"').unwrap()];
    points
        .split_whitespace()
        .map(|pair| {
            let (x, y) = pair.split_once(',').unwrap();
            (x.parse().unwrap(), y.parse().unwrap())
        })
        .collect()
}
