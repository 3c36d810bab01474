//! The pandas and numpy pieces DoubleEnsemble leans on, with their exact semantics: percentile
//! ranks (`Series.rank(pct=True)`), equal-width binning (`pd.cut(x, bins)`), and a seeded
//! generator for the shuffles (`np.random.permutation`, `np.random.choice`).

/// `Series.rank(pct=True)`: average ranks of ties divided by the count of non-NaN values;
/// NaN stays NaN.
pub fn rank_pct(x: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..x.len()).filter(|&i| !x[i].is_nan()).collect();
    idx.sort_by(|&i, &j| x[i].total_cmp(&x[j]));
    let n = idx.len() as f64;
    let mut out = vec![f64::NAN; x.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i + 1;
        while j < idx.len() && x[idx[j]] == x[idx[i]] {
            j += 1;
        }
        let r = (i + j + 1) as f64 / 2.0 / n;
        for &k in &idx[i..j] {
            out[k] = r;
        }
        i = j;
    }
    out
}

/// `np.linspace(start, stop, num)` (endpoint included), computed as numpy does.
fn linspace(start: f64, stop: f64, num: usize) -> Vec<f64> {
    let div = (num - 1) as f64;
    let delta = stop - start;
    let step = delta / div;
    let mut y: Vec<f64> = (0..num)
        .map(|i| {
            if step == 0.0 {
                i as f64 / div * delta + start
            } else {
                i as f64 * step + start
            }
        })
        .collect();
    if num > 1 {
        y[num - 1] = stop;
    }
    y
}

/// `pd.cut(x, nbins)` (right-closed): per value its bin (0 = lowest), `None` for NaN. The
/// edges are `nbins + 1` equal steps from the minimum to the maximum, the first moved down by
/// 0.1% of the range so the minimum falls in the first bin (a constant input is widened by
/// 0.1% on both sides instead).
pub fn cut(x: &[f64], nbins: usize) -> Vec<Option<usize>> {
    let present = x.iter().copied().filter(|v| !v.is_nan());
    let mn = present.clone().fold(f64::INFINITY, f64::min);
    let mx = present.fold(f64::NEG_INFINITY, f64::max);
    if !mn.is_finite() || !mx.is_finite() || nbins == 0 {
        return vec![None; x.len()];
    }
    let edges = if mn == mx {
        let widen = |v: f64| if v != 0.0 { 0.001 * v.abs() } else { 0.001 };
        linspace(mn - widen(mn), mx + widen(mx), nbins + 1)
    } else {
        let mut e = linspace(mn, mx, nbins + 1);
        e[0] -= (mx - mn) * 0.001;
        e
    };
    x.iter()
        .map(|&v| {
            if v.is_nan() {
                return None;
            }
            // searchsorted(side="left"): the first edge >= v; the bin is (edge[i-1], edge[i]].
            let i = edges.partition_point(|&e| e < v);
            (i > 0 && i < edges.len()).then(|| i - 1)
        })
        .collect()
}

/// SplitMix64: small, seeded, and the same on every platform. DoubleEnsemble's shuffles use
/// it where Qlib uses numpy's global generator, so the two draw different (equally random)
/// permutations.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0), without modulo bias.
    fn below(&mut self, n: usize) -> usize {
        let n = n as u64;
        let zone = u64::MAX - u64::MAX % n;
        loop {
            let v = self.next_u64();
            if v < zone {
                return (v % n) as usize;
            }
        }
    }

    /// A uniformly random permutation of `0..n` (Fisher-Yates).
    pub fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut p: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            p.swap(i, self.below(i + 1));
        }
        p
    }

    /// `k` distinct items of `items`, uniformly at random (`np.random.choice(..., replace=False)`).
    pub fn choose<T: Copy>(&mut self, items: &[T], k: usize) -> Vec<T> {
        let mut v = items.to_vec();
        let k = k.min(v.len());
        for i in 0..k {
            let j = i + self.below(v.len() - i);
            v.swap(i, j);
        }
        v.truncate(k);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_match_pandas() {
        // pd.Series([3, 1, nan, 3, 2]).rank(pct=True) -> [0.875, 0.25, nan, 0.875, 0.5]
        let r = rank_pct(&[3.0, 1.0, f64::NAN, 3.0, 2.0]);
        assert_eq!(r[0], 0.875);
        assert_eq!(r[1], 0.25);
        assert!(r[2].is_nan());
        assert_eq!(r[3], 0.875);
        assert_eq!(r[4], 0.5);
    }

    #[test]
    fn cut_matches_pandas() {
        // pd.cut([0, 1, 2, 3, 4, 10], 5).codes -> [0, 0, 0, 1, 1, 4]
        let x = [0.0, 1.0, 2.0, 3.0, 4.0, 10.0];
        let got: Vec<usize> = cut(&x, 5).into_iter().map(Option::unwrap).collect();
        assert_eq!(got, [0, 0, 0, 1, 1, 4]);
        // An edge value belongs to the bin it closes: pd.cut([0, 2, 4], 2).codes -> [0, 0, 1].
        let got: Vec<usize> = cut(&[0.0, 2.0, 4.0], 2)
            .into_iter()
            .map(Option::unwrap)
            .collect();
        assert_eq!(got, [0, 0, 1]);
        // Constant input, widened by 0.1% each side: pd.cut([5, 5], 4).codes -> [1, 1] and
        // pd.cut([0, 0], 3).codes -> [1, 1].
        let got: Vec<usize> = cut(&[5.0, 5.0], 4)
            .into_iter()
            .map(Option::unwrap)
            .collect();
        assert_eq!(got, [1, 1]);
        let got: Vec<usize> = cut(&[0.0, 0.0], 3)
            .into_iter()
            .map(Option::unwrap)
            .collect();
        assert_eq!(got, [1, 1]);
        // pd.cut([0.1, 0.7, 0.3, 0.9, 0.55, 0.2, 0.2], 10).codes
        let x = [0.1, 0.7, 0.3, 0.9, 0.55, 0.2, 0.2];
        let got: Vec<usize> = cut(&x, 10).into_iter().map(Option::unwrap).collect();
        assert_eq!(got, [0, 7, 2, 9, 5, 1, 1]);
        assert_eq!(cut(&[f64::NAN, 1.0, 2.0], 3)[0], None);
    }

    #[test]
    fn shuffles_are_permutations_and_seeded() {
        let mut a = Rng::new(3);
        let p = a.permutation(100);
        let mut sorted = p.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..100).collect::<Vec<_>>());
        assert_ne!(p, (0..100).collect::<Vec<_>>());
        assert_eq!(Rng::new(3).permutation(100), p);
        let c = Rng::new(5).choose(&[10, 20, 30, 40, 50], 3);
        assert_eq!(c.len(), 3);
        let mut d = c.clone();
        d.sort_unstable();
        d.dedup();
        assert_eq!(d.len(), 3);
    }
}
