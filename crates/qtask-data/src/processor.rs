//! Qlib's data processors (`qlib.data.dataset.processor`), with fitted state kept in a
//! serde-serialisable form so it can be saved as a run artifact and re-applied.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{DataError, Result};
use crate::frame::Frame;
use crate::npstat;
use crate::provider::parse_date;

/// Which columns a processor works on (Qlib's `fields_group`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Group {
    /// Every column (Qlib's `None`).
    All,
    /// The feature columns.
    Feature,
    /// The label columns.
    Label,
}

/// The processors Qlib ships that qtask implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    /// Drops rows with a missing label (`fields_group`, default `label`).
    DropnaLabel,
    /// Drops rows with any missing feature (qtask's name for `DropnaProcessor` on features).
    DropnaFeature,
    /// `DropnaProcessor`: drops rows with a missing value in `fields_group` (default: all).
    Dropna,
    /// `DropCol`: drops the columns named in `col_list` (features and labels alike).
    DropCol,
    /// `FilterCol`: keeps, of `fields_group` (default `feature`), the columns in `col_list`.
    FilterCol,
    /// `TanhProcess`: `tanh(x - 1)` on every column whose name does not contain `LABEL`.
    TanhProcess,
    /// `CSZFillna`: NaN -> the mean of the column on the same day.
    CSZFillna,
    /// `HashStockFormat`: pyqlib's per-stock storage of the processed frame; values unchanged.
    HashStockFormat,
    /// Replaces NaN by `fill_value` (default 0).
    Fillna,
    /// Replaces ±inf by the mean of the column's finite values on the same day.
    ProcessInf,
    /// `(x - mean) / std` with mean and population std fitted on the fit period.
    ZScoreNorm,
    /// `(x - median) / (1.4826 * MAD)` fitted on the fit period, clipped to [-3, 3].
    RobustZScoreNorm,
    /// `(x - min) / (max - min)` fitted on the fit period.
    MinMaxNorm,
    /// Cross-sectional z-score per day (sample std).
    CSZScoreNorm,
    /// Cross-sectional percentile rank per day, centred and scaled by 3.46.
    CSRankNorm,
}

/// The module Qlib's processors live in; `module_path` may name it, nothing else.
pub const PROCESSOR_MODULE: &str = "qlib.data.dataset.processor";

/// The processor classes qtask implements (Qlib's names; `DropnaFeature` is qtask's).
pub const SUPPORTED_PROCESSORS: &[&str] = &[
    "DropnaLabel",
    "DropnaProcessor",
    "DropnaFeature",
    "DropCol",
    "FilterCol",
    "TanhProcess",
    "ProcessInf",
    "Fillna",
    "MinMaxNorm",
    "ZScoreNorm",
    "RobustZScoreNorm",
    "CSZScoreNorm",
    "CSRankNorm",
    "CSZFillna",
    "HashStockFormat",
];

/// Per-column statistics learned by `fit`: `x -> (x - shift) / scale`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fitted {
    /// Columns the statistics apply to.
    pub columns: Vec<String>,
    /// Subtracted from each column.
    pub shift: Vec<f64>,
    /// Divides each column.
    pub scale: Vec<f64>,
}

/// One configured processor, with its fitted state once fitted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Processor {
    /// What it does.
    pub kind: Kind,
    /// Which columns.
    pub fields_group: Group,
    /// Start of the fit period (fitted processors).
    pub fit_start_time: Option<NaiveDate>,
    /// End of the fit period (fitted processors).
    pub fit_end_time: Option<NaiveDate>,
    /// `Fillna`'s value.
    pub fill_value: f64,
    /// `RobustZScoreNorm`'s clipping to [-3, 3].
    pub clip_outlier: bool,
    /// `CSZScoreNorm`'s method: `zscore` or `robust`.
    pub method: String,
    /// `DropCol`/`FilterCol`'s column names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub col_list: Vec<String>,
    /// Learned statistics (after `fit`).
    pub fitted: Option<Fitted>,
}

