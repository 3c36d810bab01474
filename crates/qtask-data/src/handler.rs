//! Qlib's data handlers (`Alpha158`, `Alpha360`, `DataHandlerLP` with a feature/label config)
//! from their task-config JSON, and the raw -> infer -> learn processing (Qlib's
//! `DataHandlerLP.process_data`).

use std::borrow::Cow;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::alpha::{DEFAULT_LABEL, DEFAULT_LABEL_NAME, alpha158, alpha360};
use crate::cache::FeatureCache;
use crate::dataset::DataKey;
use crate::error::{DataError, Result};
use crate::expr::Program;
use crate::features::{Query, compute};
use crate::frame::Frame;
use crate::processor::Processor;
use crate::provider::{Instruments, Provider, parse_date};

/// How learn data derives from infer data (Qlib's `process_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProcessType {
    /// Learn processors run on the output of infer processors (`append`, Qlib's default).
    Append,
    /// Learn processors run on the raw data (`independent`).
    Independent,
}

/// A handler configuration, parsed from Qlib's `{"class", "module_path", "kwargs"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HandlerConfig {
    /// `Alpha158`, `Alpha360` or `DataHandlerLP`.
    pub class: String,
    /// Instruments.
    pub instruments: Instruments,
    /// First day of data.
    pub start_time: Option<NaiveDate>,
    /// Last day of data.
    pub end_time: Option<NaiveDate>,
    /// Fit period start for fitted processors.
    pub fit_start_time: Option<NaiveDate>,
    /// Fit period end for fitted processors.
    pub fit_end_time: Option<NaiveDate>,
    /// Feature `(name, expression)` pairs.
    pub features: Vec<(String, String)>,
    /// Label `(name, expression)` pairs.
    pub labels: Vec<(String, String)>,
    /// Processors for inference data.
    pub infer_processors: Vec<Processor>,
    /// Processors for learning data.
    pub learn_processors: Vec<Processor>,
    /// How learn data derives from infer data.
    pub process_type: ProcessType,
}

fn date_kw(kwargs: &Value, key: &str) -> Result<Option<NaiveDate>> {
    match kwargs.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_str().and_then(parse_date).map(Some).ok_or_else(|| {
            DataError::Invalid(format!(
                "handler kwargs.{key}: `{v}` is not a YYYY-MM-DD date"
            ))
        }),
    }
}

/// Qlib's `fields_info`: a list of expressions (names = expressions) or `[exprs, names]`.
fn fields_info(v: &Value, what: &str) -> Result<Vec<(String, String)>> {
    let bad = || {
        DataError::Invalid(format!(
            "handler {what}: expected a list of expressions or [expressions, names], got {v}"
        ))
    };
    let arr = v.as_array().ok_or_else(bad)?;
    if arr.is_empty() {
        return Err(DataError::Invalid(format!(
            "handler {what}: the list is empty"
        )));
    }
    if arr.iter().all(Value::is_string) {
        return Ok(arr
            .iter()
            .map(|e| {
                let s = e.as_str().unwrap_or_default().to_string();
                (s.clone(), s)
            })
            .collect());
    }
    match arr.as_slice() {
        [Value::Array(exprs), Value::Array(names)] if exprs.len() == names.len() => exprs
            .iter()
            .zip(names)
            .map(|(e, n)| match (e.as_str(), n.as_str()) {
                (Some(e), Some(n)) => Ok((n.to_string(), e.to_string())),
                _ => Err(bad()),
            })
            .collect(),
        _ => Err(bad()),
    }
}

