//! Horizontal bar chart of the largest feature importances.

use super::{CHAR_W, finite_range, open_svg, px, x_value_axis};
use crate::escape::{escape, truncate};
use crate::format::fmt_sig4;
use crate::series::NiceAxis;
use std::fmt::Write;

/// How many features the chart shows.
pub(crate) const TOP_N: usize = 20;
const WIDTH: f64 = 900.0;
const ROW_H: f64 = 24.0;
const TOP: f64 = 12.0;
const RIGHT: f64 = 80.0;
/// Longest feature label drawn; the full name stays in the bar tooltip.
const MAX_LABEL: usize = 36;

/// The `TOP_N` finite importances, largest first (ties by name for a stable order).
pub(crate) fn top_features(importance: &[(String, f64)]) -> Vec<(&str, f64)> {
    let mut rows: Vec<(&str, f64)> = importance
        .iter()
        .filter(|(_, v)| v.is_finite())
        .map(|(n, v)| (n.as_str(), *v))
        .collect();
    rows.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    rows.truncate(TOP_N);
    rows
}

/// Renders the chart, or `None` when no feature has a finite importance.
pub(crate) fn importance_chart(importance: &[(String, f64)]) -> Option<String> {
    let rows = top_features(importance);
    let (lo, hi) = finite_range(rows.iter().map(|r| r.1))?;
    let axis = NiceAxis::new(lo.min(0.0), hi.max(0.0), 5)?;

    let labels: Vec<String> = rows.iter().map(|r| truncate(r.0, MAX_LABEL)).collect();
    let longest = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0) as f64;
    let left = (longest * CHAR_W + 16.0).clamp(80.0, 280.0);
    let right = WIDTH - RIGHT;
    let bottom = TOP + ROW_H * rows.len() as f64;
    let height = bottom + 30.0;

    let mut out = String::new();
    open_svg(
        &mut out,
        "chart-importance",
        "Top feature importances (gain)",
        WIDTH,
        height,
    );
    x_value_axis(&mut out, &axis, left, right, TOP, bottom);
    let zero_x = axis.map(0.0, left, right);
    out.push_str(r#"<g class="bars">"#);
    for (row, (label, (name, value))) in labels.iter().zip(&rows).enumerate() {
        let y = TOP + ROW_H * row as f64;
        let x = axis.map(*value, left, right);
        let (x0, w) = if x < zero_x {
            (x, zero_x - x)
        } else {
            (zero_x, x - zero_x)
        };
        let _ = write!(
            out,
            r##"<text class="feature" x="{lx}" y="{ty}" text-anchor="end">{label}</text><rect x="{x0}" y="{y}" width="{w}" height="{h}" rx="2" fill="#0d9488"><title>{name}: {v}</title></rect><text class="value" x="{vx}" y="{ty}">{v}</text>"##,
            lx = px(left - 8.0),
            ty = px(y + ROW_H / 2.0 + 4.0),
            label = escape(label),
            x0 = px(x0),
            y = px(y + 4.0),
            w = px(w.max(0.5)),
            h = px(ROW_H - 8.0),
            name = escape(name),
            v = fmt_sig4(Some(*value)),
            vx = px(x0 + w.max(0.5) + 6.0),
        );
    }
    out.push_str("</g></svg>");
    Some(out)
}