impl Processor {
    /// Parses a Qlib processor config: `{"class": "CSZScoreNorm", "kwargs": {...}}` or just a
    /// class name. The handler's fit period fills in `fit_start_time`/`fit_end_time` when the
    /// processor needs one, as Qlib does. A keyword the class does not take, a value of the
    /// wrong type or a `module_path` other than Qlib's processor module is an error naming it.
    pub fn from_config(
        v: &Value,
        fit_start: Option<NaiveDate>,
        fit_end: Option<NaiveDate>,
    ) -> Result<Processor> {
        let (class, kwargs) = match v {
            Value::String(s) => (s.as_str(), Value::Null),
            Value::Object(m) => {
                for k in m.keys() {
                    if !matches!(k.as_str(), "class" | "module_path" | "kwargs") {
                        return Err(DataError::Invalid(format!(
                            "processor {v}: unknown key `{k}` (a processor has class, \
                             module_path and kwargs)"
                        )));
                    }
                }
                let class = m
                    .get("class")
                    .and_then(Value::as_str)
                    .ok_or_else(|| DataError::Invalid(format!("processor {v} has no \"class\"")))?;
                match m.get("module_path") {
                    None | Some(Value::Null) => {}
                    Some(Value::String(mp)) if mp == PROCESSOR_MODULE => {}
                    Some(other) => {
                        return Err(DataError::Invalid(format!(
                            "processor {class}: module_path {other} is refused: qtask runs \
                             Qlib's own processors ({PROCESSOR_MODULE}), not Python code"
                        )));
                    }
                }
                (class, m.get("kwargs").cloned().unwrap_or(Value::Null))
            }
            _ => {
                return Err(DataError::Invalid(format!(
                    "processor must be a name or {{\"class\": ..., \"kwargs\": ...}}, got {v}"
                )));
            }
        };
        let class = match class.rsplit_once('.') {
            Some((module, name)) if module == PROCESSOR_MODULE => name,
            Some(_) => {
                return Err(DataError::Invalid(format!(
                    "processor `{class}` is refused: qtask runs Qlib's own processors \
                     ({PROCESSOR_MODULE}), not Python code"
                )));
            }
            None => class,
        };
        let (kind, allowed): (Kind, &[&str]) = match class {
            "DropnaLabel" => (Kind::DropnaLabel, &["fields_group"]),
            "DropnaFeature" => (Kind::DropnaFeature, &[]),
            "DropnaProcessor" => (Kind::Dropna, &["fields_group"]),
            "DropCol" => (Kind::DropCol, &["col_list"]),
            "FilterCol" => (Kind::FilterCol, &["fields_group", "col_list"]),
            "TanhProcess" => (Kind::TanhProcess, &[]),
            "ProcessInf" => (Kind::ProcessInf, &[]),
            "Fillna" => (Kind::Fillna, &["fields_group", "fill_value"]),
            "MinMaxNorm" => (
                Kind::MinMaxNorm,
                &["fit_start_time", "fit_end_time", "fields_group"],
            ),
            "ZScoreNorm" => (
                Kind::ZScoreNorm,
                &["fit_start_time", "fit_end_time", "fields_group"],
            ),
            "RobustZScoreNorm" => (
                Kind::RobustZScoreNorm,
                &[
                    "fit_start_time",
                    "fit_end_time",
                    "fields_group",
                    "clip_outlier",
                ],
            ),
            "CSZScoreNorm" => (Kind::CSZScoreNorm, &["fields_group", "method"]),
            "CSRankNorm" => (Kind::CSRankNorm, &["fields_group"]),
            "CSZFillna" => (Kind::CSZFillna, &["fields_group"]),
            "HashStockFormat" => (Kind::HashStockFormat, &[]),
            "TimeRangeFlt" => {
                return Err(DataError::Invalid(
                    "processor TimeRangeFlt is an instrument processor (inst_processors), \
                     which qtask refuses"
                        .into(),
                ));
            }
            other => {
                return Err(DataError::Invalid(format!(
                    "unknown processor `{other}` (supported: {})",
                    SUPPORTED_PROCESSORS.join(", ")
                )));
            }
        };
        match &kwargs {
            Value::Null => {}
            Value::Object(m) => {
                if let Some(k) = m.keys().find(|k| !allowed.contains(&k.as_str())) {
                    return Err(DataError::Invalid(format!(
                        "{class}.{k}: unknown keyword ({class} takes {})",
                        if allowed.is_empty() {
                            "none".to_string()
                        } else {
                            allowed.join(", ")
                        }
                    )));
                }
            }
            other => {
                return Err(DataError::Invalid(format!(
                    "{class}.kwargs: expected a map, got {other}"
                )));
            }
        }
        let kw = |k: &str| kwargs.get(k).filter(|v| !v.is_null());
        let date = |k: &str| -> Result<Option<NaiveDate>> {
            match kw(k) {
                None => Ok(None),
                Some(v) => v.as_str().and_then(parse_date).map(Some).ok_or_else(|| {
                    DataError::Invalid(format!("{class}.{k}: `{v}` is not a YYYY-MM-DD date"))
                }),
            }
        };
        let group = |g: &str| match g {
            "feature" => Ok(Group::Feature),
            "label" => Ok(Group::Label),
            g => Err(DataError::Invalid(format!(
                "{class}.fields_group: unknown group `{g}` (feature or label)"
            ))),
        };
        let default_group = match kind {
            Kind::DropnaLabel => Group::Label,
            Kind::DropnaFeature | Kind::FilterCol => Group::Feature,
            _ => Group::All,
        };
        let fields_group = match kwargs.get("fields_group") {
            None => default_group,
            Some(Value::Null) => Group::All,
            Some(Value::String(g)) => group(g)?,
            // CSZScoreNorm normalises each group of a list in turn: column by column, so a
            // list is the union of its groups.
            Some(Value::Array(gs)) if kind == Kind::CSZScoreNorm && !gs.is_empty() => {
                let mut groups = Vec::new();
                for g in gs {
                    match g {
                        Value::String(g) => groups.push(group(g)?),
                        Value::Null => groups.push(Group::All),
                        other => {
                            return Err(DataError::Invalid(format!(
                                "{class}.fields_group: `{other}` is not a group name"
                            )));
                        }
                    }
                }
                if groups.iter().all(|g| *g == groups[0]) {
                    groups[0]
                } else {
                    Group::All
                }
            }
            Some(other) => {
                return Err(DataError::Invalid(format!(
                    "{class}.fields_group: expected feature, label or null, got {other}"
                )));
            }
        };
        let fitted_kind = matches!(
            kind,
            Kind::ZScoreNorm | Kind::RobustZScoreNorm | Kind::MinMaxNorm
        );
        let (fs, fe) = if fitted_kind {
            let fs = fit_start.or(date("fit_start_time")?);
            let fe = fit_end.or(date("fit_end_time")?);
            match (fs, fe) {
                (Some(s), Some(e)) if s > e => {
                    return Err(DataError::Invalid(format!(
                        "{class}: fit_start_time {s} is after fit_end_time {e}"
                    )));
                }
                (Some(_), Some(_)) => {}
                _ => {
                    return Err(DataError::Invalid(format!(
                        "{class} needs fit_start_time and fit_end_time (in the handler's kwargs)"
                    )));
                }
            }
            (fs, fe)
        } else {
            (None, None)
        };
        let method = match kw("method") {
            None => "zscore".to_string(),
            Some(Value::String(m)) if m == "zscore" || m == "robust" => m.clone(),
            Some(other) => {
                return Err(DataError::Invalid(format!(
                    "CSZScoreNorm.method: `{other}` is not zscore or robust"
                )));
            }
        };
        let fill_value = match kw("fill_value") {
            None => 0.0,
            Some(v) => v.as_f64().ok_or_else(|| {
                DataError::Invalid(format!("{class}.fill_value: `{v}` is not a number"))
            })?,
        };
        let clip_outlier = match kw("clip_outlier") {
            None => true,
            Some(v) => v.as_bool().ok_or_else(|| {
                DataError::Invalid(format!("{class}.clip_outlier: `{v}` is not true or false"))
            })?,
        };
        let col_list = match kw("col_list") {
            None => Vec::new(),
            Some(Value::Array(a)) if a.iter().all(Value::is_string) => a
                .iter()
                .map(|c| c.as_str().unwrap_or_default().to_string())
                .collect(),
            Some(other) => {
                return Err(DataError::Invalid(format!(
                    "{class}.col_list: expected a list of column names, got {other}"
                )));
            }
        };
        Ok(Processor {
            kind,
            fields_group,
            fit_start_time: fs,
            fit_end_time: fe,
            fill_value,
            clip_outlier,
            method,
            col_list,
            fitted: None,
        })
    }

