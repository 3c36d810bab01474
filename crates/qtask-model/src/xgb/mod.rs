//! Qlib's `XGBModel` (`qlib.contrib.model.xgboost`): every kwarg is an XGBoost parameter, and
//! training is `xgb.train(params, dtrain, num_boost_round=1000, evals=[(dtrain, "train"),
//! (dvalid, "valid")], early_stopping_rounds=50)` as Qlib's `fit` calls it. As there, the model
//! keeps every round it trained (early stopping only stops; prediction uses all trees).

pub mod ffi;

use std::time::{Duration, Instant};

use serde_json::{Map, Value};

pub use ffi::{Booster, DMatrix, LIB_ENV, library};

use crate::error::{ModelError, Result};
use crate::lgb::TrainLog;

/// `XGBModel`'s configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct XgbConfig {
    /// XGBoost parameters in the task's order, values as Python's `str(value)` writes them.
    pub params: Vec<(String, String)>,
    /// Maximum boosting rounds (Qlib's `fit` default: 1000).
    pub num_boost_round: usize,
    /// Stop after this many rounds without improvement on the last evaluation set (0: never).
    pub early_stopping_rounds: usize,
}

/// Python's `str()` of a YAML scalar, which is what `Booster.set_param` hands XGBoost.
fn python_str(key: &str, v: &Value) -> Result<String> {
    Ok(match v {
        Value::String(s) => s.clone(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => n.to_string(),
        _ => {
            return Err(ModelError::Invalid(format!(
                "XGBModel kwarg `{key}`: expected a number, string or bool, got {v}"
            )));
        }
    })
}

fn rounds(key: &str, v: &Value) -> Result<usize> {
    v.as_u64()
        .or_else(|| {
            v.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                .map(|f| f as u64)
        })
        .map(|n| n as usize)
        .ok_or_else(|| {
            ModelError::Invalid(format!(
                "XGBModel kwarg `{key}`: expected a whole number, got {v}"
            ))
        })
}

impl XgbConfig {
    /// Reads Qlib's `XGBModel(**kwargs)`: each kwarg becomes an XGBoost parameter, as Qlib
    /// passes them (so `n_estimators`, a scikit-learn name, is ignored by XGBoost as in Qlib's
    /// benchmark). `num_boost_round` and `early_stopping_rounds` are `fit` arguments in Qlib,
    /// which a task cannot set; qtask reads them from the kwargs instead (XGBoost would ignore
    /// them as parameters). A list value (e.g. `eval_metric: [rmse, mae]`) sets the parameter
    /// once per item, as XGBoost's Python package does.
    pub fn from_kwargs(kwargs: &Map<String, Value>) -> Result<XgbConfig> {
        let mut cfg = XgbConfig {
            params: Vec::new(),
            num_boost_round: 1000,
            early_stopping_rounds: 50,
        };
        for (k, v) in kwargs {
            match (k.as_str(), v) {
                ("num_boost_round", _) => cfg.num_boost_round = rounds(k, v)?,
                ("early_stopping_rounds", Value::Null) => cfg.early_stopping_rounds = 0,
                ("early_stopping_rounds", _) => cfg.early_stopping_rounds = rounds(k, v)?,
                // Python's set_param skips None values.
                (_, Value::Null) => {}
                ("eval_metric", Value::Array(items)) => {
                    for item in items {
                        cfg.params.push((k.clone(), python_str(k, item)?));
                    }
                }
                _ => cfg.params.push((k.clone(), python_str(k, v)?)),
            }
        }
        // xgboost.Booster always adds it: unknown parameters draw XGBoost's warning.
        cfg.params
            .push(("validate_parameters".into(), "True".into()));
        Ok(cfg)
    }
}

/// A trained XGBoost model.
pub struct XgbModel {
    /// The booster (every round trained).
    pub booster: Booster,
    /// The best round on the last evaluation set (1-based), when early stopping was on.
    pub best_iteration: Option<usize>,
}

/// Metrics higher-is-better as XGBoost's `EarlyStopping` decides when `maximize` is unset.
fn maximize(metric: &str) -> bool {
    const MAXIMIZE: &[&str] = &["auc", "aucpr", "pre", "pre@", "map", "ndcg"];
    metric != "mape" && MAXIMIZE.iter().any(|m| metric.starts_with(m))
}

/// `[3]\ttrain-rmse:0.5\tvalid-rmse:0.6` as `(data name, metric, value)` triples, parsed as
/// XGBoost's Python package parses it.
fn parse_eval(line: &str) -> Result<Vec<(String, String, f64)>> {
    line.split_whitespace()
        .skip(1)
        .map(|item| {
            let (name, score) = item.rsplit_once(':').ok_or_else(|| {
                ModelError::Xgboost(format!("unexpected evaluation text `{line}`"))
            })?;
            let (data, metric) = name.split_once('-').unwrap_or((name, ""));
            let v: f64 = score
                .parse()
                .map_err(|_| ModelError::Xgboost(format!("unexpected evaluation text `{line}`")))?;
            Ok((data.to_string(), metric.to_string(), v))
        })
        .collect()
}

/// Trains as Qlib's `XGBModel.fit`: `train` and `valid` are row-major features with one label
/// per row, freed once XGBoost has copied them. Each round evaluates both sets; early stopping
/// watches the last metric of the last set and records `best_iteration`/`best_score` on the
/// booster, as `xgb.train` does.
pub fn train(
    cfg: &XgbConfig,
    train: (Vec<f32>, Vec<f32>),
    valid: Option<(Vec<f32>, Vec<f32>)>,
    n_features: usize,
) -> Result<(XgbModel, TrainLog)> {
    let start = Instant::now();
    let dtrain = DMatrix::from_rows(&train.0, n_features, Some(&train.1))?;
    drop(train);
    let dvalid = valid
        .map(|(x, y)| DMatrix::from_rows(&x, n_features, Some(&y)))
        .transpose()?;
    crate::memory::release_freed();
    let mut sets: Vec<(&DMatrix, &str)> = vec![(&dtrain, "train")];
    if let Some(v) = &dvalid {
        sets.push((v, "valid"));
    }
    let cache: Vec<&DMatrix> = std::iter::once(&dtrain)
        .chain(sets.iter().map(|s| s.0))
        .collect();
    let mut booster = Booster::new(&cache)?;
    for (k, v) in &cfg.params {
        booster.set_param(k, v)?;
    }
    let mut log = TrainLog {
        metrics: Vec::new(),
        train: Vec::new(),
        valid: Vec::new(),
        best_iteration: 0,
        elapsed: Duration::ZERO,
    };
    // (best score, its round) of the watched metric; rounds since it last improved.
    let mut best: Option<(f64, usize)> = None;
    let mut stale = 0;
    for iter in 0..cfg.num_boost_round {
        booster.update(iter, &dtrain)?;
        let line = booster.eval(iter, &sets)?;
        let scores = parse_eval(&line)?;
        if log.metrics.is_empty() {
            log.metrics = scores
                .iter()
                .filter(|(d, _, _)| d == "train")
                .map(|(_, m, _)| m.clone())
                .collect();
        }
        let of = |data: &str| -> Vec<f64> {
            scores
                .iter()
                .filter(|(d, _, _)| d == data)
                .map(|s| s.2)
                .collect()
        };
        log.train.push(of("train"));
        if dvalid.is_some() {
            log.valid.push(of("valid"));
        }
        if cfg.early_stopping_rounds == 0 {
            continue;
        }
        let Some((_, metric, score)) = scores.last().cloned() else {
            return Err(ModelError::Xgboost(
                "early stopping needs an evaluation metric".into(),
            ));
        };
        let improved = match best {
            None => true,
            Some((b, _)) if maximize(&metric) => score > b,
            Some((b, _)) => b > score,
        };
        if improved {
            best = Some((score, iter));
            stale = 0;
            booster.set_attr("best_score", &python_float(score))?;
            booster.set_attr("best_iteration", &iter.to_string())?;
        } else {
            stale += 1;
        }
        if stale >= cfg.early_stopping_rounds {
            break;
        }
    }
    let done = booster.rounds()?;
    let best_iteration = best.map(|(_, i)| i + 1);
    log.best_iteration = best_iteration.unwrap_or(done);
    log.elapsed = start.elapsed();
    Ok((
        XgbModel {
            booster,
            best_iteration,
        },
        log,
    ))
}

/// Python's `str(float)` for the values XGBoost's evaluation prints (fixed notation).
fn python_float(v: f64) -> String {
    let s = format!("{v:?}");
    if s.contains('.') || s.contains('e') || s.contains("inf") || s.contains("NaN") {
        s
    } else {
        format!("{s}.0")
    }
}

impl XgbModel {
    /// Predictions for row-major `x`, with every round (as `Booster.predict` by default).
    pub fn predict(&self, x: &[f32], n_features: usize) -> Result<Vec<f64>> {
        let expected = self.booster.num_features()?;
        if n_features != expected {
            return Err(ModelError::Invalid(format!(
                "the XGBoost model reads {expected} features, the data has {n_features}"
            )));
        }
        if x.is_empty() {
            return Ok(Vec::new());
        }
        let m = DMatrix::from_rows(x, n_features, None)?;
        Ok(self
            .booster
            .predict(&m)?
            .into_iter()
            .map(f64::from)
            .collect())
    }

    /// XGBoost's JSON model.
    pub fn to_json(&self) -> Result<Vec<u8>> {
        self.booster.to_json()
    }

    /// Loads a model written by [`XgbModel::to_json`] (or by XGBoost's `save_model`).
    pub fn from_json(bytes: &[u8]) -> Result<XgbModel> {
        Ok(XgbModel {
            booster: Booster::from_bytes(bytes)?,
            best_iteration: None,
        })
    }

    /// Per feature, XGBoost's split counts (`weight`, Qlib's `get_feature_importance` default)
    /// and total gains; features no tree uses score 0.
    pub fn importance(&self, n_features: usize) -> Result<(Vec<f64>, Vec<f64>)> {
        let dense = |kind: &str| -> Result<Vec<f64>> {
            let mut v = vec![0.0; n_features];
            for (i, s) in self.booster.feature_score(kind)? {
                if let Some(slot) = v.get_mut(i) {
                    *slot = s;
                }
            }
            Ok(v)
        };
        Ok((dense("weight")?, dense("total_gain")?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kwargs_become_parameters_as_python_passes_them() {
        let kw = json!({"eval_metric": "rmse", "eta": 0.0421, "max_depth": 8,
                        "n_estimators": 647, "nthread": 20, "seed": null,
                        "early_stopping_rounds": 20});
        let cfg = XgbConfig::from_kwargs(kw.as_object().unwrap()).unwrap();
        assert_eq!(
            cfg.params,
            [
                ("eval_metric", "rmse"),
                ("eta", "0.0421"),
                ("max_depth", "8"),
                ("n_estimators", "647"),
                ("nthread", "20"),
                ("validate_parameters", "True"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()))
        );
        assert_eq!(cfg.num_boost_round, 1000);
        assert_eq!(cfg.early_stopping_rounds, 20);
        let kw = json!({"eval_metric": ["rmse", "mae"], "subsample": true});
        let cfg = XgbConfig::from_kwargs(kw.as_object().unwrap()).unwrap();
        assert_eq!(cfg.params[0], ("eval_metric".into(), "rmse".into()));
        assert_eq!(cfg.params[1], ("eval_metric".into(), "mae".into()));
        assert_eq!(cfg.params[2], ("subsample".into(), "True".into()));
        let err = XgbConfig::from_kwargs(json!({"eta": {"a": 1}}).as_object().unwrap())
            .err()
            .unwrap();
        assert!(err.to_string().contains("`eta`"), "{err}");
    }

    #[test]
    fn evaluation_lines_parse_as_python_parses_them() {
        let got = parse_eval("[12]\ttrain-rmse:0.98000000000000000\tvalid-ndcg@5-:0.5").unwrap();
        assert_eq!(got[0], ("train".into(), "rmse".into(), 0.98));
        assert_eq!(got[1], ("valid".into(), "ndcg@5-".into(), 0.5));
        assert!(maximize("ndcg@5-") && maximize("auc") && !maximize("mape"));
        assert!(!maximize("rmse") && !maximize("mae"));
    }
}
