//! Qlib's `LGBModel`: LightGBM with Qlib's defaults (mse loss, 1000 rounds, early stopping after
//! 50 rounds without improvement on the valid segment) and LightGBM's Python semantics for early
//! stopping (the model keeps the best iteration).

mod ffi;

use std::time::{Duration, Instant};

use serde_json::{Map, Value};

pub use ffi::Booster;
use ffi::Dataset;

use crate::error::{ModelError, Result};

/// Aliases LightGBM's Python package accepts for the number of rounds (they override
/// `num_boost_round`).
const ROUND_ALIASES: &[&str] = &[
    "num_iterations",
    "num_iteration",
    "n_iter",
    "num_tree",
    "num_trees",
    "num_round",
    "num_rounds",
    "nrounds",
    "num_boost_round",
    "n_estimators",
    "max_iter",
];
/// Aliases of `early_stopping_round`.
const STOP_ALIASES: &[&str] = &[
    "early_stopping_round",
    "early_stopping_rounds",
    "early_stopping",
    "n_iter_no_change",
];

/// `LGBModel`'s configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct LgbConfig {
    /// LightGBM parameters as `key=value` pairs (objective, verbosity and every other kwarg).
    pub params: Vec<(String, String)>,
    /// Maximum boosting rounds.
    pub num_boost_round: usize,
    /// Stop after this many rounds without improvement on the valid segment.
    pub early_stopping_rounds: usize,
}

fn param_text(key: &str, v: &Value) -> Result<String> {
    Ok(match v {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(a) => a
            .iter()
            .map(|x| param_text(key, x))
            .collect::<Result<Vec<_>>>()?
            .join(","),
        _ => {
            return Err(ModelError::Invalid(format!(
                "LGBModel kwarg `{key}`: expected a number, string, bool or list, got {v}"
            )));
        }
    })
}

fn as_rounds(key: &str, v: &Value) -> Result<usize> {
    v.as_u64()
        .or_else(|| {
            v.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                .map(|f| f as u64)
        })
        .map(|n| n as usize)
        .ok_or_else(|| {
            ModelError::Invalid(format!(
                "LGBModel kwarg `{key}`: expected a whole number, got {v}"
            ))
        })
}

impl LgbConfig {
    /// Reads Qlib's `LGBModel(loss="mse", early_stopping_rounds=50, num_boost_round=1000, **kwargs)`.
    pub fn from_kwargs(kwargs: &Map<String, Value>) -> Result<LgbConfig> {
        LgbConfig::from_kwargs_with(kwargs, 1000, 50)
    }

    /// As [`LgbConfig::from_kwargs`] with other defaults for the rounds and early stopping
    /// (0: none), which LightGBM's aliases in the kwargs still override.
    pub fn from_kwargs_with(
        kwargs: &Map<String, Value>,
        num_boost_round: usize,
        early_stopping_rounds: usize,
    ) -> Result<LgbConfig> {
        let loss = match kwargs.get("loss") {
            None => "mse".to_string(),
            Some(Value::String(s)) if s == "mse" || s == "binary" => s.clone(),
            Some(v) => {
                return Err(ModelError::Invalid(format!(
                    "LGBModel: loss {v} is not supported (mse or binary)"
                )));
            }
        };
        let mut cfg = LgbConfig {
            params: vec![
                ("objective".into(), loss),
                ("verbosity".into(), "-1".into()),
            ],
            num_boost_round,
            early_stopping_rounds,
        };
        for (k, v) in kwargs {
            match k.as_str() {
                "loss" => {}
                k if ROUND_ALIASES.contains(&k) => cfg.num_boost_round = as_rounds(k, v)?,
                k if STOP_ALIASES.contains(&k) => cfg.early_stopping_rounds = as_rounds(k, v)?,
                "objective" => {
                    return Err(ModelError::Invalid(
                        "LGBModel: set the objective with `loss` (mse or binary)".into(),
                    ));
                }
                _ => {
                    let text = param_text(k, v)?;
                    match cfg.params.iter_mut().find(|(name, _)| name == k) {
                        Some(slot) => slot.1 = text,
                        None => cfg.params.push((k.clone(), text)),
                    }
                }
            }
        }
        Ok(cfg)
    }

