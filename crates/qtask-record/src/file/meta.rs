//! `meta.yaml` of experiments and runs, as MLflow's file store writes and reads them.
//!
//! Written by hand (sorted keys, like PyYAML's `safe_dump`) because the layout is fixed and
//! small; strings are always double-quoted so no value can be mistaken for a number or null.

use std::path::Path;

use serde_json::Value;

use crate::error::{RecordError, Result};
use crate::file::fsutil;
use crate::types::{ExperimentInfo, RunInfo, RunStatus};

/// MLflow's `SourceType.LOCAL`.
const SOURCE_TYPE_LOCAL: i64 = 4;

/// One YAML scalar.
enum Y<'a> {
    Str(&'a str),
    Int(i64),
    Null,
    EmptyList,
}

fn render(fields: &mut [(&str, Y<'_>)]) -> String {
    fields.sort_by(|a, b| a.0.cmp(b.0));
    let mut out = String::new();
    for (key, value) in fields.iter() {
        out.push_str(key);
        out.push_str(": ");
        match value {
            Y::Str(s) => out.push_str(&yaml_quote(s)),
            Y::Int(i) => out.push_str(&i.to_string()),
            Y::Null => out.push_str("null"),
            Y::EmptyList => out.push_str("[]"),
        }
        out.push('\n');
    }
    out
}

/// A YAML double-quoted scalar. Characters PyYAML refuses to read raw are escaped.
fn yaml_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if printable(c) => out.push(c),
            c if (c as u32) <= 0xFFFF => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push_str(&format!("\\U{:08X}", c as u32)),
        }
    }
    out.push('"');
    out
}

/// PyYAML's printable set (its reader rejects anything else).
fn printable(c: char) -> bool {
    matches!(c as u32, 0x20..=0x7E | 0x85 | 0xA0..=0xD7FF | 0xE000..=0xFFFD | 0x10000..=0x10FFFF)
}

/// Writes an experiment's `meta.yaml` (atomically).
pub(crate) fn write_experiment(dir: &Path, exp: &ExperimentInfo) -> Result<()> {
    let mut fields = vec![
        ("artifact_location", Y::Str(&exp.artifact_location)),
        ("experiment_id", Y::Str(&exp.id)),
        ("lifecycle_stage", Y::Str(&exp.lifecycle_stage)),
        ("name", Y::Str(&exp.name)),
        ("creation_time", exp.creation_time.map_or(Y::Null, Y::Int)),
        (
            "last_update_time",
            exp.last_update_time.map_or(Y::Null, Y::Int),
        ),
    ];
    fsutil::write_atomic(&dir.join("meta.yaml"), render(&mut fields).as_bytes())
}

/// Writes a run's `meta.yaml` (atomically), with the legacy fields older MLflow versions need.
pub(crate) fn write_run(dir: &Path, run: &RunInfo, deleted_time: Option<i64>) -> Result<()> {
    let mut fields = vec![
        ("artifact_uri", Y::Str(&run.artifact_uri)),
        ("end_time", run.end_time.map_or(Y::Null, Y::Int)),
        ("entry_point_name", Y::Str("")),
        ("experiment_id", Y::Str(&run.experiment_id)),
        ("lifecycle_stage", Y::Str(&run.lifecycle_stage)),
        ("run_id", Y::Str(&run.run_id)),
        ("run_name", Y::Str(&run.run_name)),
        ("run_uuid", Y::Str(&run.run_id)),
        ("source_name", Y::Str("")),
        ("source_type", Y::Int(SOURCE_TYPE_LOCAL)),
        ("source_version", Y::Str("")),
        ("start_time", Y::Int(run.start_time)),
        ("status", Y::Int(run.status.code())),
        ("tags", Y::EmptyList),
        ("user_id", Y::Str(&run.user_id)),
    ];
    if let Some(t) = deleted_time {
        fields.push(("deleted_time", Y::Int(t)));
    }
    fsutil::write_atomic(&dir.join("meta.yaml"), render(&mut fields).as_bytes())
}

/// Parses `dir/meta.yaml` into a map; `Ok(None)` when the file is missing.
fn read_map(dir: &Path, what: &'static str) -> Result<Option<serde_json::Map<String, Value>>> {
    let path = dir.join("meta.yaml");
    let Some(text) = fsutil::read_text_optional(&path)? else {
        return Ok(None);
    };
    let corrupt = |message: String| RecordError::Corrupt {
        path: path.clone(),
        what,
        message,
    };
    let value: Value = qtask_core::yaml::parse_yaml(&text).map_err(|e| {
        corrupt(format!(
            "line {} column {}: {}",
            e.line, e.column, e.message
        ))
    })?;
    match value {
        Value::Object(map) => Ok(Some(map)),
        _ => Err(corrupt("not a YAML mapping".into())),
    }
}

/// Field accessors that name the file and the field in their errors.
struct Fields<'a> {
    map: &'a serde_json::Map<String, Value>,
    dir: &'a Path,
    what: &'static str,
}