    /// Whether it removes columns (`DropCol`, `FilterCol`).
    pub fn drops_columns(&self) -> bool {
        matches!(self.kind, Kind::DropCol | Kind::FilterCol)
    }

    /// The columns left after this processor, as `(names, number of features)`, from the
    /// columns it receives (`n_features` features first, then labels).
    pub fn columns_after(&self, names: &[String], n_features: usize) -> (Vec<String>, usize) {
        let keep = self.kept_columns(names, n_features);
        let kept: Vec<String> = keep.iter().map(|&c| names[c].clone()).collect();
        let nf = keep.iter().filter(|&&c| c < n_features).count();
        (kept, nf)
    }

    /// Indexes of the columns kept, in order.
    fn kept_columns(&self, names: &[String], n_features: usize) -> Vec<usize> {
        let all = 0..names.len();
        match self.kind {
            Kind::DropCol => all
                .filter(|&c| !self.col_list.contains(&names[c]))
                .collect(),
            Kind::FilterCol => {
                // Qlib keeps every column named like a column outside the group, and the
                // group's columns named in `col_list`.
                let group = self.group_range(names.len(), n_features);
                let outside: Vec<&String> = (0..names.len())
                    .filter(|c| !group.contains(c))
                    .map(|c| &names[c])
                    .collect();
                all.filter(|&c| outside.contains(&&names[c]) || self.col_list.contains(&names[c]))
                    .collect()
            }
            _ => all.collect(),
        }
    }

