//! Qlib's `DEnsembleModel` (`qlib.contrib.model.double_ensemble`): DoubleEnsemble, a weighted
//! ensemble of LightGBM sub-models, each trained with sample re-weighting (SR: samples the
//! ensemble so far fits badly, or learned slowly, weigh more) and feature selection (FS:
//! features whose shuffling hurts the ensemble most are kept more often), step by step as
//! Qlib's code does.
//!
//! The shuffles use qtask's seeded generator ([`stats::Rng`], seed from the `seed` kwarg,
//! else 0) where Qlib uses numpy's global one; a sub-model's features keep the dataset's
//! column order where Qlib takes a Python set's order. With `enable_fs: false` nothing is
//! random and the ensemble is Qlib's.

pub mod stats;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::error::{ModelError, Result};
use crate::lgb::{self, LgbConfig, LgbModel, Matrix, TrainLog};
use stats::{Rng, cut, rank_pct};

/// Features whose shuffled predictions are held at once while computing g-values (bounds the
/// memory to this many prediction vectors).
const FS_BLOCK: usize = 16;

/// `DEnsembleModel`'s configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct DensConfig {
    /// Number of sub-models.
    pub num_models: usize,
    /// Sample re-weighting between sub-models.
    pub enable_sr: bool,
    /// Feature selection between sub-models.
    pub enable_fs: bool,
    /// Weight of the loss-value term of the h-value.
    pub alpha1: f64,
    /// Weight of the loss-curve term of the h-value.
    pub alpha2: f64,
    /// Bins of h-values.
    pub bins_sr: usize,
    /// Bins of g-values.
    pub bins_fs: usize,
    /// Weights shrink as `1 / (decay^k * h + 0.1)` for sub-model `k`.
    pub decay: Option<f64>,
    /// Share of features kept per g-value bin, highest bin first.
    pub sample_ratios: Vec<f64>,
    /// Weight of each sub-model in the ensemble.
    pub sub_weights: Vec<f64>,
    /// The sub-models' LightGBM parameters, rounds (`epochs`) and early stopping.
    pub lgb: LgbConfig,
    /// Seed of the shuffles (the `seed` kwarg, which LightGBM also reads; else 0).
    pub seed: u64,
}

fn number(key: &str, v: &Value) -> Result<f64> {
    v.as_f64().ok_or_else(|| {
        ModelError::Invalid(format!(
            "DEnsembleModel kwarg `{key}`: expected a number, got {v}"
        ))
    })
}

fn count(key: &str, v: &Value) -> Result<usize> {
    v.as_u64()
        .or_else(|| {
            v.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                .map(|f| f as u64)
        })
        .map(|n| n as usize)
        .ok_or_else(|| {
            ModelError::Invalid(format!(
                "DEnsembleModel kwarg `{key}`: expected a whole number, got {v}"
            ))
        })
}

fn flag(key: &str, v: &Value) -> Result<bool> {
    v.as_bool().ok_or_else(|| {
        ModelError::Invalid(format!(
            "DEnsembleModel kwarg `{key}`: expected true or false, got {v}"
        ))
    })
}

fn numbers(key: &str, v: &Value) -> Result<Option<Vec<f64>>> {
    match v {
        Value::Null => Ok(None),
        Value::Array(a) => a
            .iter()
            .map(|x| number(key, x))
            .collect::<Result<_>>()
            .map(Some),
        _ => Err(ModelError::Invalid(format!(
            "DEnsembleModel kwarg `{key}`: expected a list of numbers, got {v}"
        ))),
    }
}