impl HandlerConfig {
    /// Parses a handler block of a task (`dataset.kwargs.handler`).
    pub fn from_value(v: &Value) -> Result<HandlerConfig> {
        let class_full = v.get("class").and_then(Value::as_str).ok_or_else(|| {
            DataError::Invalid("handler config has no \"class\" (e.g. \"Alpha158\")".into())
        })?;
        let class = class_full
            .rsplit('.')
            .next()
            .unwrap_or(class_full)
            .to_string();
        let kwargs = v.get("kwargs").cloned().unwrap_or(Value::Null);
        let instruments = match kwargs.get("instruments") {
            None | Some(Value::Null) => Instruments::Market("csi500".into()),
            Some(Value::String(s)) => Instruments::Market(s.clone()),
            Some(Value::Array(a)) if a.iter().all(Value::is_string) => Instruments::List(
                a.iter()
                    .map(|s| s.as_str().unwrap_or_default().to_string())
                    .collect(),
            ),
            Some(other) => {
                return Err(DataError::Invalid(format!(
                    "handler kwargs.instruments: expected a market name or a list of symbols, got {other}"
                )));
            }
        };
        let fit_start_time = date_kw(&kwargs, "fit_start_time")?;
        let fit_end_time = date_kw(&kwargs, "fit_end_time")?;
        // A DataHandlerLP carries its fields in data_loader.kwargs.config.
        let loader_cfg = kwargs.pointer("/data_loader/kwargs/config");
        let pick = |key: &str| {
            kwargs
                .get(key)
                .or_else(|| loader_cfg.and_then(|c| c.get(key)))
        };
        let default_features = match class.as_str() {
            "Alpha158" => Some(alpha158()),
            "Alpha360" => Some(alpha360()),
            "DataHandlerLP" | "DataHandler" => None,
            other => {
                return Err(DataError::Invalid(format!(
                    "unknown handler class `{other}` (supported: Alpha158, Alpha360, DataHandlerLP)"
                )));
            }
        };
        let features = match (pick("feature"), default_features) {
            (Some(v), _) => fields_info(v, "feature")?,
            (None, Some(d)) => d,
            (None, None) => {
                return Err(DataError::Invalid(format!(
                    "{class} needs a feature list (kwargs.feature or data_loader.kwargs.config.feature)"
                )));
            }
        };
        let labels = match pick("label") {
            Some(v) => fields_info(v, "label")?,
            None => vec![(DEFAULT_LABEL_NAME.to_string(), DEFAULT_LABEL.to_string())],
        };
        let procs = |key: &str, default: Value| -> Result<Vec<Processor>> {
            let list = kwargs.get(key).cloned().unwrap_or(default);
            let arr = list.as_array().cloned().ok_or_else(|| {
                DataError::Invalid(format!("handler kwargs.{key}: expected a list, got {list}"))
            })?;
            arr.iter()
                .map(|p| Processor::from_config(p, fit_start_time, fit_end_time))
                .collect()
        };
        let default_learn = serde_json::json!([
            {"class": "DropnaLabel"},
            {"class": "CSZScoreNorm", "kwargs": {"fields_group": "label"}}
        ]);
        let default_infer = if class == "Alpha360" {
            serde_json::json!([
                {"class": "ProcessInf", "kwargs": {}},
                {"class": "ZScoreNorm", "kwargs": {}},
                {"class": "Fillna", "kwargs": {}}
            ])
        } else {
            serde_json::json!([])
        };
        let infer_processors = procs("infer_processors", default_infer)?;
        if let Some(p) = infer_processors.iter().find(|p| !p.is_for_infer()) {
            return Err(DataError::Invalid(format!(
                "{:?} cannot be an infer processor (it drops rows by label)",
                p.kind
            )));
        }
        let learn_processors = procs("learn_processors", default_learn)?;
        let process_type = match kwargs.get("process_type").and_then(Value::as_str) {
            None | Some("append") => ProcessType::Append,
            Some("independent") => ProcessType::Independent,
            Some(o) => {
                return Err(DataError::Invalid(format!(
                    "handler kwargs.process_type: `{o}` is not append or independent"
                )));
            }
        };
        Ok(HandlerConfig {
            class,
            instruments,
            start_time: date_kw(&kwargs, "start_time")?,
            end_time: date_kw(&kwargs, "end_time")?,
            fit_start_time,
            fit_end_time,
            features,
            labels,
            infer_processors,
            learn_processors,
            process_type,
        })
    }

    /// Every `(name, expression)`: features first, then labels.
    pub fn all_fields(&self) -> Vec<(String, String)> {
        self.features.iter().chain(&self.labels).cloned().collect()
    }
}

