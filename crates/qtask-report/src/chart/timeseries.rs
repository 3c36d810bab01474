//! Line chart over trading days: several named series on one y axis (values or percents),
//! optionally filled down to zero (drawdowns).

use super::{finite_range, legend, open_svg, px, zero_line};
use crate::escape::escape;
use crate::series::{NiceAxis, downsample_indices};
use std::fmt::Write;

const WIDTH: f64 = 900.0;
const HEIGHT: f64 = 320.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 280.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
/// Upper bound on drawn points per line, so long backtests keep the page small.
const MAX_POINTS: usize = 1500;
/// Number of date labels on the x axis.
const X_TICKS: usize = 6;

/// One line of a chart.
pub(crate) struct Line<'a> {
    /// Legend label.
    pub label: &'a str,
    /// Stroke colour.
    pub color: &'a str,
    /// One value per date (NaN: a gap in the data, skipped).
    pub values: &'a [f64],
    /// Dashed stroke.
    pub dashed: bool,
}

/// How y values are labelled.
#[derive(Clone, Copy, PartialEq)]
pub(crate) enum YFormat {
    /// Plain numbers.
    Number,
    /// Fractions shown as percents (0.05 -> 5%).
    Percent,
}

fn tick_label(v: f64, step: f64, fmt: YFormat) -> String {
    let (v, step, suffix) = match fmt {
        YFormat::Number => (v, step, ""),
        YFormat::Percent => (v * 100.0, step * 100.0, "%"),
    };
    let decimals = if step > 0.0 && step.is_finite() {
        (-(step.log10().floor()) as i32).clamp(0, 6) as usize
    } else {
        2
    };
    let s = format!("{v:.decimals$}");
    let s = if s.starts_with('-') && s[1..].chars().all(|c| c == '0' || c == '.') {
        s[1..].to_string()
    } else {
        s
    };
    format!("{s}{suffix}")
}

/// Renders the chart (`id` is the SVG element id), or `None` when no value is finite.
pub(crate) fn time_chart(
    id: &str,
    title: &str,
    dates: &[String],
    lines: &[Line<'_>],
    fmt: YFormat,
    fill: bool,
) -> Option<String> {
    let n = dates.len();
    if n == 0 || lines.iter().any(|l| l.values.len() != n) {
        return None;
    }
    let (lo, hi) = finite_range(lines.iter().flat_map(|l| l.values.iter().copied()))?;
    let axis = NiceAxis::new(lo.min(0.0), hi.max(0.0), 5)?;
    let right = WIDTH - RIGHT;
    let x_of = |i: usize| {
        if n == 1 {
            (LEFT + right) / 2.0
        } else {
            LEFT + (right - LEFT) * i as f64 / (n - 1) as f64
        }
    };
    let mut out = String::new();
    open_svg(&mut out, id, title, WIDTH, HEIGHT);
    let entries: Vec<(&str, &str)> = lines.iter().map(|l| (l.label, l.color)).collect();
    legend(&mut out, LEFT, 22.0, &entries, true);

    out.push_str(r#"<g class="axis y-axis">"#);
    for t in axis.ticks() {
        let y = axis.map(t, BOTTOM, TOP);
        let _ = write!(
            out,
            r#"<line class="grid" x1="{l}" x2="{r}" y1="{y}" y2="{y}"/><text x="{tx}" y="{ty}" text-anchor="end">{label}</text>"#,
            l = px(LEFT),
            r = px(right),
            y = px(y),
            tx = px(LEFT - 6.0),
            ty = px(y + 4.0),
            label = escape(&tick_label(t, axis.step, fmt))
        );
    }
    out.push_str("</g>");

    out.push_str(r#"<g class="axis x-axis">"#);
    let ticks = downsample_indices(n, X_TICKS);
    for (k, &i) in ticks.iter().enumerate() {
        let x = x_of(i);
        let anchor = match (k, ticks.len()) {
            (_, 1) => "middle",
            (0, _) => "start",
            (k, len) if k + 1 == len => "end",
            _ => "middle",
        };
        let _ = write!(
            out,
            r#"<line class="tick" x1="{x}" x2="{x}" y1="{b}" y2="{b2}"/><text x="{x}" y="{ty}" text-anchor="{anchor}">{d}</text>"#,
            x = px(x),
            b = px(BOTTOM),
            b2 = px(BOTTOM + 5.0),
            ty = px(BOTTOM + 20.0),
            d = escape(&dates[i])
        );
    }
    out.push_str("</g>");

    let zero_y = axis.map(0.0f64.clamp(axis.lo, axis.hi), BOTTOM, TOP);
    for line in lines {
        let pts: Vec<(f64, f64)> = downsample_indices(n, MAX_POINTS)
            .into_iter()
            .filter(|&i| line.values[i].is_finite())
            .map(|i| (x_of(i), axis.map(line.values[i], BOTTOM, TOP)))
            .collect();
        if pts.is_empty() {
            continue;
        }
        let points: Vec<String> = pts
            .iter()
            .map(|(x, y)| format!("{},{}", px(*x), px(*y)))
            .collect();
        if fill {
            let (first, last) = (pts[0].0, pts[pts.len() - 1].0);
            let _ = write!(
                out,
                r#"<polygon fill="{c}" fill-opacity="0.18" stroke="none" points="{f},{z} {p} {l},{z}"/>"#,
                c = line.color,
                f = px(first),
                l = px(last),
                z = px(zero_y),
                p = points.join(" ")
            );
        }
        let _ = write!(
            out,
            r#"<polyline class="series" data-label="{label}" fill="none" stroke="{c}" stroke-width="2"{dash} stroke-linejoin="round" points="{p}"/>"#,
            label = escape(line.label),
            c = line.color,
            dash = if line.dashed {
                r#" stroke-dasharray="6 4""#
            } else {
                ""
            },
            p = points.join(" ")
        );
    }
    zero_line(&mut out, &axis, LEFT, right, TOP, BOTTOM);
    out.push_str("</svg>");
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_ticks_read_as_percents() {
        assert_eq!(tick_label(0.05, 0.05, YFormat::Percent), "5%");
        assert_eq!(tick_label(-0.025, 0.005, YFormat::Percent), "-2.5%");
        assert_eq!(tick_label(-0.0, 0.1, YFormat::Percent), "0%");
        assert_eq!(tick_label(2.0, 1.0, YFormat::Number), "2");
    }

    #[test]
    fn mismatched_or_empty_series_draw_nothing() {
        let dates = vec!["2020-01-02".to_string(), "2020-01-03".to_string()];
        let short = [1.0];
        let l = Line {
            label: "x",
            color: "#000",
            values: &short,
            dashed: false,
        };
        assert!(time_chart("c", "t", &dates, &[l], YFormat::Number, false).is_none());
        let nan = [f64::NAN, f64::NAN];
        let l = Line {
            label: "x",
            color: "#000",
            values: &nan,
            dashed: false,
        };
        assert!(time_chart("c", "t", &dates, &[l], YFormat::Number, false).is_none());
    }
}