impl DensConfig {
    /// Reads Qlib's `DEnsembleModel(base_model="gbm", loss="mse", num_models=6, enable_sr=True,
    /// enable_fs=True, alpha1=1.0, alpha2=1.0, bins_sr=10, bins_fs=5, decay=None,
    /// sample_ratios=None, sub_weights=None, epochs=100, early_stopping_rounds=None,
    /// **kwargs)`; the other kwargs are LightGBM parameters.
    pub fn from_kwargs(kwargs: &Map<String, Value>) -> Result<DensConfig> {
        let mut lgb_kwargs = Map::new();
        let (mut num_models, mut enable_sr, mut enable_fs) = (6, true, true);
        let (mut alpha1, mut alpha2, mut bins_sr, mut bins_fs) = (1.0, 1.0, 10, 5);
        let (mut decay, mut sample_ratios, mut sub_weights) = (None, None, None);
        let (mut epochs, mut early_stopping_rounds) = (100, 0);
        let mut seed = 0;
        for (k, v) in kwargs {
            match k.as_str() {
                "base_model" => {
                    if v.as_str() != Some("gbm") {
                        return Err(ModelError::Invalid(format!(
                            "DEnsembleModel: base_model {v} is not supported (Qlib implements \
                             \"gbm\" only)"
                        )));
                    }
                }
                "loss" => {
                    if v.as_str() != Some("mse") {
                        return Err(ModelError::Invalid(format!(
                            "DEnsembleModel: loss {v} is not supported (Qlib implements mse only)"
                        )));
                    }
                }
                "num_models" => num_models = count(k, v)?,
                "enable_sr" => enable_sr = flag(k, v)?,
                "enable_fs" => enable_fs = flag(k, v)?,
                "alpha1" => alpha1 = number(k, v)?,
                "alpha2" => alpha2 = number(k, v)?,
                "bins_sr" => bins_sr = count(k, v)?,
                "bins_fs" => bins_fs = count(k, v)?,
                "decay" => {
                    decay = if v.is_null() {
                        None
                    } else {
                        Some(number(k, v)?)
                    }
                }
                "sample_ratios" => sample_ratios = numbers(k, v)?,
                "sub_weights" => sub_weights = numbers(k, v)?,
                "epochs" => epochs = count(k, v)?,
                "early_stopping_rounds" => {
                    early_stopping_rounds = if v.is_null() { 0 } else { count(k, v)? }
                }
                _ => {
                    if k == "seed" {
                        seed = count(k, v)? as u64;
                    }
                    lgb_kwargs.insert(k.clone(), v.clone());
                }
            }
        }
        if num_models == 0 {
            return Err(ModelError::Invalid(
                "DEnsembleModel: num_models must be at least 1".into(),
            ));
        }
        if bins_sr == 0 || bins_fs == 0 {
            return Err(ModelError::Invalid(
                "DEnsembleModel: bins_sr and bins_fs must be at least 1".into(),
            ));
        }
        let sample_ratios = sample_ratios.unwrap_or_else(|| vec![0.8, 0.7, 0.6, 0.5, 0.4]);
        if sample_ratios.len() != bins_fs {
            return Err(ModelError::Invalid(format!(
                "DEnsembleModel: the length of sample_ratios ({}) should be equal to bins_fs \
                 ({bins_fs})",
                sample_ratios.len()
            )));
        }
        let sub_weights = sub_weights.unwrap_or_else(|| vec![1.0; num_models]);
        if sub_weights.len() != num_models {
            return Err(ModelError::Invalid(format!(
                "DEnsembleModel: the length of sub_weights ({}) should be equal to num_models \
                 ({num_models})",
                sub_weights.len()
            )));
        }
        if enable_sr && num_models > 1 && decay.is_none() {
            return Err(ModelError::Invalid(
                "DEnsembleModel: sample re-weighting (enable_sr) needs `decay` (Qlib's default \
                 None fails after the first sub-model)"
                    .into(),
            ));
        }
        lgb_kwargs.insert("loss".into(), json!("mse"));
        let lgb = LgbConfig::from_kwargs_with(&lgb_kwargs, epochs, early_stopping_rounds).map_err(
            |e| ModelError::Invalid(e.to_string().replace("LGBModel", "DEnsembleModel")),
        )?;
        Ok(DensConfig {
            num_models,
            enable_sr,
            enable_fs,
            alpha1,
            alpha2,
            bins_sr,
            bins_fs,
            decay,
            sample_ratios,
            sub_weights,
            lgb,
            seed,
        })
    }
}

