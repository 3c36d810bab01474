//! Reading task templates from YAML or JSON files.
//!
//! A file holds one task (a map), a list of tasks, or a whole Qlib workflow config (a map with
//! a `task:` key, whose `qlib_init.provider_uri` names the data folder). YAML is read as qrun
//! reads it (YAML 1.2: `yes`/`on` are strings), a `BASE_CONFIG_PATH` is merged in as qrun
//! merges it, and Jinja2 syntax, which qrun would render first, is refused (see
//! [`crate::workflow`]).

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{CoreError, Result};
use crate::workflow::{check_workflow, refuse_jinja, resolve_base_config, update_config};

/// The tasks of a template file and what its workflow config says besides them.
#[derive(Debug, Clone)]
pub struct Template {
    /// The task templates, in file order.
    pub tasks: Vec<Value>,
    /// `qlib_init.provider_uri` of a workflow config (`~` expanded; the `day` folder of a
    /// `{freq: folder}` map).
    pub provider_uri: Option<PathBuf>,
    /// The top-level `experiment_name` of a workflow config: where `qtask run` records when
    /// no experiment is given on the command line.
    pub experiment_name: Option<String>,
    /// `qlib_init.region` (`cn`, `us` or `tw`).
    pub region: Option<String>,
    /// The `BASE_CONFIG_PATH` file merged under this one, as found.
    pub base_config: Option<PathBuf>,
}

/// Parses a YAML or JSON document (by extension: `.json` is JSON, anything else YAML, which
/// also reads JSON). Errors name the file, line and column.
pub fn parse_document(text: &str, path: &Path) -> Result<Value> {
    let is_json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    if is_json {
        return crate::json::parse(text).map_err(|e| match e {
            crate::json::JsonError::Syntax(e) => CoreError::Parse {
                path: path.to_path_buf(),
                line: e.line() as u64,
                column: e.column() as u64,
                message: strip_location(&e.to_string()),
            },
            crate::json::JsonError::Number(e) => {
                CoreError::Template(format!("{}: {e}", path.display()))
            }
        });
    }
    crate::yaml::parse_yaml(text).map_err(|e| CoreError::Parse {
        path: path.to_path_buf(),
        line: e.line,
        column: e.column,
        message: e.message,
    })
}

