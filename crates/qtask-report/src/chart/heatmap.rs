//! Heatmap of a monthly value (years down, months across), e.g. the mean IC of each month:
//! orange above zero, blue below, stronger for larger magnitudes, the value in each cell.

use super::{open_svg, px};
use crate::escape::escape;
use std::fmt::Write;

const WIDTH: f64 = 900.0;
const LEFT: f64 = 60.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 44.0;
const ROW_H: f64 = 30.0;
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const POSITIVE: (u8, u8, u8) = (234, 138, 12);
const NEGATIVE: (u8, u8, u8) = (37, 99, 235);

/// Fill colour of a value given the largest magnitude (white at 0).
fn color(v: f64, max_abs: f64) -> String {
    if !v.is_finite() {
        return "#f1f5f9".to_string();
    }
    let t = if max_abs > 0.0 {
        (v.abs() / max_abs).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let (r, g, b) = if v >= 0.0 { POSITIVE } else { NEGATIVE };
    let mix = |c: u8| (255.0 + (f64::from(c) - 255.0) * (0.15 + 0.85 * t)).round() as u8;
    format!("#{:02x}{:02x}{:02x}", mix(r), mix(g), mix(b))
}

/// Renders the heatmap of `(year, month 1..=12, value)` cells, or `None` when no value is
/// finite.
pub(crate) fn month_heatmap(id: &str, title: &str, cells: &[(i32, u32, f64)]) -> Option<String> {
    let max_abs = cells
        .iter()
        .map(|c| c.2)
        .filter(|v| v.is_finite())
        .fold(None, |m: Option<f64>, v| {
            Some(m.map_or(v.abs(), |m| m.max(v.abs())))
        })?;
    let mut years: Vec<i32> = cells.iter().map(|c| c.0).collect();
    years.sort_unstable();
    years.dedup();
    let cell_w = (WIDTH - LEFT - RIGHT) / 12.0;
    let height = TOP + ROW_H * years.len() as f64 + 12.0;
    let mut out = String::new();
    open_svg(&mut out, id, title, WIDTH, height);
    for (m, name) in MONTHS.iter().enumerate() {
        let _ = write!(
            out,
            r#"<text x="{x}" y="{y}" text-anchor="middle">{name}</text>"#,
            x = px(LEFT + cell_w * (m as f64 + 0.5)),
            y = px(TOP - 10.0)
        );
    }
    for (row, year) in years.iter().enumerate() {
        let y = TOP + ROW_H * row as f64;
        let _ = write!(
            out,
            r#"<text x="{x}" y="{ty}" text-anchor="end">{year}</text>"#,
            x = px(LEFT - 8.0),
            ty = px(y + ROW_H / 2.0 + 4.0)
        );
        for m in 1..=12u32 {
            let v = cells
                .iter()
                .find(|c| c.0 == *year && c.1 == m)
                .map_or(f64::NAN, |c| c.2);
            let x = LEFT + cell_w * f64::from(m - 1);
            let label = if v.is_finite() {
                format!("{v:.3}")
            } else {
                String::new()
            };
            let _ = write!(
                out,
                r##"<rect class="cell" x="{x}" y="{y}" width="{w}" height="{h}" fill="{fill}" stroke="#ffffff"><title>{year}-{m:02}: {t}</title></rect>"##,
                x = px(x),
                y = px(y),
                w = px(cell_w),
                h = px(ROW_H),
                fill = color(v, max_abs),
                t = escape(if label.is_empty() { "no data" } else { &label }),
            );
            if !label.is_empty() {
                // Dark text on pale cells, white on saturated ones, so every value stays legible.
                let ink = if v.abs() / max_abs > 0.55 {
                    "#ffffff"
                } else {
                    "#1f2937"
                };
                let _ = write!(
                    out,
                    r#"<text class="value" x="{x}" y="{ty}" text-anchor="middle" style="fill:{ink}">{label}</text>"#,
                    x = px(x + cell_w / 2.0),
                    ty = px(y + ROW_H / 2.0 + 4.0)
                );
            }
        }
    }
    out.push_str("</svg>");
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_grow_with_magnitude_and_sign() {
        assert_eq!(color(f64::NAN, 1.0), "#f1f5f9");
        let strong = color(1.0, 1.0);
        let weak = color(0.1, 1.0);
        assert_eq!(strong, "#ea8a0c");
        assert_ne!(weak, strong);
        assert_eq!(color(-1.0, 1.0), "#2563eb");
    }

    #[test]
    fn one_row_per_year_and_empty_months_stay_blank() {
        let cells = [(2019, 12, 0.02), (2020, 1, -0.01)];
        let svg = month_heatmap("h", "t", &cells).unwrap();
        assert_eq!(svg.matches(r#"class="cell""#).count(), 24);
        assert_eq!(svg.matches(r#"class="value""#).count(), 2);
        assert!(month_heatmap("h", "t", &[(2020, 1, f64::NAN)]).is_none());
    }
}
