//! A handler block of a task (`dataset.kwargs.handler`), read as Qlib's constructors read it:
//! every keyword Qlib's class takes is implemented or refused, and anything else (a typo, a
//! keyword Qlib would reject, a custom module) is an error naming the key.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::alpha::{DEFAULT_LABEL, DEFAULT_LABEL_NAME, alpha158, alpha360};
use crate::error::{DataError, Result};
use crate::filter::DFilter;
use crate::processor::{Kind, Processor};
use crate::provider::{Instruments, parse_date};

/// Where a handler sits in a task; errors name keys from here.
pub const HANDLER_PATH: &str = "dataset.kwargs.handler";

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
    /// `Alpha158`, `Alpha360` (or their `vwap` variants), `DataHandlerLP` or `DataHandler`.
    pub class: String,
    /// Instruments (a market, a list, or a market with a `filter_pipe`).
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
    /// Processors run first, for both inference and learning data.
    #[serde(default)]
    pub shared_processors: Vec<Processor>,
    /// Processors for inference data.
    pub infer_processors: Vec<Processor>,
    /// Processors for learning data.
    pub learn_processors: Vec<Processor>,
    /// How learn data derives from infer data.
    pub process_type: ProcessType,
}

/// The handler classes qtask implements, with the module paths Qlib finds them in.
const CLASSES: &[(&str, &[&str])] = &[
    ("Alpha158", &["qlib.contrib.data.handler"]),
    ("Alpha158vwap", &["qlib.contrib.data.handler"]),
    ("Alpha360", &["qlib.contrib.data.handler"]),
    ("Alpha360vwap", &["qlib.contrib.data.handler"]),
    (
        "DataHandlerLP",
        &["qlib.data.dataset.handler", "qlib.data.dataset"],
    ),
    (
        "DataHandler",
        &["qlib.data.dataset.handler", "qlib.data.dataset"],
    ),
];

/// Keywords every handler class takes (`DataHandler`'s).
const BASE_KEYS: &[&str] = &[
    "instruments",
    "start_time",
    "end_time",
    "init_data",
    "fetch_orig",
];
/// `DataHandlerLP`'s own keywords.
const LP_KEYS: &[&str] = &[
    "infer_processors",
    "learn_processors",
    "shared_processors",
    "process_type",
    "drop_raw",
];
/// Keywords of `Alpha158`/`Alpha360` (which build their own data loader).
const ALPHA_KEYS: &[&str] = &[
    "freq",
    "fit_start_time",
    "fit_end_time",
    "filter_pipe",
    "inst_processors",
    "label",
];
/// qtask's additions for `DataHandlerLP`/`DataHandler`: fields and a fit period without a
/// data loader block.
const LP_EXTRA_KEYS: &[&str] = &["feature", "label", "fit_start_time", "fit_end_time"];

fn err(msg: String) -> DataError {
    DataError::Invalid(msg)
}

fn kw_path(key: &str) -> String {
    format!("{HANDLER_PATH}.kwargs.{key}")
}

fn date_at(v: Option<&Value>, path: &str) -> Result<Option<NaiveDate>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.starts_with('<') && s.ends_with('>') => Err(err(format!(
            "{path}: placeholder `{s}` names nothing in the task (expected a path such as \
             <dataset.kwargs.segments.train.0>)"
        ))),
        Some(v) => v
            .as_str()
            .and_then(parse_date)
            .map(Some)
            .ok_or_else(|| err(format!("{path}: `{v}` is not a YYYY-MM-DD date"))),
    }
}

/// Qlib's `fields_info`: a list of expressions (names = expressions) or `[exprs, names]`.
fn fields_info(v: &Value, path: &str) -> Result<Vec<(String, String)>> {
    let bad = || {
        err(format!(
            "{path}: expected a list of expressions or [expressions, names], got {v}"
        ))
    };
    let arr = v.as_array().ok_or_else(bad)?;
    if arr.is_empty() {
        return Err(err(format!("{path}: the list is empty")));
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
        [Value::Array(exprs), Value::Array(names)] => {
            if exprs.len() != names.len() {
                return Err(err(format!(
                    "{path}: {} expressions but {} names",
                    exprs.len(),
                    names.len()
                )));
            }
            exprs
                .iter()
                .zip(names)
                .map(|(e, n)| match (e.as_str(), n.as_str()) {
                    (Some(e), Some(n)) => Ok((n.to_string(), e.to_string())),
                    _ => Err(bad()),
                })
                .collect()
        }
        _ => Err(bad()),
    }
}

