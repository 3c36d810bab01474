//! The task-duration histogram: counts in 1-2-5 buckets (durations span seconds to hours),
//! drawn as inline SVG in the report's style.

use std::fmt::Write;

use crate::html::{count, esc};

/// Bucket edges in seconds; the last bucket is open.
const EDGES: [f64; 22] = [
    0.0, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0,
    3600.0, 7200.0, 14400.0, 28800.0, 43200.0, 86400.0,
];

/// `0.5 s`, `2 min`, `4 h`.
fn edge_label(s: f64) -> String {
    if s < 60.0 {
        format!("{s} s")
    } else if s < 3600.0 {
        format!("{} min", s / 60.0)
    } else {
        format!("{} h", s / 3600.0)
    }
}

/// Counts per bucket: `(label, count)`, from the first to the last non-empty bucket.
pub(crate) fn buckets(durations: &[f64]) -> Vec<(String, u64)> {
    let mut counts = [0u64; EDGES.len()];
    for &d in durations.iter().filter(|d| d.is_finite()) {
        let i = EDGES.iter().rposition(|&e| d >= e).unwrap_or(0);
        counts[i] += 1;
    }
    let Some(first) = counts.iter().position(|&n| n > 0) else {
        return Vec::new();
    };
    let last = counts.iter().rposition(|&n| n > 0).unwrap_or(first);
    (first..=last)
        .map(|i| {
            let label = match EDGES.get(i + 1) {
                Some(&hi) => format!("{}–{}", edge_label(EDGES[i]), edge_label(hi)),
                None => format!("≥ {}", edge_label(EDGES[i])),
            };
            (label, counts[i])
        })
        .collect()
}

/// The histogram as an SVG (or a "no data" line).
pub(crate) fn render(durations: &[f64]) -> String {
    let b = buckets(durations);
    if b.is_empty() {
        return r#"<p class="nodata">No finished tasks yet.</p>"#.into();
    }
    let (w, h, left, bottom, top) = (720.0, 220.0, 48.0, 44.0, 16.0);
    let max = b.iter().map(|(_, n)| *n).max().unwrap_or(1).max(1) as f64;
    let slot = (w - left - 8.0) / b.len() as f64;
    let plot_h = h - bottom - top;
    let mut svg = format!(
        r#"<svg class="chart" id="duration-histogram" viewBox="0 0 {w} {h}" role="img" aria-label="task durations">"#
    );
    for k in 0..=4 {
        let y = top + plot_h * (1.0 - k as f64 / 4.0);
        let v = max * k as f64 / 4.0;
        let _ = write!(
            svg,
            r#"<line class="grid" x1="{left}" x2="{}" y1="{y:.1}" y2="{y:.1}"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
            w - 8.0,
            left - 6.0,
            y + 4.0,
            if max >= 4.0 {
                format!("{v:.0}")
            } else {
                format!("{v:.1}")
            }
        );
    }
    for (i, (label, n)) in b.iter().enumerate() {
        let bh = plot_h * (*n as f64) / max;
        let x = left + slot * i as f64 + slot * 0.12;
        let bw = slot * 0.76;
        let y = top + plot_h - bh;
        let _ = write!(
            svg,
            r#"<rect class="bar" x="{x:.1}" y="{y:.1}" width="{bw:.1}" height="{bh:.1}"><title>{}: {}</title></rect>"#,
            esc(label),
            count(*n)
        );
        if *n > 0 {
            let _ = write!(
                svg,
                r#"<text class="value" x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                x + bw / 2.0,
                y - 3.0,
                count(*n)
            );
        }
        let _ = write!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" class="xl">{}</text>"#,
            x + bw / 2.0,
            h - bottom + 16.0 + if i % 2 == 1 && b.len() > 8 { 14.0 } else { 0.0 },
            esc(label)
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_fall_in_their_buckets() {
        let b = buckets(&[0.05, 1.5, 1.9, 3.0, 100_000.0, f64::NAN]);
        let labels: Vec<&str> = b.iter().map(|(l, _)| l.as_str()).collect();
        assert_eq!(labels.first(), Some(&"0 s–0.1 s"));
        assert_eq!(labels.last(), Some(&"≥ 24 h"));
        let get = |l: &str| b.iter().find(|(x, _)| x == l).unwrap().1;
        assert_eq!(get("1 s–2 s"), 2);
        assert_eq!(get("2 s–5 s"), 1);
        assert_eq!(get("0.5 s–1 s"), 0);
        assert_eq!(b.iter().map(|(_, n)| n).sum::<u64>(), 5);
        assert!(buckets(&[]).is_empty());
        assert!(render(&[2.0]).contains("<rect"));
    }
}
