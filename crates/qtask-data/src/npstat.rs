//! numpy's float32 column statistics, as Qlib's fitted processors compute them
//! (`np.nanmean`, `np.nanstd`, `np.nanmedian` over a float32 frame's columns).
//!
//! numpy sums a float32 column in float32 with its pairwise summation (blocks of 128 values,
//! eight accumulators), after replacing NaN by 0; the rounding of those sums shows wherever a
//! statistic is subtracted from values close to it, so qtask sums the same way.

/// numpy's `pairwise_sum` for float32 (`numpy/_core/src/umath/loops_utils.h.src`).
pub fn pairwise_sum(a: &[f32]) -> f32 {
    let n = a.len();
    if n < 8 {
        a.iter().fold(0.0f32, |r, &x| r + x)
    } else if n <= 128 {
        let mut r = [0f32; 8];
        r.copy_from_slice(&a[..8]);
        let whole = n - n % 8;
        for chunk in a[8..whole].chunks_exact(8) {
            for (acc, &x) in r.iter_mut().zip(chunk) {
                *acc += x;
            }
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for &x in &a[whole..] {
            res += x;
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        pairwise_sum(&a[..n2]) + pairwise_sum(&a[n2..])
    }
}

/// `np.nanmean` of a float32 column (NaN when every value is NaN).
pub fn nanmean(x: &[f32]) -> f32 {
    let count = x.iter().filter(|v| !v.is_nan()).count();
    let zeroed: Vec<f32> = x
        .iter()
        .map(|&v| if v.is_nan() { 0.0 } else { v })
        .collect();
    pairwise_sum(&zeroed) / count as f32
}

/// `np.nanstd` (population, ddof 0) of a float32 column.
pub fn nanstd(x: &[f32]) -> f32 {
    let count = x.iter().filter(|v| !v.is_nan()).count();
    let mean = nanmean(x);
    let squares: Vec<f32> = x
        .iter()
        .map(|&v| {
            if v.is_nan() {
                0.0
            } else {
                let d = v - mean;
                d * d
            }
        })
        .collect();
    (pairwise_sum(&squares) / count as f32).sqrt()
}

/// `np.nanmedian` of a float32 column: the middle value, or the float32 mean of the two.
pub fn nanmedian(x: &[f32]) -> f32 {
    let mut v: Vec<f32> = x.iter().copied().filter(|v| !v.is_nan()).collect();
    if v.is_empty() {
        return f32::NAN;
    }
    v.sort_by(f32::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairwise_blocks_round_like_numpy() {
        // 1e8 and fifteen 1s: a sequential float32 sum loses every 1, numpy's eight
        // accumulators keep some (numpy 2.4: np.sum gives 100000008).
        let mut a = vec![1.0f32; 16];
        a[0] = 1e8;
        assert_eq!(pairwise_sum(&a), 100000008.0);
        assert_eq!(a.iter().fold(0.0f32, |r, &x| r + x), 1e8);
        assert_eq!(nanmean(&[1.0, f32::NAN, 2.0]), 1.5);
        assert_eq!(nanstd(&[1.0, f32::NAN, 3.0]), 1.0);
        assert_eq!(nanmedian(&[4.0, 1.0, f32::NAN, 2.0, 3.0]), 2.5);
        assert!(nanmean(&[f32::NAN]).is_nan());
    }
}
