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

/// One segment column by column: what LightGBM reads without a row-major copy, made without
/// holding two copies of the segment at once.
#[derive(Debug, Clone, PartialEq)]
pub struct Columns {
    /// Number of rows.
    pub rows: usize,
    /// Column-major features: feature `c` is `features[c * rows..(c + 1) * rows]`.
    pub features: Vec<f32>,
    /// Feature column names.
    pub feature_names: Vec<String>,
    /// One vector per label column.
    pub labels: Vec<Vec<f32>>,
    /// Label column names.
    pub label_names: Vec<String>,
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
            DataKey::Raw => slice(&self.handler.raw, nf, s, e),
            DataKey::Infer => slice(self.handler.infer(), nf, s, e),
            DataKey::Learn => slice(&self.handler.learn(s, e), nf, None, None),
        })
    }
}

impl DatasetH {
    /// The rows of one segment, column by column (see [`Columns`]).
    pub fn prepare_columns(&self, segment: &str, key: DataKey) -> Result<Columns> {
        let (s, e) = self.segment(segment)?;
        let nf = self.handler.n_features;
        let frame = match key {
            DataKey::Raw => self.handler.raw.rows_between(s, e),
            DataKey::Infer => self.handler.infer().rows_between(s, e),
            DataKey::Learn => self.handler.learn(s, e),
        };
        let rows = frame.len();
        let mut data = frame.data;
        let labels = data.split_off(nf.min(data.len()));
        let mut features = Vec::with_capacity(rows * nf);
        // Each column is freed as soon as it is copied, so the segment exists about once.
        for c in data.drain(..) {
            features.extend_from_slice(&c);
        }
        Ok(Columns {
            rows,
            features,
            feature_names: frame.columns[..nf].to_vec(),
            labels,
            label_names: frame.columns[nf..].to_vec(),
        })
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
