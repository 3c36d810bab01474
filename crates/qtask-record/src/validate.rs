//! The checks MLflow applies to keys, values and artifact paths, so that qtask refuses what
//! MLflow would refuse (or could not read back), before anything is written.

use serde_json::Value;

use crate::error::{RecordError, Result};

/// MLflow's `MAX_ENTITY_KEY_LENGTH`.
pub const MAX_KEY_LENGTH: usize = 250;
/// MLflow's `MAX_PARAM_VAL_LENGTH`.
pub const MAX_PARAM_VALUE_LENGTH: usize = 6000;
/// MLflow's `MAX_TAG_VAL_LENGTH`.
pub const MAX_TAG_VALUE_LENGTH: usize = 8000;
/// MLflow's `MAX_EXPERIMENT_NAME_LENGTH`.
pub const MAX_EXPERIMENT_NAME_LENGTH: usize = 500;

/// Checks a param, metric or tag key as MLflow's `_validate_param_name` does: alphanumerics,
/// `_ - . : /` and spaces, at most 250 characters, and a name that stays itself when read as a
/// path (keys become file names in the file store).
pub fn check_key(kind: &str, key: &str) -> Result<()> {
    let bad_char = key
        .chars()
        .find(|&c| !(c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ' ' | ':' | '/')));
    if let Some(c) = bad_char {
        return Err(RecordError::Invalid(format!(
            "{kind} key `{key}`: character {c:?} is not allowed (MLflow allows letters, digits, \
             `_`, `-`, `.`, `:`, `/` and spaces)"
        )));
    }
    if key.chars().count() > MAX_KEY_LENGTH {
        return Err(RecordError::Invalid(format!(
            "{kind} key `{key}` is longer than MLflow's {MAX_KEY_LENGTH} characters"
        )));
    }
    if normalize_posix(key) != key || key.starts_with('/') || key.starts_with("..") {
        return Err(RecordError::Invalid(format!(
            "{kind} key `{key}` would name another file (it normalizes to `{}`); MLflow rejects it",
            normalize_posix(key)
        )));
    }
    // Keys become files (`/` makes folders): qtask's one rule for file names applies too.
    qtask_core::name::check_relative_path(&format!("{kind} key"), key)
        .map_err(|e| RecordError::Invalid(e.to_string()))
}

/// Checks a value's length against MLflow's limit for params or tags.
pub fn check_value(kind: &str, key: &str, value: &str, limit: usize) -> Result<()> {
    let n = value.chars().count();
    if n > limit {
        return Err(RecordError::Invalid(format!(
            "{kind} `{key}`: value has {n} characters, MLflow accepts at most {limit}"
        )));
    }
    Ok(())
}

/// Checks an experiment name (non-empty, at most 500 characters).
pub fn check_experiment_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(RecordError::Invalid("experiment name is empty".into()));
    }
    if name.chars().count() > MAX_EXPERIMENT_NAME_LENGTH {
        return Err(RecordError::Invalid(format!(
            "experiment name is longer than MLflow's {MAX_EXPERIMENT_NAME_LENGTH} characters"
        )));
    }
    Ok(())
}

/// Checks a run id: 32 lowercase hex digits (also what keeps it a safe folder name).
pub fn check_run_id(run_id: &str) -> Result<()> {
    let ok = !run_id.is_empty()
        && run_id.len() <= 256
        && run_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(RecordError::Invalid(format!(
            "`{run_id}` is not a run id (expected 32 hex digits)"
        )))
    }
}

/// Checks an experiment id (decimal digits, as MLflow generates them).
pub fn check_experiment_id(id: &str) -> Result<()> {
    if !id.is_empty() && id.chars().all(|c| c.is_ascii_digit()) {
        Ok(())
    } else {
        Err(RecordError::Invalid(format!(
            "`{id}` is not an experiment id (expected digits)"
        )))
    }
}

/// Checks and normalizes an artifact path: relative, `/`-separated, no `..`, no empty or `.`
/// segments. Returns the path with a trailing `/` removed.
pub fn artifact_path(path: &str) -> Result<String> {
    let trimmed = path.trim_end_matches('/');
    let bad = |why: &str| {
        Err(RecordError::Invalid(format!(
            "artifact path `{path}`: {why}"
        )))
    };
    if trimmed.is_empty() {
        return bad("is empty");
    }
    if trimmed.starts_with('/') {
        return bad("must be relative to the run's artifact folder");
    }
    if trimmed.contains('\\') {
        return bad("use `/` to separate folders");
    }
    for seg in trimmed.split('/') {
        match seg {
            "" => return bad("has an empty folder name (`//`)"),
            "." | ".." => return bad("must not contain `.` or `..`"),
            _ => {}
        }
    }
    // Reading and writing check the same: qtask's one rule for file names, per segment.
    qtask_core::name::check_relative_path("artifact path", trimmed)
        .map_err(|e| RecordError::Invalid(e.to_string()))?;
    Ok(trimmed.to_string())
}

