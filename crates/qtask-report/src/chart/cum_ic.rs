//! Line chart: cumulative IC and Rank IC of the ensemble over time.

use super::{IC_COLOR, RANK_IC_COLOR, finite_range, legend, open_svg, px, y_axis, zero_line};
use crate::DailyIc;
use crate::escape::escape;
use crate::series::{NiceAxis, cumulative, downsample_indices};
use std::fmt::Write;

const WIDTH: f64 = 900.0;
const HEIGHT: f64 = 340.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 300.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 20.0;
/// Upper bound on drawn points per line, so long studies keep the report small.
pub(crate) const MAX_POINTS: usize = 1500;
/// Number of date labels on the x axis.
const X_TICKS: usize = 6;

/// Renders the chart, or `None` when there are no days.
pub(crate) fn cum_ic_chart(daily: &[DailyIc]) -> Option<String> {
    if daily.is_empty() {
        return None;
    }
    let ic: Vec<f64> = daily.iter().map(|d| d.ic).collect();
    let rank: Vec<f64> = daily.iter().map(|d| d.rank_ic).collect();
    let cum_ic = cumulative(&ic);
    let cum_rank = cumulative(&rank);
    let (lo, hi) = finite_range(cum_ic.iter().chain(&cum_rank).copied())?;
    let axis = NiceAxis::new(lo.min(0.0), hi.max(0.0), 5)?;

    let n = daily.len();
    let right = WIDTH - RIGHT;
    // A single day sits in the middle instead of dividing by zero.
    let x_of = |i: usize| {
        if n == 1 {
            (LEFT + right) / 2.0
        } else {
            LEFT + (right - LEFT) * i as f64 / (n - 1) as f64
        }
    };

    let mut out = String::new();
    open_svg(
        &mut out,
        "chart-cum-ic",
        "Cumulative IC and Rank IC of the ensemble",
        WIDTH,
        HEIGHT,
    );
    legend(
        &mut out,
        LEFT,
        22.0,
        &[
            ("Cumulative IC", IC_COLOR),
            ("Cumulative Rank IC", RANK_IC_COLOR),
        ],
        true,
    );
    y_axis(&mut out, &axis, LEFT, right, TOP, BOTTOM);
    zero_line(&mut out, &axis, LEFT, right, TOP, BOTTOM);

    out.push_str(r#"<g class="axis x-axis">"#);
    let ticks = downsample_indices(n, X_TICKS);
    for (k, &i) in ticks.iter().enumerate() {
        let x = x_of(i);
        // End labels hug the plot edges so they are not cut off.
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
            d = escape(&daily[i].date)
        );
    }
    out.push_str("</g>");

    for (series, color, class) in [
        (&cum_ic, IC_COLOR, "cum-ic"),
        (&cum_rank, RANK_IC_COLOR, "cum-rank-ic"),
    ] {
        let points: Vec<String> = downsample_indices(n, MAX_POINTS)
            .into_iter()
            .filter(|&i| series[i].is_finite())
            .map(|i| format!("{},{}", px(x_of(i)), px(axis.map(series[i], BOTTOM, TOP))))
            .collect();
        let _ = write!(
            out,
            r#"<polyline class="{class}" fill="none" stroke="{color}" stroke-width="2" stroke-linejoin="round" points="{p}"/>"#,
            p = points.join(" ")
        );
    }
    out.push_str("</svg>");
    Some(out)
}
