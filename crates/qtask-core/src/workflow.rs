//! What Qlib's `qrun` reads from a workflow config besides the task: Jinja rendering (refused),
//! `BASE_CONFIG_PATH` (merged as qrun merges it), `qlib_init`, `sys` and `experiment_name`.
//! Every key is implemented, known to have no effect on results, or refused with one line
//! naming the key and the file.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::{CoreError, Result};

/// Qlib's marker that drops a key of the base config (`qlib.utils.data.S_DROP`).
pub const S_DROP: &str = "__DROP__";

/// What a workflow config says outside its task, once checked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkflowSettings {
    /// `qlib_init.provider_uri` (the daily one of a `{freq: path}` map), `~` expanded.
    pub provider_uri: Option<PathBuf>,
    /// `qlib_init.region` (`cn`, `us` or `tw`).
    pub region: Option<String>,
    /// The top-level `experiment_name`.
    pub experiment_name: Option<String>,
}

fn refuse(path: &Path, msg: String) -> CoreError {
    CoreError::Template(format!("{}: {msg}", path.display()))
}

/// Refuses Jinja2 syntax: qrun renders the file with Jinja2 (variables from the environment)
/// before reading the YAML, which qtask does not do; reading the text as it is would run
/// something else than qrun runs.
pub fn refuse_jinja(text: &str, path: &Path) -> Result<()> {
    let found = ["{{", "{%", "{#"]
        .iter()
        .filter_map(|d| text.find(d).map(|at| (at, *d)))
        .min();
    match found {
        None => Ok(()),
        Some((at, delim)) => {
            let line = text[..at].matches('\n').count() + 1;
            Err(CoreError::Template(format!(
                "{}:{line}: `{delim}` is Jinja2 template syntax, which qrun renders (from \
                 environment variables) before reading the config; qtask does not render \
                 templates: render the file first and pass the result",
                path.display()
            )))
        }
    }
}

/// Qlib's `update_config(base, ext)`: maps merge recursively, anything else replaces, and the
/// value `"__DROP__"` deletes the key.
pub fn update_config(base: Value, ext: Value) -> Value {
    match (base, ext) {
        (Value::Object(mut b), Value::Object(e)) => {
            for (k, v) in e {
                match b.remove(&k) {
                    Some(old) => {
                        if old.is_object() && v.is_object() {
                            b.insert(k, update_config(old, v));
                        } else if v != S_DROP {
                            b.insert(k, v);
                        }
                    }
                    None => {
                        if v != S_DROP {
                            b.insert(k, v);
                        }
                    }
                }
            }
            Value::Object(b)
        }
        (_, ext) => ext,
    }
}

/// Resolves `BASE_CONFIG_PATH` as qrun does: as given (relative to the working directory),
/// else relative to the config file's folder.
pub fn resolve_base_config(base: &str, config: &Path) -> Result<PathBuf> {
    let given = PathBuf::from(base);
    if given.exists() {
        return Ok(given);
    }
    let dir = config
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let beside = dir.join(base);
    if beside.exists() {
        return Ok(beside);
    }
    Err(refuse(
        config,
        format!(
            "BASE_CONFIG_PATH `{base}` not found (neither from the working directory nor as {})",
            beside.display()
        ),
    ))
}

/// `qlib_init` keys that tune pyqlib's caches, processes or logging: no effect on results.
const NO_EFFECT: &[&str] = &[
    "expression_cache",
    "dataset_cache",
    "calendar_cache",
    "local_cache_path",
    "default_disk_cache",
    "mem_cache_size_limit",
    "mem_cache_limit_type",
    "mem_cache_expire",
    "dataset_cache_dir_name",
    "features_cache_dir_name",
    "redis_host",
    "redis_port",
    "redis_task_db",
    "redis_password",
    "kernels",
    "maxtasksperchild",
    "joblib_backend",
    "logging_level",
    "logging_config",
    "dump_protocol_version",
    "clear_mem_cache",
    "skip_if_reg",
    "timeout",
    "mongo",
];

/// Qlib's default data providers: naming them changes nothing.
const PROVIDERS: &[(&str, &str)] = &[
    ("provider", "LocalProvider"),
    ("calendar_provider", "LocalCalendarProvider"),
    ("instrument_provider", "LocalInstrumentProvider"),
    ("feature_provider", "LocalFeatureProvider"),
    ("expression_provider", "LocalExpressionProvider"),
    ("dataset_provider", "LocalDatasetProvider"),
    ("pit_provider", "LocalPITProvider"),
];

