//! The task's `model` block: Qlib class names to qtask models, fitting on a dataset's segments,
//! predicting rows, and saving to / loading from run artifacts.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::NaiveDate;
use qtask_data::dataset::{Columns, Prepared};
use qtask_data::frame::Frame;
use qtask_record::Run;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::dens::{self, DensConfig, DensData, DensModel};
use crate::error::{ModelError, Result};
use crate::lgb::{self, LgbConfig, LgbModel, Matrix, TrainLog};
use crate::linear::{self, LinearConfig, LinearFit};
use crate::xgb::{self, XgbConfig, XgbModel};

/// Model classes `task_train` knows.
pub const SUPPORTED_MODELS: &[&str] = &["LGBModel", "LinearModel", "XGBModel", "DEnsembleModel"];
/// The artifact holding a LightGBM model (LightGBM's own text format).
pub const LGB_ARTIFACT: &str = "model.txt";
/// The artifact holding a linear model's coefficients.
pub const LINEAR_ARTIFACT: &str = "model.json";
/// The artifact holding an XGBoost model (XGBoost's own JSON format, every round).
pub const XGB_ARTIFACT: &str = "model.xgb.json";
/// The artifact holding a DoubleEnsemble (sub-model weights, features and LightGBM texts).
pub const DENS_ARTIFACT: &str = "model.dens.json";
/// The artifact describing the saved model (class, features, iterations).
pub const META_ARTIFACT: &str = "model_meta.json";

/// A model configuration read from a task's `model` block.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelSpec {
    /// `LGBModel`.
    Lgb(LgbConfig),
    /// `LinearModel`.
    Linear(LinearConfig),
    /// `XGBModel`.
    Xgb(XgbConfig),
    /// `DEnsembleModel`.
    Dens(DensConfig),
}

/// Model metadata saved next to the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelMeta {
    /// Qlib class name.
    pub class: String,
    /// Feature columns, in the order the model reads them.
    pub feature_names: Vec<String>,
    /// LightGBM: the iteration kept (1-based); XGBoost: the best round on the valid segment
    /// (1-based), while the model keeps every round as Qlib's does.
    pub best_iteration: Option<usize>,
}

/// A fitted model.
pub enum Fitted {
    /// A LightGBM booster.
    Lgb(LgbModel),
    /// Linear coefficients.
    Linear(LinearFit),
    /// An XGBoost booster.
    Xgb(XgbModel),
    /// A DoubleEnsemble of LightGBM boosters.
    Dens(DensModel),
}

/// What fitting did.
#[derive(Debug, Clone)]
pub struct FitReport {
    /// Time inside the model library (LightGBM, XGBoost or the linear solver; for a
    /// DoubleEnsemble, the whole fit with its re-weighting and feature selection).
    pub fit_time: Duration,
    /// Rows trained on.
    pub train_rows: usize,
    /// LightGBM's or XGBoost's per-iteration log.
    pub log: Option<TrainLog>,
    /// Feature column names.
    pub feature_names: Vec<String>,
}

fn class_name(v: &Value) -> Result<&str> {
    v.get("class").and_then(Value::as_str).ok_or_else(|| {
        ModelError::Invalid(format!(
            "the model block needs a `class` ({}), got {v}",
            SUPPORTED_MODELS.join(", ")
        ))
    })
}

impl ModelSpec {
    /// Reads `{"class": ..., "module_path": ... (ignored), "kwargs": {...}}`.
    pub fn from_value(v: &Value) -> Result<ModelSpec> {
        let class = class_name(v)?;
        let empty = Map::new();
        let kwargs = match v.get("kwargs") {
            None | Some(Value::Null) => &empty,
            Some(Value::Object(m)) => m,
            Some(other) => {
                return Err(ModelError::Invalid(format!(
                    "{class}: `kwargs` must be a map, got {other}"
                )));
            }
        };
        match class {
            "LGBModel" => Ok(ModelSpec::Lgb(LgbConfig::from_kwargs(kwargs)?)),
            "LinearModel" => Ok(ModelSpec::Linear(
                LinearConfig::from_kwargs(kwargs)
                    .map_err(|e| ModelError::Invalid(format!("LinearModel: {e}")))?,
            )),
            "XGBModel" => Ok(ModelSpec::Xgb(XgbConfig::from_kwargs(kwargs)?)),
            "DEnsembleModel" => Ok(ModelSpec::Dens(DensConfig::from_kwargs(kwargs)?)),
            other => Err(ModelError::Invalid(
                crate::exec_only::message(other, v.get("module_path").and_then(Value::as_str))
                    .unwrap_or_else(|| {
                        format!(
                            "unknown model class `{other}` (supported: {})",
                            SUPPORTED_MODELS.join(", ")
                        )
                    }),
            )),
        }
    }

