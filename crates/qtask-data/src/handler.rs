//! Qlib's data handlers (`Alpha158`, `Alpha360`, `DataHandlerLP` with a feature/label config)
//! from their task-config JSON, and the raw -> infer -> learn processing (Qlib's
//! `DataHandlerLP.process_data`).

use std::borrow::Cow;

use chrono::NaiveDate;
use serde_json::Value;

use crate::cache::FeatureCache;
use crate::dataset::DataKey;
use crate::error::Result;
use crate::expr::Program;
use crate::features::{Query, compute};
use crate::frame::Frame;
use crate::provider::Provider;

mod config;

pub use config::{HANDLER_PATH, HandlerConfig, ProcessType};

/// A loaded and processed handler: raw, infer and learn frames (sorted by datetime, then
/// instrument), features first then labels.
#[derive(Debug, Clone)]
pub struct Handler {
    /// The configuration (with fitted processors after `load`).
    pub config: HandlerConfig,
    /// Number of feature columns of the processed data (infer and learn; the rest are
    /// labels). The raw data has `config.features.len()`.
    pub n_features: usize,
    /// Feature columns of the frame learn processors start from.
    learn_base_nf: usize,
    /// Data as computed from the expressions; only its label columns when processors took the
    /// features over (see [`Handler::raw`]).
    raw: Frame,
    /// After shared processors, kept only when learn data starts there (`independent`).
    shared: Frame,
    /// After shared and infer processors; empty when there are none (then
    /// [`Handler::infer`] is `raw`, which saves a copy of the largest table of a study).
    infer: Frame,
    /// Where the raw features are read again when `raw` kept only the labels.
    source: Option<RawSource>,
}

/// Which of the handler's frames a request reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Src {
    Raw,
    Shared,
    Infer,
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

