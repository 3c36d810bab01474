//! Qlib's `DatasetH`: a handler plus named segments, prepared as matrices for a model.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::cache::FeatureCache;
use crate::error::{DataError, Result};
use crate::frame::Frame;
use crate::handler::{Handler, HandlerConfig};
use crate::provider::{Provider, parse_date};

/// Which processed version of the data (Qlib's `data_key`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DataKey {
    /// `DK_R`: as computed.
    Raw,
    /// `DK_I`: after infer processors (Qlib's default for `prepare`).
    Infer,
    /// `DK_L`: after learn processors (what models train on).
    Learn,
}

/// One segment prepared for a model: rows in (datetime, instrument) order.
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    /// Per row: the day.
    pub datetime: Vec<NaiveDate>,
    /// Per row: the instrument.
    pub instruments: Vec<String>,
    /// Row-major features: `features[row * feature_names.len() + col]`.
    pub features: Vec<f32>,
    /// Feature column names.
    pub feature_names: Vec<String>,
    /// Row-major labels: `labels[row * label_names.len() + col]`.
    pub labels: Vec<f32>,
    /// Label column names.
    pub label_names: Vec<String>,
}

impl Prepared {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.datetime.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.datetime.is_empty()
    }

    /// The first label column (the usual single label).
    pub fn label(&self) -> Vec<f32> {
        let k = self.label_names.len();
        if k == 0 {
            return vec![f32::NAN; self.len()];
        }
        self.labels.iter().step_by(k).copied().collect()
    }
}

/// One segment column by column: what LightGBM reads without a row-major copy, taken over from
/// the processed frame without copying.
#[derive(Debug, Clone, PartialEq)]
pub struct Columns {
    /// Number of rows.
    pub rows: usize,
    /// One vector per feature column, `rows` long.
    pub features: Vec<Vec<f32>>,
    /// Feature column names.
    pub feature_names: Vec<String>,
    /// One vector per label column.
    pub labels: Vec<Vec<f32>>,
    /// Label column names.
    pub label_names: Vec<String>,
}

impl Columns {
    /// Takes a frame's columns over: the first `n_features` are features, the rest labels.
    pub fn from_frame(frame: Frame, n_features: usize) -> Columns {
        let rows = frame.len();
        let mut features = frame.data;
        let labels = features.split_off(n_features.min(features.len()));
        Columns {
            rows,
            features,
            feature_names: frame.columns[..n_features].to_vec(),
            labels,
            label_names: frame.columns[n_features..].to_vec(),
        }
    }
}

impl Prepared {
    /// A frame's rows, row-major: the first `n_features` columns are features, the rest labels.
    pub fn from_frame(frame: &Frame, n_features: usize) -> Prepared {
        slice(frame, n_features, None, None)
    }
}

/// A handler with named segments (`train`, `valid`, `test`, ...).
#[derive(Debug, Clone)]
pub struct DatasetH {
    /// The loaded, processed handler.
    pub handler: Handler,
    /// Inclusive date ranges by name; `None` is open.
    pub segments: Segments,
}

/// Named date ranges, inclusive (`None`: open).
pub type Segments = BTreeMap<String, (Option<NaiveDate>, Option<NaiveDate>)>;

/// Where the dataset sits in a task; errors name keys from here.
pub const DATASET_PATH: &str = "dataset";

/// A dataset block of a task, parsed and checked without reading any data.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetConfig {
    /// The handler.
    pub handler: HandlerConfig,
    /// The segments.
    pub segments: Segments,
}

fn bad(msg: String) -> DataError {
    DataError::Invalid(msg)
}