/// A loaded and processed handler: raw, infer and learn frames (sorted by datetime, then
/// instrument), features first then labels.
#[derive(Debug, Clone)]
pub struct Handler {
    /// The configuration (with fitted processors after `load`).
    pub config: HandlerConfig,
    /// Number of feature columns (the rest are labels).
    pub n_features: usize,
    /// Data as computed from the expressions; only its label columns when infer processors
    /// took the features over (see [`Handler::raw`]).
    raw: Frame,
    /// After infer processors; empty when there are none (then [`Handler::infer`] is `raw`,
    /// which saves a copy of the largest table of a study).
    infer: Frame,
    /// Where the raw features are read again when `raw` kept only the labels.
    source: Option<RawSource>,
}

/// What the raw frame was computed from, to compute (or read from the cache) again.
#[derive(Debug, Clone)]
struct RawSource {
    provider: Provider,
    cache: Option<FeatureCache>,
}

/// The fields of `config` as computed (through `cache` when given), sorted by datetime.
fn load_raw(
    provider: &Provider,
    config: &HandlerConfig,
    cache: Option<&FeatureCache>,
    tick: &(dyn Fn() + Sync),
) -> Result<Frame> {
    let program = Program::compile(&config.all_fields())?;
    let q = Query {
        instruments: config.instruments.clone(),
        start: config.start_time,
        end: config.end_time,
    };
    let mut raw = match cache {
        Some(c) => c.get_or_compute(provider, &program, &q, tick)?,
        None => compute(provider, &program, &q, tick)?,
    };
    raw.sort_by_datetime();
    Ok(raw)
}

impl Handler {
    /// Computes the fields (through `cache` when given) and runs the processors, fitting the
    /// fitted ones on their fit period.
    pub fn load(
        provider: &Provider,
        config: &HandlerConfig,
        cache: Option<&FeatureCache>,
        tick: &(dyn Fn() + Sync),
    ) -> Result<Handler> {
        let raw = load_raw(provider, config, cache, tick)?;
        let mut h = Handler {
            config: config.clone(),
            n_features: config.features.len(),
            infer: Frame::default(),
            raw,
            source: None,
        };
        h.process(RawSource {
            provider: provider.clone(),
            cache: cache.cloned(),
        });
        Ok(h)
    }