    /// The Qlib class name.
    pub fn class(&self) -> &'static str {
        match self {
            ModelSpec::Lgb(_) => "LGBModel",
            ModelSpec::Linear(_) => "LinearModel",
            ModelSpec::Xgb(_) => "XGBModel",
            ModelSpec::Dens(_) => "DEnsembleModel",
        }
    }

    /// The model's input from the learn frames of the `train` and `valid` segments (`None`:
    /// the dataset has no such segment), e.g. from
    /// [`DatasetH::into_frames`](qtask_data::dataset::DatasetH::into_frames). An empty segment
    /// is an error worded as Qlib's; `segments` names the dates in messages.
    pub fn learn_data(
        &self,
        train: Option<Frame>,
        valid: Option<Frame>,
        n_features: usize,
        segments: &Segments,
    ) -> Result<LearnData> {
        let check = |name: &str, f: Option<Frame>| match f {
            Some(f) if f.is_empty() => Err(empty_segment(segments, name)),
            other => Ok(other),
        };
        let train = check("train", train)?.ok_or_else(|| {
            ModelError::Invalid(format!(
                "{}: the dataset has no `train` segment",
                self.class()
            ))
        })?;
        let valid = check("valid", valid)?;
        Ok(match self {
            ModelSpec::Lgb(_) | ModelSpec::Dens(_) => {
                // Column by column: LightGBM reads that layout, and no row-major copy is made.
                let columns = |name: &str, f: Frame| {
                    let c = Columns::from_frame(f, n_features);
                    check_label(
                        &c.label_names,
                        c.labels.first().map_or(&[][..], |l| l),
                        name,
                    )?;
                    Ok::<_, ModelError>(c)
                };
                LearnData::Columns {
                    train: columns("train", train)?,
                    valid: valid.map(|v| columns("valid", v)).transpose()?,
                }
            }
            ModelSpec::Linear(_) | ModelSpec::Xgb(_) => LearnData::Rows {
                train: Prepared::from_frame(&train, n_features),
                valid: valid.map(|v| Prepared::from_frame(&v, n_features)),
            },
        })
    }

    /// Fits on the `train` segment, with `valid` for early stopping (LightGBM) or appended when
    /// `include_valid` (linear), as Qlib's models do; `data` comes from
    /// [`ModelSpec::learn_data`] of the same spec.
    pub fn fit(&self, data: LearnData) -> Result<(Fitted, FitReport)> {
        match (self, data) {
            (ModelSpec::Lgb(cfg), LearnData::Columns { train, valid }) => {
                let (rows, names) = (train.rows, train.feature_names.clone());
                let (model, log) = lgb::train(cfg, column_matrix(train), valid.map(column_matrix))?;
                Ok((
                    Fitted::Lgb(model),
                    FitReport {
                        fit_time: log.elapsed,
                        train_rows: rows,
                        feature_names: names,
                        log: Some(log),
                    },
                ))
            }
            (ModelSpec::Linear(cfg), LearnData::Rows { train, valid }) => {
                let mut y = single_label(&train, "train")?;
                let names = train.feature_names;
                let mut x = train.features;
                if cfg.include_valid
                    && let Some(v) = &valid
                {
                    x.extend_from_slice(&v.features);
                    y.extend(single_label(v, "valid")?);
                }
                let start = std::time::Instant::now();
                let fit = linear::fit(cfg, &x, names.len(), &y, &names)
                    .map_err(|e| ModelError::Data(format!("LinearModel: {e}")))?;
                Ok((
                    Fitted::Linear(fit),
                    FitReport {
                        fit_time: start.elapsed(),
                        train_rows: y.len(),
                        log: None,
                        feature_names: names,
                    },
                ))
            }
            (ModelSpec::Xgb(cfg), LearnData::Rows { train, valid }) => {
                let y = single_label(&train, "train")?;
                let rows = y.len();
                let valid = valid
                    .map(|v| Ok::<_, ModelError>((single_label(&v, "valid")?, v.features)))
                    .transpose()?
                    .map(|(y, x)| (x, y));
                let names = train.feature_names;
                let (model, log) = xgb::train(cfg, (train.features, y), valid, names.len())?;
                Ok((
                    Fitted::Xgb(model),
                    FitReport {
                        fit_time: log.elapsed,
                        train_rows: rows,
                        feature_names: names,
                        log: Some(log),
                    },
                ))
            }
            (ModelSpec::Dens(cfg), LearnData::Columns { train, valid }) => {
                let (rows, names) = (train.rows, train.feature_names.clone());
                let data = |mut c: Columns| DensData {
                    columns: std::mem::take(&mut c.features),
                    y: c.labels.swap_remove(0),
                };
                let start = std::time::Instant::now();
                let (model, _) = dens::train(cfg, &data(train), valid.map(data).as_ref())?;
                Ok((
                    Fitted::Dens(model),
                    FitReport {
                        fit_time: start.elapsed(),
                        train_rows: rows,
                        feature_names: names,
                        log: None,
                    },
                ))
            }
            (spec, _) => Err(ModelError::Invalid(format!(
                "{}: learn data prepared for another model",
                spec.class()
            ))),
        }
    }
}