impl DatasetConfig {
    /// Parses Qlib's dataset block (`{"class": "DatasetH", "module_path": ..., "kwargs":
    /// {"handler": {...}, "segments": {...}}}`; a bare `{"handler", "segments"}` map is read as
    /// its kwargs). Every key is implemented or refused with an error naming it: another
    /// dataset class, `fetch_kwargs`, a segment that is not `[start, end]` dates or ends
    /// before it starts.
    pub fn from_value(v: &Value) -> Result<DatasetConfig> {
        let m = v.as_object().ok_or_else(|| {
            bad(format!(
                "{DATASET_PATH}: expected {{class: DatasetH, kwargs: {{handler, segments}}}}, got {v}"
            ))
        })?;
        let kwargs = if m.contains_key("kwargs") || m.contains_key("class") {
            if let Some(k) = m
                .keys()
                .find(|k| !matches!(k.as_str(), "class" | "module_path" | "kwargs"))
            {
                return Err(bad(format!(
                    "{DATASET_PATH}.{k}: unknown key (a dataset has class, module_path and kwargs)"
                )));
            }
            let class = m.get("class").and_then(Value::as_str).unwrap_or("DatasetH");
            let class = class.strip_prefix("qlib.data.dataset.").unwrap_or(class);
            if class != "DatasetH" {
                let why = if class == "TSDatasetH" {
                    "time-series samples feed neural models, which qtask runs with --exec"
                } else {
                    "qtask implements Qlib's DatasetH"
                };
                return Err(bad(format!(
                    "{DATASET_PATH}.class: `{class}` is refused ({why}); supported: DatasetH"
                )));
            }
            match m.get("module_path") {
                None | Some(Value::Null) => {}
                Some(Value::String(p)) if p == "qlib.data.dataset" => {}
                Some(other) => {
                    return Err(bad(format!(
                        "{DATASET_PATH}.module_path: `{other}` is refused: DatasetH is Qlib's \
                         (qlib.data.dataset)"
                    )));
                }
            }
            m.get("kwargs").and_then(Value::as_object).ok_or_else(|| {
                bad(format!(
                    "{DATASET_PATH}.kwargs: expected {{handler, segments}}"
                ))
            })?
        } else {
            m
        };
        let kp = |k: &str| format!("{DATASET_PATH}.kwargs.{k}");
        for k in kwargs.keys() {
            match k.as_str() {
                "handler" | "segments" => {}
                "fetch_kwargs" => match &kwargs[k] {
                    Value::Null => {}
                    Value::Object(f) if f.is_empty() => {}
                    other => {
                        return Err(bad(format!(
                            "{}: `{other}` is refused: qtask fetches segments as Qlib does by \
                             default",
                            kp(k)
                        )));
                    }
                },
                _ => {
                    return Err(bad(format!(
                        "{}: unknown keyword (DatasetH takes handler, segments, fetch_kwargs)",
                        kp(k)
                    )));
                }
            }
        }
        let handler_v = kwargs
            .get("handler")
            .ok_or_else(|| bad(format!("{}: missing", kp("handler"))))?;
        let seg_v = kwargs
            .get("segments")
            .and_then(Value::as_object)
            .ok_or_else(|| {
                bad(format!(
                    "{}: missing (a map of name: [start, end])",
                    kp("segments")
                ))
            })?;
        let mut segments = BTreeMap::new();
        for (name, range) in seg_v {
            let path = format!("{}.{name}", kp("segments"));
            let wrong = || bad(format!("{path}: expected [start, end] dates, got {range}"));
            let arr = range
                .as_array()
                .filter(|a| a.len() == 2)
                .ok_or_else(wrong)?;
            let d = |x: &Value| -> Result<Option<NaiveDate>> {
                match x {
                    Value::Null => Ok(None),
                    Value::String(s) => parse_date(s).map(Some).ok_or_else(wrong),
                    _ => Err(wrong()),
                }
            };
            let (s, e) = (d(&arr[0])?, d(&arr[1])?);
            if let (Some(s), Some(e)) = (s, e)
                && e < s
            {
                return Err(bad(format!("{path}: ends on {e}, before it starts on {s}")));
            }
            segments.insert(name.clone(), (s, e));
        }
        if segments.is_empty() {
            return Err(bad(format!("{}: no segment", kp("segments"))));
        }
        Ok(DatasetConfig {
            handler: HandlerConfig::from_value(handler_v)?,
            segments,
        })
    }
}

impl DatasetH {
    /// Builds a dataset from Qlib's dataset block (see [`DatasetConfig::from_value`]).
    pub fn from_value(
        provider: &Provider,
        v: &Value,
        cache: Option<&FeatureCache>,
        tick: &(dyn Fn() + Sync),
    ) -> Result<DatasetH> {
        let config = DatasetConfig::from_value(v)?;
        let handler = Handler::load(provider, &config.handler, cache, tick)?;
        Ok(DatasetH {
            handler,
            segments: config.segments,
        })
    }

