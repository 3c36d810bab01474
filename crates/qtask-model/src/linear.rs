//! Qlib's `LinearModel` (`qlib/contrib/model/linear.py`): OLS, ridge, lasso and NNLS with the
//! numerics of the scikit-learn / SciPy estimators Qlib calls.
//!
//! Every estimator works from the f64 Gram matrix of the (centred, when `fit_intercept`) design
//! augmented with the label, accumulated in one blocked pass over the f32 rows. That keeps
//! 200,000 x 158 fits well under a second and needs no row-major f64 copy of the data:
//! - OLS: Cholesky of `XᵀX`; when it is (numerically) singular, the minimum-norm solution via a
//!   Jacobi eigen-decomposition — the same answer as the SVD `lstsq` sklearn uses.
//! - Ridge: Cholesky of `XᵀX + αI`, as sklearn's `cholesky` solver.
//! - Lasso: sklearn's cyclic coordinate descent (with its gap-safe screening and duality-gap
//!   stopping rule) expressed through `XᵀX`/`Xᵀy`; the iterates are the same as on `X`.
//! - NNLS: Lawson–Hanson active set on `AᵀA`/`Aᵀb`, as SciPy's `_nnls` (1.12–1.14).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Which estimator (Qlib's `estimator` kwarg).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Estimator {
    /// Ordinary least squares (`sklearn.linear_model.LinearRegression`).
    Ols,
    /// L2-penalised least squares (`sklearn.linear_model.Ridge`).
    Ridge,
    /// L1-penalised least squares (`sklearn.linear_model.Lasso`).
    Lasso,
    /// Non-negative least squares (`scipy.optimize.nnls`).
    Nnls,
}

impl Estimator {
    /// Qlib's name of the estimator.
    pub fn name(self) -> &'static str {
        match self {
            Estimator::Ols => "ols",
            Estimator::Ridge => "ridge",
            Estimator::Lasso => "lasso",
            Estimator::Nnls => "nnls",
        }
    }
}

impl fmt::Display for Estimator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Estimator {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "ols" => Ok(Estimator::Ols),
            "ridge" => Ok(Estimator::Ridge),
            "lasso" => Ok(Estimator::Lasso),
            "nnls" => Ok(Estimator::Nnls),
            _ => Err(format!(
                "unsupported estimator `{s}` (expected one of: ols, nnls, ridge, lasso)"
            )),
        }
    }
}

/// The configuration (Qlib kwargs).
#[derive(Debug, Clone, PartialEq)]
pub struct LinearConfig {
    /// The estimator to fit.
    pub estimator: Estimator,
    /// Regularisation strength; must be 0 unless the estimator is ridge or lasso.
    pub alpha: f64,
    /// Whether to fit an intercept (for NNLS it is constrained to be >= 0, as in Qlib).
    pub fit_intercept: bool,
    /// Whether Qlib trains on the valid segment too (used by the caller, not by [`fit`]).
    pub include_valid: bool,
}

impl Default for LinearConfig {
    fn default() -> Self {
        LinearConfig {
            estimator: Estimator::Ols,
            alpha: 0.0,
            fit_intercept: false,
            include_valid: false,
        }
    }
}

impl LinearConfig {
    /// Parses Qlib's `LinearModel` kwargs, applying its defaults and assertions.
    pub fn from_kwargs(
        kwargs: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Self, String> {
        const KNOWN: [&str; 4] = ["estimator", "alpha", "fit_intercept", "include_valid"];
        let unknown: Vec<&str> = kwargs
            .keys()
            .map(String::as_str)
            .filter(|k| !KNOWN.contains(k))
            .collect();
        if !unknown.is_empty() {
            return Err(format!(
                "LinearModel got unexpected keyword argument(s): {} (accepted: {})",
                unknown.join(", "),
                KNOWN.join(", ")
            ));
        }
        let mut cfg = LinearConfig::default();
        if let Some(v) = kwargs.get("estimator") {
            let s = v
                .as_str()
                .ok_or_else(|| format!("LinearModel `estimator` must be a string, got {v}"))?;
            cfg.estimator = s.parse()?;
        }
        if let Some(v) = kwargs.get("alpha") {
            cfg.alpha = v
                .as_f64()
                .ok_or_else(|| format!("LinearModel `alpha` must be a number, got {v}"))?;
        }
        for (key, slot) in [
            ("fit_intercept", &mut cfg.fit_intercept),
            ("include_valid", &mut cfg.include_valid),
        ] {
            if let Some(v) = kwargs.get(key) {
                *slot = v
                    .as_bool()
                    .ok_or_else(|| format!("LinearModel `{key}` must be a boolean, got {v}"))?;
            }
        }
        cfg.validate()?;
        Ok(cfg)
    }

    /// Qlib's assertion on `alpha`, plus sklearn's parameter check (`alpha >= 0`).
    fn validate(&self) -> Result<(), String> {
        if self.alpha != 0.0 && !matches!(self.estimator, Estimator::Ridge | Estimator::Lasso) {
            return Err("alpha is only supported in `ridge`&`lasso`".to_string());
        }
        if !(self.alpha >= 0.0 && self.alpha.is_finite()) {
            return Err(format!(
                "LinearModel `alpha` must be a finite float >= 0, got {}",
                self.alpha
            ));
        }
        Ok(())
    }
}

/// A fitted linear model (serde: saved as model.json).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinearFit {
    /// Qlib's estimator name (`ols`, `ridge`, `lasso`, `nnls`).
    pub estimator: String,
    /// One coefficient per feature.
    pub coef: Vec<f64>,
    /// The intercept (0 unless `fit_intercept`).
    pub intercept: f64,
    /// The feature names the model was fitted on, in column order.
    pub feature_names: Vec<String>,
}

impl LinearFit {
    /// `x @ coef + intercept` for row-major `x`; a row holding NaN predicts NaN.
    ///
    /// # Panics
    /// If `x.len()` is not a multiple of the number of features (a caller bug).
    pub fn predict(&self, x: &[f32]) -> Vec<f64> {
        let p = self.coef.len();
        assert!(
            p > 0 && x.len() % p == 0,
            "predict: {} values is not a whole number of rows of {p} features",
            x.len()
        );
        // NaN propagates through the products on its own (NaN * 0 is NaN), as in numpy.
        x.chunks_exact(p)
            .map(|row| {
                let dot: f64 = row
                    .iter()
                    .zip(&self.coef)
                    .map(|(&v, &c)| f64::from(v) * c)
                    .sum();
                dot + self.intercept
            })
            .collect()
    }
}

/// sklearn's `Lasso` defaults, which Qlib does not override.
const LASSO_MAX_ITER: usize = 1000;
const LASSO_TOL: f64 = 1e-4;