fn strip_location(msg: &str) -> String {
    // Both parsers append their own "at line L column C"; we print it in front instead.
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| CoreError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads a template file.
pub fn load_template(path: &Path) -> Result<Template> {
    let text = read(path)?;
    refuse_jinja(&text, path)?;
    let doc = parse_document(&text, path)?;
    template_from_value(doc, path)
}

/// Merges the config's `BASE_CONFIG_PATH` under it, as qrun does (the base file is read as it
/// is: qrun neither renders it nor follows its own `BASE_CONFIG_PATH`).
fn merge_base(doc: Value, path: &Path) -> Result<(Value, Option<PathBuf>)> {
    let base = match doc.get("BASE_CONFIG_PATH") {
        // qrun skips an empty value.
        None | Some(Value::Null) => return Ok((doc, None)),
        Some(Value::String(s)) if s.is_empty() => return Ok((doc, None)),
        Some(Value::String(s)) => s.clone(),
        Some(other) => {
            return Err(CoreError::Template(format!(
                "{}: BASE_CONFIG_PATH: expected a file path, got {other}",
                path.display()
            )));
        }
    };
    let base_path = resolve_base_config(&base, path)?;
    let base_doc = parse_document(&read(&base_path)?, &base_path)?;
    if !base_doc.is_object() {
        return Err(CoreError::Template(format!(
            "{}: BASE_CONFIG_PATH {} is {}, not a workflow config",
            path.display(),
            base_path.display(),
            kind(&base_doc)
        )));
    }
    Ok((update_config(base_doc, doc), Some(base_path)))
}

/// Interprets a parsed document as a template (see the module docs).
pub fn template_from_value(doc: Value, path: &Path) -> Result<Template> {
    let where_ = path.display();
    let (doc, base_config) = merge_base(doc, path)?;
    let (tasks_value, settings) = match doc {
        Value::Object(mut map) if map.contains_key("task") => {
            let settings = check_workflow(&map, path)?;
            (map.remove("task").expect("checked"), settings)
        }
        other => (other, Default::default()),
    };
    let tasks = match tasks_value {
        Value::Array(items) => items,
        Value::Object(_) => vec![tasks_value],
        Value::Null => {
            return Err(CoreError::Template(format!(
                "{where_}: the template is empty"
            )));
        }
        other => {
            return Err(CoreError::Template(format!(
                "{where_}: a template must be a task (map), a list of tasks, or a workflow config \
                 with a `task:` key; found {}",
                kind(&other)
            )));
        }
    };
    if tasks.is_empty() {
        return Err(CoreError::Template(format!(
            "{where_}: the list of tasks is empty"
        )));
    }
    if let Some((i, t)) = tasks.iter().enumerate().find(|(_, t)| !t.is_object()) {
        return Err(CoreError::Template(format!(
            "{where_}: task {} is {}, not a map",
            i + 1,
            kind(t)
        )));
    }
    Ok(Template {
        tasks,
        provider_uri: settings.provider_uri,
        experiment_name: settings.experiment_name,
        region: settings.region,
        base_config,
    })
}

/// Expands a leading `~/` with `$HOME`.
pub fn expand_home(s: &str) -> PathBuf {
    match (s.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(s),
    }
}

/// Chooses the provider folder: the flag, else the template's `provider_uri`, else
/// `QTASK_PROVIDER_URI`, else `~/.qlib/qlib_data/cn_data` (Qlib's default).
pub fn resolve_provider_uri(flag: Option<&Path>, template: Option<&Path>) -> PathBuf {
    if let Some(p) = flag.or(template) {
        return p.to_path_buf();
    }
    match std::env::var("QTASK_PROVIDER_URI") {
        Ok(p) if !p.is_empty() => expand_home(&p),
        _ => expand_home("~/.qlib/qlib_data/cn_data"),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(text: &str, name: &str) -> Result<Template> {
        let p = Path::new(name);
        template_from_value(parse_document(text, p)?, p)
    }

    #[test]
    fn yaml_workflow_config_with_anchors_and_dates() {
        let yaml = r#"
qlib_init:
    provider_uri: "/data/cn"
    region: cn
market: &market csi300
data_handler_config: &dhc
    start_time: 2008-01-01
    end_time: null
    instruments: *market
task:
    model:
        class: LGBModel
        kwargs: {loss: mse, learning_rate: 0.2}
    dataset:
        class: DatasetH
        kwargs:
            handler:
                class: Alpha158
                kwargs:
                    <<: *dhc
                    fit_start_time: 2008-01-01
            segments:
                train: [2008-01-01, 2014-12-31]
                test: [2017-01-01, null]
"#;
        let t = parse(yaml, "w.yaml").unwrap();
        assert_eq!(t.provider_uri, Some(PathBuf::from("/data/cn")));
        assert_eq!(t.tasks.len(), 1);
        let task = &t.tasks[0];
        let h = &task["dataset"]["kwargs"]["handler"]["kwargs"];
        assert_eq!(h["start_time"], json!("2008-01-01"));
        assert_eq!(h["end_time"], json!(null));
        assert_eq!(h["instruments"], json!("csi300"));
        assert_eq!(h["fit_start_time"], json!("2008-01-01"));
        assert_eq!(
            task["dataset"]["kwargs"]["segments"]["test"],
            json!(["2017-01-01", null])
        );
        assert_eq!(task["model"]["kwargs"]["learning_rate"], json!(0.2));
    }

    #[test]
    fn single_task_and_list() {
        assert_eq!(parse(r#"{"model": {}}"#, "t.json").unwrap().tasks.len(), 1);
        assert_eq!(
            parse("- {a: 1}\n- {a: 2}\n", "t.yaml").unwrap().tasks.len(),
            2
        );
        let err = parse("- 1\n", "t.yaml").unwrap_err().to_string();
        assert_eq!(err, "t.yaml: task 1 is a number, not a map");
        assert!(parse("[]", "t.json").is_err());
        assert!(parse("", "t.yaml").is_err());
    }

    #[test]
    fn malformed_yaml_names_line_and_column() {
        let err = parse("model:\n  class: [LGB\n  x: 1\n", "bad.yaml").unwrap_err();
        match &err {
            CoreError::Parse {
                path, line, column, ..
            } => {
                assert_eq!(path, Path::new("bad.yaml"));
                assert!(*line >= 2 && *column >= 1, "{err}");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(err.to_string().starts_with("bad.yaml:"), "{err}");
    }

    #[test]
    fn malformed_json_names_line_and_column() {
        let err = parse("{\n \"a\": 1,,\n}", "bad.json")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("bad.json:2:"), "{err}");
    }
}