    /// Whether Qlib allows it among `infer_processors` (dropping rows by label does not).
    pub fn is_for_infer(&self) -> bool {
        self.kind != Kind::DropnaLabel
    }

    fn group_range(&self, n_columns: usize, n_features: usize) -> std::ops::Range<usize> {
        match self.fields_group {
            Group::All => 0..n_columns,
            Group::Feature => 0..n_features,
            Group::Label => n_features..n_columns,
        }
    }

    fn columns(&self, frame: &Frame, n_features: usize) -> std::ops::Range<usize> {
        self.group_range(frame.columns.len(), n_features)
    }

    /// Learns the statistics of fitted processors from the fit period of `frame`.
    pub fn fit(&mut self, frame: &Frame, n_features: usize) {
        let (Some(fs), Some(fe)) = (self.fit_start_time, self.fit_end_time) else {
            return;
        };
        if !matches!(
            self.kind,
            Kind::ZScoreNorm | Kind::RobustZScoreNorm | Kind::MinMaxNorm
        ) {
            return;
        }
        let rows: Vec<usize> = (0..frame.len())
            .filter(|&r| frame.datetime[r] >= fs && frame.datetime[r] <= fe)
            .collect();
        let cols = self.columns(frame, n_features);
        let mut fitted = Fitted {
            columns: frame.columns[cols.clone()].to_vec(),
            shift: Vec::new(),
            scale: Vec::new(),
        };
        // numpy's float32 statistics, as Qlib fits them on a float32 frame.
        for c in cols {
            let vals: Vec<f32> = rows.iter().map(|&r| frame.data[c][r]).collect();
            let (shift, scale) = match self.kind {
                Kind::ZScoreNorm => {
                    let (m, sd) = (npstat::nanmean(&vals), npstat::nanstd(&vals));
                    if sd == 0.0 { (0.0, 1.0) } else { (m, sd) }
                }
                Kind::RobustZScoreNorm => {
                    let med = npstat::nanmedian(&vals);
                    let dev: Vec<f32> = vals.iter().map(|v| (v - med).abs()).collect();
                    // Qlib adds EPS (1e-12) then scales by 1.4826, in float32.
                    let mad = npstat::nanmedian(&dev) + 1e-12;
                    (med, mad * 1.4826)
                }
                _ => {
                    let finite = vals.iter().copied().filter(|v| !v.is_nan());
                    let lo = finite.clone().fold(f32::INFINITY, f32::min);
                    let hi = finite.clone().fold(f32::NEG_INFINITY, f32::max);
                    if finite.count() == 0 {
                        (f32::NAN, f32::NAN)
                    } else if lo == hi {
                        (0.0, 1.0)
                    } else {
                        (lo, hi - lo)
                    }
                }
            };
            fitted.shift.push(shift as f64);
            fitted.scale.push(scale as f64);
        }
        self.fitted = Some(fitted);
    }