/// The learn segments a model trains on, in the layout it reads.
pub enum LearnData {
    /// Column by column (LightGBM, DoubleEnsemble).
    Columns {
        /// The `train` segment.
        train: Columns,
        /// The `valid` segment, when the dataset has one.
        valid: Option<Columns>,
    },
    /// Row by row (linear models, XGBoost).
    Rows {
        /// The `train` segment.
        train: Prepared,
        /// The `valid` segment, when the dataset has one.
        valid: Option<Prepared>,
    },
}

/// Segment names to inclusive date ranges, as a dataset's
/// [`segments`](qtask_data::dataset::DatasetH::segments).
pub type Segments = BTreeMap<String, (Option<NaiveDate>, Option<NaiveDate>)>;

/// `[start, end]` of a segment for messages.
pub fn segment_text(segments: &Segments, name: &str) -> String {
    match segments.get(name) {
        Some((s, e)) => format!(
            "[{}, {}]",
            s.map_or("open".into(), |d| d.to_string()),
            e.map_or("open".into(), |d| d.to_string())
        ),
        None => "(missing)".into(),
    }
}

fn column_matrix(mut c: Columns) -> Matrix {
    Matrix {
        columns: std::mem::take(&mut c.features),
        y: c.labels.swap_remove(0),
        weight: None,
    }
}

fn empty_segment(segments: &Segments, name: &str) -> ModelError {
    ModelError::Data(format!(
        "Empty data from dataset, please check your dataset config: segment `{name}` {} has no \
         rows with a label",
        segment_text(segments, name)
    ))
}

/// The one label column of a segment; every value NaN is an error (nothing to learn).
fn single_label(p: &Prepared, segment: &str) -> Result<Vec<f32>> {
    let y = p.label();
    check_label(&p.label_names, &y, segment)?;
    Ok(y)
}

fn check_label(names: &[String], y: &[f32], segment: &str) -> Result<()> {
    if names.len() != 1 {
        return Err(ModelError::Invalid(format!(
            "the models support exactly one label column, the handler gives {} ({})",
            names.len(),
            names.join(", ")
        )));
    }
    if y.iter().all(|v| v.is_nan()) {
        return Err(ModelError::Data(format!(
            "the label `{}` is NaN on all {} rows of segment `{segment}`",
            names[0],
            y.len()
        )));
    }
    Ok(())
}

impl Fitted {
    /// Predictions for prepared rows (one score per row).
    pub fn predict(&self, rows: &Prepared) -> Result<Vec<f64>> {
        self.predict_rows(&rows.features, rows.feature_names.len())
    }

    /// Predictions for row-major features.
    pub fn predict_rows(&self, x: &[f32], n_features: usize) -> Result<Vec<f64>> {
        match self {
            Fitted::Lgb(m) => m.predict(x, n_features),
            Fitted::Linear(m) => {
                if m.coef.len() != n_features {
                    return Err(ModelError::Invalid(format!(
                        "the linear model has {} coefficients, the data {n_features} features",
                        m.coef.len()
                    )));
                }
                Ok(m.predict(x))
            }
            Fitted::Xgb(m) => m.predict(x, n_features),
            Fitted::Dens(m) => m.predict(x, n_features),
        }
    }

    /// Feature importance by name: split counts and total gains (LightGBM's; XGBoost's
    /// `weight` and `total_gain`; a DoubleEnsemble's sub-models' weighted by `sub_weights`).
    pub fn importance(&self, names: &[String]) -> Result<Option<Value>> {
        let (split, gain) = match self {
            Fitted::Lgb(m) => m.importance()?,
            Fitted::Xgb(m) => m.importance(names.len())?,
            Fitted::Dens(m) => m.importance()?,
            Fitted::Linear(_) => return Ok(None),
        };
        let rows: Vec<Value> = names
            .iter()
            .zip(split.iter().zip(&gain))
            .map(|(n, (s, g))| json!({"feature": n, "split": s, "gain": g}))
            .collect();
        Ok(Some(Value::Array(rows)))
    }

