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

mod gram;
mod solve;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

use gram::Gram;
use solve::{lasso_cd, nnls, solve_spd_or_min_norm};

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
            p > 0 && x.len().is_multiple_of(p),
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
pub(super) struct Centre {
    pub(super) x: Vec<f64>,
    pub(super) y: f64,
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
