//! Unit tests of the estimators against scikit-learn's and SciPy's results.

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
    let err =
        LinearConfig::from_kwargs(&kwargs(json!({"estimator": "ols", "alpha": 0.5}))).unwrap_err();
    assert!(err.contains("alpha is only supported"), "{err}");
    let err =
        LinearConfig::from_kwargs(&kwargs(json!({"estimator": "nnls", "alpha": 1}))).unwrap_err();
    assert!(err.contains("alpha is only supported"), "{err}");
    assert!(LinearConfig::from_kwargs(&kwargs(json!({"estimator": "ols", "alpha": 0}))).is_ok());
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