    /// Saves the model (`model.txt`, `model.json`, `model.xgb.json` or `model.dens.json`) and
    /// `model_meta.json` into the run.
    pub fn save(&self, run: &Run, feature_names: &[String]) -> Result<()> {
        let meta = match self {
            Fitted::Lgb(m) => {
                run.save_artifact_bytes(LGB_ARTIFACT, m.to_text()?.as_bytes())?;
                ModelMeta {
                    class: "LGBModel".into(),
                    feature_names: feature_names.to_vec(),
                    best_iteration: Some(m.best_iteration),
                }
            }
            Fitted::Linear(m) => {
                run.save_json(LINEAR_ARTIFACT, m)?;
                ModelMeta {
                    class: "LinearModel".into(),
                    feature_names: feature_names.to_vec(),
                    best_iteration: None,
                }
            }
            Fitted::Xgb(m) => {
                run.save_artifact_bytes(XGB_ARTIFACT, &m.to_json()?)?;
                ModelMeta {
                    class: "XGBModel".into(),
                    feature_names: feature_names.to_vec(),
                    best_iteration: m.best_iteration,
                }
            }
            Fitted::Dens(m) => {
                run.save_artifact_bytes(DENS_ARTIFACT, &m.to_json(feature_names)?)?;
                ModelMeta {
                    class: "DEnsembleModel".into(),
                    feature_names: feature_names.to_vec(),
                    best_iteration: None,
                }
            }
        };
        run.save_json(META_ARTIFACT, &meta)?;
        Ok(())
    }

    /// Loads the model a run saved.
    pub fn load(run: &Run) -> Result<(Fitted, ModelMeta)> {
        let bad = |artifact: &str, msg: String| ModelError::Artifact {
            run: run.id().to_string(),
            artifact: artifact.to_string(),
            msg,
        };
        let meta: ModelMeta = run
            .load_json(META_ARTIFACT)
            .map_err(|e| bad(META_ARTIFACT, e.to_string()))?;
        let fitted = match meta.class.as_str() {
            "LGBModel" => {
                let bytes = run
                    .load_artifact_bytes(LGB_ARTIFACT)
                    .map_err(|e| bad(LGB_ARTIFACT, e.to_string()))?;
                let text = String::from_utf8(bytes)
                    .map_err(|_| bad(LGB_ARTIFACT, "not UTF-8 text".into()))?;
                let m = LgbModel::from_text(&text).map_err(|e| bad(LGB_ARTIFACT, e.to_string()))?;
                let n = m
                    .booster
                    .num_features()
                    .map_err(|e| bad(LGB_ARTIFACT, e.to_string()))?;
                if n != meta.feature_names.len() {
                    return Err(bad(
                        LGB_ARTIFACT,
                        format!(
                            "the model reads {n} features, {META_ARTIFACT} lists {}",
                            meta.feature_names.len()
                        ),
                    ));
                }
                Fitted::Lgb(m)
            }
            "LinearModel" => Fitted::Linear(
                run.load_json(LINEAR_ARTIFACT)
                    .map_err(|e| bad(LINEAR_ARTIFACT, e.to_string()))?,
            ),
            "XGBModel" => {
                let bytes = run
                    .load_artifact_bytes(XGB_ARTIFACT)
                    .map_err(|e| bad(XGB_ARTIFACT, e.to_string()))?;
                let m =
                    XgbModel::from_json(&bytes).map_err(|e| bad(XGB_ARTIFACT, e.to_string()))?;
                let n = m
                    .booster
                    .num_features()
                    .map_err(|e| bad(XGB_ARTIFACT, e.to_string()))?;
                if n != meta.feature_names.len() {
                    return Err(bad(
                        XGB_ARTIFACT,
                        format!(
                            "the model reads {n} features, {META_ARTIFACT} lists {}",
                            meta.feature_names.len()
                        ),
                    ));
                }
                Fitted::Xgb(XgbModel {
                    best_iteration: meta.best_iteration,
                    ..m
                })
            }
            "DEnsembleModel" => {
                let bytes = run
                    .load_artifact_bytes(DENS_ARTIFACT)
                    .map_err(|e| bad(DENS_ARTIFACT, e.to_string()))?;
                let m =
                    DensModel::from_json(&bytes).map_err(|e| bad(DENS_ARTIFACT, e.to_string()))?;
                if m.n_features != meta.feature_names.len() {
                    return Err(bad(
                        DENS_ARTIFACT,
                        format!(
                            "the ensemble reads {} features, {META_ARTIFACT} lists {}",
                            m.n_features,
                            meta.feature_names.len()
                        ),
                    ));
                }
                Fitted::Dens(m)
            }
            other => return Err(bad(META_ARTIFACT, format!("unknown model class `{other}`"))),
        };
        Ok((fitted, meta))
    }
}
