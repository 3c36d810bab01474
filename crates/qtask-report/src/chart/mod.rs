//! Hand-written SVG charts. Every chart returns `None` when it has nothing finite to draw, so
//! the page can print a "no data" line instead of an empty frame.

mod cum_ic;
mod heatmap;
mod importance;
mod timeseries;
mod window_ic;

pub(crate) use cum_ic::{MAX_POINTS, cum_ic_chart};
pub(crate) use heatmap::month_heatmap;
pub(crate) use importance::{TOP_N, importance_chart};
pub(crate) use timeseries::{Line, YFormat, time_chart};
pub(crate) use window_ic::window_ic_chart;

use crate::escape::escape;
use crate::format::fmt_tick;
use crate::series::NiceAxis;
use std::fmt::Write;

/// Colour of IC series.
pub(crate) const IC_COLOR: &str = "#2563eb";
/// Colour of Rank IC series.
pub(crate) const RANK_IC_COLOR: &str = "#ea8a0c";
/// Approximate advance width of one label character at the 12-unit chart font.
pub(crate) const CHAR_W: f64 = 6.8;

/// Formats a coordinate; callers only pass finite values, this keeps one decimal.
pub(crate) fn px(v: f64) -> String {
    debug_assert!(v.is_finite(), "non-finite SVG coordinate");
    let v = if v.is_finite() { v } else { 0.0 };
    format!("{v:.1}")
}

/// Opens an `<svg>` element with its accessible `<title>`.
pub(crate) fn open_svg(out: &mut String, id: &str, title: &str, width: f64, height: f64) {
    let _ = write!(
        out,
        r#"<svg id="{id}" class="chart" viewBox="0 0 {w} {h}" width="100%" preserveAspectRatio="xMidYMid meet" role="img" aria-labelledby="{id}-title" xmlns="http://www.w3.org/2000/svg"><title id="{id}-title">{t}</title>"#,
        w = px(width),
        h = px(height),
        t = escape(title)
    );
}

/// Draws horizontal grid lines with tick labels at the left of the plot area.
pub(crate) fn y_axis(
    out: &mut String,
    axis: &NiceAxis,
    left: f64,
    right: f64,
    top: f64,
    bottom: f64,
) {
    out.push_str(r#"<g class="axis y-axis">"#);
    for t in axis.ticks() {
        let y = axis.map(t, bottom, top);
        let _ = write!(
            out,
            r#"<line class="grid" x1="{l}" x2="{r}" y1="{y}" y2="{y}"/><text x="{tx}" y="{ty}" text-anchor="end">{label}</text>"#,
            l = px(left),
            r = px(right),
            y = px(y),
            tx = px(left - 6.0),
            ty = px(y + 4.0),
            label = escape(&fmt_tick(t, axis.step))
        );
    }
    out.push_str("</g>");
}

/// Draws a vertical axis variant: grid lines with tick labels below the plot area.
pub(crate) fn x_value_axis(
    out: &mut String,
    axis: &NiceAxis,
    left: f64,
    right: f64,
    top: f64,
    bottom: f64,
) {
    out.push_str(r#"<g class="axis x-axis">"#);
    for t in axis.ticks() {
        let x = axis.map(t, left, right);
        let _ = write!(
            out,
            r#"<line class="grid" x1="{x}" x2="{x}" y1="{t}" y2="{b}"/><text x="{x}" y="{ty}" text-anchor="middle">{label}</text>"#,
            x = px(x),
            t = px(top),
            b = px(bottom),
            ty = px(bottom + 16.0),
            label = escape(&fmt_tick(t, axis.step))
        );
    }
    out.push_str("</g>");
}

/// Draws a legend row of coloured swatches starting at (`x`, `y`).
pub(crate) fn legend(out: &mut String, x: f64, y: f64, entries: &[(&str, &str)], line: bool) {
    out.push_str(r#"<g class="legend">"#);
    let mut cx = x;
    for (label, color) in entries {
        if line {
            let _ = write!(
                out,
                r#"<line x1="{x1}" x2="{x2}" y1="{y}" y2="{y}" stroke="{color}" stroke-width="3"/>"#,
                x1 = px(cx),
                x2 = px(cx + 18.0),
                y = px(y - 4.0),
            );
        } else {
            let _ = write!(
                out,
                r#"<rect x="{x}" y="{y}" width="12" height="12" rx="2" fill="{color}"/>"#,
                x = px(cx + 3.0),
                y = px(y - 10.0),
            );
        }
        let _ = write!(
            out,
            r#"<text x="{x}" y="{y}">{label}</text>"#,
            x = px(cx + 24.0),
            y = px(y),
            label = escape(label)
        );
        cx += 24.0 + label.chars().count() as f64 * CHAR_W + 18.0;
    }
    out.push_str("</g>");
}

/// Draws the emphasised zero line when zero lies inside the axis domain.
pub(crate) fn zero_line(
    out: &mut String,
    axis: &NiceAxis,
    left: f64,
    right: f64,
    top: f64,
    bottom: f64,
) {
    if axis.lo <= 0.0 && axis.hi >= 0.0 {
        let y = axis.map(0.0, bottom, top);
        let _ = write!(
            out,
            r#"<line class="zero" x1="{l}" x2="{r}" y1="{y}" y2="{y}"/>"#,
            l = px(left),
            r = px(right),
            y = px(y)
        );
    }
}

/// Smallest and largest finite value among `values`, or `None` when there is none.
pub(crate) fn finite_range(values: impl IntoIterator<Item = f64>) -> Option<(f64, f64)> {
    values
        .into_iter()
        .filter(|v| v.is_finite())
        .fold(None, |acc, v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
        })
}