/// Fits on row-major `x` (rows x n_features) and `y`; rows with any NaN in x or y are dropped first.
pub fn fit(
    cfg: &LinearConfig,
    x: &[f32],
    n_features: usize,
    y: &[f32],
    feature_names: &[String],
) -> Result<LinearFit, String> {
    cfg.validate()?;
    let p = n_features;
    if p == 0 {
        return Err("LinearModel needs at least one feature, got 0".to_string());
    }
    if x.len() != y.len() * p {
        return Err(format!(
            "feature matrix has {} values, expected {} rows x {p} features",
            x.len(),
            y.len()
        ));
    }
    if feature_names.len() != p {
        return Err(format!(
            "{} feature names for {p} features",
            feature_names.len()
        ));
    }
    let rows = kept_rows(x, p, y)?;
    if rows.is_empty() {
        return Err("Empty data from dataset, please check your dataset config.".to_string());
    }
    let n = rows.len();

    let (coef, intercept) = match cfg.estimator {
        Estimator::Nnls => {
            // Qlib appends a column of ones, so the intercept is a constrained coefficient too.
            let g = Gram::build(x, p, y, &rows, None, cfg.fit_intercept);
            let mut sol = nnls(&g.xtx, &g.xty, g.p, n)?;
            let intercept = if cfg.fit_intercept {
                sol.pop().unwrap_or(0.0)
            } else {
                0.0
            };
            (sol, intercept)
        }
        est => {
            let centre = cfg.fit_intercept.then(|| column_means(x, p, y, &rows));
            let g = Gram::build(x, p, y, &rows, centre.as_ref(), false);
            let coef = match est {
                Estimator::Ols => solve_spd_or_min_norm(&g.xtx, &g.xty, p, n),
                Estimator::Ridge => {
                    let mut a = g.xtx.clone();
                    for i in 0..p {
                        a[i * p + i] += cfg.alpha;
                    }
                    solve_spd_or_min_norm(&a, &g.xty, p, n)
                }
                Estimator::Lasso => lasso_cd(
                    &g.xtx,
                    &g.xty,
                    g.yty,
                    p,
                    cfg.alpha * n as f64,
                    LASSO_MAX_ITER,
                    LASSO_TOL,
                ),
                Estimator::Nnls => unreachable!("handled above"),
            };
            let intercept = match &centre {
                Some(c) => c.y - c.x.iter().zip(&coef).map(|(m, w)| m * w).sum::<f64>(),
                None => 0.0,
            };
            (coef, intercept)
        }
    };
    if !(coef.iter().all(|c| c.is_finite()) && intercept.is_finite()) {
        return Err(format!(
            "{} fit resulted in non-finite parameter values; the input data may contain \
             large values and need to be preprocessed",
            cfg.estimator
        ));
    }
    Ok(LinearFit {
        estimator: cfg.estimator.name().to_string(),
        coef,
        intercept,
        feature_names: feature_names.to_vec(),
    })
}

/// Indices of rows without NaN (pandas `dropna`); infinities are kept by `dropna` and then
/// rejected by sklearn's/SciPy's input checks, so they are an error here.
fn kept_rows(x: &[f32], p: usize, y: &[f32]) -> Result<Vec<usize>, String> {
    let mut rows = Vec::with_capacity(y.len());
    for (r, (row, &label)) in x.chunks_exact(p).zip(y).enumerate() {
        if label.is_nan() || row.iter().any(|v| v.is_nan()) {
            continue;
        }
        if label.is_infinite() || row.iter().any(|v| v.is_infinite()) {
            return Err(format!(
                "Input contains infinity (row {r}); linear models need finite features and labels"
            ));
        }
        rows.push(r);
    }
    Ok(rows)
}

/// Column means of the kept rows, subtracted before forming the Gram matrix.
struct Centre {
    x: Vec<f64>,
    y: f64,
}

fn column_means(x: &[f32], p: usize, y: &[f32], rows: &[usize]) -> Centre {
    let mut sum = vec![0.0f64; p];
    let mut lo = vec![f32::INFINITY; p];
    let mut hi = vec![f32::NEG_INFINITY; p];
    let mut ysum = 0.0;
    for &r in rows {
        let row = &x[r * p..(r + 1) * p];
        for j in 0..p {
            sum[j] += f64::from(row[j]);
            lo[j] = lo[j].min(row[j]);
            hi[j] = hi[j].max(row[j]);
        }
        ysum += f64::from(y[r]);
    }
    let n = rows.len() as f64;
    // A constant column must centre to exact zeros (sum/n can miss the constant by an ulp), so
    // that solvers see it as the all-zero column it is and give it a zero coefficient.
    let xm = (0..p)
        .map(|j| {
            if lo[j] == hi[j] {
                f64::from(lo[j])
            } else {
                sum[j] / n
            }
        })
        .collect();
    Centre { x: xm, y: ysum / n }
}

/// `AᵀA`, `Aᵀy` and `yᵀy` of the design `A` (features, centred or not, plus an optional column
/// of ones).
struct Gram {
    p: usize,
    xtx: Vec<f64>,
    xty: Vec<f64>,
    yty: f64,
}

/// Rows per deterministic partial sum; partials are added in block order so the result does not
/// depend on the number of threads.
const MIN_BLOCK_ROWS: usize = 8192;
const MAX_BLOCKS: usize = 64;
/// Rows converted to f64 at a time (the buffer stays in L2).
const CHUNK_ROWS: usize = 128;
const TILE_I: usize = 4;
const TILE_J: usize = 8;

impl Gram {
    fn build(
        x: &[f32],
        p: usize,
        y: &[f32],
        rows: &[usize],
        centre: Option<&Centre>,
        ones: bool,
    ) -> Gram {
        // Augmented columns: features, [ones], label — one symmetric product gives everything.
        let pa = p + usize::from(ones);
        let m = pa + 1;
        let mp = m.div_ceil(TILE_J) * TILE_J;
        let block = MIN_BLOCK_ROWS.max(rows.len().div_ceil(MAX_BLOCKS));
        let blocks: Vec<&[usize]> = rows.chunks(block).collect();
        let threads = std::thread::available_parallelism()
            .map_or(1, |t| t.get())
            .min(blocks.len())
            .max(1);
        let spec = GramSpec {
            x,
            p,
            y,
            centre,
            ones,
            mp,
        };
        let mut partials: Vec<Vec<f64>> = vec![Vec::new(); blocks.len()];
        if threads == 1 {
            for (b, rs) in blocks.iter().enumerate() {
                partials[b] = spec.block(rs);
            }
        } else {
            std::thread::scope(|s| {
                let handles: Vec<_> = (0..threads)
                    .map(|t| {
                        let blocks = &blocks;
                        let spec = &spec;
                        s.spawn(move || {
                            (t..blocks.len())
                                .step_by(threads)
                                .map(|b| (b, spec.block(blocks[b])))
                                .collect::<Vec<_>>()
                        })
                    })
                    .collect();
                for h in handles {
                    for (b, g) in h.join().expect("Gram worker panicked") {
                        partials[b] = g;
                    }
                }
            });
        }
        let mut full = vec![0.0f64; mp * mp];
        for part in &partials {
            for (f, v) in full.iter_mut().zip(part) {
                *f += v;
            }
        }
        // Tiles fill the upper triangle (and a little more); mirror it.
        let mut xtx = vec![0.0; pa * pa];
        for i in 0..pa {
            for j in i..pa {
                let v = full[i * mp + j];
                xtx[i * pa + j] = v;
                xtx[j * pa + i] = v;
            }
        }
        let xty = (0..pa).map(|i| full[i * mp + pa]).collect();
        Gram {
            p: pa,
            xtx,
            xty,
            yty: full[pa * mp + pa],
        }
    }
}

struct GramSpec<'a> {
    x: &'a [f32],
    p: usize,
    y: &'a [f32],
    centre: Option<&'a Centre>,
    ones: bool,
    mp: usize,
}