/// `freq` must be daily: qtask reads `calendars/day.txt` and `*.day.bin` only.
fn check_freq(v: Option<&Value>, path: &str) -> Result<()> {
    match v {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(f)) if f == "day" || f == "1d" => Ok(()),
        Some(other) => Err(err(format!(
            "{path}: `{other}` is refused: qtask reads daily data only (freq: day); \
             computing it on daily data would give a different result without saying so"
        ))),
    }
}

/// `inst_processors` run Python code on each instrument's frame: refused unless empty.
fn check_inst_processors(v: Option<&Value>, path: &str) -> Result<()> {
    let empty = match v {
        None | Some(Value::Null) => true,
        Some(Value::Array(a)) => a.is_empty(),
        Some(Value::Object(m)) => m.values().all(|p| match p {
            Value::Array(a) => a.is_empty(),
            Value::Null => true,
            _ => false,
        }),
        Some(_) => false,
    };
    if empty {
        Ok(())
    } else {
        Err(err(format!(
            "{path}: instrument processors are refused: they run Python code on each \
             instrument's data, which qtask does not run"
        )))
    }
}

fn filter_pipe(v: Option<&Value>, path: &str) -> Result<Vec<DFilter>> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => a
            .iter()
            .enumerate()
            .map(|(i, f)| DFilter::from_value(f, &format!("{path}[{i}]")))
            .collect(),
        Some(other) => Err(err(format!(
            "{path}: expected a list of filters, got {other}"
        ))),
    }
}

/// The instruments, with the data loader's `filter_pipe` (Qlib applies it to a market name
/// only: with a list it is ignored, which qtask refuses rather than ignore).
fn instruments(
    kwargs: &Map<String, Value>,
    class_default: Option<&str>,
    pipe: Vec<DFilter>,
    pipe_path: &str,
) -> Result<Instruments> {
    let path = kw_path("instruments");
    let market = |m: &str, pipe: Vec<DFilter>| {
        if pipe.is_empty() {
            Instruments::Market(m.to_string())
        } else {
            Instruments::Filtered {
                market: m.to_string(),
                filter_pipe: pipe,
            }
        }
    };
    Ok(match kwargs.get("instruments") {
        // Alpha158/Alpha360 default to csi500; an explicit null, or DataHandlerLP's default,
        // makes Qlib's loader read every stock.
        None => market(class_default.unwrap_or("all"), pipe),
        Some(Value::Null) => market("all", pipe),
        Some(Value::String(s)) => market(s, pipe),
        Some(Value::Array(a)) if a.iter().all(Value::is_string) => {
            if !pipe.is_empty() {
                return Err(err(format!(
                    "{pipe_path}: a filter_pipe applies to a market name, not to a list of \
                     instruments (Qlib ignores it there)"
                )));
            }
            Instruments::List(
                a.iter()
                    .map(|s| s.as_str().unwrap_or_default().to_string())
                    .collect(),
            )
        }
        // Qlib's stock pool config, as `D.instruments(market, filter_pipe)` returns it.
        Some(Value::Object(m)) => {
            if let Some(k) = m.keys().find(|k| *k != "market" && *k != "filter_pipe") {
                return Err(err(format!(
                    "{path}.{k}: unknown key (a stock pool config has market and filter_pipe)"
                )));
            }
            let name = m
                .get("market")
                .and_then(Value::as_str)
                .ok_or_else(|| err(format!("{path}.market: expected a market name")))?;
            let own = filter_pipe(m.get("filter_pipe"), &format!("{path}.filter_pipe"))?;
            if !pipe.is_empty() {
                return Err(err(format!(
                    "{pipe_path}: the instruments already carry a filter_pipe (Qlib ignores \
                     this one)"
                )));
            }
            market(name, own)
        }
        Some(other) => {
            return Err(err(format!(
                "{path}: expected a market name, a list of symbols or {{market, filter_pipe}}, \
                 got {other}"
            )));
        }
    })
}

