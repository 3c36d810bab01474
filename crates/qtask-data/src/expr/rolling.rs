//! Rolling-window kernels with Qlib's semantics: pandas `rolling(N, min_periods=1)` for most
//! operators (missing values skipped, a window with no value gives NaN, infinities treated as
//! missing), and Qlib's own Cython kernels for Slope/Rsquare/Resi (which keep infinities).
//!
//! The pandas kernels follow pandas' online algorithms (Kahan sums, Welford variance, the
//! "same value repeated" shortcut) so that results agree with Qlib to the last bits, not only
//! within a tolerance.

/// pandas converts inf to NaN before every rolling aggregation.
pub fn prep(x: &[f64]) -> Vec<f64> {
    x.iter()
        .map(|&v| if v.is_infinite() { f64::NAN } else { v })
        .collect()
}

/// Effective window: 0 means expanding (the whole history).
fn win(n: usize, len: usize) -> usize {
    if n == 0 { len.max(1) } else { n }
}

#[derive(Default)]
struct KahanSum {
    nobs: i64,
    neg_ct: i64,
    sum: f64,
    comp_add: f64,
    comp_rem: f64,
    same: i64,
    prev: f64,
}

impl KahanSum {
    fn reset(&mut self, first: f64) {
        *self = KahanSum {
            prev: first,
            ..Default::default()
        };
    }
    fn add(&mut self, v: f64) {
        if v.is_nan() {
            return;
        }
        self.nobs += 1;
        let y = v - self.comp_add;
        let t = self.sum + y;
        self.comp_add = t - self.sum - y;
        self.sum = t;
        if v.is_sign_negative() {
            self.neg_ct += 1;
        }
        if v == self.prev {
            self.same += 1;
        } else {
            self.same = 1;
            self.prev = v;
        }
    }
    fn remove(&mut self, v: f64) {
        if v.is_nan() {
            return;
        }
        self.nobs -= 1;
        let y = -v - self.comp_rem;
        let t = self.sum + y;
        self.comp_rem = t - self.sum - y;
        self.sum = t;
        if v.is_sign_negative() {
            self.neg_ct -= 1;
        }
    }
}

/// Drives an add/remove accumulator over fixed windows the way pandas does: the first window
/// (and any window not overlapping the previous one) is rebuilt from scratch.
fn drive<S>(
    x: &[f64],
    n: usize,
    state: &mut S,
    reset: impl Fn(&mut S, f64),
    add: impl Fn(&mut S, f64),
    remove: impl Fn(&mut S, f64),
    mut out: impl FnMut(usize, &S),
) {
    let w = win(n, x.len());
    let mut prev_end = 0usize;
    for i in 0..x.len() {
        let s = (i + 1).saturating_sub(w);
        let e = i + 1;
        if i == 0 || s >= prev_end {
            reset(state, x[s]);
            for &v in &x[s..e] {
                add(state, v);
            }
        } else {
            let prev_s = i.saturating_sub(w);
            for &v in &x[prev_s..s] {
                remove(state, v);
            }
            for &v in &x[prev_end..e] {
                add(state, v);
            }
        }
        prev_end = e;
        out(i, state);
    }
}

/// `rolling(n).sum()`.
pub fn sum(x: &[f64], n: usize) -> Vec<f64> {
    let mut res = vec![f64::NAN; x.len()];
    let mut st = KahanSum::default();
    drive(
        x,
        n,
        &mut st,
        KahanSum::reset,
        KahanSum::add,
        KahanSum::remove,
        |i, s| {
            if s.nobs >= 1 {
                res[i] = if s.same >= s.nobs {
                    s.prev * s.nobs as f64
                } else {
                    s.sum
                };
            }
        },
    );
    res
}