/// One trained sub-model and the features it reads.
pub struct SubModel {
    /// The LightGBM booster.
    pub model: LgbModel,
    /// Indices into the ensemble's feature list, in ascending order.
    pub features: Vec<usize>,
}

/// A trained DoubleEnsemble.
pub struct DensModel {
    /// The sub-models in training order.
    pub subs: Vec<SubModel>,
    /// Their weights.
    pub sub_weights: Vec<f64>,
    /// Number of features of the data the ensemble reads.
    pub n_features: usize,
}

/// The training data, column by column.
pub struct DensData {
    /// One vector per feature.
    pub columns: Vec<Vec<f32>>,
    /// One label per row.
    pub y: Vec<f32>,
}

/// Row-major copy of the `features` columns of `cols`.
fn rows_of(cols: &[Vec<f32>], features: &[usize]) -> Vec<f32> {
    let n = cols.first().map_or(0, Vec::len);
    let k = features.len();
    let mut x = vec![0f32; n * k];
    for (j, &f) in features.iter().enumerate() {
        for (r, &v) in cols[f].iter().enumerate() {
            x[r * k + j] = v;
        }
    }
    x
}

/// Squared errors, `(label - pred) ** 2` in float64.
fn mse_loss(y: &[f32], pred: &[f64]) -> Vec<f64> {
    y.iter()
        .zip(pred)
        .map(|(&l, &p)| {
            let d = f64::from(l) - p;
            d * d
        })
        .collect()
}

/// Trains the ensemble as `DEnsembleModel.fit`: one sub-model per round, each followed (but
/// the last) by the loss curve, the ensemble's losses, sample re-weighting and feature
/// selection. Returns each sub-model's training log.
pub fn train(
    cfg: &DensConfig,
    train: &DensData,
    valid: Option<&DensData>,
) -> Result<(DensModel, Vec<TrainLog>)> {
    let n = train.y.len();
    let nf = train.columns.len();
    let mut rng = Rng::new(cfg.seed);
    let mut weights: Vec<f64> = vec![1.0; n];
    let mut features: Vec<usize> = (0..nf).collect();
    let mut pred_sub: Vec<Vec<f64>> = Vec::new();
    let mut subs: Vec<SubModel> = Vec::new();
    let mut logs = Vec::new();
    for k in 0..cfg.num_models {
        let pick = |d: &DensData| -> Vec<Vec<f32>> {
            features.iter().map(|&f| d.columns[f].clone()).collect()
        };
        let matrix = Matrix {
            columns: pick(train),
            y: train.y.clone(),
            // LightGBM reads weights as float32 (as its Python package converts them).
            weight: Some(weights.iter().map(|&w| w as f32).collect()),
        };
        let valid_matrix = valid.map(|v| Matrix {
            columns: pick(v),
            y: v.y.clone(),
            weight: None,
        });
        let (model, log) = lgb::train(&cfg.lgb, matrix, valid_matrix)?;
        logs.push(log);
        subs.push(SubModel {
            model,
            features: features.clone(),
        });
        if k + 1 == cfg.num_models {
            break;
        }
        let sub = &subs[k];
        let x = rows_of(&train.columns, &sub.features);
        let curve = LossCurve::retrieve(&sub.model, &x, sub.features.len(), &train.y)?;
        pred_sub.push(sub.model.predict(&x, sub.features.len())?);
        drop(x);
        let w = &cfg.sub_weights[..=k];
        let total: f64 = w.iter().sum();
        let ensemble: Vec<f64> = (0..n)
            .map(|i| pred_sub.iter().zip(w).map(|(p, w)| p[i] * w).sum::<f64>() / total)
            .collect();
        let loss_values = mse_loss(&train.y, &ensemble);
        if cfg.enable_sr {
            let decay = cfg.decay.unwrap_or(1.0);
            weights = sample_reweight(cfg, &curve, &loss_values, decay.powf((k + 1) as f64));
        }
        if cfg.enable_fs {
            let g = g_values(&subs, train, &loss_values, &mut rng)?;
            features = select_features(cfg, &g, &mut rng);
        }
    }
    Ok((
        DensModel {
            subs,
            sub_weights: cfg.sub_weights.clone(),
            n_features: nf,
        },
        logs,
    ))
}