/// The `data_loader` block of a `DataHandlerLP`: Qlib's `QlibDataLoader` only.
struct Loader<'a> {
    config: Option<&'a Map<String, Value>>,
    filter_pipe: Vec<DFilter>,
}

fn data_loader(v: Option<&Value>) -> Result<Loader<'_>> {
    let path = kw_path("data_loader");
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(Loader {
            config: None,
            filter_pipe: Vec::new(),
        });
    };
    let m = v.as_object().ok_or_else(|| {
        err(format!(
            "{path}: expected {{class: QlibDataLoader, kwargs: {{config: ...}}}}, got {v}"
        ))
    })?;
    if let Some(k) = m
        .keys()
        .find(|k| !matches!(k.as_str(), "class" | "module_path" | "kwargs"))
    {
        return Err(err(format!("{path}.{k}: unknown key")));
    }
    let class = m.get("class").and_then(Value::as_str).unwrap_or_default();
    let class = class
        .strip_prefix("qlib.data.dataset.loader.")
        .unwrap_or(class);
    let module_ok = match m.get("module_path") {
        None | Some(Value::Null) => true,
        Some(Value::String(p)) => p == "qlib.data.dataset.loader",
        Some(_) => false,
    };
    if class != "QlibDataLoader" || !module_ok {
        return Err(err(format!(
            "{path}: only Qlib's QlibDataLoader (qlib.data.dataset.loader) is supported, got {}",
            m.get("class").unwrap_or(&Value::Null)
        )));
    }
    let kwargs = match m.get("kwargs") {
        Some(Value::Object(k)) => k,
        other => {
            return Err(err(format!(
                "{path}.kwargs: expected {{config: {{feature, label}}}}, got {}",
                other.unwrap_or(&Value::Null)
            )));
        }
    };
    let kp = |k: &str| format!("{path}.kwargs.{k}");
    for k in kwargs.keys() {
        if !matches!(
            k.as_str(),
            "config" | "filter_pipe" | "swap_level" | "freq" | "inst_processors"
        ) {
            return Err(err(format!(
                "{}: unknown keyword (QlibDataLoader takes config, filter_pipe, swap_level, \
                 freq, inst_processors)",
                kp(k)
            )));
        }
    }
    check_freq(kwargs.get("freq"), &kp("freq"))?;
    check_inst_processors(kwargs.get("inst_processors"), &kp("inst_processors"))?;
    match kwargs.get("swap_level") {
        None | Some(Value::Null) | Some(Value::Bool(true)) => {}
        Some(other) => {
            return Err(err(format!(
                "{}: `{other}` is refused: processors and segments need rows indexed by \
                 (datetime, instrument), Qlib's swap_level: true",
                kp("swap_level")
            )));
        }
    }
    let config = match kwargs.get("config") {
        Some(Value::Object(c)) => {
            if let Some(g) = c.keys().find(|g| *g != "feature" && *g != "label") {
                return Err(err(format!(
                    "{}.{g}: unknown field group (qtask's handlers have feature and label)",
                    kp("config")
                )));
            }
            Some(c)
        }
        other => {
            return Err(err(format!(
                "{}: expected {{feature: [...], label: [...]}}, got {}",
                kp("config"),
                other.unwrap_or(&Value::Null)
            )));
        }
    };
    Ok(Loader {
        config,
        filter_pipe: filter_pipe(kwargs.get("filter_pipe"), &kp("filter_pipe"))?,
    })
}

fn bool_kw(kwargs: &Map<String, Value>, key: &str) -> Result<Option<bool>> {
    match kwargs.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(err(format!(
            "{}: `{other}` is not true or false",
            kw_path(key)
        ))),
    }
}

