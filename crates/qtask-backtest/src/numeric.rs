//! Python's and NumPy's float arithmetic where Qlib's results depend on it: floor division,
//! `np.isclose`, NumPy's pairwise summation and pandas' NaN-skipping mean and std.

/// Python's (and NumPy's) float floor division `a // b`, computed the way CPython does
/// (`fmod`, then a correction), not as `floor(a / b)`, which can differ by one.
pub fn py_floordiv(a: f64, b: f64) -> f64 {
    let m = a % b;
    let mut div = (a - m) / b;
    if m != 0.0 && ((b < 0.0) != (m < 0.0)) {
        div -= 1.0;
    }
    if div != 0.0 {
        let mut fd = div.floor();
        if div - fd > 0.5 {
            fd += 1.0;
        }
        fd
    } else {
        (0.0f64).copysign(a / b)
    }
}

/// `np.isclose(a, b)` with its defaults (`rtol=1e-5`, `atol=1e-8`; NaN is never close).
pub fn np_isclose(a: f64, b: f64) -> bool {
    if a == b {
        return true;
    }
    if !a.is_finite() || !b.is_finite() {
        return false;
    }
    (a - b).abs() <= 1e-8 + 1e-5 * b.abs()
}

/// NumPy's pairwise summation of a contiguous float64 array (`np.add.reduce`), which pandas'
/// `sum`/`mean` use: the same additions in the same order, so the same bits.
pub fn pairwise_sum(x: &[f64]) -> f64 {
    const BLOCK: usize = 128;
    let n = x.len();
    if n == 0 {
        // The identity of np.add: an empty sum is +0.0.
        0.0
    } else if n < 8 {
        let mut s = -0.0;
        for &v in x {
            s += v;
        }
        s
    } else if n <= BLOCK {
        let mut r = [0.0f64; 8];
        r.copy_from_slice(&x[..8]);
        let mut i = 8;
        while i < n - (n % 8) {
            for (k, acc) in r.iter_mut().enumerate() {
                *acc += x[i + k];
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for &v in &x[i..] {
            res += v;
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        pairwise_sum(&x[..n2]) + pairwise_sum(&x[n2..])
    }
}

/// pandas' `Series.mean()`: NaN skipped, NaN when nothing is left.
pub fn nanmean(x: &[f64]) -> f64 {
    let v: Vec<f64> = x.iter().copied().filter(|v| !v.is_nan()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    pairwise_sum(&v) / v.len() as f64
}

/// pandas' `Series.std(ddof=1)`: NaN skipped, NaN with fewer than two values.
pub fn nanstd(x: &[f64]) -> f64 {
    let v: Vec<f64> = x.iter().copied().filter(|v| !v.is_nan()).collect();
    if v.len() < 2 {
        return f64::NAN;
    }
    let avg = pairwise_sum(&v) / v.len() as f64;
    let sq: Vec<f64> = v.iter().map(|x| (avg - x) * (avg - x)).collect();
    (pairwise_sum(&sq) / (v.len() - 1) as f64).sqrt()
}

/// A Python slice `li[start:stop]` of a sequence of length `len`, negative bounds counting
/// from the end, as the strategies slice their candidate lists (`li[:n]`, `li[-n:]`).
pub fn py_slice(len: usize, start: Option<i64>, stop: Option<i64>) -> std::ops::Range<usize> {
    let len_i = len as i64;
    let norm = |v: i64| -> usize {
        let v = if v < 0 { v + len_i } else { v };
        v.clamp(0, len_i) as usize
    };
    let s = start.map_or(0, norm);
    let e = stop.map_or(len, norm);
    if s >= e { s..s } else { s..e }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floordiv_matches_python() {
        // Values from CPython: `x // y`.
        assert_eq!(py_floordiv(7.0, 2.0), 3.0);
        assert_eq!(py_floordiv(-7.0, 2.0), -4.0);
        assert_eq!(py_floordiv(0.1 + 299.9999999999, 100.0), 3.0);
        // floor(1.0 / 0.1) is 10: CPython's fmod-based rule gives 9.
        assert_eq!(py_floordiv(1.0, 0.1), 9.0);
        assert_eq!(py_floordiv(0.3, 0.1), 2.0);
        assert_eq!(py_floordiv(199.99999999999997, 100.0), 1.0);
        assert!(py_floordiv(0.0, 100.0) == 0.0);
    }

    #[test]
    fn slices_follow_python() {
        assert_eq!(py_slice(5, None, Some(2)), 0..2);
        assert_eq!(py_slice(5, None, Some(-2)), 0..3);
        assert_eq!(py_slice(5, None, Some(9)), 0..5);
        assert_eq!(py_slice(5, Some(-2), None), 3..5);
        // `li[-0:]` is the whole list: Qlib's get_last_n(li, 0) returns everything.
        assert_eq!(py_slice(5, Some(0), None), 0..5);
        assert_eq!(py_slice(5, None, Some(-7)), 0..0);
    }

    #[test]
    fn pairwise_sum_matches_numpy_order() {
        // np.add.reduce(np.array([1e16] + [1.0] * 200)) == 1.0000000000000188e16: the blocked
        // order keeps some of the ones a left-to-right sum loses.
        let mut x = vec![1e16];
        x.extend(std::iter::repeat_n(1.0, 200));
        assert_eq!(pairwise_sum(&x), 1.0000000000000188e16);
        let left_to_right: f64 = x.iter().sum();
        assert_ne!(pairwise_sum(&x), left_to_right);
    }

    #[test]
    fn isclose_uses_numpy_tolerances() {
        assert!(np_isclose(1000.0, 1000.009));
        assert!(!np_isclose(1000.0, 1000.02));
        assert!(!np_isclose(f64::NAN, f64::NAN));
    }
}