/// `rolling(n).mean()`.
pub fn mean(x: &[f64], n: usize) -> Vec<f64> {
    let mut res = vec![f64::NAN; x.len()];
    let mut st = KahanSum::default();
    drive(
        x,
        n,
        &mut st,
        KahanSum::reset,
        KahanSum::add,
        KahanSum::remove,
        |i, s| {
            if s.nobs >= 1 {
                let mut r = s.sum / s.nobs as f64;
                if s.same >= s.nobs {
                    r = s.prev;
                } else if (s.neg_ct == 0 && r < 0.0) || (s.neg_ct == s.nobs && r > 0.0) {
                    // pandas: a mean of all-positive (all-negative) values cannot change sign.
                    r = 0.0;
                }
                res[i] = r;
            }
        },
    );
    res
}

#[derive(Default)]
struct Welford {
    nobs: f64,
    mean: f64,
    ssqdm: f64,
    comp_add: f64,
    comp_rem: f64,
    same: i64,
    prev: f64,
}

impl Welford {
    fn reset(&mut self, first: f64) {
        *self = Welford {
            prev: first,
            ..Default::default()
        };
    }
    fn add(&mut self, v: f64) {
        if v.is_nan() {
            return;
        }
        self.nobs += 1.0;
        if v == self.prev {
            self.same += 1;
        } else {
            self.same = 1;
            self.prev = v;
        }
        let prev_mean = self.mean - self.comp_add;
        let y = v - self.comp_add;
        let t = y - self.mean;
        self.comp_add = t + self.mean - y;
        self.mean = if self.nobs != 0.0 {
            self.mean + t / self.nobs
        } else {
            0.0
        };
        self.ssqdm += (v - prev_mean) * (v - self.mean);
    }
    fn remove(&mut self, v: f64) {
        if v.is_nan() {
            return;
        }
        self.nobs -= 1.0;
        if self.nobs != 0.0 {
            let prev_mean = self.mean - self.comp_rem;
            let y = v - self.comp_rem;
            let t = y - self.mean;
            self.comp_rem = t + self.mean - y;
            self.mean -= t / self.nobs;
            self.ssqdm -= (v - prev_mean) * (v - self.mean);
        } else {
            self.mean = 0.0;
            self.ssqdm = 0.0;
        }
    }
    fn var(&self, ddof: f64) -> f64 {
        if self.nobs >= 1.0 && self.nobs > ddof {
            if self.nobs == 1.0 || self.same as f64 >= self.nobs {
                0.0
            } else {
                (self.ssqdm / (self.nobs - ddof)).max(0.0)
            }
        } else {
            f64::NAN
        }
    }
}

/// `rolling(n).var()` (ddof = 1).
pub fn var(x: &[f64], n: usize) -> Vec<f64> {
    let mut res = vec![f64::NAN; x.len()];
    let mut st = Welford::default();
    drive(
        x,
        n,
        &mut st,
        Welford::reset,
        Welford::add,
        Welford::remove,
        |i, s| res[i] = s.var(1.0),
    );
    res
}

/// `rolling(n).std()` (ddof = 1).
pub fn std(x: &[f64], n: usize) -> Vec<f64> {
    var(x, n)
        .into_iter()
        .map(|v| if v < 0.0 { 0.0 } else { v.sqrt() })
        .collect()
}

/// `rolling(n).count()`: non-missing values in the window.
pub fn count(x: &[f64], n: usize) -> Vec<f64> {
    let w = win(n, x.len());
    let mut c = 0usize;
    (0..x.len())
        .map(|i| {
            if !x[i].is_nan() {
                c += 1;
            }
            if i >= w && !x[i - w].is_nan() {
                c -= 1;
            }
            c as f64
        })
        .collect()
}

/// `rolling(n).max()` / `.min()` with a monotonic deque (O(n)).
pub fn extreme(x: &[f64], n: usize, want_max: bool) -> Vec<f64> {
    let w = win(n, x.len());
    let mut dq: std::collections::VecDeque<usize> = std::collections::VecDeque::new();
    let better = |a: f64, b: f64| if want_max { a >= b } else { a <= b };
    (0..x.len())
        .map(|i| {
            if !x[i].is_nan() {
                while dq.back().is_some_and(|&j| better(x[i], x[j])) {
                    dq.pop_back();
                }
                dq.push_back(i);
            }
            while dq.front().is_some_and(|&j| j + w <= i) {
                dq.pop_front();
            }
            dq.front().map_or(f64::NAN, |&j| x[j])
        })
        .collect()
}

