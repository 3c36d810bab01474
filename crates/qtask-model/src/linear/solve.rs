//! Solvers on the Gram form: Cholesky or minimum-norm least squares, sklearn's lasso
//! coordinate descent, SciPy's NNLS.

/// Relative size below which a pivot/eigenvalue of a Gram matrix of `n` rows is rounding noise:
/// its entries carry errors of order `n·ε` relative to the largest.
pub(super) fn gram_noise(n: usize, p: usize) -> f64 {
    n.max(p) as f64 * f64::EPSILON
}

/// Solves `a w = b` for symmetric positive semi-definite `a` (p x p, row-major): by Cholesky
/// when it is well inside the positive-definite cone, else the minimum-norm solution
/// (`pinv(a) b`), which for `a = XᵀX`, `b = Xᵀy` is the minimum-norm least-squares solution.
pub(super) fn solve_spd_or_min_norm(a: &[f64], b: &[f64], p: usize, n: usize) -> Vec<f64> {
    cholesky_solve(a, b, p, gram_noise(n, p)).unwrap_or_else(|| min_norm_solve(a, b, p, n))
}

/// Cholesky solve; `None` when a pivot falls to `rel_tol` times its original diagonal or below.
pub(super) fn cholesky_solve(a: &[f64], b: &[f64], p: usize, rel_tol: f64) -> Option<Vec<f64>> {
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
pub(super) fn min_norm_solve(a: &[f64], b: &[f64], p: usize, n: usize) -> Vec<f64> {
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
pub(super) fn jacobi_eigen(a: &[f64], p: usize) -> (Vec<f64>, Vec<f64>) {
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
pub(super) fn lasso_cd(
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
pub(super) fn nnls(ata: &[f64], atb: &[f64], p: usize, m: usize) -> Result<Vec<f64>, String> {
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
pub(super) fn solve_passive(
    ata: &[f64],
    atb: &[f64],
    p: usize,
    m: usize,
    passive: &[bool],
) -> Vec<f64> {
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