/// `posixpath.normpath` for the inputs keys can hold (no leading `//` subtleties needed).
fn normalize_posix(path: &str) -> String {
    if path.is_empty() {
        return ".".into();
    }
    let absolute = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if !absolute {
                    parts.push("..");
                }
            }
            s => parts.push(s),
        }
    }
    let body = parts.join("/");
    match (absolute, body.is_empty()) {
        (true, _) => format!("/{body}"),
        (false, true) => ".".into(),
        (false, false) => body,
    }
}

/// Renders a JSON value as Python's `str()` renders the equivalent Python object, which is
/// what `mlflow.log_params` stores for Qlib's flattened task values (`0.1`, `True`, `None`,
/// `['a', 'b']`, ...), so params written by qtask compare equal to Qlib's.
pub fn python_str(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => python_repr(other),
    }
}

fn python_repr(value: &Value) -> String {
    match value {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (None, Some(u), _) => u.to_string(),
            // Python's int has no size limit: an integer beyond 64 bits prints exactly.
            _ if qtask_core::json::is_big_integer(n) => n.to_string(),
            (None, None, Some(f)) => python_float(f),
            _ => n.to_string(),
        },
        Value::String(s) => python_str_repr(s),
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(python_repr).collect();
            format!("[{}]", inner.join(", "))
        }
        Value::Object(map) => {
            let inner: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}: {}", python_str_repr(k), python_repr(v)))
                .collect();
            format!("{{{}}}", inner.join(", "))
        }
    }
}

/// Python's `repr(float)`: shortest round-trip digits, exponent form outside [1e-4, 1e16).
pub fn python_float(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-4..1e16).contains(&abs) {
        // Rust's `{:e}` gives `1e-5` / `1.5e16`; Python writes `1e-05` / `1.5e+16`.
        let s = format!("{f:e}");
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let exp: i32 = exp.parse().unwrap_or(0);
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exp.abs());
    }
    let s = format!("{f}");
    if s.contains('.') { s } else { format!("{s}.0") }
}

/// Python's `repr(str)`: single quotes unless the text holds a single quote and no double one.
fn python_str_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_follow_mlflow_rules() {
        for ok in [
            "IC",
            "Rank ICIR",
            "_id in TaskManager",
            "model.kwargs.lr",
            "a/b",
            "x:y",
        ] {
            assert!(check_key("param", ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "a//b", "/a", "a/", "./a", "a/../b", "..", "a?b", "é\"", "a\nb",
        ] {
            assert!(check_key("param", bad).is_err(), "{bad:?}");
        }
        let err = check_key("metric", "a*b").unwrap_err().to_string();
        assert!(
            err.contains("metric key `a*b`") && err.contains("'*'"),
            "{err}"
        );
        assert!(check_key("tag", &"k".repeat(251)).is_err());
    }

    #[test]
    fn artifact_paths_stay_inside_the_run() {
        assert_eq!(
            artifact_path("sig_analysis/ic.parquet").unwrap(),
            "sig_analysis/ic.parquet"
        );
        assert_eq!(artifact_path("dir/").unwrap(), "dir");
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a//b",
            "a\\b",
            "./a",
            "a/.hidden",
            "a/b\nc",
        ] {
            assert!(artifact_path(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn params_render_like_python_str() {
        // Expected strings are what CPython 3.11 prints for str() of the same objects.
        let cases = [
            (json!("csi300"), "csi300"),
            (json!(0.1), "0.1"),
            (json!(1.0), "1.0"),
            (json!(1e-5), "1e-05"),
            (json!(2e16), "2e+16"),
            (json!(12), "12"),
            (json!(true), "True"),
            (json!(null), "None"),
            (json!({}), "{}"),
            (json!(["2017-01-01", null]), "['2017-01-01', None]"),
            (
                json!({"a": [1, 2.5], "b": "it's"}),
                "{'a': [1, 2.5], 'b': \"it's\"}",
            ),
        ];
        for (value, expected) in cases {
            assert_eq!(python_str(&value), expected, "{value}");
        }
        assert_eq!(python_float(f64::NAN), "nan");
        assert_eq!(python_float(f64::NEG_INFINITY), "-inf");
    }
}