impl HandlerConfig {
    /// Parses a handler block of a task (`dataset.kwargs.handler`). Errors name the key, from
    /// `dataset.kwargs.handler` down.
    pub fn from_value(v: &Value) -> Result<HandlerConfig> {
        let m = v.as_object().ok_or_else(|| {
            err(format!(
                "{HANDLER_PATH}: expected {{class, module_path, kwargs}}, got {v} (a pickled \
                 handler file is not supported)"
            ))
        })?;
        if let Some(k) = m
            .keys()
            .find(|k| !matches!(k.as_str(), "class" | "module_path" | "kwargs"))
        {
            return Err(err(format!(
                "{HANDLER_PATH}.{k}: unknown key (a handler has class, module_path and kwargs)"
            )));
        }
        let class_full = m
            .get("class")
            .and_then(Value::as_str)
            .ok_or_else(|| err(format!("{HANDLER_PATH}.class: missing (e.g. \"Alpha158\")")))?;
        let (module_in_class, class) = match class_full.rsplit_once('.') {
            Some((module, class)) => (Some(module), class),
            None => (None, class_full),
        };
        let Some((_, modules)) = CLASSES.iter().find(|(c, _)| *c == class) else {
            return Err(err(format!(
                "unknown handler class `{class}` at {HANDLER_PATH}.class (supported: {})",
                CLASSES.iter().map(|c| c.0).collect::<Vec<_>>().join(", ")
            )));
        };
        let module = match (module_in_class, m.get("module_path")) {
            (Some(module), _) => Some(module),
            (None, None | Some(Value::Null)) => None,
            (None, Some(Value::String(p))) => Some(p.as_str()),
            (None, Some(other)) => {
                return Err(err(format!(
                    "{HANDLER_PATH}.module_path: `{other}` is not a module name"
                )));
            }
        };
        if let Some(module) = module
            && !modules.contains(&module)
        {
            return Err(err(format!(
                "{HANDLER_PATH}.module_path: `{module}` is refused: {class} is Qlib's ({}); a \
                 handler from other Python code is not run by qtask",
                modules.join(" or ")
            )));
        }
        let empty = Map::new();
        let kwargs = match m.get("kwargs") {
            None | Some(Value::Null) => &empty,
            Some(Value::Object(k)) => k,
            Some(other) => {
                return Err(err(format!(
                    "{HANDLER_PATH}.kwargs: expected a map, got {other}"
                )));
            }
        };
        let alpha = class.starts_with("Alpha");
        let lp = class != "DataHandler";
        for k in kwargs.keys() {
            let k = k.as_str();
            let known = BASE_KEYS.contains(&k)
                || (lp && LP_KEYS.contains(&k))
                || (alpha && ALPHA_KEYS.contains(&k))
                || (!alpha && (k == "data_loader" || LP_EXTRA_KEYS.contains(&k)));
            if !known {
                let why = if alpha && k == "data_loader" {
                    format!("{class} builds its own data loader")
                } else {
                    format!("{class} does not take it")
                };
                return Err(err(format!("{}: unknown keyword ({why})", kw_path(k))));
            }
        }
        if bool_kw(kwargs, "init_data")? == Some(false) {
            return Err(err(format!(
                "{}: false is refused: qtask loads the handler's data when it is built",
                kw_path("init_data")
            )));
        }
        // No effect on values: memory-only switches of pyqlib.
        bool_kw(kwargs, "fetch_orig")?;
        bool_kw(kwargs, "drop_raw")?;

        let loader = data_loader(kwargs.get("data_loader"))?;
        check_freq(kwargs.get("freq"), &kw_path("freq"))?;
        check_inst_processors(kwargs.get("inst_processors"), &kw_path("inst_processors"))?;
        let (pipe, pipe_path) = if loader.filter_pipe.is_empty() {
            (
                filter_pipe(kwargs.get("filter_pipe"), &kw_path("filter_pipe"))?,
                kw_path("filter_pipe"),
            )
        } else {
            (
                loader.filter_pipe,
                kw_path("data_loader.kwargs.filter_pipe"),
            )
        };
        let instruments = instruments(kwargs, alpha.then_some("csi500"), pipe, &pipe_path)?;

        let start_time = date_at(kwargs.get("start_time"), &kw_path("start_time"))?;
        let end_time = date_at(kwargs.get("end_time"), &kw_path("end_time"))?;
        if let (Some(s), Some(e)) = (start_time, end_time)
            && s > e
        {
            return Err(err(format!(
                "{}: {e} is before start_time {s}",
                kw_path("end_time")
            )));
        }
        let fit_start_time = date_at(kwargs.get("fit_start_time"), &kw_path("fit_start_time"))?;
        let fit_end_time = date_at(kwargs.get("fit_end_time"), &kw_path("fit_end_time"))?;
        if let (Some(s), Some(e)) = (fit_start_time, fit_end_time)
            && s > e
        {
            return Err(err(format!(
                "{}: {e} is before fit_start_time {s}",
                kw_path("fit_end_time")
            )));
        }

        let (features, labels) = if alpha {
            let features = if class.starts_with("Alpha158") {
                alpha158()
            } else {
                alpha360()
            };
            let default_label = if class.ends_with("vwap") {
                "Ref($vwap, -2)/Ref($vwap, -1) - 1"
            } else {
                DEFAULT_LABEL
            };
            let labels = match kwargs.get("label") {
                Some(v) => fields_info(v, &kw_path("label"))?,
                None => vec![(DEFAULT_LABEL_NAME.to_string(), default_label.to_string())],
            };
            (features, labels)
        } else {
            let pick = |key: &str| -> Result<Option<(&Value, String)>> {
                let top = kwargs.get(key).map(|v| (v, kw_path(key)));
                let inner = loader
                    .config
                    .and_then(|c| c.get(key))
                    .map(|v| (v, kw_path(&format!("data_loader.kwargs.config.{key}"))));
                match (top, inner) {
                    (Some((_, p)), Some(_)) => Err(err(format!(
                        "{p}: given twice (also in data_loader.kwargs.config.{key})"
                    ))),
                    (a, b) => Ok(a.or(b)),
                }
            };
            let features = match pick("feature")? {
                Some((v, p)) => fields_info(v, &p)?,
                None => {
                    return Err(err(format!(
                        "{HANDLER_PATH}: {class} needs a feature list \
                         (kwargs.data_loader.kwargs.config.feature)"
                    )));
                }
            };
            // Qlib's loader has no label group unless one is given.
            let labels = match pick("label")? {
                Some((v, p)) => fields_info(v, &p)?,
                None => Vec::new(),
            };
            (features, labels)
        };

        let procs = |key: &str, default: Value| -> Result<Vec<Processor>> {
            let path = kw_path(key);
            let list = match kwargs.get(key) {
                None => default,
                Some(v) => v.clone(),
            };
            let arr = list
                .as_array()
                .ok_or_else(|| err(format!("{path}: expected a list, got {list}")))?;
            arr.iter()
                .enumerate()
                .map(|(i, p)| {
                    Processor::from_config(p, fit_start_time, fit_end_time)
                        .map_err(|e| err(format!("{path}[{i}]: {e}")))
                })
                .collect()
        };
        let default_learn = serde_json::json!([
            {"class": "DropnaLabel"},
            {"class": "CSZScoreNorm", "kwargs": {"fields_group": "label"}}
        ]);
        let default_infer = if class.starts_with("Alpha360") {
            serde_json::json!([
                {"class": "ProcessInf", "kwargs": {}},
                {"class": "ZScoreNorm", "kwargs": {}},
                {"class": "Fillna", "kwargs": {}}
            ])
        } else {
            serde_json::json!([])
        };
        // DataHandlerLP's defaults are empty lists.
        let (default_infer, default_learn) = if alpha {
            (default_infer, default_learn)
        } else {
            (serde_json::json!([]), serde_json::json!([]))
        };
        let shared_processors = procs("shared_processors", serde_json::json!([]))?;
        let infer_processors = procs("infer_processors", default_infer)?;
        let learn_processors = procs("learn_processors", default_learn)?;
        for (key, list) in [
            ("shared_processors", &shared_processors),
            ("infer_processors", &infer_processors),
        ] {
            if let Some(i) = list.iter().position(|p| !p.is_for_infer()) {
                return Err(err(format!(
                    "{}[{i}]: {:?} cannot process inference data (it drops rows by label): \
                     put it in learn_processors",
                    kw_path(key),
                    list[i].kind
                )));
            }
        }
        let process_type = match kwargs.get("process_type") {
            None | Some(Value::Null) => ProcessType::Append,
            Some(Value::String(s)) if s == "append" => ProcessType::Append,
            Some(Value::String(s)) if s == "independent" => ProcessType::Independent,
            Some(o) => {
                return Err(err(format!(
                    "{}: `{o}` is not append or independent",
                    kw_path("process_type")
                )));
            }
        };
        let cfg = HandlerConfig {
            class: class.to_string(),
            instruments,
            start_time,
            end_time,
            fit_start_time,
            fit_end_time,
            features,
            labels,
            shared_processors,
            infer_processors,
            learn_processors,
            process_type,
        };
        cfg.check_processor_layout()?;
        Ok(cfg)
    }