/// What SR reads of a sub-model's loss curve (the per-sample loss after each tree): the
/// percentile ranks of the losses, averaged over the first and over the last 10% of trees.
struct LossCurve {
    start: Vec<f64>,
    end: Vec<f64>,
}

impl LossCurve {
    /// `retrieve_loss_curve`: adds the trees one at a time (each tree's own prediction, as
    /// `predict(start_iteration=t, num_iteration=1)`), ranking the losses after each.
    fn retrieve(model: &LgbModel, x: &[f32], nf: usize, y: &[f32]) -> Result<LossCurve> {
        // The booster Qlib holds keeps the trees up to the best iteration (rounds that found
        // no split added none).
        let trees = model.best_iteration.min(model.booster.current_iteration()?);
        let n = y.len();
        let part = ((trees as f64 * 0.1) as usize).max(1);
        let mut pred = vec![0f64; n];
        let (mut start, mut end) = (vec![0f64; n], vec![0f64; n]);
        for t in 0..trees {
            let p = model.predict_trees(x, nf, t, 1)?;
            for (acc, v) in pred.iter_mut().zip(&p) {
                *acc += v;
            }
            let in_start = t < part;
            let in_end = t + part >= trees;
            if !(in_start || in_end) {
                continue;
            }
            let ranks = rank_pct(&mse_loss(y, &pred));
            if in_start {
                start.iter_mut().zip(&ranks).for_each(|(s, r)| *s += r);
            }
            if in_end {
                end.iter_mut().zip(&ranks).for_each(|(s, r)| *s += r);
            }
        }
        let part = part.min(trees) as f64;
        start.iter_mut().for_each(|s| *s /= part);
        end.iter_mut().for_each(|s| *s /= part);
        Ok(LossCurve { start, end })
    }
}

/// `sample_reweight`: h = alpha1 * rank(-loss) + alpha2 * rank(l_end / l_start), cut into
/// `bins_sr` bins; a sample's weight is `1 / (decay^k * mean h of its bin + 0.1)`.
fn sample_reweight(cfg: &DensConfig, curve: &LossCurve, loss: &[f64], decay_k: f64) -> Vec<f64> {
    let neg: Vec<f64> = loss.iter().map(|l| -l).collect();
    let h1 = rank_pct(&neg);
    let ratio: Vec<f64> = curve
        .end
        .iter()
        .zip(&curve.start)
        .map(|(e, s)| e / s)
        .collect();
    let h2 = rank_pct(&ratio);
    let h: Vec<f64> = h1
        .iter()
        .zip(&h2)
        .map(|(a, b)| cfg.alpha1 * a + cfg.alpha2 * b)
        .collect();
    let bins = cut(&h, cfg.bins_sr);
    let mut sum = vec![0f64; cfg.bins_sr];
    let mut cnt = vec![0usize; cfg.bins_sr];
    for (b, v) in bins.iter().zip(&h) {
        if let Some(b) = b {
            sum[*b] += v;
            cnt[*b] += 1;
        }
    }
    bins.iter()
        .map(|b| match b {
            Some(b) => 1.0 / (decay_k * (sum[*b] / cnt[*b] as f64) + 0.1),
            None => 0.0,
        })
        .collect()
}

