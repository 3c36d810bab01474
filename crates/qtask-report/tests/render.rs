//! Rendering behaviour: escaping, non-finite values, empty inputs, cumulative lines.

mod common;

use common::{attribute_values, polyline_points, realistic_data, svg_by_id, svg_fragments};
use qtask_report::{
    DailyIc, MAX_LINE_POINTS, MetricRow, ReportData, TaskRow, WindowMetrics, cumulative,
    downsample_indices, render,
};

const CHART_IDS: [&str; 3] = ["chart-window-ic", "chart-cum-ic", "chart-importance"];

fn day(date: &str, ic: f64, rank_ic: f64) -> DailyIc {
    DailyIc {
        date: date.into(),
        ic,
        rank_ic,
    }
}

#[test]
fn script_in_task_name_is_escaped() {
    let evil = "<script>alert(1)</script>";
    let mut data = realistic_data();
    data.tasks[0].name = evil.into();
    data.windows[0].name = evil.into();
    data.importance.push((evil.into(), 1e9));
    data.notes.push(evil.into());
    data.metrics[0].name = evil.into();
    let html = render(&data);
    assert!(
        !html.contains(evil),
        "raw script tag leaked into the report"
    );
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    // Only the report's own probe script may exist.
    assert_eq!(html.matches("<script>").count(), 1);
}