    /// The data as computed from the expressions (Qlib's `DK_R`). When infer processors
    /// replaced the features in place, they are read again (from the feature cache when the
    /// handler was loaded through one): a handler keeps one copy of its features, not two.
    pub fn raw(&self) -> Result<Cow<'_, Frame>> {
        match &self.source {
            None => Ok(Cow::Borrowed(&self.raw)),
            Some(src) => {
                load_raw(&src.provider, &self.config, src.cache.as_ref(), &|| {}).map(Cow::Owned)
            }
        }
    }

    /// The label columns of the raw rows dated within `[start, end]` (no features are read).
    pub fn raw_labels(&self, start: Option<NaiveDate>, end: Option<NaiveDate>) -> Frame {
        let first = if self.source.is_some() {
            0
        } else {
            self.n_features
        };
        self.raw.columns_between(first, start, end)
    }

    /// The data after infer processors (what models predict on).
    pub fn infer(&self) -> &Frame {
        if self.config.infer_processors.is_empty() {
            &self.raw
        } else {
            &self.infer
        }
    }

    /// The frame learn processors start from.
    fn learn_base(&self) -> &Frame {
        match self.config.process_type {
            ProcessType::Append => self.infer(),
            ProcessType::Independent => &self.raw,
        }
    }

    fn process(&mut self, source: RawSource) {
        let nf = self.n_features;
        if !self.config.infer_processors.is_empty() {
            let mut infer = match self.config.process_type {
                // Learn data starts from the raw features: both copies are needed.
                ProcessType::Independent => self.raw.clone(),
                // Nothing reads the raw features again but a `DK_R` request, which reads
                // them anew; the raw labels stay (records store them).
                ProcessType::Append => {
                    let labels = self.raw.columns_between(nf, None, None);
                    self.source = Some(source);
                    std::mem::replace(&mut self.raw, labels)
                }
            };
            for p in &mut self.config.infer_processors {
                p.fit(&infer, nf);
                p.apply(&mut infer, nf);
            }
            self.infer = infer;
        }
        // Learn data is made per segment on demand (`learn`), not kept whole: every processor
        // works row by row or day by day once fitted, so processing a segment's days gives
        // the same rows as processing everything and slicing. Fitting needs only the fit
        // period, processed by the processors before it, in order.
        let fit_range = self
            .config
            .learn_processors
            .iter()
            .filter_map(|p| p.fit_start_time.zip(p.fit_end_time))
            .reduce(|a, b| (a.0.min(b.0), a.1.max(b.1)));
        if let Some((s, e)) = fit_range {
            let mut procs = std::mem::take(&mut self.config.learn_processors);
            let mut fit = self.learn_base().rows_between(Some(s), Some(e));
            for p in &mut procs {
                p.fit(&fit, nf);
                p.apply(&mut fit, nf);
            }
            self.config.learn_processors = procs;
        }
    }

    /// The learn data (after learn processors) of the days in `[start, end]` (`None`: open).
    pub fn learn(&self, start: Option<NaiveDate>, end: Option<NaiveDate>) -> Frame {
        let mut f = self.learn_base().rows_between(start, end);
        for p in &self.config.learn_processors {
            p.apply(&mut f, self.n_features);
        }
        f
    }

    /// Moves the rows of each `(key, start, end)` request out of the handler, as
    /// [`Handler::learn`] and friends would copy them. The handler's frames are split column
    /// by column, each freed once every request has its part: the largest table of a study
    /// never exists twice.
    pub fn into_frames(
        mut self,
        requests: &[(DataKey, Option<NaiveDate>, Option<NaiveDate>)],
    ) -> Result<Vec<Frame>> {
        let mut out: Vec<Option<Frame>> = vec![None; requests.len()];
        // Raw features that infer processors took over are read again (once), as `raw()` does.
        if self.source.is_some() && requests.iter().any(|r| r.0 == DataKey::Raw) {
            let raw = self.raw()?.into_owned();
            for (i, &(key, s, e)) in requests.iter().enumerate() {
                if key == DataKey::Raw {
                    out[i] = Some(raw.rows_between(s, e));
                }
            }
        }
        // Which frame each remaining request reads, as `infer()` and `learn_base()` decide.
        let is_raw = |f: &Frame| std::ptr::eq(f, &self.raw);
        let (infer_is_raw, learn_is_raw) = (is_raw(self.infer()), is_raw(self.learn_base()));
        let reads_raw = |key: DataKey| match key {
            DataKey::Raw => true,
            DataKey::Infer => infer_is_raw,
            DataKey::Learn => learn_is_raw,
        };
        let infer = std::mem::take(&mut self.infer);
        let raw = std::mem::take(&mut self.raw);
        for (frame, from_raw) in [(raw, true), (infer, false)] {
            let picks: Vec<usize> = (0..requests.len())
                .filter(|&i| out[i].is_none() && reads_raw(requests[i].0) == from_raw)
                .collect();
            if picks.is_empty() {
                continue;
            }
            let ranges: Vec<_> = picks
                .iter()
                .map(|&i| (requests[i].1, requests[i].2))
                .collect();
            for (i, part) in picks.into_iter().zip(frame.split_rows(&ranges)) {
                out[i] = Some(part);
            }
        }
        Ok(requests
            .iter()
            .zip(out)
            .map(|(&(key, ..), f)| {
                let mut f = f.unwrap_or_default();
                if key == DataKey::Learn {
                    for p in &self.config.learn_processors {
                        p.apply(&mut f, self.n_features);
                    }
                }
                f
            })
            .collect())
    }

    /// The fitted processors (infer then learn), serialisable as a run artifact.
    pub fn processor_state(&self) -> Value {
        serde_json::json!({
            "infer_processors": self.config.infer_processors,
            "learn_processors": self.config.learn_processors,
        })
    }
}
