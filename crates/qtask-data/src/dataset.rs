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
    pub segments: BTreeMap<String, (Option<NaiveDate>, Option<NaiveDate>)>,
}

impl DatasetH {
    /// Builds a dataset from Qlib's dataset block
    /// (`{"class": "DatasetH", "kwargs": {"handler": {...}, "segments": {...}}}`).
    pub fn from_value(
        provider: &Provider,
        v: &Value,
        cache: Option<&FeatureCache>,
        tick: &(dyn Fn() + Sync),
    ) -> Result<DatasetH> {
        let kwargs = v.get("kwargs").unwrap_or(v);
        let handler_v = kwargs
            .get("handler")
            .ok_or_else(|| DataError::Invalid("dataset config has no kwargs.handler".into()))?;
        let seg_v = kwargs
            .get("segments")
            .and_then(Value::as_object)
            .ok_or_else(|| {
                DataError::Invalid("dataset config has no kwargs.segments map".into())
            })?;
        let mut segments = BTreeMap::new();
        for (name, range) in seg_v {
            let bad = || {
                DataError::Invalid(format!(
                    "segment `{name}`: expected [start, end] dates, got {range}"
                ))
            };
            let arr = range.as_array().filter(|a| a.len() == 2).ok_or_else(bad)?;
            let d = |x: &Value| -> Result<Option<NaiveDate>> {
                match x {
                    Value::Null => Ok(None),
                    Value::String(s) => parse_date(s).map(Some).ok_or_else(bad),
                    _ => Err(bad()),
                }
            };
            segments.insert(name.clone(), (d(&arr[0])?, d(&arr[1])?));
        }
        let config = HandlerConfig::from_value(handler_v)?;
        let handler = Handler::load(provider, &config, cache, tick)?;
        Ok(DatasetH { handler, segments })
    }

    /// The rows of one segment from the chosen processed data (Qlib's
    /// `prepare(segment, col_set=["feature", "label"], data_key=...)`).
    pub fn prepare(&self, segment: &str, key: DataKey) -> Result<Prepared> {
        let (s, e) = self.segment(segment)?;
        let nf = self.handler.n_features;
        Ok(match key {
            DataKey::Raw => slice(self.handler.raw()?.as_ref(), nf, s, e),
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
        let frame = match key {
            DataKey::Raw => self.handler.raw()?.rows_between(s, e),
            DataKey::Infer => self.handler.infer().rows_between(s, e),
            DataKey::Learn => self.handler.learn(s, e),
        };
        Ok(Columns::from_frame(frame, self.handler.n_features))
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