/// The g-value of every feature: shuffle its column, predict with the ensemble so far (sub-
/// models averaged, each on its own features), and compare the losses with the unshuffled
/// ones: `mean(d) / (std(d) + 1e-7)` of `d = loss_shuffled - loss`. One permutation per
/// feature, drawn in feature order.
fn g_values(
    subs: &[SubModel],
    train: &DensData,
    loss_values: &[f64],
    rng: &mut Rng,
) -> Result<Vec<f64>> {
    let n = train.y.len();
    let nf = train.columns.len();
    let m = subs.len() as f64;
    // Each sub-model's prediction on unshuffled data: what it adds for features it ignores.
    let mut base = Vec::with_capacity(subs.len());
    for s in subs {
        base.push(
            s.model
                .predict(&rows_of(&train.columns, &s.features), s.features.len())?,
        );
    }
    let mut g = vec![0f64; nf];
    for block in (0..nf).collect::<Vec<_>>().chunks(FS_BLOCK) {
        let perms: Vec<Vec<usize>> = block.iter().map(|_| rng.permutation(n)).collect();
        let mut preds = vec![vec![0f64; n]; block.len()];
        for (s, base_s) in subs.iter().zip(&base) {
            let k = s.features.len();
            let mut x: Option<Vec<f32>> = None;
            for (bi, &f) in block.iter().enumerate() {
                let p = match s.features.iter().position(|&sf| sf == f) {
                    None => None,
                    Some(pos) => {
                        let x = x.get_or_insert_with(|| rows_of(&train.columns, &s.features));
                        let col = &train.columns[f];
                        for (r, &src) in perms[bi].iter().enumerate() {
                            x[r * k + pos] = col[src];
                        }
                        let p = s.model.predict(x, k)?;
                        for (r, &v) in col.iter().enumerate() {
                            x[r * k + pos] = v;
                        }
                        Some(p)
                    }
                };
                let p = p.as_deref().unwrap_or(base_s);
                for (acc, v) in preds[bi].iter_mut().zip(p) {
                    *acc += v / m;
                }
            }
        }
        for (bi, &f) in block.iter().enumerate() {
            let loss_feat = mse_loss(&train.y, &preds[bi]);
            let d: Vec<f64> = loss_feat
                .iter()
                .zip(loss_values)
                .map(|(a, b)| a - b)
                .collect();
            let mean = d.iter().sum::<f64>() / d.len() as f64;
            let var = d.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / d.len() as f64;
            let gv = mean / (var.sqrt() + 1e-7);
            // A feature whose g-value is undefined counts as neutral (Qlib's NaN -> 0).
            g[f] = if gv.is_nan() { 0.0 } else { gv };
        }
    }
    Ok(g)
}

/// `feature_selection`'s sampling: g-values cut into `bins_fs` bins; from the non-empty bins,
/// highest first, `ceil(sample_ratios[i] * size)` features at random.
fn select_features(cfg: &DensConfig, g: &[f64], rng: &mut Rng) -> Vec<usize> {
    let bins = cut(g, cfg.bins_fs);
    let mut kept = Vec::new();
    let mut rank = 0;
    for b in (0..cfg.bins_fs).rev() {
        let members: Vec<usize> = (0..g.len()).filter(|&f| bins[f] == Some(b)).collect();
        if members.is_empty() {
            continue;
        }
        let take = (cfg.sample_ratios[rank] * members.len() as f64).ceil() as usize;
        kept.extend(rng.choose(&members, take));
        rank += 1;
    }
    kept.sort_unstable();
    kept
}

/// The saved form of a DoubleEnsemble (`model.dens.json`).
#[derive(Serialize, Deserialize)]
struct Saved {
    format: String,
    n_features: usize,
    sub_weights: Vec<f64>,
    sub_models: Vec<SavedSub>,
}

#[derive(Serialize, Deserialize)]
struct SavedSub {
    /// Indices into the ensemble's features.
    features: Vec<usize>,
    /// Names of those features (for people reading the file).
    feature_names: Vec<String>,
    /// LightGBM's model text (the kept trees).
    lightgbm: String,
}

const SAVED_FORMAT: &str = "qtask.DEnsembleModel.v1";