/// Calls `f` with the sorted non-missing values of each window (kept sorted incrementally).
fn sorted_windows(x: &[f64], n: usize, mut f: impl FnMut(usize, &[f64]) -> f64) -> Vec<f64> {
    let w = win(n, x.len());
    let mut sorted: Vec<f64> = Vec::with_capacity(w);
    let mut res = vec![f64::NAN; x.len()];
    for i in 0..x.len() {
        if i >= w {
            let old = x[i - w];
            if !old.is_nan() {
                let p = sorted.partition_point(|&v| v < old);
                sorted.remove(p);
            }
        }
        if !x[i].is_nan() {
            let p = sorted.partition_point(|&v| v < x[i]);
            sorted.insert(p, x[i]);
        }
        if !sorted.is_empty() {
            res[i] = f(i, &sorted);
        }
    }
    res
}

/// `rolling(n).quantile(q)` with linear interpolation.
pub fn quantile(x: &[f64], n: usize, q: f64) -> Vec<f64> {
    sorted_windows(x, n, |_, s| {
        let nobs = s.len();
        if nobs == 1 {
            return s[0];
        }
        let idx_f = q * (nobs - 1) as f64;
        let idx = idx_f as usize;
        if idx_f == idx as f64 {
            s[idx]
        } else {
            let (lo, hi) = (s[idx], s[idx + 1]);
            lo + (hi - lo) * (idx_f - idx as f64)
        }
    })
}

/// `rolling(n).median()`.
pub fn median(x: &[f64], n: usize) -> Vec<f64> {
    sorted_windows(x, n, |_, s| {
        let m = s.len();
        if m % 2 == 1 {
            s[m / 2]
        } else {
            (s[m / 2 - 1] + s[m / 2]) / 2.0
        }
    })
}

/// `rolling(n).rank(pct=True)`: average rank of today's value among the window's values,
/// divided by their count; NaN when today's value is missing.
pub fn rank(x: &[f64], n: usize) -> Vec<f64> {
    sorted_windows(x, n, |i, s| {
        let v = x[i];
        if v.is_nan() {
            return f64::NAN;
        }
        let lo = s.partition_point(|&u| u < v);
        let hi = s.partition_point(|&u| u <= v);
        // Average of the 1-based ranks lo+1 ..= hi.
        let avg = (lo + 1 + hi) as f64 / 2.0;
        avg / s.len() as f64
    })
}

/// `rolling(n, min_periods=1).apply(f, raw=True)`: `f` sees the whole window (NaN included)
/// and is only called when the window holds at least one value.
pub fn apply(x: &[f64], n: usize, f: impl Fn(&[f64]) -> f64) -> Vec<f64> {
    let w = win(n, x.len());
    let mut nobs = 0usize;
    (0..x.len())
        .map(|i| {
            if !x[i].is_nan() {
                nobs += 1;
            }
            if i >= w && !x[i - w].is_nan() {
                nobs -= 1;
            }
            if nobs == 0 {
                f64::NAN
            } else {
                f(&x[(i + 1).saturating_sub(w)..=i])
            }
        })
        .collect()
}

/// numpy's argmax/argmin: the first NaN wins, else the first extreme value.
pub fn arg_extreme(w: &[f64], want_max: bool) -> usize {
    if let Some(p) = w.iter().position(|v| v.is_nan()) {
        return p;
    }
    let mut best = 0;
    for (i, &v) in w.iter().enumerate() {
        if (want_max && v > w[best]) || (!want_max && v < w[best]) {
            best = i;
        }
    }
    best
}

/// Qlib's `Mad`: mean absolute deviation of the window's values.
pub fn mad_of(w: &[f64]) -> f64 {
    let vals: Vec<f64> = w.iter().copied().filter(|v| !v.is_nan()).collect();
    let m = vals.iter().sum::<f64>() / vals.len() as f64;
    vals.iter().map(|v| (v - m).abs()).sum::<f64>() / vals.len() as f64
}