    /// The rows of one segment from the chosen processed data (Qlib's
    /// `prepare(segment, col_set=["feature", "label"], data_key=...)`).
    pub fn prepare(&self, segment: &str, key: DataKey) -> Result<Prepared> {
        let (s, e) = self.segment(segment)?;
        let nf = self.handler.n_features;
        Ok(match key {
            DataKey::Raw => slice(
                self.handler.raw()?.as_ref(),
                self.handler.raw_n_features(),
                s,
                e,
            ),
            DataKey::Infer => slice(self.handler.infer(), nf, s, e),
            DataKey::Learn => slice(&self.handler.learn(s, e), nf, None, None),
        })
    }
}

impl DatasetH {
    /// The label columns of one segment (Qlib's `prepare(segment, col_set="label",
    /// data_key=...)`): `features` is empty, and raw labels need no features read.
    pub fn prepare_labels(&self, segment: &str, key: DataKey) -> Result<Prepared> {
        let (s, e) = self.segment(segment)?;
        let nf = self.handler.n_features;
        let labels = match key {
            DataKey::Raw => self.handler.raw_labels(s, e),
            DataKey::Infer => self.handler.infer().columns_between(nf, s, e),
            // Learn processors may drop rows by their features: process the segment whole.
            DataKey::Learn => self.handler.learn(s, e).columns_between(nf, None, None),
        };
        Ok(slice(&labels, 0, None, None))
    }

    /// Moves the rows of each `(segment, key)` request out of the dataset, as [`DatasetH::prepare`]
    /// would give them (as frames): the way to take what a model and its records read without
    /// holding the handler's data and the segments at once.
    pub fn into_frames(self, requests: &[(&str, DataKey)]) -> Result<Vec<Frame>> {
        let ranges = requests
            .iter()
            .map(|&(seg, key)| self.segment(seg).map(|(s, e)| (key, s, e)))
            .collect::<Result<Vec<_>>>()?;
        self.handler.into_frames(&ranges)
    }

    /// The rows of one segment, column by column (see [`Columns`]).
    pub fn prepare_columns(&self, segment: &str, key: DataKey) -> Result<Columns> {
        let (s, e) = self.segment(segment)?;
        let (frame, nf) = match key {
            DataKey::Raw => (
                self.handler.raw()?.rows_between(s, e),
                self.handler.raw_n_features(),
            ),
            DataKey::Infer => (
                self.handler.infer().rows_between(s, e),
                self.handler.n_features,
            ),
            DataKey::Learn => (self.handler.learn(s, e), self.handler.n_features),
        };
        Ok(Columns::from_frame(frame, nf))
    }

    fn segment(&self, segment: &str) -> Result<(Option<NaiveDate>, Option<NaiveDate>)> {
        self.segments.get(segment).copied().ok_or_else(|| {
            DataError::Invalid(format!(
                "unknown segment `{segment}` (have: {})",
                self.segments.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        })
    }
}

fn slice(frame: &Frame, nf: usize, s: Option<NaiveDate>, e: Option<NaiveDate>) -> Prepared {
    let rows: Vec<usize> = (0..frame.len())
        .filter(|&r| {
            let d = frame.datetime[r];
            s.is_none_or(|s| d >= s) && e.is_none_or(|e| d <= e)
        })
        .collect();
    let nl = frame.columns.len() - nf;
    let mut features = Vec::with_capacity(rows.len() * nf);
    let mut labels = Vec::with_capacity(rows.len() * nl);
    for &r in &rows {
        features.extend((0..nf).map(|c| frame.data[c][r]));
        labels.extend((nf..frame.columns.len()).map(|c| frame.data[c][r]));
    }
    Prepared {
        datetime: rows.iter().map(|&r| frame.datetime[r]).collect(),
        instruments: rows.iter().map(|&r| frame.symbol(r).to_string()).collect(),
        features,
        feature_names: frame.columns[..nf].to_vec(),
        labels,
        label_names: frame.columns[nf..].to_vec(),
    }
}