/// Fits (when `fit`) and applies `procs` in order; returns the feature columns left.
fn run(
    procs: &mut [crate::processor::Processor],
    frame: &mut Frame,
    mut nf: usize,
    fit: bool,
) -> usize {
    for p in procs {
        if fit {
            p.fit(frame, nf);
        }
        nf = p.apply(frame, nf);
    }
    nf
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
        Handler::load_with(provider, config, cache, tick, true)
    }

    /// Computes the fields and runs processors that were fitted before (their statistics in
    /// `config`, e.g. read back from a run's `dataset_state.json`), without fitting anything:
    /// Qlib's `init_type=IT_LS`, what inference on new dates needs.
    pub fn load_fitted(
        provider: &Provider,
        config: &HandlerConfig,
        cache: Option<&FeatureCache>,
        tick: &(dyn Fn() + Sync),
    ) -> Result<Handler> {
        Handler::load_with(provider, config, cache, tick, false)
    }

    /// Computes the fields and runs the processors, fitting the fitted ones when `fit`.
    fn load_with(
        provider: &Provider,
        config: &HandlerConfig,
        cache: Option<&FeatureCache>,
        tick: &(dyn Fn() + Sync),
        fit: bool,
    ) -> Result<Handler> {
        let raw = load_raw(provider, config, cache, tick)?;
        let mut h = Handler {
            config: config.clone(),
            n_features: config.features.len(),
            learn_base_nf: config.features.len(),
            shared: Frame::default(),
            infer: Frame::default(),
            raw,
            source: None,
        };
        h.process(
            RawSource {
                provider: provider.clone(),
                cache: cache.cloned(),
            },
            fit,
        );
        Ok(h)
    }

    /// The data as computed from the expressions (Qlib's `DK_R`). When processors replaced the
    /// features in place, they are read again (from the feature cache when the handler was
    /// loaded through one): a handler keeps one copy of its features, not two.
    pub fn raw(&self) -> Result<Cow<'_, Frame>> {
        match &self.source {
            None => Ok(Cow::Borrowed(&self.raw)),
            Some(src) => {
                load_raw(&src.provider, &self.config, src.cache.as_ref(), &|| {}).map(Cow::Owned)
            }
        }
    }

    /// Number of feature columns of the raw data.
    pub fn raw_n_features(&self) -> usize {
        self.config.features.len()
    }

    /// The label columns of the raw rows dated within `[start, end]` (no features are read).
    pub fn raw_labels(&self, start: Option<NaiveDate>, end: Option<NaiveDate>) -> Frame {
        let first = if self.source.is_some() {
            0
        } else {
            self.raw_n_features()
        };
        self.raw.columns_between(first, start, end)
    }

    fn has_infer_frame(&self) -> bool {
        !self.config.shared_processors.is_empty() || !self.config.infer_processors.is_empty()
    }

    /// The data after shared and infer processors (what models predict on).
    pub fn infer(&self) -> &Frame {
        self.frame(self.infer_src())
    }

    fn infer_src(&self) -> Src {
        if self.has_infer_frame() {
            Src::Infer
        } else {
            Src::Raw
        }
    }

    fn learn_src(&self) -> Src {
        match self.config.process_type {
            ProcessType::Append => self.infer_src(),
            ProcessType::Independent if self.config.shared_processors.is_empty() => Src::Raw,
            ProcessType::Independent => Src::Shared,
        }
    }

    fn frame(&self, src: Src) -> &Frame {
        match src {
            Src::Raw => &self.raw,
            Src::Shared => &self.shared,
            Src::Infer => &self.infer,
        }
    }

    /// The frame learn processors start from.
    fn learn_base(&self) -> &Frame {
        self.frame(self.learn_src())
    }

    fn process(&mut self, source: RawSource, fit: bool) {
        let raw_nf = self.raw_n_features();
        let mut infer_nf = raw_nf;
        let mut shared_nf = raw_nf;
        if self.has_infer_frame() {
            let mut frame = match self.config.process_type {
                // Learn data starts from the raw features (or the shared ones): both are
                // needed.
                ProcessType::Independent => self.raw.clone(),
                // Nothing reads the raw features again but a `DK_R` request, which reads
                // them anew; the raw labels stay (records store them).
                ProcessType::Append => {
                    let labels = self.raw.columns_between(raw_nf, None, None);
                    self.source = Some(source);
                    std::mem::replace(&mut self.raw, labels)
                }
            };
            shared_nf = run(&mut self.config.shared_processors, &mut frame, raw_nf, fit);
            if self.learn_src() == Src::Shared {
                self.shared = frame.clone();
            }
            infer_nf = run(
                &mut self.config.infer_processors,
                &mut frame,
                shared_nf,
                fit,
            );
            self.infer = frame;
        }
        self.n_features = infer_nf;
        self.learn_base_nf = match self.learn_src() {
            Src::Raw => raw_nf,
            Src::Shared => shared_nf,
            Src::Infer => infer_nf,
        };
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
        if let Some((s, e)) = fit_range.filter(|_| fit) {
            let mut procs = std::mem::take(&mut self.config.learn_processors);
            let mut fit_rows = self.learn_base().rows_between(Some(s), Some(e));
            run(&mut procs, &mut fit_rows, self.learn_base_nf, true);
            self.config.learn_processors = procs;
        }
    }

    fn apply_learn(&self, f: &mut Frame) {
        let mut nf = self.learn_base_nf;
        for p in &self.config.learn_processors {
            nf = p.apply(f, nf);
        }
    }

    /// The learn data (after learn processors) of the days in `[start, end]` (`None`: open).
    pub fn learn(&self, start: Option<NaiveDate>, end: Option<NaiveDate>) -> Frame {
        let mut f = self.learn_base().rows_between(start, end);
        self.apply_learn(&mut f);
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
        // Raw features that processors took over are read again (once), as `raw()` does.
        if self.source.is_some() && requests.iter().any(|r| r.0 == DataKey::Raw) {
            let raw = self.raw()?.into_owned();
            for (i, &(key, s, e)) in requests.iter().enumerate() {
                if key == DataKey::Raw {
                    out[i] = Some(raw.rows_between(s, e));
                }
            }
        }
        // Which frame each remaining request reads, as `infer()` and `learn_base()` decide.
        let (infer_src, learn_src) = (self.infer_src(), self.learn_src());
        let src_of = |key: DataKey| match key {
            DataKey::Raw => Src::Raw,
            DataKey::Infer => infer_src,
            DataKey::Learn => learn_src,
        };
        let frames = [
            (std::mem::take(&mut self.raw), Src::Raw),
            (std::mem::take(&mut self.shared), Src::Shared),
            (std::mem::take(&mut self.infer), Src::Infer),
        ];
        for (frame, src) in frames {
            let picks: Vec<usize> = (0..requests.len())
                .filter(|&i| out[i].is_none() && src_of(requests[i].0) == src)
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
                    self.apply_learn(&mut f);
                }
                f
            })
            .collect())
    }

    /// The fitted processors (shared, infer, learn), serialisable as a run artifact.
    pub fn processor_state(&self) -> Value {
        let mut state = serde_json::json!({
            "infer_processors": self.config.infer_processors,
            "learn_processors": self.config.learn_processors,
        });
        if !self.config.shared_processors.is_empty() {
            state["shared_processors"] = serde_json::json!(self.config.shared_processors);
        }
        state
    }
}