/// Qlib's `WMA`: `nanmean(w * x)` with weights 1..len normalised to sum 1.
pub fn wma_of(w: &[f64]) -> f64 {
    let len = w.len() as f64;
    let total = len * (len + 1.0) / 2.0;
    let (mut s, mut c) = (0.0, 0usize);
    for (i, &v) in w.iter().enumerate() {
        if !v.is_nan() {
            s += (i as f64 + 1.0) / total * v;
            c += 1;
        }
    }
    s / c as f64
}

/// Qlib's expanding `EMA(x, 0)`: weights `a^k`, `a = 1 - 2/(1+len)`, NaN-skipping sum.
pub fn ema_expanding_of(w: &[f64]) -> f64 {
    let len = w.len();
    let a = 1.0 - 2.0 / (1.0 + len as f64);
    let weights: Vec<f64> = (0..len).map(|k| a.powi((len - 1 - k) as i32)).collect();
    let tot: f64 = weights.iter().sum();
    w.iter()
        .zip(&weights)
        .filter(|(v, _)| !v.is_nan())
        .map(|(v, k)| v * k / tot)
        .sum()
}

/// pandas `ewm(alpha=alpha, adjust=True, min_periods=1).mean()`.
pub fn ewm_mean(x: &[f64], alpha: f64) -> Vec<f64> {
    let mut out = vec![f64::NAN; x.len()];
    if x.is_empty() {
        return out;
    }
    let old_wt_factor = 1.0 - alpha;
    let new_wt = 1.0;
    let mut weighted = x[0];
    let mut nobs = usize::from(!weighted.is_nan());
    let mut old_wt = 1.0;
    out[0] = if nobs >= 1 { weighted } else { f64::NAN };
    for i in 1..x.len() {
        let cur = x[i];
        let is_obs = !cur.is_nan();
        nobs += usize::from(is_obs);
        if !weighted.is_nan() {
            old_wt *= old_wt_factor;
            if is_obs {
                if weighted != cur {
                    weighted = (old_wt * weighted + new_wt * cur) / (old_wt + new_wt);
                }
                old_wt += new_wt;
            }
        } else if is_obs {
            weighted = cur;
        }
        out[i] = if nobs >= 1 { weighted } else { f64::NAN };
    }
    out
}

/// pandas rolling skewness (NaN below 3 values; 0 for a constant window).
pub fn skew(x: &[f64], n: usize) -> Vec<f64> {
    moments(x, n, |v| {
        let m = v.len() as f64;
        if v.len() < 3 {
            return f64::NAN;
        }
        if v.iter().all(|&u| u == v[0]) {
            return 0.0;
        }
        let a = v.iter().sum::<f64>() / m;
        let b = v.iter().map(|u| (u - a).powi(2)).sum::<f64>() / m;
        let c = v.iter().map(|u| (u - a).powi(3)).sum::<f64>() / m;
        if b <= 1e-14 {
            return f64::NAN;
        }
        (m * (m - 1.0)).sqrt() * c / ((m - 2.0) * b.powf(1.5))
    })
}

/// pandas rolling excess kurtosis (NaN below 4 values; -3 for a constant window).
pub fn kurt(x: &[f64], n: usize) -> Vec<f64> {
    moments(x, n, |v| {
        let m = v.len() as f64;
        if v.len() < 4 {
            return f64::NAN;
        }
        if v.iter().all(|&u| u == v[0]) {
            return -3.0;
        }
        let a = v.iter().sum::<f64>() / m;
        let b = v.iter().map(|u| (u - a).powi(2)).sum::<f64>() / m;
        let d = v.iter().map(|u| (u - a).powi(4)).sum::<f64>() / m;
        if b <= 1e-14 {
            return f64::NAN;
        }
        let k = (m * m - 1.0) * d / (b * b) - 3.0 * (m - 1.0).powi(2);
        k / ((m - 2.0) * (m - 3.0))
    })
}