impl GramSpec<'_> {
    /// The (upper-triangle tiles of the) augmented Gram matrix of one block of rows.
    fn block(&self, rows: &[usize]) -> Vec<f64> {
        let (p, mp) = (self.p, self.mp);
        let m = p + usize::from(self.ones) + 1;
        let mut out = vec![0.0f64; mp * mp];
        // Panel layout: columns in groups of TILE_J, each group stored row after row, so a tile
        // streams two small contiguous panels that stay in L1.
        let panel = CHUNK_ROWS * TILE_J;
        let mut buf = vec![0.0f64; mp / TILE_J * panel];
        let mut row = vec![0.0f64; mp];
        let fma = has_fma();
        for chunk in rows.chunks(CHUNK_ROWS) {
            let k = chunk.len();
            for (t, &r) in chunk.iter().enumerate() {
                let src = &self.x[r * p..(r + 1) * p];
                match self.centre {
                    Some(c) => {
                        for j in 0..p {
                            row[j] = f64::from(src[j]) - c.x[j];
                        }
                        row[m - 1] = f64::from(self.y[r]) - c.y;
                    }
                    None => {
                        for j in 0..p {
                            row[j] = f64::from(src[j]);
                        }
                        row[m - 1] = f64::from(self.y[r]);
                    }
                }
                if self.ones {
                    row[p] = 1.0;
                }
                for (g, vals) in row.chunks_exact(TILE_J).enumerate() {
                    buf[g * panel + t * TILE_J..g * panel + (t + 1) * TILE_J].copy_from_slice(vals);
                }
            }
            for i0 in (0..m).step_by(TILE_I) {
                let gi = i0 / TILE_J;
                let pa = &buf[gi * panel..gi * panel + k * TILE_J];
                for j0 in (gi * TILE_J..m).step_by(TILE_J) {
                    let gj = j0 / TILE_J;
                    let pb = &buf[gj * panel..gj * panel + k * TILE_J];
                    let acc = tile(fma, pa, i0 % TILE_J, pb);
                    for (u, accu) in acc.iter().enumerate() {
                        let o = &mut out[(i0 + u) * mp + j0..(i0 + u) * mp + j0 + TILE_J];
                        for (ov, av) in o.iter_mut().zip(accu) {
                            *ov += av;
                        }
                    }
                }
            }
        }
        out
    }
}

/// Whether the AVX2+FMA tile kernel can run on this CPU.
fn has_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `Σ_t pa[t][ioff+u] * pb[t][v]` over the rows of two panels.
fn tile(fma: bool, pa: &[f64], ioff: usize, pb: &[f64]) -> [[f64; TILE_J]; TILE_I] {
    #[cfg(target_arch = "x86_64")]
    {
        if fma {
            // SAFETY: `has_fma` confirmed the CPU features `tile_fma` is compiled for.
            return unsafe { tile_fma(pa, ioff, pb) };
        }
    }
    let _ = fma;
    tile_portable(pa, ioff, pb)
}

macro_rules! tile_body {
    ($pa:expr, $ioff:expr, $pb:expr, $madd:expr) => {{
        let mut acc = [[0.0f64; TILE_J]; TILE_I];
        for (ra, rb) in $pa.chunks_exact(TILE_J).zip($pb.chunks_exact(TILE_J)) {
            let a: [f64; TILE_I] = ra[$ioff..$ioff + TILE_I].try_into().unwrap();
            let b: [f64; TILE_J] = rb.try_into().unwrap();
            for u in 0..TILE_I {
                for v in 0..TILE_J {
                    acc[u][v] = $madd(a[u], b[v], acc[u][v]);
                }
            }
        }
        acc
    }};
}