    /// Applies the processor to `frame` (sorted by datetime), in place; returns the number of
    /// feature columns left (only `DropCol` and `FilterCol` change it).
    pub fn apply(&self, frame: &mut Frame, n_features: usize) -> usize {
        let cols = self.columns(frame, n_features);
        match self.kind {
            Kind::DropCol | Kind::FilterCol => {
                let keep = self.kept_columns(&frame.columns, n_features);
                let nf = keep.iter().filter(|&&c| c < n_features).count();
                let mut data = std::mem::take(&mut frame.data);
                let mut columns = std::mem::take(&mut frame.columns);
                frame.data = keep.iter().map(|&c| std::mem::take(&mut data[c])).collect();
                frame.columns = keep
                    .iter()
                    .map(|&c| std::mem::take(&mut columns[c]))
                    .collect();
                return nf;
            }
            Kind::HashStockFormat => {}
            Kind::TanhProcess => {
                for (c, name) in frame.columns.iter().enumerate() {
                    if name.contains("LABEL") {
                        continue;
                    }
                    for x in frame.data[c].iter_mut() {
                        *x = ((*x - 1.0) as f64).tanh() as f32;
                    }
                }
            }
            Kind::CSZFillna => {
                let groups = frame.datetime_groups();
                for c in cols {
                    let col = &mut frame.data[c];
                    for g in &groups {
                        let vals: Vec<f64> = col[g.clone()]
                            .iter()
                            .filter(|x| !x.is_nan())
                            .map(|&x| x as f64)
                            .collect();
                        let mean = vals.iter().sum::<f64>() / vals.len() as f64;
                        for x in col[g.clone()].iter_mut().filter(|x| x.is_nan()) {
                            *x = mean as f32;
                        }
                    }
                }
            }
            Kind::DropnaLabel | Kind::DropnaFeature | Kind::Dropna => {
                let data = &frame.data;
                let keep: Vec<bool> = (0..frame.inst.len())
                    .map(|r| cols.clone().all(|c| !data[c][r].is_nan()))
                    .collect();
                frame.filter_rows(|r| keep[r]);
            }
            Kind::Fillna => {
                let v = self.fill_value as f32;
                for c in cols {
                    for x in frame.data[c].iter_mut().filter(|x| x.is_nan()) {
                        *x = v;
                    }
                }
            }
            Kind::ProcessInf => {
                let groups = frame.datetime_groups();
                for c in cols {
                    let col = &mut frame.data[c];
                    for g in &groups {
                        let finite: Vec<f64> = col[g.clone()]
                            .iter()
                            .filter(|x| !x.is_nan() && !x.is_infinite())
                            .map(|&x| x as f64)
                            .collect();
                        let mean = finite.iter().sum::<f64>() / finite.len() as f64;
                        for x in col[g.clone()].iter_mut().filter(|x| x.is_infinite()) {
                            *x = mean as f32;
                        }
                    }
                }
            }
            Kind::ZScoreNorm | Kind::RobustZScoreNorm | Kind::MinMaxNorm => {
                let Some(f) = &self.fitted else {
                    return n_features;
                };
                for (i, name) in f.columns.iter().enumerate() {
                    let Some(c) = frame.column_index(name) else {
                        continue;
                    };
                    let robust = self.kind == Kind::RobustZScoreNorm && self.clip_outlier;
                    // Float32 arithmetic, as numpy on a float32 frame with float32 statistics.
                    let (shift, scale) = (f.shift[i] as f32, f.scale[i] as f32);
                    for x in frame.data[c].iter_mut() {
                        let mut y = (*x - shift) / scale;
                        if robust {
                            y = y.clamp(-3.0, 3.0);
                        }
                        *x = y;
                    }
                }
            }
            Kind::CSZScoreNorm | Kind::CSRankNorm => {
                let groups = frame.datetime_groups();
                for c in cols {
                    let col = &mut frame.data[c];
                    for g in &groups {
                        let vals: Vec<f64> = col[g.clone()].iter().map(|&x| x as f64).collect();
                        let out = match self.kind {
                            Kind::CSRankNorm => cs_rank(&vals),
                            _ if self.method == "robust" => cs_robust(&vals),
                            _ => cs_zscore(&vals),
                        };
                        for (x, y) in col[g.clone()].iter_mut().zip(out) {
                            *x = y as f32;
                        }
                    }
                }
            }
        }
        n_features
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// `(x - mean) / std` over the non-missing values (sample std; one value gives NaN).
pub fn cs_zscore(x: &[f64]) -> Vec<f64> {
    let v: Vec<f64> = x.iter().copied().filter(|v| !v.is_nan()).collect();
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let sd = (v.iter().map(|u| (u - m) * (u - m)).sum::<f64>() / (n - 1.0)).sqrt();
    x.iter().map(|u| (u - m) / sd).collect()
}

/// Qlib's `robust_zscore`: `(x - median) / (1.4826 * median(|x - median|))`, clipped to ±3.
pub fn cs_robust(x: &[f64]) -> Vec<f64> {
    let med = median(x.iter().copied().filter(|v| !v.is_nan()).collect());
    let dev: Vec<f64> = x.iter().map(|u| u - med).collect();
    let mad = median(
        dev.iter()
            .filter(|v| !v.is_nan())
            .map(|v| v.abs())
            .collect(),
    );
    dev.iter()
        .map(|d| {
            let y = d / mad / 1.4826;
            if y.is_nan() { y } else { y.clamp(-3.0, 3.0) }
        })
        .collect()
}

/// `(rank(pct=True) - 0.5) * 3.46`, average ranks for ties, NaN kept.
pub fn cs_rank(x: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..x.len()).filter(|&i| !x[i].is_nan()).collect();
    idx.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let n = idx.len() as f64;
    let mut out = vec![f64::NAN; x.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && x[idx[j + 1]] == x[idx[i]] {
            j += 1;
        }
        let avg = (i + j + 2) as f64 / 2.0;
        for &k in &idx[i..=j] {
            out[k] = (avg / n - 0.5) * 3.46;
        }
        i = j + 1;
    }
    out
}
