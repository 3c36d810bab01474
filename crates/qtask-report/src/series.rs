//! Series helpers: running sums, downsampling and axis ticks.

/// Running sum of `values`; NaN and infinite entries contribute 0.
///
/// The output has one entry per input, so day `i` of the result is the cumulative value
/// through day `i`.
pub fn cumulative(values: &[f64]) -> Vec<f64> {
    let mut sum = 0.0;
    values
        .iter()
        .map(|v| {
            if v.is_finite() {
                sum += v;
            }
            sum
        })
        .collect()
}

/// Indices of at most `max_points` evenly spread points out of `len`, always keeping the
/// first and the last one, in increasing order.
///
/// Returns every index when `len <= max_points`. A `max_points` below 2 is treated as 2 (the
/// two ends), since a line needs both of them.
pub fn downsample_indices(len: usize, max_points: usize) -> Vec<usize> {
    let max_points = max_points.max(2);
    if len <= max_points {
        return (0..len).collect();
    }
    let last = len - 1;
    let steps = max_points - 1;
    let mut out: Vec<usize> = (0..=steps)
        // u128 keeps `k * last` exact for any realistic length.
        .map(|k| ((k as u128 * last as u128 + steps as u128 / 2) / steps as u128) as usize)
        .collect();
    out.dedup();
    out
}

/// A "nice" axis: round tick steps and domain bounds on half-step multiples covering
/// `[lo, hi]` (half steps avoid a whole empty band when data barely crosses a tick).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct NiceAxis {
    /// Lower domain bound (a multiple of `step / 2`).
    pub lo: f64,
    /// Upper domain bound (a multiple of `step / 2`).
    pub hi: f64,
    /// Distance between ticks: 1, 2 or 5 times a power of ten.
    pub step: f64,
}

impl NiceAxis {
    /// Builds an axis with about `target` ticks over `[lo, hi]`; `None` for non-finite input.
    pub fn new(lo: f64, hi: f64, target: usize) -> Option<Self> {
        if !lo.is_finite() || !hi.is_finite() {
            return None;
        }
        let (lo, hi) = if lo <= hi { (lo, hi) } else { (hi, lo) };
        // A flat series still needs a visible range.
        let (lo, hi) = if hi - lo <= f64::EPSILON * hi.abs().max(1.0) {
            let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.5 };
            (lo - pad, hi + pad)
        } else {
            (lo, hi)
        };
        let raw = (hi - lo) / target.max(1) as f64;
        let pow = 10f64.powf(raw.log10().floor());
        let frac = raw / pow;
        let nice = if frac <= 1.0 {
            1.0
        } else if frac <= 2.0 {
            2.0
        } else if frac <= 5.0 {
            5.0
        } else {
            10.0
        };
        let step = nice * pow;
        let half = step / 2.0;
        let axis = NiceAxis {
            // The tolerance rounds values a hair past a multiple (float noise) onto it, so a
            // range starting at 0 does not get an extra empty step below zero.
            lo: (lo / half + 1e-9).floor() * half,
            hi: (hi / half - 1e-9).ceil() * half,
            step,
        };
        (axis.step.is_finite() && axis.step > 0.0 && axis.hi > axis.lo).then_some(axis)
    }

    /// The multiples of `step` inside the domain, ascending.
    pub fn ticks(&self) -> Vec<f64> {
        let first = (self.lo / self.step - 1e-9).ceil();
        let last = (self.hi / self.step + 1e-9).floor();
        let n = (last - first).max(0.0) as usize;
        (0..=n.min(100))
            .map(|k| (first + k as f64) * self.step)
            .collect()
    }

    /// Maps a domain value linearly onto the pixel range `[r0, r1]`.
    pub fn map(&self, v: f64, r0: f64, r1: f64) -> f64 {
        r0 + (v - self.lo) / (self.hi - self.lo) * (r1 - r0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_axis_covers_range_with_round_steps() {
        let a = NiceAxis::new(-0.013, 0.087, 5).unwrap();
        assert!((a.step - 0.02).abs() < 1e-12);
        assert!((a.lo - -0.02).abs() < 1e-12);
        assert!((a.hi - 0.09).abs() < 1e-12);
        let ticks = a.ticks();
        assert_eq!(ticks.len(), 6);
        assert!((ticks[0] - -0.02).abs() < 1e-12 && (ticks[5] - 0.08).abs() < 1e-12);
        // Barely below zero: the domain stops half a step down instead of a whole step.
        let b = NiceAxis::new(-0.05, 35.2, 5).unwrap();
        assert_eq!((b.lo, b.hi, b.step), (-5.0, 40.0, 10.0));
        assert_eq!(b.ticks(), vec![0.0, 10.0, 20.0, 30.0, 40.0]);
    }

    #[test]
    fn nice_axis_handles_flat_and_bad_ranges() {
        let a = NiceAxis::new(0.0, 0.0, 5).unwrap();
        assert!(a.lo < 0.0 && a.hi > 0.0);
        assert!(NiceAxis::new(f64::NAN, 1.0, 5).is_none());
        let from_zero = NiceAxis::new(0.0, 37080.0, 5).unwrap();
        assert_eq!(
            (from_zero.lo, from_zero.hi, from_zero.step),
            (0.0, 40000.0, 10000.0)
        );
        assert!(NiceAxis::new(0.0, f64::INFINITY, 5).is_none());
    }
}