fn tile_portable(pa: &[f64], ioff: usize, pb: &[f64]) -> [[f64; TILE_J]; TILE_I] {
    tile_body!(pa, ioff, pb, |a: f64, b: f64, c: f64| c + a * b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn tile_fma(pa: &[f64], ioff: usize, pb: &[f64]) -> [[f64; TILE_J]; TILE_I] {
    tile_body!(pa, ioff, pb, |a: f64, b: f64, c: f64| a.mul_add(b, c))
}

/// Relative size below which a pivot/eigenvalue of a Gram matrix of `n` rows is rounding noise:
/// its entries carry errors of order `n·ε` relative to the largest.
fn gram_noise(n: usize, p: usize) -> f64 {
    n.max(p) as f64 * f64::EPSILON
}

/// Solves `a w = b` for symmetric positive semi-definite `a` (p x p, row-major): by Cholesky
/// when it is well inside the positive-definite cone, else the minimum-norm solution
/// (`pinv(a) b`), which for `a = XᵀX`, `b = Xᵀy` is the minimum-norm least-squares solution.
fn solve_spd_or_min_norm(a: &[f64], b: &[f64], p: usize, n: usize) -> Vec<f64> {
    cholesky_solve(a, b, p, gram_noise(n, p)).unwrap_or_else(|| min_norm_solve(a, b, p, n))
}

/// Cholesky solve; `None` when a pivot falls to `rel_tol` times its original diagonal or below.
fn cholesky_solve(a: &[f64], b: &[f64], p: usize, rel_tol: f64) -> Option<Vec<f64>> {
    let mut l = a.to_vec();
    for j in 0..p {
        let mut d = l[j * p + j];
        for k in 0..j {
            d -= l[j * p + k] * l[j * p + k];
        }
        // Also catches NaN, which no comparison admits.
        if d.is_nan() || d <= rel_tol * a[j * p + j] || d <= 0.0 {
            return None;
        }
        let d = d.sqrt();
        l[j * p + j] = d;
        for i in j + 1..p {
            let mut s = l[i * p + j];
            for k in 0..j {
                s -= l[i * p + k] * l[j * p + k];
            }
            l[i * p + j] = s / d;
        }
    }
    let mut z = b.to_vec();
    for i in 0..p {
        for k in 0..i {
            z[i] -= l[i * p + k] * z[k];
        }
        z[i] /= l[i * p + i];
    }
    for i in (0..p).rev() {
        for k in i + 1..p {
            z[i] -= l[k * p + i] * z[k];
        }
        z[i] /= l[i * p + i];
    }
    Some(z)
}

/// `pinv(a) b` through the eigen-decomposition of symmetric `a`, dropping eigenvalues that are
/// rounding noise (see [`gram_noise`]).
fn min_norm_solve(a: &[f64], b: &[f64], p: usize, n: usize) -> Vec<f64> {
    let (vals, vecs) = jacobi_eigen(a, p);
    let top = vals.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let cut = top * gram_noise(n, p);
    let mut w = vec![0.0; p];
    for (k, &lam) in vals.iter().enumerate() {
        if lam <= cut {
            continue;
        }
        // Eigenvector k is column k of `vecs`.
        let proj: f64 = (0..p).map(|i| vecs[i * p + k] * b[i]).sum::<f64>() / lam;
        for (i, wi) in w.iter_mut().enumerate() {
            *wi += proj * vecs[i * p + k];
        }
    }
    w
}

/// Cyclic Jacobi eigen-decomposition of symmetric `a` (p x p): eigenvalues and the row-major
/// matrix whose columns are the eigenvectors.
fn jacobi_eigen(a: &[f64], p: usize) -> (Vec<f64>, Vec<f64>) {
    let mut a = a.to_vec();
    let mut v = vec![0.0; p * p];
    for i in 0..p {
        v[i * p + i] = 1.0;
    }
    for _sweep in 0..100 {
        let off: f64 = (0..p)
            .flat_map(|i| (i + 1..p).map(move |j| (i, j)))
            .map(|(i, j)| a[i * p + j] * a[i * p + j])
            .sum();
        let diag: f64 = (0..p).map(|i| a[i * p + i] * a[i * p + i]).sum();
        if off <= f64::EPSILON * f64::EPSILON * diag || off == 0.0 {
            break;
        }
        for i in 0..p {
            for j in i + 1..p {
                let apq = a[i * p + j];
                if apq == 0.0 {
                    continue;
                }
                let theta = (a[j * p + j] - a[i * p + i]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                // A <- Jᵀ A J with the rotation in the (i, j) plane.
                for k in 0..p {
                    let aki = a[k * p + i];
                    let akj = a[k * p + j];
                    a[k * p + i] = c * aki - s * akj;
                    a[k * p + j] = s * aki + c * akj;
                }
                for k in 0..p {
                    let aik = a[i * p + k];
                    let ajk = a[j * p + k];
                    a[i * p + k] = c * aik - s * ajk;
                    a[j * p + k] = s * aik + c * ajk;
                }
                for k in 0..p {
                    let vki = v[k * p + i];
                    let vkj = v[k * p + j];
                    v[k * p + i] = c * vki - s * vkj;
                    v[k * p + j] = s * vki + c * vkj;
                }
            }
        }
    }
    ((0..p).map(|i| a[i * p + i]).collect(), v)
}

/// sklearn's `enet_coordinate_descent` (1.9, `beta = 0`, cyclic, gap-safe screening) on the
/// Gram form: with `Q = XᵀX`, `q = Xᵀy` and `h = Q w`, `X_jᵀR = q_j - h_j`, so every update and
/// every duality gap equals the one sklearn computes from the residual `R`.
/// `alpha` is sklearn's `l1_reg = alpha * n_samples`; `tol` is scaled by `yᵀy` as sklearn does.
fn lasso_cd(
    q: &[f64],
    xy: &[f64],
    yy: f64,
    p: usize,
    alpha: f64,
    max_iter: usize,
    tol: f64,
) -> Vec<f64> {
    let norm2: Vec<f64> = (0..p).map(|j| q[j * p + j]).collect();
    let mut w = vec![0.0; p];
    let mut h = vec![0.0; p];
    let mut xta = vec![0.0; p];
    let d_w_tol = tol;
    let tol = tol * yy;
    let do_screening = alpha != 0.0;

    let gap_of = |w: &[f64], h: &[f64], xta: &mut [f64]| -> (f64, f64) {
        let wq: f64 = w.iter().zip(xy).map(|(a, b)| a * b).sum();
        let wh: f64 = w.iter().zip(h).map(|(a, b)| a * b).sum();
        let r_norm2 = (yy - 2.0 * wq + wh).max(0.0);
        let ry = yy - wq;
        for j in 0..p {
            xta[j] = xy[j] - h[j];
        }
        if alpha == 0.0 {
            // OLS: no dual gap; sklearn falls back to the first-order condition ||XᵀR||².
            let g: f64 = xta.iter().map(|v| v * v).sum();
            return (g, g);
        }
        let dual_norm = xta.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let l1: f64 = w.iter().map(|v| v.abs()).sum();
        let primal = 0.5 * r_norm2 + alpha * l1;
        let scale = if dual_norm > alpha {
            alpha / dual_norm
        } else {
            1.0
        };
        let dual = -0.5 * scale * scale * r_norm2 + scale * ry;
        (primal - dual, dual_norm)
    };
    // Drop coordinates the gap-safe sphere proves to be zero; moving one to zero updates `h`.
    let screen = |w: &mut [f64],
                  h: &mut [f64],
                  xta: &[f64],
                  gap: f64,
                  dual_norm: f64,
                  excluded: &mut [bool],
                  active: &mut Vec<usize>| {
        active.clear();
        let radius = (2.0 * gap).sqrt() / alpha;
        for j in 0..p {
            if excluded[j] {
                continue;
            }
            let xj_theta = xta[j] / alpha.max(dual_norm);
            let d_j = (1.0 - xj_theta.abs()) / norm2[j].sqrt();
            if d_j <= radius {
                active.push(j);
            } else {
                if w[j] != 0.0 {
                    let wj = w[j];
                    for (hk, qk) in h.iter_mut().zip(&q[j * p..(j + 1) * p]) {
                        *hk -= wj * qk;
                    }
                    w[j] = 0.0;
                }
                excluded[j] = true;
            }
        }
    };

    let (mut gap, mut dual_norm) = gap_of(&w, &h, &mut xta);
    if gap <= tol {
        return w;
    }
    let mut excluded = vec![false; p];
    let mut active: Vec<usize> = (0..p).collect();
    if do_screening {
        for j in 0..p {
            if norm2[j] == 0.0 {
                excluded[j] = true;
            }
        }
        screen(
            &mut w,
            &mut h,
            &xta,
            gap,
            dual_norm,
            &mut excluded,
            &mut active,
        );
    }
    for n_iter in 0..max_iter {
        let mut w_max = 0.0f64;
        let mut d_w_max = 0.0f64;
        for &j in &active {
            if norm2[j] == 0.0 {
                continue;
            }
            let w_j = w[j];
            let tmp = (xy[j] - h[j]) + w_j * norm2[j];
            let shrunk = (tmp.abs() - alpha).max(0.0);
            let new = if tmp == 0.0 {
                0.0
            } else {
                tmp.signum() * shrunk / norm2[j]
            };
            w[j] = new;
            if new != w_j {
                let d = new - w_j;
                for (hk, qk) in h.iter_mut().zip(&q[j * p..(j + 1) * p]) {
                    *hk += d * qk;
                }
            }
            d_w_max = d_w_max.max((new - w_j).abs());
            w_max = w_max.max(new.abs());
        }
        if w_max == 0.0 || d_w_max / w_max <= d_w_tol || n_iter == max_iter - 1 {
            (gap, dual_norm) = gap_of(&w, &h, &mut xta);
            if gap <= tol {
                break;
            }
            if do_screening {
                screen(
                    &mut w,
                    &mut h,
                    &xta,
                    gap,
                    dual_norm,
                    &mut excluded,
                    &mut active,
                );
            }
        }
    }
    w
}

/// Lawson–Hanson NNLS on `AᵀA` (`ata`, p x p) and `Aᵀb` (`atb`), following SciPy's `_nnls`:
/// at most `3p` inner iterations, else SciPy's "Maximum number of iterations reached." error.
fn nnls(ata: &[f64], atb: &[f64], p: usize, m: usize) -> Result<Vec<f64>, String> {
    let max_iter = 3 * p;
    let scale = atb.iter().fold(f64::MIN_POSITIVE, |a, v| a.max(v.abs()));
    let tol = 10.0 * m.max(p) as f64 * f64::EPSILON * scale;
    let mut x = vec![0.0; p];
    let mut passive = vec![false; p];
    let mut w = atb.to_vec();
    let mut iter = 0;
    // Outer steps add one variable each; the bound only guards against rounding-driven cycling.
    for _outer in 0..(10 * p + 100) {
        let next = (0..p)
            .filter(|&j| !passive[j] && w[j] > tol)
            .max_by(|&a, &b| w[a].total_cmp(&w[b]));
        let Some(k) = next else {
            return Ok(x);
        };
        passive[k] = true;
        let mut s = solve_passive(ata, atb, p, m, &passive);
        while passive.iter().zip(&s).any(|(&on, &v)| on && v < 0.0) {
            if iter == max_iter {
                return Err("nnls: Maximum number of iterations reached.".to_string());
            }
            iter += 1;
            // Step from x towards s until the first passive variable hits zero.
            let mut step = f64::INFINITY;
            let mut hit = k;
            for j in 0..p {
                if passive[j] && s[j] < 0.0 {
                    let r = x[j] / (x[j] - s[j]);
                    if r < step {
                        step = r;
                        hit = j;
                    }
                }
            }
            for j in 0..p {
                x[j] += step * (s[j] - x[j]);
            }
            x[hit] = 0.0;
            for j in 0..p {
                if passive[j] && x[j] <= 0.0 {
                    passive[j] = false;
                    x[j] = 0.0;
                }
            }
            s = solve_passive(ata, atb, p, m, &passive);
        }
        x = s;
        for j in 0..p {
            w[j] = atb[j] - (0..p).map(|i| ata[j * p + i] * x[i]).sum::<f64>();
        }
    }
    Err("nnls: Maximum number of iterations reached.".to_string())
}

/// Unconstrained least squares restricted to the passive set; zero elsewhere.
fn solve_passive(ata: &[f64], atb: &[f64], p: usize, m: usize, passive: &[bool]) -> Vec<f64> {
    let idx: Vec<usize> = (0..p).filter(|&j| passive[j]).collect();
    let k = idx.len();
    let sub: Vec<f64> = idx
        .iter()
        .flat_map(|&i| idx.iter().map(move |&j| ata[i * p + j]))
        .collect();
    let rhs: Vec<f64> = idx.iter().map(|&i| atb[i]).collect();
    let sol = solve_spd_or_min_norm(&sub, &rhs, k, m);
    let mut s = vec![0.0; p];
    for (&i, v) in idx.iter().zip(sol) {
        s[i] = v;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cfg(estimator: Estimator, alpha: f64, fit_intercept: bool) -> LinearConfig {
        LinearConfig {
            estimator,
            alpha,
            fit_intercept,
            include_valid: false,
        }
    }

    fn names(p: usize) -> Vec<String> {
        (0..p).map(|j| format!("f{j}")).collect()
    }

    fn kwargs(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        v.as_object().unwrap().clone()
    }

    /// The generator of `ref.py` below: 64-bit LCG mapped to [-1, 1).
    fn lcg(seed: u64, count: usize) -> Vec<f64> {
        let mut s = seed;
        (0..count)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (s >> 11) as f64 / 2f64.powi(53) * 2.0 - 1.0
            })
            .collect()
    }

    /// `dataset` of `ref.py`, bit for bit.
    #[allow(clippy::too_many_arguments)]
    fn dataset(
        seed: u64,
        n: usize,
        p: usize,
        w: &[f64],
        b: f64,
        noise: f64,
        dup: bool,
    ) -> (Vec<f32>, Vec<f32>) {
        let mut x: Vec<f32> = lcg(seed, n * p).into_iter().map(|v| v as f32).collect();
        if dup {
            for r in 0..n {
                x[r * p + p - 1] = x[r * p];
            }
        }
        let e = lcg(seed + 1, n);
        let y = (0..n)
            .map(|r| {
                let mut acc = 0.0f64;
                for j in 0..p {
                    acc += f64::from(x[r * p + j]) * w[j];
                }
                ((acc + b) + noise * e[r]) as f32
            })
            .collect();
        (x, y)
    }

    fn named_dataset(name: &str) -> (Vec<f32>, Vec<f32>) {
        match name {
            "A" => dataset(
                1,
                200,
                6,
                &[1.5, -2.0, 0.0, 0.5, 3.0, -1.0],
                0.7,
                0.1,
                false,
            ),
            "B" => dataset(
                7,
                200,
                6,
                &[0.8, -0.3, 0.0, 1.1, 0.02, 0.0],
                -0.4,
                0.3,
                true,
            ),
            "C" => dataset(
                42,
                200,
                6,
                &[0.05, -0.6, 0.002, 0.9, -0.01, 0.3],
                2.5,
                1.0,
                false,
            ),
            _ => unreachable!(),
        }
    }

    /// Reference fits: (dataset, estimator, alpha, fit_intercept, coef, intercept), from
    /// sklearn 1.9.1 / scipy 1.17.1 / numpy 2.4.6 (Python 3.11). Regenerate with this script:
    ///
    /// ```python
    /// import numpy as np, sklearn, scipy
    /// from sklearn.linear_model import LinearRegression, Ridge, Lasso
    /// from scipy.optimize import nnls
    ///
    /// def lcg(seed, count):
    ///     s = seed; out = []
    ///     for _ in range(count):
    ///         s = (s * 6364136223846793005 + 1442695040888963407) % 2**64
    ///         out.append((s >> 11) / 2.0**53 * 2.0 - 1.0)
    ///     return np.array(out)
    ///
    /// def dataset(seed, n, p, w, b, noise, dup=False):
    ///     x = lcg(seed, n * p).reshape(n, p).astype(np.float32)
    ///     if dup: x[:, p - 1] = x[:, 0]
    ///     e = lcg(seed + 1, n)
    ///     x64 = x.astype(np.float64)
    ///     acc = np.zeros(n)
    ///     for j in range(p):  # sequential over columns so the Rust test rebuilds y bit-for-bit
    ///         acc = acc + x64[:, j] * w[j]
    ///     y = ((acc + b) + noise * e).astype(np.float32)
    ///     return x.astype(np.float64), y.astype(np.float64)
    ///
    /// def fit(est, alpha, fi, x, y):
    ///     if est == "nnls":
    ///         a = np.c_[x, np.ones(len(x))] if fi else x
    ///         c = nnls(a, y)[0]
    ///         return (c[:-1], c[-1]) if fi else (c, 0.0)
    ///     m = {"ols": LinearRegression(fit_intercept=fi), "ridge": Ridge(alpha=alpha, fit_intercept=fi),
    ///          "lasso": Lasso(alpha=alpha, fit_intercept=fi)}[est]
    ///     m.fit(x, y)
    ///     return m.coef_, float(m.intercept_)
    ///
    /// sets = {
    ///   "A": dataset(1, 200, 6, [1.5, -2.0, 0.0, 0.5, 3.0, -1.0], 0.7, 0.1),
    ///   "B": dataset(7, 200, 6, [0.8, -0.3, 0.0, 1.1, 0.02, 0.0], -0.4, 0.3, dup=True),
    ///   "C": dataset(42, 200, 6, [0.05, -0.6, 0.002, 0.9, -0.01, 0.3], 2.5, 1.0),
    /// }
    /// cases = [("A","ols",0.0,False),("A","ols",0.0,True),("A","ridge",1.5,True),("A","ridge",10.0,False),
    ///          ("A","lasso",0.01,True),("A","nnls",0.0,True),("A","nnls",0.0,False),
    ///          ("B","ols",0.0,True),("B","ols",0.0,False),
    ///          ("C","lasso",0.01,True),("C","lasso",0.05,False),("C","nnls",0.0,True),("C","ridge",0.0,True)]
    /// print(f"// sklearn {sklearn.__version__} / scipy {scipy.__version__} / numpy {np.__version__}")
    /// for ds, est, alpha, fi in cases:
    ///     c, b = fit(est, alpha, fi, *sets[ds])
    ///     print(f'    ("{ds}", "{est}", {alpha!r}, {str(fi).lower()}, &[{", ".join(repr(float(v)) for v in c)}], {float(b)!r}),')
    /// ```
    #[allow(clippy::type_complexity)]
    #[rustfmt::skip]
    const SKLEARN_REFERENCE: &[(&str, &str, f64, bool, &[f64], f64)] = &[
        ("A", "ols", 0.0, false, &[1.4947351180620387, -1.879589511428593, -0.04104642197455555, 0.5801825348737402, 3.1025054956259916, -1.0098108046837475], 0.0),
        ("A", "ols", 0.0, true, &[1.4977179026937608, -1.9985656202926745, 0.007621163867821965, 0.5094039674342522, 3.021554309642451, -0.992450560269224], 0.7004646380939369),
        ("A", "ridge", 1.5, true, &[1.4615426748279592, -1.944567175444185, 0.012715192930456972, 0.5008743908692292, 2.9504259527887595, -0.9704301641053521], 0.7010637338741393),
        ("A", "ridge", 10.0, false, &[1.2845432077045238, -1.5810877190766326, -0.00914330801399093, 0.5184417185473796, 2.675167137689772, -0.8790539941560148], 0.0),
        ("A", "lasso", 0.01, true, &[1.4663260971462118, -1.9625793231747417, 0.0, 0.4820514649535162, 2.9900371978998224, -0.9605803857883365], 0.70092038945664),
        ("A", "nnls", 0.0, true, &[1.33464597182509, 0.0, 0.10412216877012713, 0.5831640057055741, 2.926067877481241, 0.0], 0.598818984804179),
        ("A", "nnls", 0.0, false, &[1.338282744846912, 0.0, 0.05836296841604169, 0.6396979387169498, 3.006017066925937, 0.0], 0.0),
        ("B", "ols", 0.0, true, &[0.38647235699770016, -0.30390427846996143, -0.0038865268846749257, 1.0692626313309703, 0.028062152980424353, 0.3864723569977001], -0.4107369516890168),
        ("B", "ols", 0.0, false, &[0.4184287943831803, -0.2616344592473331, -0.02996815728401922, 1.0896621409252083, 0.02304000519137856, 0.41842879438318015], 0.0),
        ("C", "lasso", 0.01, true, &[0.13147502586634194, -0.5904456690610155, -0.07440757381176638, 0.9502487773930707, -0.013530798637927935, 0.2506766933227006], 2.5344692558201976),
        ("C", "lasso", 0.05, false, &[0.21590741335616895, -0.0, 0.1804669694374686, 0.03320355489610805, -0.2339277174459024, 0.1691387277786118], 0.0),
        ("C", "nnls", 0.0, true, &[0.15857721243842726, 0.0, 0.0, 0.9107643102152607, 0.0, 0.3474298990145225], 2.4985382837497347),
        ("C", "ridge", 0.0, true, &[0.16813386353761292, -0.6213578087680052, -0.11115007114118393, 0.9790436058205115, -0.03574423633263619, 0.2823391655561177], 2.539436122704424),
    ];

    #[test]
    fn matches_sklearn_and_scipy_reference_fits() {
        for &(ds, est, alpha, fit_intercept, want_coef, want_b) in SKLEARN_REFERENCE {
            let (x, y) = named_dataset(ds);
            let est: Estimator = est.parse().unwrap();
            let got = fit(&cfg(est, alpha, fit_intercept), &x, 6, &y, &names(6)).unwrap();
            // Lasso stops at sklearn's duality-gap tolerance, so only agrees to that precision.
            let rel = if est == Estimator::Lasso { 1e-5 } else { 1e-8 };
            // Relative to the coefficient vector's scale, so near-zero entries are not judged
            // against their own tiny magnitude.
            let scale = want_coef.iter().fold(want_b.abs(), |m, v| m.max(v.abs()));
            for (j, (g, w)) in got.coef.iter().zip(want_coef).enumerate() {
                assert!(
                    (g - w).abs() <= rel * scale,
                    "{ds} {est} alpha={alpha} fi={fit_intercept} coef[{j}]: {g} vs {w}"
                );
            }
            assert!(
                (got.intercept - want_b).abs() <= rel * scale,
                "{ds} {est} alpha={alpha} fi={fit_intercept} intercept: {} vs {want_b}",
                got.intercept
            );
        }
    }

    #[test]
    fn estimator_parses_case_insensitively_and_lists_choices() {
        assert_eq!("OLS".parse::<Estimator>().unwrap(), Estimator::Ols);
        assert_eq!("Ridge".parse::<Estimator>().unwrap(), Estimator::Ridge);
        assert_eq!("lasso".parse::<Estimator>().unwrap(), Estimator::Lasso);
        assert_eq!("nnls".parse::<Estimator>().unwrap(), Estimator::Nnls);
        let err = "elasticnet".parse::<Estimator>().unwrap_err();
        for name in ["ols", "nnls", "ridge", "lasso", "elasticnet"] {
            assert!(err.contains(name), "{err}");
        }
    }

    #[test]
    fn config_defaults_and_values_from_kwargs() {
        let c = LinearConfig::from_kwargs(&kwargs(json!({}))).unwrap();
        assert_eq!(c, LinearConfig::default());
        assert_eq!(c.estimator, Estimator::Ols);
        let c = LinearConfig::from_kwargs(&kwargs(json!({
            "estimator": "lasso", "alpha": 1, "fit_intercept": true, "include_valid": true
        })))
        .unwrap();
        assert_eq!(c, cfg(Estimator::Lasso, 1.0, true).with_valid());
    }

    impl LinearConfig {
        fn with_valid(mut self) -> Self {
            self.include_valid = true;
            self
        }
    }

    #[test]
    fn config_rejects_bad_kwargs() {
        let err = LinearConfig::from_kwargs(&kwargs(json!({"alpah": 1.0, "l1": 2}))).unwrap_err();
        assert!(err.contains("alpah") && err.contains("l1"), "{err}");
        let err = LinearConfig::from_kwargs(&kwargs(json!({"estimator": "ols", "alpha": 0.5})))
            .unwrap_err();
        assert!(err.contains("alpha is only supported"), "{err}");
        let err = LinearConfig::from_kwargs(&kwargs(json!({"estimator": "nnls", "alpha": 1})))
            .unwrap_err();
        assert!(err.contains("alpha is only supported"), "{err}");
        assert!(
            LinearConfig::from_kwargs(&kwargs(json!({"estimator": "ols", "alpha": 0}))).is_ok()
        );
        for bad in [
            json!({"estimator": 3}),
            json!({"alpha": "big", "estimator": "ridge"}),
            json!({"fit_intercept": "yes"}),
            json!({"include_valid": 1}),
            json!({"estimator": "ridge", "alpha": -1.0}),
        ] {
            assert!(
                LinearConfig::from_kwargs(&kwargs(bad.clone())).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn ols_recovers_an_exact_linear_relation() {
        // y = 2 x0 - 3 x1 + 1 on four rows.
        let x = [0.0f32, 0.0, 1.0, 0.0, 0.0, 1.0, 2.0, 3.0];
        let y = [1.0f32, 3.0, -2.0, -4.0];
        let m = fit(&cfg(Estimator::Ols, 0.0, true), &x, 2, &y, &names(2)).unwrap();
        assert!((m.coef[0] - 2.0).abs() < 1e-12 && (m.coef[1] + 3.0).abs() < 1e-12);
        assert!((m.intercept - 1.0).abs() < 1e-12);
        assert_eq!(m.estimator, "ols");
        assert_eq!(m.feature_names, names(2));
        let pred = m.predict(&[1.0, 1.0, f32::NAN, 0.0]);
        assert!((pred[0] - 0.0).abs() < 1e-12);
        assert!(pred[1].is_nan());
        // Without intercept on the same rows: the least-squares fit of y on (x0, x1) alone,
        // normal equations [[5,6],[6,10]] w = [-5,-14] -> w = (17/7, -20/7).
        let m = fit(&cfg(Estimator::Ols, 0.0, false), &x, 2, &y, &names(2)).unwrap();
        assert!((m.coef[0] - 17.0 / 7.0).abs() < 1e-12, "{:?}", m.coef);
        assert!((m.coef[1] + 20.0 / 7.0).abs() < 1e-12, "{:?}", m.coef);
        assert_eq!(m.intercept, 0.0);
    }

    #[test]
    fn ols_rank_deficient_gives_minimum_norm_solution() {
        // Columns 0 and 1 identical, y = 2 a: every (u, 2-u) fits; minimum norm is (1, 1).
        let a = [1.0f32, 2.0, -1.0, 0.5, 3.0];
        let x: Vec<f32> = a.iter().flat_map(|&v| [v, v]).collect();
        let y: Vec<f32> = a.iter().map(|v| 2.0 * v).collect();
        let m = fit(&cfg(Estimator::Ols, 0.0, false), &x, 2, &y, &names(2)).unwrap();
        assert!(
            (m.coef[0] - 1.0).abs() < 1e-10 && (m.coef[1] - 1.0).abs() < 1e-10,
            "{:?}",
            m.coef
        );
        // With an intercept and a constant third column: that column gets 0.
        let x: Vec<f32> = a.iter().flat_map(|&v| [v, v, 4.0]).collect();
        let y: Vec<f32> = a.iter().map(|v| 2.0 * v + 5.0).collect();
        let m = fit(&cfg(Estimator::Ols, 0.0, true), &x, 3, &y, &names(3)).unwrap();
        assert!(
            (m.coef[0] - 1.0).abs() < 1e-10 && (m.coef[1] - 1.0).abs() < 1e-10,
            "{:?}",
            m.coef
        );
        assert_eq!(m.coef[2], 0.0);
        assert!((m.intercept - 5.0).abs() < 1e-10);
    }

    #[test]
    fn ridge_matches_its_closed_form() {
        let x = [1.0f32, 2.0, 2.0, 1.0, 3.0, 4.0, -1.0, 0.5];
        let y = [1.0f32, 2.0, 3.0, -1.0];
        let alpha = 0.7;
        // Uncentred: (XᵀX + αI)⁻¹ Xᵀy with the 2x2 inverse written out.
        let (mut s00, mut s01, mut s11, mut t0, mut t1) = (alpha, 0.0, alpha, 0.0, 0.0);
        for r in 0..4 {
            let (a, b, v) = (
                f64::from(x[2 * r]),
                f64::from(x[2 * r + 1]),
                f64::from(y[r]),
            );
            s00 += a * a;
            s01 += a * b;
            s11 += b * b;
            t0 += a * v;
            t1 += b * v;
        }
        let det = s00 * s11 - s01 * s01;
        let want = [(s11 * t0 - s01 * t1) / det, (s00 * t1 - s01 * t0) / det];
        let m = fit(&cfg(Estimator::Ridge, alpha, false), &x, 2, &y, &names(2)).unwrap();
        for j in 0..2 {
            assert!(
                (m.coef[j] - want[j]).abs() < 1e-12,
                "{:?} vs {want:?}",
                m.coef
            );
        }
        // Centred: the same formula on centred data; the intercept is not penalised.
        let mx = [
            (0..4).map(|r| f64::from(x[2 * r])).sum::<f64>() / 4.0,
            (0..4).map(|r| f64::from(x[2 * r + 1])).sum::<f64>() / 4.0,
        ];
        let my = y.iter().map(|&v| f64::from(v)).sum::<f64>() / 4.0;
        let (mut s00, mut s01, mut s11, mut t0, mut t1) = (alpha, 0.0, alpha, 0.0, 0.0);
        for r in 0..4 {
            let (a, b, v) = (
                f64::from(x[2 * r]) - mx[0],
                f64::from(x[2 * r + 1]) - mx[1],
                f64::from(y[r]) - my,
            );
            s00 += a * a;
            s01 += a * b;
            s11 += b * b;
            t0 += a * v;
            t1 += b * v;
        }
        let det = s00 * s11 - s01 * s01;
        let want = [(s11 * t0 - s01 * t1) / det, (s00 * t1 - s01 * t0) / det];
        let m = fit(&cfg(Estimator::Ridge, alpha, true), &x, 2, &y, &names(2)).unwrap();
        for j in 0..2 {
            assert!(
                (m.coef[j] - want[j]).abs() < 1e-12,
                "{:?} vs {want:?}",
                m.coef
            );
        }
        let want_b = my - mx[0] * want[0] - mx[1] * want[1];
        assert!((m.intercept - want_b).abs() < 1e-12);
    }

    /// `X_jᵀ r / n` for every feature, on centred data when `fit_intercept`.
    fn correlations(m: &LinearFit, x: &[f32], y: &[f32], p: usize) -> Vec<f64> {
        let n = y.len();
        let pred = m.predict(x);
        let r: Vec<f64> = pred.iter().zip(y).map(|(f, &v)| f64::from(v) - f).collect();
        let mean: Vec<f64> = (0..p)
            .map(|j| (0..n).map(|i| f64::from(x[i * p + j])).sum::<f64>() / n as f64)
            .collect();
        let centre = m.intercept != 0.0;
        (0..p)
            .map(|j| {
                (0..n)
                    .map(|i| {
                        let xv = f64::from(x[i * p + j]) - if centre { mean[j] } else { 0.0 };
                        xv * r[i]
                    })
                    .sum::<f64>()
                    / n as f64
            })
            .collect()
    }

    #[test]
    fn lasso_solution_satisfies_kkt() {
        for (ds, alpha, fi, sparse) in [
            ("A", 0.01, true, true),
            ("C", 0.1, true, true),
            ("C", 0.02, false, false),
        ] {
            let (x, y) = named_dataset(ds);
            let m = fit(&cfg(Estimator::Lasso, alpha, fi), &x, 6, &y, &names(6)).unwrap();
            let g = correlations(&m, &x, &y, 6);
            for (j, (&c, &gj)) in m.coef.iter().zip(&g).enumerate() {
                if c == 0.0 {
                    assert!(gj.abs() <= alpha * 1.001, "{ds} zero coef {j}: {gj}");
                } else {
                    let want = alpha * c.signum();
                    assert!((gj - want).abs() <= alpha * 1e-3, "{ds} coef {j}: {gj}");
                }
            }
            assert_eq!(
                m.coef.contains(&0.0),
                sparse,
                "{ds} alpha={alpha}: {:?}",
                m.coef
            );
        }
    }

    #[test]
    fn lasso_with_large_alpha_gives_zero_coefficients() {
        let (x, y) = named_dataset("A");
        let n = y.len() as f64;
        let m = fit(&cfg(Estimator::Lasso, 0.0, true), &x, 6, &y, &names(6)).unwrap();
        // alpha_max = max_j |X_jᵀ (y - ȳ)| / n; any alpha above it zeroes everything.
        let zero = LinearFit {
            coef: vec![0.0; 6],
            intercept: y.iter().map(|&v| f64::from(v)).sum::<f64>() / n,
            ..m
        };
        let alpha_max = correlations(&zero, &x, &y, 6)
            .iter()
            .fold(0.0f64, |a, v| a.max(v.abs()));
        let m = fit(
            &cfg(Estimator::Lasso, alpha_max * 1.01, true),
            &x,
            6,
            &y,
            &names(6),
        )
        .unwrap();
        assert_eq!(m.coef, vec![0.0; 6]);
        assert!((m.intercept - zero.intercept).abs() < 1e-12);
        let m = fit(
            &cfg(Estimator::Lasso, alpha_max * 0.9, true),
            &x,
            6,
            &y,
            &names(6),
        )
        .unwrap();
        assert!(m.coef.iter().any(|&c| c != 0.0));
    }

    #[test]
    fn lasso_with_zero_alpha_approaches_ols() {
        let (x, y) = named_dataset("A");
        let ols = fit(&cfg(Estimator::Ols, 0.0, true), &x, 6, &y, &names(6)).unwrap();
        let las = fit(&cfg(Estimator::Lasso, 0.0, true), &x, 6, &y, &names(6)).unwrap();
        for (a, b) in las.coef.iter().zip(&ols.coef) {
            assert!((a - b).abs() < 1e-2, "{a} vs {b}");
        }
    }

    #[test]
    fn nnls_is_nonnegative_and_satisfies_kkt() {
        for (ds, fi) in [("A", true), ("A", false), ("C", true), ("B", false)] {
            let (x, y) = named_dataset(ds);
            let m = fit(&cfg(Estimator::Nnls, 0.0, fi), &x, 6, &y, &names(6)).unwrap();
            assert!(
                m.coef.iter().all(|&c| c >= 0.0) && m.intercept >= 0.0,
                "{m:?}"
            );
            // Gradient Aᵀr (uncentred: the intercept is an ordinary constrained column here).
            let pred = m.predict(&x);
            let r: Vec<f64> = pred
                .iter()
                .zip(&y)
                .map(|(f, &v)| f64::from(v) - f)
                .collect();
            let mut cols: Vec<Vec<f64>> = (0..6)
                .map(|j| (0..y.len()).map(|i| f64::from(x[i * 6 + j])).collect())
                .collect();
            let mut vals = m.coef.clone();
            if fi {
                cols.push(vec![1.0; y.len()]);
                vals.push(m.intercept);
            }
            for (c, v) in cols.iter().zip(&vals) {
                let g: f64 = c.iter().zip(&r).map(|(a, b)| a * b).sum();
                if *v == 0.0 {
                    assert!(g <= 1e-9, "{ds}: zero coef with gradient {g}");
                } else {
                    assert!(g.abs() <= 1e-9, "{ds}: positive coef with gradient {g}");
                }
            }
            assert!(m.coef.contains(&0.0), "{ds}: expected an active constraint");
        }
    }

    #[test]
    fn nan_rows_are_dropped() {
        let (x, y) = named_dataset("A");
        let mut xn = x.clone();
        let mut yn = y.clone();
        xn.extend_from_slice(&[1.0, f32::NAN, 0.0, 0.0, 0.0, 0.0]);
        yn.push(100.0);
        xn.extend_from_slice(&[1.0, 1.0, 1.0, 1.0, 1.0, 1.0]);
        yn.push(f32::NAN);
        for est in [
            Estimator::Ols,
            Estimator::Ridge,
            Estimator::Lasso,
            Estimator::Nnls,
        ] {
            let alpha = if matches!(est, Estimator::Ridge | Estimator::Lasso) {
                0.01
            } else {
                0.0
            };
            let c = cfg(est, alpha, true);
            assert_eq!(
                fit(&c, &x, 6, &y, &names(6)).unwrap(),
                fit(&c, &xn, 6, &yn, &names(6)).unwrap()
            );
        }
    }

    #[test]
    fn empty_after_dropna_is_an_error() {
        let x = [f32::NAN, 1.0, 2.0, 3.0];
        let y = [1.0f32, f32::NAN];
        let err = fit(&cfg(Estimator::Ols, 0.0, true), &x, 2, &y, &names(2)).unwrap_err();
        assert_eq!(
            err,
            "Empty data from dataset, please check your dataset config."
        );
        let err = fit(&cfg(Estimator::Ols, 0.0, true), &[], 2, &[], &names(2)).unwrap_err();
        assert_eq!(
            err,
            "Empty data from dataset, please check your dataset config."
        );
    }

    #[test]
    fn bad_inputs_are_errors() {
        let c = cfg(Estimator::Ols, 0.0, false);
        assert!(fit(&c, &[1.0, 2.0, 3.0], 2, &[1.0, 2.0], &names(2)).is_err());
        assert!(fit(&c, &[1.0, 2.0], 2, &[1.0], &names(3)).is_err());
        assert!(fit(&c, &[1.0, f32::INFINITY], 2, &[1.0], &names(2)).is_err());
        assert!(
            fit(
                &cfg(Estimator::Ols, 1.0, false),
                &[1.0, 2.0],
                2,
                &[1.0],
                &names(2)
            )
            .is_err()
        );
    }

    #[test]
    fn many_rows_across_blocks_and_threads_fit_exactly() {
        // 30,000 rows span several Gram blocks; y is exactly linear, so OLS must recover it.
        let (n, p) = (30_000, 5);
        let x: Vec<f32> = lcg(99, n * p).into_iter().map(|v| v as f32).collect();
        let w = [0.5, -1.25, 2.0, 0.0, 0.75];
        let y: Vec<f32> = (0..n)
            .map(|r| {
                let v: f64 = (0..p).map(|j| f64::from(x[r * p + j]) * w[j]).sum();
                (v + 3.0) as f32
            })
            .collect();
        let m = fit(&cfg(Estimator::Ols, 0.0, true), &x, p, &y, &names(p)).unwrap();
        for (c, wj) in m.coef.iter().zip(w) {
            // y is rounded to f32, so the fit is exact only to f32 precision.
            assert!((c - wj).abs() < 1e-6, "{:?}", m.coef);
        }
        assert!((m.intercept - 3.0).abs() < 1e-6);
        let again = fit(&cfg(Estimator::Ols, 0.0, true), &x, p, &y, &names(p)).unwrap();
        assert_eq!(m, again, "fits must be reproducible bit for bit");
    }

    #[test]
    fn fit_round_trips_through_json() {
        let (x, y) = named_dataset("A");
        let m = fit(&cfg(Estimator::Ridge, 1.5, true), &x, 6, &y, &names(6)).unwrap();
        let text = serde_json::to_string(&m).unwrap();
        let back: LinearFit = serde_json::from_str(&text).unwrap();
        assert_eq!(
            (&m.estimator, &m.feature_names),
            (&back.estimator, &back.feature_names)
        );
        // serde_json parses floats exactly only with its `float_roundtrip` feature; without it
        // the last bit may differ.
        let close = |a: f64, b: f64| (a - b).abs() <= 2.0 * f64::EPSILON * a.abs();
        assert!(m.coef.iter().zip(&back.coef).all(|(a, b)| close(*a, *b)));
        assert!(close(m.intercept, back.intercept));
    }
}