/// Why a `qlib_init` key is refused, or `None` when it is accepted.
fn qlib_init_refusal(key: &str, v: &Value) -> Option<String> {
    if NO_EFFECT.contains(&key) {
        return None;
    }
    if let Some((_, default)) = PROVIDERS.iter().find(|(k, _)| *k == key) {
        return (v.as_str() != Some(default)).then(|| {
            format!(
                "is refused: qtask reads Qlib's local binary layout ({default}), not another \
                 data provider"
            )
        });
    }
    match key {
        "default_conf" => match v.as_str() {
            Some("client" | "server") => None,
            _ => Some("must be client or server".into()),
        },
        "auto_mount" => (v != &Value::Bool(false)).then(|| {
            "is refused: qtask reads a local folder; mounting an NFS share is not supported".into()
        }),
        "mount_path" => (!v.is_null()).then(|| {
            "is refused: qtask reads a local folder; NFS mount paths are not supported".into()
        }),
        "flask_server" | "flask_port" => {
            Some("is refused: qtask reads a local folder, not a Qlib data server".into())
        }
        "min_data_shift" => (v.as_f64() != Some(0.0))
            .then(|| "is refused: it shifts minute data, and qtask reads daily data only".into()),
        "exp_manager" => Some(
            "is refused: qtask records runs where its --tracking-uri says (MLflow's file \
             layout), not through a Python experiment manager"
                .into(),
        ),
        "custom_ops" => Some(
            "is refused: custom operators are Python code; qtask runs Qlib's own operators".into(),
        ),
        "trade_unit" | "limit_threshold" | "deal_price" => Some(
            "is refused: set it in the backtest's exchange_kwargs (qlib_init only changes \
             the region's default)"
                .into(),
        ),
        "pit_record_type" | "pit_record_nan" => {
            Some("is refused: qtask reads Qlib's standard point-in-time record layout".into())
        }
        _ => Some(
            "is not a Qlib setting qtask knows (Qlib would only warn \"Unrecognized config\")"
                .into(),
        ),
    }
}

fn provider_uri(v: &Value, path: &Path) -> Result<Option<PathBuf>> {
    let one = |s: &str, key: &str| -> Result<PathBuf> {
        // Qlib's NFS form `host:/path` (a Windows drive letter is a local path).
        let nfs = s.split_once(':').is_some_and(|(host, rest)| {
            !host.is_empty() && !host.contains('/') && !rest.is_empty()
        }) && !(s.len() >= 2
            && s.as_bytes()[1] == b':'
            && s.as_bytes()[0].is_ascii_alphabetic());
        if nfs {
            return Err(refuse(
                path,
                format!(
                    "{key}: `{s}` is an NFS location, which qtask does not mount: mount it and \
                     give the local folder"
                ),
            ));
        }
        Ok(crate::template::expand_home(s))
    };
    match v {
        Value::Null => Ok(None),
        Value::String(s) if s.is_empty() => Ok(None),
        Value::String(s) => one(s, "qlib_init.provider_uri").map(Some),
        Value::Object(m) => {
            for (freq, uri) in m {
                if !uri.is_string() {
                    return Err(refuse(
                        path,
                        format!("qlib_init.provider_uri.{freq}: expected a folder, got {uri}"),
                    ));
                }
            }
            match m.get("day").and_then(Value::as_str) {
                Some(day) => one(day, "qlib_init.provider_uri.day").map(Some),
                None => Err(refuse(
                    path,
                    format!(
                        "qlib_init.provider_uri has no `day` folder (has: {}); qtask reads \
                         daily data",
                        m.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                )),
            }
        }
        other => Err(refuse(
            path,
            format!("qlib_init.provider_uri: expected a folder or {{freq: folder}}, got {other}"),
        )),
    }
}

fn check_sys(v: &Value, path: &Path) -> Result<()> {
    let m = match v {
        Value::Null => return Ok(()),
        Value::Object(m) => m,
        other => return Err(refuse(path, format!("sys: expected a map, got {other}"))),
    };
    for (k, entries) in m {
        if k != "path" && k != "rel_path" {
            return Err(refuse(
                path,
                format!("sys.{k}: unknown key (qrun reads sys.path and sys.rel_path)"),
            ));
        }
        let empty = match entries {
            Value::Null => true,
            Value::String(s) => s.is_empty(),
            Value::Array(a) => a.is_empty(),
            _ => false,
        };
        if !empty {
            return Err(refuse(
                path,
                format!(
                    "sys.{k} is refused: it adds Python import paths for custom classes, and \
                     qtask runs no Python code (use `qtask worker --exec` for that)"
                ),
            ));
        }
    }
    Ok(())
}

/// Checks what a workflow config holds beside `task` and returns what qtask uses of it.
/// Top-level keys qrun does not read (`market`, `benchmark`, `data_handler_config`,
/// `port_analysis_config`, ...) hold YAML anchors; they are ignored, as qrun ignores them.
pub fn check_workflow(map: &Map<String, Value>, path: &Path) -> Result<WorkflowSettings> {
    let mut out = WorkflowSettings::default();
    if let Some(sys) = map.get("sys") {
        check_sys(sys, path)?;
    }
    match map.get("experiment_name") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if !s.trim().is_empty() => out.experiment_name = Some(s.clone()),
        Some(other) => {
            return Err(refuse(
                path,
                format!("experiment_name: expected a name, got {other}"),
            ));
        }
    }
    let init = match map.get("qlib_init") {
        None | Some(Value::Null) => return Ok(out),
        Some(Value::Object(m)) => m,
        Some(other) => {
            return Err(refuse(
                path,
                format!("qlib_init: expected a map, got {other}"),
            ));
        }
    };
    for (k, v) in init {
        match k.as_str() {
            "provider_uri" => out.provider_uri = provider_uri(v, path)?,
            "region" => match v.as_str() {
                Some(r @ ("cn" | "us" | "tw")) => out.region = Some(r.to_string()),
                _ => {
                    return Err(refuse(
                        path,
                        format!("qlib_init.region: `{v}` is not a Qlib region (cn, us or tw)"),
                    ));
                }
            },
            _ => {
                if let Some(why) = qlib_init_refusal(k, v) {
                    return Err(refuse(path, format!("qlib_init.{k} {why}")));
                }
            }
        }
    }
    Ok(out)
}