impl Fields<'_> {
    fn err(&self, key: &str, message: &str) -> RecordError {
        RecordError::Corrupt {
            path: self.dir.join("meta.yaml"),
            what: self.what,
            message: format!("field `{key}` {message}"),
        }
    }

    /// A string field; numbers are accepted (legacy stores wrote integer experiment ids).
    fn string(&self, key: &str) -> Result<String> {
        match self.map.get(key) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(Value::Number(n)) => Ok(n.to_string()),
            Some(_) => Err(self.err(key, "is not a string")),
            None => Err(self.err(key, "is missing")),
        }
    }

    fn string_or(&self, key: &str, default: &str) -> Result<String> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(default.to_string()),
            _ => self.string(key),
        }
    }

    fn opt_int(&self, key: &str) -> Result<Option<i64>> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .map(Some)
                .ok_or_else(|| self.err(key, "is not an integer")),
            Some(Value::String(s)) => s
                .parse()
                .map(Some)
                .map_err(|_| self.err(key, "is not an integer")),
            Some(_) => Err(self.err(key, "is not an integer")),
        }
    }
}

/// Reads an experiment's `meta.yaml`; `Ok(None)` when missing.
pub(crate) fn read_experiment(dir: &Path) -> Result<Option<ExperimentInfo>> {
    let what = "experiment metadata";
    let Some(map) = read_map(dir, what)? else {
        return Ok(None);
    };
    let f = Fields {
        map: &map,
        dir,
        what,
    };
    Ok(Some(ExperimentInfo {
        id: f.string("experiment_id")?,
        name: f.string("name")?,
        artifact_location: f.string_or("artifact_location", "")?,
        lifecycle_stage: f.string_or("lifecycle_stage", "active")?,
        creation_time: f.opt_int("creation_time")?,
        last_update_time: f.opt_int("last_update_time")?,
    }))
}

/// Reads a run's `meta.yaml`; `Ok(None)` when missing.
pub(crate) fn read_run(dir: &Path) -> Result<Option<RunInfo>> {
    let what = "run metadata";
    let Some(map) = read_map(dir, what)? else {
        return Ok(None);
    };
    let f = Fields {
        map: &map,
        dir,
        what,
    };
    let run_id = match f.string("run_id") {
        Ok(id) => id,
        Err(_) => f.string("run_uuid")?,
    };
    let status = match f.opt_int("status")? {
        None => RunStatus::Running,
        Some(code) => RunStatus::from_code(code)
            .ok_or_else(|| f.err("status", &format!("has unknown code {code}")))?,
    };
    Ok(Some(RunInfo {
        run_id,
        experiment_id: f.string("experiment_id")?,
        run_name: f.string_or("run_name", "")?,
        status,
        start_time: f.opt_int("start_time")?.unwrap_or(0),
        end_time: f.opt_int("end_time")?,
        artifact_uri: f.string_or("artifact_uri", "")?,
        lifecycle_stage: f.string_or("lifecycle_stage", "active")?,
        user_id: f.string_or("user_id", "")?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_escapes_what_pyyaml_cannot_read_raw() {
        assert_eq!(yaml_quote("demo exp"), "\"demo exp\"");
        assert_eq!(yaml_quote("a\"b\\c\nd"), "\"a\\\"b\\\\c\\nd\"");
        assert_eq!(yaml_quote("\u{1}x\u{90}"), "\"\\u0001x\\u0090\"");
        assert_eq!(yaml_quote("ü😀"), "\"ü😀\"");
    }

    #[test]
    fn run_meta_round_trips_and_reads_mlflows_own_file() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunInfo {
            run_id: "2c36e44329b4461b9f6888d8930d72eb".into(),
            experiment_id: "869240014066956602".into(),
            run_name: "r: 1 \"x\"".into(),
            status: RunStatus::Failed,
            start_time: 1795274967779,
            end_time: Some(1795274967831),
            artifact_uri: "file:///tmp/a%20b/artifacts".into(),
            lifecycle_stage: "active".into(),
            user_id: "qlib".into(),
        };
        write_run(dir.path(), &run, None).unwrap();
        assert_eq!(read_run(dir.path()).unwrap().unwrap(), run);

        // Verbatim from MLflow 3.17's file store (PyYAML output, unquoted where it can be).
        let mlflow_written = "artifact_uri: file:///tmp/qrec/ref/8692/2c36/artifacts\n\
            end_time: null\nentry_point_name: ''\nexperiment_id: '869240014066956602'\n\
            lifecycle_stage: active\nrun_id: 2c36e44329b4461b9f6888d8930d72eb\nrun_name: r1\n\
            source_name: ''\nsource_type: 4\nsource_version: ''\nstart_time: 1795274967779\n\
            status: 3\ntags: []\nuser_id: unknown\n";
        std::fs::write(dir.path().join("meta.yaml"), mlflow_written).unwrap();
        let read = read_run(dir.path()).unwrap().unwrap();
        assert_eq!(read.experiment_id, "869240014066956602");
        assert_eq!(read.status, RunStatus::Finished);
        assert_eq!(read.end_time, None);
        assert_eq!(read.run_name, "r1");
    }

    #[test]
    fn corrupt_meta_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("meta.yaml"), "name: [unclosed\n").unwrap();
        let err = read_experiment(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("meta.yaml: corrupt experiment metadata"),
            "{err}"
        );
        std::fs::write(dir.path().join("meta.yaml"), "name: x\n").unwrap();
        let err = read_experiment(dir.path()).unwrap_err().to_string();
        assert!(err.contains("field `experiment_id` is missing"), "{err}");
        assert!(read_experiment(&dir.path().join("nope")).unwrap().is_none());
    }
}