impl DensModel {
    /// `predict`: the sub-models' predictions, each on its own features, weighted by
    /// `sub_weights` and divided by their sum.
    pub fn predict(&self, x: &[f32], n_features: usize) -> Result<Vec<f64>> {
        if n_features != self.n_features {
            return Err(ModelError::Invalid(format!(
                "the DoubleEnsemble reads {} features, the data has {n_features}",
                self.n_features
            )));
        }
        let rows = x.len() / n_features.max(1);
        let mut out = vec![0f64; rows];
        for (s, w) in self.subs.iter().zip(&self.sub_weights) {
            let k = s.features.len();
            let mut xs = vec![0f32; rows * k];
            for r in 0..rows {
                for (j, &f) in s.features.iter().enumerate() {
                    xs[r * k + j] = x[r * n_features + f];
                }
            }
            let p = s.model.predict(&xs, k)?;
            for (o, v) in out.iter_mut().zip(&p) {
                *o += v * w;
            }
        }
        let total: f64 = self.sub_weights.iter().sum();
        out.iter_mut().for_each(|o| *o /= total);
        Ok(out)
    }

    /// The JSON document saved as the model artifact.
    pub fn to_json(&self, feature_names: &[String]) -> Result<Vec<u8>> {
        let saved = Saved {
            format: SAVED_FORMAT.into(),
            n_features: self.n_features,
            sub_weights: self.sub_weights.clone(),
            sub_models: self
                .subs
                .iter()
                .map(|s| {
                    Ok(SavedSub {
                        features: s.features.clone(),
                        feature_names: s
                            .features
                            .iter()
                            .map(|&f| feature_names.get(f).cloned().unwrap_or_default())
                            .collect(),
                        lightgbm: s.model.to_text()?,
                    })
                })
                .collect::<Result<_>>()?,
        };
        serde_json::to_vec(&saved).map_err(|e| ModelError::Invalid(format!("DEnsembleModel: {e}")))
    }

    /// Loads what [`DensModel::to_json`] wrote.
    pub fn from_json(bytes: &[u8]) -> Result<DensModel> {
        let saved: Saved = serde_json::from_slice(bytes)
            .map_err(|e| ModelError::Invalid(format!("not a saved DoubleEnsemble: {e}")))?;
        if saved.format != SAVED_FORMAT {
            return Err(ModelError::Invalid(format!(
                "format `{}`, expected `{SAVED_FORMAT}`",
                saved.format
            )));
        }
        if saved.sub_weights.len() != saved.sub_models.len() {
            return Err(ModelError::Invalid(format!(
                "{} sub_weights for {} sub-models",
                saved.sub_weights.len(),
                saved.sub_models.len()
            )));
        }
        let mut subs = Vec::new();
        for (i, s) in saved.sub_models.into_iter().enumerate() {
            if let Some(f) = s.features.iter().find(|&&f| f >= saved.n_features) {
                return Err(ModelError::Invalid(format!(
                    "sub-model {i} reads feature {f} of {}",
                    saved.n_features
                )));
            }
            let model = LgbModel::from_text(&s.lightgbm)?;
            let n = model.booster.num_features()?;
            if n != s.features.len() {
                return Err(ModelError::Invalid(format!(
                    "sub-model {i} reads {n} features, its list has {}",
                    s.features.len()
                )));
            }
            subs.push(SubModel {
                model,
                features: s.features,
            });
        }
        Ok(DensModel {
            subs,
            sub_weights: saved.sub_weights,
            n_features: saved.n_features,
        })
    }

    /// `get_feature_importance`: per feature, the sub-models' split counts and gains weighted
    /// by `sub_weights` and summed.
    pub fn importance(&self) -> Result<(Vec<f64>, Vec<f64>)> {
        let (mut split, mut gain) = (vec![0.0; self.n_features], vec![0.0; self.n_features]);
        for (s, w) in self.subs.iter().zip(&self.sub_weights) {
            let (sp, ga) = s.model.importance()?;
            for (j, &f) in s.features.iter().enumerate() {
                split[f] += sp[j] * w;
                gain[f] += ga[j] * w;
            }
        }
        Ok((split, gain))
    }
}
