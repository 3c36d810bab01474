//! Sums, means and standard deviations computed the way pandas/numpy compute them, so that
//! ensembles agree with Qlib's to the last bit, not just to a tolerance.
//!
//! pandas (without bottleneck) fills NaN with 0, sums with numpy's pairwise summation and
//! divides by the count of non-NaN values; the variance sums squared deviations the same way.

/// numpy's `pairwise_sum` for float64: plain loop below 8 values, eight interleaved
/// accumulators up to 128, halves (cut at a multiple of 8) above.
pub(crate) fn pairwise_sum(a: &[f64]) -> f64 {
    let n = a.len();
    if n < 8 {
        let mut res = 0.0;
        for &x in a {
            res += x;
        }
        res
    } else if n <= 128 {
        let mut r = [0.0f64; 8];
        r.copy_from_slice(&a[..8]);
        let mut i = 8;
        while i < n - (n % 8) {
            for j in 0..8 {
                r[j] += a[i + j];
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        while i < n {
            res += a[i];
            i += 1;
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        pairwise_sum(&a[..n2]) + pairwise_sum(&a[n2..])
    }
}

/// Mean and sample standard deviation (ddof=1) of the non-NaN values, as pandas'
/// `nanmean`/`nanstd` give them. `scratch` is reused to avoid allocating per call.
///
/// No value gives (NaN, NaN); one value gives (value, NaN).
pub(crate) fn nan_mean_std(values: &[f64], scratch: &mut Vec<f64>) -> (f64, f64) {
    scratch.clear();
    scratch.extend(values.iter().map(|&v| if v.is_nan() { 0.0 } else { v }));
    let count = values.iter().filter(|v| !v.is_nan()).count();
    let mean = pairwise_sum(scratch) / count as f64;
    if count <= 1 {
        return (mean, f64::NAN);
    }
    scratch.clear();
    scratch.extend(values.iter().map(|&v| {
        if v.is_nan() {
            0.0
        } else {
            let d = mean - v;
            d * d
        }
    }));
    let var = pairwise_sum(scratch) / (count - 1) as f64;
    (mean, var.sqrt())
}

/// Mean of the non-NaN values of a row (NaN when there are none), as pandas' row-wise
/// `mean(axis=1)`: numpy reduces across columns one at a time, so this sum is sequential,
/// not pairwise (checked against pandas with 10 columns, where the two differ).
pub(crate) fn nan_row_mean(values: &[f64]) -> f64 {
    let mut sum = 0.0;
    let mut count = 0usize;
    for &v in values {
        sum += if v.is_nan() { 0.0 } else { v };
        count += usize::from(!v.is_nan());
    }
    sum / count as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairwise_sum_uses_numpy_blocking() {
        // Hand-derived: with 9 values numpy adds the 8 accumulators as a tree, then the 9th.
        // 1e16 + 1 + 1 ... sequentially loses every 1; the tree keeps pairs of them.
        let mut a = vec![1.0; 9];
        a[0] = 1e16;
        // Accumulators: r0 = 1e16, r1..r7 = 1 (ulp at 1e16 is 2, ties go to even).
        // Tree: (1e16+1) -> 1e16, + (1+1) -> 1e16+2, + ((1+1)+(1+1)) -> 1e16+6,
        // + the ninth 1 -> tie -> 1e16+8. numpy's `np.ones(9)` with a[0]=1e16 sums to the same.
        assert_eq!(pairwise_sum(&a), 1e16 + 8.0);
        let sequential: f64 = a.iter().sum();
        assert_eq!(sequential, 1e16);
    }

    #[test]
    fn mean_std_follow_pandas_nan_rules() {
        let mut s = Vec::new();
        let (m, sd) = nan_mean_std(&[1.0, f64::NAN, 3.0], &mut s);
        assert_eq!((m, sd), (2.0, 2f64.sqrt()));
        let (m, sd) = nan_mean_std(&[f64::NAN, 4.0], &mut s);
        assert_eq!(m, 4.0);
        assert!(sd.is_nan());
        let (m, sd) = nan_mean_std(&[f64::NAN], &mut s);
        assert!(m.is_nan() && sd.is_nan());
        assert!(nan_row_mean(&[]).is_nan());
        assert_eq!(nan_row_mean(&[f64::NAN, 1.0, 2.0]), 1.5);
    }
}