fn moments(x: &[f64], n: usize, f: impl Fn(&[f64]) -> f64) -> Vec<f64> {
    apply(x, n, |w| {
        let v: Vec<f64> = w.iter().copied().filter(|u| !u.is_nan()).collect();
        f(&v)
    })
}

/// Which statistic of Qlib's rolling regression against time to return.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Regression {
    /// The slope.
    Slope,
    /// R².
    Rsquare,
    /// Today's residual.
    Resi,
}

/// Qlib's Cython rolling regression (`qlib/data/_libs/rolling.pyx`), reproduced step for
/// step: the window starts full of NaN, time runs 1..=N with today at N, missing values are
/// skipped, and the running sums are updated incrementally as Qlib does.
pub fn regression(x: &[f64], n: usize, what: Regression) -> Vec<f64> {
    let w = win(n, x.len());
    let wf = w as f64;
    let mut bar: std::collections::VecDeque<f64> = std::iter::repeat_n(f64::NAN, w).collect();
    let mut na_count = w as i64;
    let (mut i_sum, mut x_sum, mut x2_sum, mut y_sum, mut y2_sum, mut xy_sum) =
        (0.0f64, 0.0f64, 0.0f64, 0.0f64, 0.0f64, 0.0f64);
    x.iter()
        .map(|&val| {
            bar.push_back(val);
            xy_sum -= y_sum;
            x2_sum = x2_sum + i_sum - 2.0 * x_sum;
            x_sum -= i_sum;
            let front = bar.pop_front().unwrap_or(f64::NAN);
            if !front.is_nan() {
                i_sum -= 1.0;
                y_sum -= front;
                y2_sum -= front * front;
            } else {
                na_count -= 1;
            }
            if val.is_nan() {
                na_count += 1;
            } else {
                i_sum += 1.0;
                x_sum += wf;
                x2_sum += wf * wf;
                y_sum += val;
                y2_sum += val * val;
                xy_sum += wf * val;
            }
            let nn = (w as i64 - na_count) as f64;
            match what {
                Regression::Slope => (nn * xy_sum - x_sum * y_sum) / (nn * x2_sum - x_sum * x_sum),
                Regression::Resi => {
                    let slope = (nn * xy_sum - x_sum * y_sum) / (nn * x2_sum - x_sum * x_sum);
                    let interp = y_sum / nn - slope * (x_sum / nn);
                    val - (slope * wf + interp)
                }
                Regression::Rsquare => {
                    let r = (nn * xy_sum - x_sum * y_sum)
                        / ((nn * x2_sum - x_sum * x_sum) * (nn * y2_sum - y_sum * y_sum)).sqrt();
                    r * r
                }
            }
        })
        .collect()
}

/// pandas `a.rolling(n).corr(b)` / `.cov(b)` on pairwise-complete observations.
pub fn corr_cov(a: &[f64], b: &[f64], n: usize, want_corr: bool) -> Vec<f64> {
    // pandas masks each side where the other is missing (`a + 0 * b`), then drops infinities.
    let xa: Vec<f64> = a.iter().zip(b).map(|(&p, &q)| p + 0.0 * q).collect();
    let ya: Vec<f64> = a.iter().zip(b).map(|(&p, &q)| q + 0.0 * p).collect();
    let (xa, ya) = (prep(&xa), prep(&ya));
    let xy: Vec<f64> = xa.iter().zip(&ya).map(|(p, q)| p * q).collect();
    let mean_xy = mean(&xy, n);
    let mean_x = mean(&xa, n);
    let mean_y = mean(&ya, n);
    let cnt = count(&xy, n);
    let (var_x, var_y) = if want_corr {
        (var(&xa, n), var(&ya, n))
    } else {
        (Vec::new(), Vec::new())
    };
    (0..a.len())
        .map(|i| {
            let num = (mean_xy[i] - mean_x[i] * mean_y[i]) * (cnt[i] / (cnt[i] - 1.0));
            if want_corr {
                num / (var_x[i] * var_y[i]).sqrt()
            } else {
                num
            }
        })
        .collect()
}