    /// Refuses what would make learning and inference data disagree, or what Qlib itself
    /// fails on: a column-dropping processor whose effect only one of the two sees, no
    /// feature left, and `HashStockFormat` anywhere but where pyqlib can still process after.
    fn check_processor_layout(&self) -> Result<()> {
        let names: Vec<String> = self.all_fields().into_iter().map(|f| f.0).collect();
        let nf = self.features.len();
        let run = |procs: &[Processor], (names, nf): (Vec<String>, usize)| {
            procs
                .iter()
                .fold((names, nf), |(n, f), p| p.columns_after(&n, f))
        };
        let shared = run(&self.shared_processors, (names, nf));
        if shared.1 == 0 {
            return Err(err(format!(
                "{}: no feature column is left",
                kw_path("shared_processors")
            )));
        }
        let infer = run(&self.infer_processors, shared.clone());
        if infer.1 == 0 {
            return Err(err(format!(
                "{}: no feature column is left",
                kw_path("infer_processors")
            )));
        }
        let learn_base = match self.process_type {
            ProcessType::Append => infer.clone(),
            ProcessType::Independent => shared,
        };
        let learn = run(&self.learn_processors, learn_base);
        if learn.0[..learn.1] != infer.0[..infer.1] {
            let key = if self.learn_processors.iter().any(Processor::drops_columns) {
                "learn_processors"
            } else {
                "infer_processors"
            };
            return Err(err(format!(
                "{}: DropCol/FilterCol here would give the model other feature columns for \
                 learning than for inference; put it in shared_processors (or infer_processors \
                 with process_type append)",
                kw_path(key)
            )));
        }
        let hash_at =
            |procs: &[Processor]| procs.iter().position(|p| p.kind == Kind::HashStockFormat);
        for (key, procs) in [
            ("shared_processors", &self.shared_processors),
            ("infer_processors", &self.infer_processors),
            ("learn_processors", &self.learn_processors),
        ] {
            if let Some(i) = hash_at(procs)
                && i + 1 != procs.len()
            {
                return Err(err(format!(
                    "{}[{i}]: HashStockFormat must be the last processor (pyqlib cannot run \
                     processors on its output)",
                    kw_path(key)
                )));
            }
        }
        let after_shared = !self.infer_processors.is_empty() || !self.learn_processors.is_empty();
        let after_infer =
            self.process_type == ProcessType::Append && !self.learn_processors.is_empty();
        if (hash_at(&self.shared_processors).is_some() && after_shared)
            || (hash_at(&self.infer_processors).is_some() && after_infer)
        {
            let key = if hash_at(&self.shared_processors).is_some() {
                "shared_processors"
            } else {
                "infer_processors"
            };
            return Err(err(format!(
                "{}: HashStockFormat must come after every processor (later processors fail on \
                 its output in pyqlib)",
                kw_path(key)
            )));
        }
        Ok(())
    }

    /// Every `(name, expression)`: features first, then labels.
    pub fn all_fields(&self) -> Vec<(String, String)> {
        self.features.iter().chain(&self.labels).cloned().collect()
    }

    /// Number of feature columns of the processed (infer and learn) data: the features, less
    /// any `DropCol`/`FilterCol` removes.
    pub fn processed_n_features(&self) -> usize {
        let names: Vec<String> = self.all_fields().into_iter().map(|f| f.0).collect();
        self.shared_processors
            .iter()
            .chain(&self.infer_processors)
            .fold((names, self.features.len()), |(n, f), p| {
                p.columns_after(&n, f)
            })
            .1
    }
}
