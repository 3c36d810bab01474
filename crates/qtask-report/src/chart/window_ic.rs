//! Grouped bar chart: IC and Rank IC per window.

use super::{
    CHAR_W, IC_COLOR, RANK_IC_COLOR, finite_range, legend, open_svg, px, y_axis, zero_line,
};
use crate::WindowMetrics;
use crate::escape::{escape, truncate};
use crate::format::fmt_sig4;
use crate::series::NiceAxis;
use std::fmt::Write;

const WIDTH: f64 = 900.0;
const PLOT_H: f64 = 240.0;
const TOP: f64 = 40.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
/// Longest window label drawn under the axis; the full name stays in the bar tooltips.
const MAX_LABEL: usize = 40;

/// Renders the chart, or `None` when no window has a finite IC or Rank IC.
pub(crate) fn window_ic_chart(windows: &[WindowMetrics]) -> Option<String> {
    let (lo, hi) = finite_range(windows.iter().flat_map(|w| [w.ic, w.rank_ic]))?;
    let axis = NiceAxis::new(lo.min(0.0), hi.max(0.0), 5)?;

    let n = windows.len();
    let labels: Vec<String> = windows
        .iter()
        .map(|w| truncate(&w.name, MAX_LABEL))
        .collect();
    let longest = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0) as f64;
    // Rotate the labels when they would not fit side by side; thin them out when even rotated
    // labels (one text line each, ~14 units) would collide.
    let rotate = longest * CHAR_W > (WIDTH - LEFT - RIGHT) / n as f64 - 6.0;
    // Labels rotated by 40° reach left of their bar by cos(40°) of their length; widen the left
    // margin so the first one is not cut off.
    let left = if rotate {
        let group_guess = (WIDTH - LEFT - RIGHT) / n as f64;
        (longest * CHAR_W * 0.77 - group_guess / 2.0 + 8.0).clamp(LEFT, 260.0)
    } else {
        LEFT
    };
    let group_w = (WIDTH - left - RIGHT) / n as f64;
    let every = if rotate {
        (14.0 / group_w).ceil().max(1.0) as usize
    } else {
        1
    };
    let label_h = if rotate {
        12.0 + longest * CHAR_W * 0.64
    } else {
        24.0
    };
    let bottom = TOP + PLOT_H;
    let height = bottom + label_h + 12.0;

    let mut out = String::new();
    open_svg(
        &mut out,
        "chart-window-ic",
        "IC and Rank IC per window",
        WIDTH,
        height,
    );
    legend(
        &mut out,
        left,
        22.0,
        &[("IC", IC_COLOR), ("Rank IC", RANK_IC_COLOR)],
        false,
    );
    y_axis(&mut out, &axis, left, WIDTH - RIGHT, TOP, bottom);

    let bar_w = (group_w * 0.36).min(48.0);
    let zero_y = axis.map(0.0_f64.clamp(axis.lo, axis.hi), bottom, TOP);
    out.push_str(r#"<g class="bars">"#);
    for (i, w) in windows.iter().enumerate() {
        let center = left + group_w * (i as f64 + 0.5);
        for (k, (value, color, what)) in [
            (w.ic, IC_COLOR, "IC"),
            (w.rank_ic, RANK_IC_COLOR, "Rank IC"),
        ]
        .into_iter()
        .enumerate()
        {
            if !value.is_finite() {
                continue;
            }
            let x = center - bar_w - 1.0 + k as f64 * (bar_w + 2.0);
            let y = axis.map(value, bottom, TOP);
            let (y0, h) = if y < zero_y {
                (y, zero_y - y)
            } else {
                (zero_y, y - zero_y)
            };
            let _ = write!(
                out,
                r#"<rect x="{x}" y="{y}" width="{bw}" height="{h}" fill="{color}"><title>{name} {what}: {v}</title></rect>"#,
                x = px(x),
                y = px(y0),
                bw = px(bar_w),
                h = px(h.max(0.5)),
                name = escape(&w.name),
                v = fmt_sig4(Some(value)),
            );
        }
    }
    out.push_str("</g>");
    zero_line(&mut out, &axis, left, WIDTH - RIGHT, TOP, bottom);

    out.push_str(r#"<g class="axis x-labels">"#);
    for (i, label) in labels.iter().enumerate() {
        if i % every != 0 {
            continue;
        }
        let x = left + group_w * (i as f64 + 0.5);
        if rotate {
            let y = bottom + 14.0;
            let _ = write!(
                out,
                r#"<text x="{x}" y="{y}" text-anchor="end" transform="rotate(-40 {x} {y})">{l}</text>"#,
                x = px(x + 4.0),
                y = px(y),
                l = escape(label)
            );
        } else {
            let _ = write!(
                out,
                r#"<text x="{x}" y="{y}" text-anchor="middle">{l}</text>"#,
                x = px(x),
                y = px(bottom + 18.0),
                l = escape(label)
            );
        }
    }
    out.push_str("</g></svg>");
    Some(out)
}
