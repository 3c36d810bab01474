//! Number and duration formatting for tables and chart labels.

/// Placeholder shown for missing or non-finite numbers.
pub const MISSING: &str = "–";

/// Formats a number with 4 significant digits (`0.03452`, `1.235`, `1235`, `1.235e-5`).
///
/// NaN, infinities and `None` become [`MISSING`]. Very small or large magnitudes switch to
/// scientific notation so the columns stay narrow.
pub fn fmt_sig4(value: Option<f64>) -> String {
    let Some(v) = value.filter(|v| v.is_finite()) else {
        return MISSING.to_string();
    };
    if v == 0.0 {
        return "0".to_string();
    }
    let mag = v.abs().log10().floor() as i32;
    if !(-4..6).contains(&mag) {
        return format!("{v:.3e}");
    }
    let decimals = (3 - mag).max(0) as usize;
    let s = format!("{v:.decimals$}");
    // Rounding can carry into a new digit (9.9996 -> "10.000"); reformat so 4 digits remain.
    let rounded: f64 = s.parse().unwrap_or(v);
    let mag2 = rounded.abs().log10().floor() as i32;
    if mag2 != mag && rounded != 0.0 {
        let decimals = (3 - mag2).max(0) as usize;
        return format!("{rounded:.decimals$}");
    }
    s
}

/// Formats a duration in seconds compactly: `0.42 s`, `12.3 s`, `3m 05s`, `2h 07m`.
pub fn fmt_duration(secs: Option<f64>) -> String {
    let Some(s) = secs.filter(|s| s.is_finite() && *s >= 0.0) else {
        return MISSING.to_string();
    };
    if s < 10.0 {
        format!("{s:.2} s")
    } else if s < 60.0 {
        format!("{s:.1} s")
    } else if s < 3600.0 {
        let t = s.round() as u64;
        format!("{}m {:02}s", t / 60, t % 60)
    } else {
        let t = (s / 60.0).round() as u64;
        format!("{}h {:02}m", t / 60, t % 60)
    }
}

/// Formats an axis tick so that ticks `step` apart show just enough decimals.
pub(crate) fn fmt_tick(value: f64, step: f64) -> String {
    let decimals = if step > 0.0 && step.is_finite() {
        (-(step.log10().floor()) as i32).clamp(0, 10) as usize
    } else {
        2
    };
    let s = format!("{value:.decimals$}");
    // Avoid "-0.00" for a tick that is zero up to float noise.
    if s.starts_with('-') && s[1..].chars().all(|c| c == '0' || c == '.') {
        s[1..].to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sig4_formats_typical_metric_values() {
        assert_eq!(fmt_sig4(Some(0.0345678)), "0.03457");
        assert_eq!(fmt_sig4(Some(1.234567)), "1.235");
        assert_eq!(fmt_sig4(Some(-12.3456)), "-12.35");
        assert_eq!(fmt_sig4(Some(12345.6)), "12346");
        assert_eq!(fmt_sig4(Some(9.99996)), "10.00");
        assert_eq!(fmt_sig4(Some(0.0)), "0");
        assert_eq!(fmt_sig4(Some(1.23456e-7)), "1.235e-7");
    }

    #[test]
    fn sig4_shows_dash_for_missing_values() {
        assert_eq!(fmt_sig4(None), MISSING);
        assert_eq!(fmt_sig4(Some(f64::NAN)), MISSING);
        assert_eq!(fmt_sig4(Some(f64::INFINITY)), MISSING);
    }

    #[test]
    fn durations_pick_a_readable_unit() {
        assert_eq!(fmt_duration(Some(0.4242)), "0.42 s");
        assert_eq!(fmt_duration(Some(12.34)), "12.3 s");
        assert_eq!(fmt_duration(Some(185.0)), "3m 05s");
        assert_eq!(fmt_duration(Some(7620.0)), "2h 07m");
        assert_eq!(fmt_duration(None), MISSING);
    }

    #[test]
    fn ticks_use_decimals_of_the_step() {
        assert_eq!(fmt_tick(0.05, 0.05), "0.05");
        assert_eq!(fmt_tick(20.0, 10.0), "20");
        assert_eq!(fmt_tick(-0.0000001, 0.1), "0.0");
    }
}