#[test]
fn quotes_and_ampersands_are_escaped_in_text() {
    let mut data = realistic_data();
    data.tasks[0].name = r#"a "quoted" & 'single' name"#.into();
    let html = render(&data);
    assert!(html.contains("a &quot;quoted&quot; &amp; &#39;single&#39; name"));
    assert!(!html.contains(r#""quoted""#));
}

#[test]
fn non_finite_values_never_reach_svg_attributes() {
    let mut data = realistic_data();
    data.windows[0].ic = f64::NAN;
    data.windows[1].rank_ic = f64::INFINITY;
    data.windows[2].ic = f64::NEG_INFINITY;
    data.ensemble_daily[5].rank_ic = f64::INFINITY;
    data.ensemble_daily[6].ic = f64::NEG_INFINITY;
    data.importance.push(("nan_feature".into(), f64::NAN));
    data.importance.push(("inf_feature".into(), f64::INFINITY));
    let html = render(&data);
    let svgs = svg_fragments(&html);
    assert_eq!(svgs.len(), 3);
    for svg in svgs {
        for value in attribute_values(svg) {
            let lower = value.to_ascii_lowercase();
            assert!(
                !lower.contains("nan") && !lower.contains("inf"),
                "bad attribute {value:?}"
            );
        }
    }
    assert!(!html.contains("nan_feature") && !html.contains("inf_feature"));
}

#[test]
fn all_nan_windows_render_no_data_instead_of_a_chart() {
    let data = ReportData {
        windows: vec![WindowMetrics {
            name: "w".into(),
            ic: f64::NAN,
            icir: f64::NAN,
            rank_ic: f64::NAN,
            rank_icir: f64::NAN,
        }],
        importance: vec![("f".into(), f64::NAN)],
        ..ReportData::default()
    };
    let html = render(&data);
    assert!(svg_fragments(&html).is_empty());
}

#[test]
fn empty_inputs_render_no_data_lines() {
    let html = render(&ReportData::default());
    assert!(svg_fragments(&html).is_empty());
    // Tasks, two charts of windows/days, metrics and importance: five sections without data.
    assert_eq!(html.matches(r#"<p class="nodata">no data</p>"#).count(), 5);
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.trim_end().ends_with("</html>"));
}

#[test]
fn report_is_self_contained() {
    let html = render(&realistic_data());
    for needle in ["http://", "https://", "src=", "<link", "@import", "url("] {
        let hits: Vec<_> = html.match_indices(needle).collect();
        // The SVG namespace URI is an identifier, not a fetch.
        let real = hits
            .iter()
            .filter(|(i, _)| !html[..*i].ends_with("xmlns=\""))
            .count();
        assert_eq!(real, 0, "external reference {needle:?} in report");
    }
}

#[test]
fn all_three_charts_have_ids_titles_and_viewboxes() {
    let html = render(&realistic_data());
    for id in CHART_IDS {
        let svg = svg_by_id(&html, id).unwrap_or_else(|| panic!("missing {id}"));
        assert!(svg.contains("viewBox=\"0 0 "));
        assert!(svg.contains(r#"width="100%""#));
        assert!(svg.contains(&format!(r#"<title id="{id}-title">"#)));
    }
}

#[test]
fn window_chart_has_two_bars_per_window() {
    let html = render(&realistic_data());
    let svg = svg_by_id(&html, "chart-window-ic").unwrap();
    let bars = svg
        .split(r#"<g class="bars">"#)
        .nth(1)
        .unwrap()
        .split("</g>")
        .next()
        .unwrap();
    assert_eq!(bars.matches("<rect").count(), 6);
    assert!(svg.contains(r#"class="zero""#));
    assert!(svg.contains(">Rank IC</text>"));
}

#[test]
fn importance_chart_shows_top_twenty_largest_first() {
    let mut data = realistic_data();
    data.importance = (0..30).map(|i| (format!("f{i:02}"), i as f64)).collect();
    let html = render(&data);
    let svg = svg_by_id(&html, "chart-importance").unwrap();
    assert_eq!(svg.matches(r#"class="feature""#).count(), 20);
    let first = svg.find(">f29<").unwrap();
    let last = svg.find(">f10<").unwrap();
    assert!(first < last);
    assert!(!svg.contains(">f09<"));
}

#[test]
fn metrics_table_formats_four_significant_digits_and_dashes() {
    let data = ReportData {
        windows: vec![
            WindowMetrics {
                name: "w1".into(),
                ..Default::default()
            },
            WindowMetrics {
                name: "w2".into(),
                ..Default::default()
            },
        ],
        metrics: vec![MetricRow {
            name: "IC".into(),
            values: vec![Some(0.0123456), Some(f64::NAN)],
            ensemble: None,
        }],
        ..ReportData::default()
    };
    let html = render(&data);
    let table = &html[html.find(r#"id="metrics-table""#).unwrap()..];
    assert!(table.contains(r#"<th class="num">w1</th><th class="num">w2</th>"#));
    assert!(table.contains(">0.01235<"));
    assert_eq!(table.matches(">–<").count(), 2);
}

#[test]
fn task_table_lists_segments_and_durations() {
    let data = ReportData {
        tasks: vec![TaskRow {
            name: "t".into(),
            run_id: "0123456789abcdef0123456789abcdef".into(),
            train: Some(("2010-01-01".into(), "2015-12-31".into())),
            status: "failed".into(),
            attempts: 3,
            duration_secs: Some(185.0),
            ..Default::default()
        }],
        ..ReportData::default()
    };
    let html = render(&data);
    assert!(html.contains("2010-01-01 → 2015-12-31"));
    assert!(html.contains(r#"<span class="status bad">failed</span>"#));
    assert!(html.contains(">3m 05s<"));
    // Long ids are shortened by CSS only: the page holds the whole id, so it copies whole.
    assert!(html.contains(
        r#"<span class="id" title="0123456789abcdef0123456789abcdef">0123456789abcdef0123456789abcdef</span>"#
    ));
    assert!(html.contains("span.id{") && html.contains("user-select:all"));
}

#[test]
fn cumulative_treats_nan_as_zero() {
    let c = cumulative(&[0.1, f64::NAN, 0.2]);
    assert_eq!(c.len(), 3);
    assert!((c[0] - 0.1).abs() < 1e-12);
    assert!((c[1] - 0.1).abs() < 1e-12);
    assert!((c[2] - 0.3).abs() < 1e-12);
}

#[test]
fn cumulative_polyline_ends_at_the_running_sum() {
    let data = ReportData {
        ensemble_daily: vec![
            day("2020-01-02", 0.1, -0.1),
            day("2020-01-03", f64::NAN, -0.1),
            day("2020-01-06", 0.2, -0.1),
        ],
        ..ReportData::default()
    };
    let html = render(&data);
    let svg = svg_by_id(&html, "chart-cum-ic").unwrap();
    let ic = polyline_points(svg, "cum-ic");
    let rank = polyline_points(svg, "cum-rank-ic");
    assert_eq!(ic.len(), 3);
    assert_eq!(rank.len(), 3);
    // Both lines share the y scale: IC ends at +0.3, Rank IC at -0.3, so the zero line sits
    // halfway between their last points, and IC's middle point equals its first.
    let zero_y = (ic[2].1 + rank[2].1) / 2.0;
    let zero_line = svg.split(r#"class="zero""#).nth(1).unwrap();
    let y1 = zero_line
        .split(r#"y1=""#)
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    assert!((y1.parse::<f64>().unwrap() - zero_y).abs() < 0.2);
    assert!((ic[0].1 - ic[1].1).abs() < 1e-9);
    // 0.1 -> 0.3 covers twice the distance from zero: (zero - y2) = 3 (zero - y0).
    assert!(((zero_y - ic[2].1) - 3.0 * (zero_y - ic[0].1)).abs() < 0.3);
    assert!(ic[0].0 < ic[1].0 && ic[1].0 < ic[2].0);
}

#[test]
fn long_series_are_downsampled_in_the_svg() {
    let days: Vec<DailyIc> = (0..10_000)
        .map(|i| day(&format!("d{i}"), 0.01, 0.02))
        .collect();
    let data = ReportData {
        ensemble_daily: days,
        ..ReportData::default()
    };
    let html = render(&data);
    let svg = svg_by_id(&html, "chart-cum-ic").unwrap();
    let pts = polyline_points(svg, "cum-ic");
    assert!(pts.len() <= MAX_LINE_POINTS && pts.len() > MAX_LINE_POINTS / 2);
    assert!(html.len() < 200_000, "report too big: {} bytes", html.len());
}

#[test]
fn downsampling_keeps_ends_and_caps_count() {
    let idx = downsample_indices(10_000, 1500);
    assert!(idx.len() <= 1500);
    assert_eq!(idx.first(), Some(&0));
    assert_eq!(idx.last(), Some(&9_999));
    assert!(idx.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(downsample_indices(5, 1500), vec![0, 1, 2, 3, 4]);
    assert_eq!(downsample_indices(0, 1500), Vec::<usize>::new());
    assert_eq!(downsample_indices(1, 1500), vec![0]);
    assert_eq!(downsample_indices(100, 1), vec![0, 99]);
    assert_eq!(downsample_indices(7, 3), vec![0, 3, 6]);
}

#[test]
fn many_long_window_names_rotate_without_leaving_the_canvas() {
    let windows: Vec<WindowMetrics> = (0..24)
        .map(|i| WindowMetrics {
            name: format!("rolling_{:04}-01-01_{:04}-12-31", 2000 + i, 2001 + i),
            ic: 0.01 * (i as f64 - 10.0) / 10.0,
            rank_ic: 0.02,
            ..Default::default()
        })
        .collect();
    let html = render(&ReportData {
        windows,
        ..ReportData::default()
    });
    let svg = svg_by_id(&html, "chart-window-ic").unwrap();
    let labels = svg.split(r#"<g class="axis x-labels">"#).nth(1).unwrap();
    let rotated: Vec<&str> = labels.split("<text ").skip(1).collect();
    assert!(!rotated.is_empty());
    let name_len = "rolling_2000-01-01_2001-12-31".len() as f64;
    for text in rotated {
        assert!(
            text.contains("rotate(-40"),
            "long labels must be rotated: {text}"
        );
        let x: f64 = text
            .split(r#"x=""#)
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        // A 40° label reaches cos(40°) * its length (~6 units per glyph) left of its anchor.
        assert!(
            x - name_len * 6.0 * 0.766 >= 0.0,
            "label at x={x} is cut off on the left"
        );
    }
}