    /// The parameter string LightGBM's C API takes.
    pub fn param_string(&self) -> String {
        self.params
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// One segment's rows for LightGBM, column by column, owned so they can be freed once
/// LightGBM has binned them (before boosting, when LightGBM's own memory peaks).
#[derive(Debug, Clone)]
pub struct Matrix {
    /// One vector per feature, each one value per row.
    pub columns: Vec<Vec<f32>>,
    /// One label per row.
    pub y: Vec<f32>,
    /// Per-row weights (`None`: all 1).
    pub weight: Option<Vec<f32>>,
}

/// What training did.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainLog {
    /// Metric names (e.g. `l2`).
    pub metrics: Vec<String>,
    /// Per iteration, the metrics on the training data.
    pub train: Vec<Vec<f64>>,
    /// Per iteration, the metrics on the valid data (empty without a valid segment).
    pub valid: Vec<Vec<f64>>,
    /// The iteration (1-based) the model keeps.
    pub best_iteration: usize,
    /// Time spent inside LightGBM (dataset construction and boosting).
    pub elapsed: Duration,
}

/// A trained LightGBM model with the number of trees it uses.
pub struct LgbModel {
    /// The booster.
    pub booster: Booster,
    /// Trees used for prediction (0 = all).
    pub best_iteration: usize,
}

/// Trains as `lightgbm.train(params, train, num_boost_round, valid_sets=[train, valid],
/// callbacks=[early_stopping(n)])` does: each iteration evaluates both sets, a valid metric that
/// has not improved for `n` rounds stops training, and the model keeps its best iteration (also
/// when all rounds ran).
pub fn train(
    cfg: &LgbConfig,
    train: Matrix,
    valid: Option<Matrix>,
) -> Result<(LgbModel, TrainLog)> {
    let start = Instant::now();
    let params = cfg.param_string();
    let train_ds = Dataset::from_columns(train.columns, &train.y, &params, None)?;
    // LightGBM's Python package drops weights that are all 1 (`Dataset.set_weight`).
    if let Some(w) = train
        .weight
        .as_deref()
        .filter(|w| w.iter().any(|&v| v != 1.0))
    {
        train_ds.set_weight(w)?;
    }
    let valid_ds = match valid {
        Some(v) => Some(Dataset::from_columns(
            v.columns,
            &v.y,
            &params,
            Some(&train_ds),
        )?),
        None => None,
    };
    // The bin sample and the columns are gone; boosting allocates LightGBM's histograms next.
    crate::memory::release_freed();
    let mut booster = Booster::new(&train_ds, &params)?;
    if let Some(v) = &valid_ds {
        booster.add_valid(v)?;
    }
    let metrics = booster.eval_names()?;
    // Metrics where larger is better, as LightGBM's early stopping decides.
    let higher_better: Vec<bool> = metrics
        .iter()
        .map(|m| {
            m.starts_with("auc")
                || m.starts_with("ndcg")
                || m.starts_with("map")
                || m == "average_precision"
        })
        .collect();
    let mut log = TrainLog {
        metrics: metrics.clone(),
        train: Vec::new(),
        valid: Vec::new(),
        best_iteration: 0,
        elapsed: Duration::ZERO,
    };
    let mut best: Vec<Option<(f64, usize)>> = vec![None; metrics.len()];
    let mut best_iter: Option<usize> = None;
    for iter in 0..cfg.num_boost_round {
        // A round that finds no split adds no tree; LightGBM's Python package goes on with the
        // next round all the same (another feature sample may split), and so does this loop.
        booster.update()?;
        log.train.push(booster.eval(0)?);
        if valid_ds.is_none() {
            continue;
        }
        let scores = booster.eval(1)?;
        for (i, &s) in scores.iter().enumerate() {
            let better = match best[i] {
                None => true,
                Some((b, _)) => {
                    if higher_better[i] {
                        s > b
                    } else {
                        s < b
                    }
                }
            };
            if better {
                best[i] = Some((s, iter));
            }
        }
        log.valid.push(scores);
        let last = iter + 1 == cfg.num_boost_round;
        // LightGBM checks the valid metrics in order; the first that stalls (or, at the last
        // round, the first metric) decides the iteration kept.
        let stop = best
            .iter()
            .flatten()
            .find(|(_, b)| cfg.early_stopping_rounds > 0 && iter - b >= cfg.early_stopping_rounds);
        if let Some(&(_, b)) = stop {
            best_iter = Some(b + 1);
            break;
        }
        if last {
            // Without early stopping LightGBM keeps every tree (`best_iteration` 0).
            if cfg.early_stopping_rounds > 0 {
                best_iter = best.first().copied().flatten().map(|(_, b)| b + 1);
            }
            break;
        }
    }
    let done = booster.current_iteration()?;
    log.best_iteration = best_iter.unwrap_or(done);
    log.elapsed = start.elapsed();
    drop(valid_ds);
    drop(train_ds);
    Ok((
        LgbModel {
            booster,
            best_iteration: log.best_iteration,
        },
        log,
    ))
}

impl LgbModel {
    /// Predictions for row-major `x` with the kept iterations.
    pub fn predict(&self, x: &[f32], n_features: usize) -> Result<Vec<f64>> {
        self.booster.predict(x, n_features, self.best_iteration)
    }

    /// Predictions for row-major `x` of `num` trees from tree `start` on (0-based), as
    /// `Booster.predict(x, start_iteration=start, num_iteration=num)`.
    pub fn predict_trees(
        &self,
        x: &[f32],
        n_features: usize,
        start: usize,
        num: usize,
    ) -> Result<Vec<f64>> {
        self.booster.predict_range(x, n_features, start, num)
    }

    /// LightGBM's model text (only the kept trees, as `save_model` in Python writes it).
    pub fn to_text(&self) -> Result<String> {
        self.booster.model_text(self.best_iteration)
    }

    /// Loads a model written by [`LgbModel::to_text`] (or by LightGBM itself).
    pub fn from_text(text: &str) -> Result<LgbModel> {
        Ok(LgbModel {
            booster: Booster::from_model_text(text)?,
            best_iteration: 0,
        })
    }

    /// Split counts and total gains per feature.
    pub fn importance(&self) -> Result<(Vec<f64>, Vec<f64>)> {
        Ok((
            self.booster.importance(self.best_iteration, false)?,
            self.booster.importance(self.best_iteration, true)?,
        ))
    }
}
