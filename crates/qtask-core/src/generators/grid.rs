//! A parameter grid over dotted paths: one task per combination of values (Qlib's
//! "a template and a list of losses -> one task per loss", generalised).

use std::str::FromStr;

use serde_json::Value;

use super::TaskGen;
use crate::error::{CoreError, Result};
use crate::path;

/// One axis of the grid: a dotted path and the values it takes.
#[derive(Debug, Clone, PartialEq)]
pub struct GridAxis {
    /// Dotted path into the task (`model.kwargs.loss`).
    pub path: String,
    /// Values, in order.
    pub values: Vec<Value>,
}

impl FromStr for GridAxis {
    type Err = CoreError;

    /// Parses `PATH=V1,V2,...`; each value is JSON when it parses as a JSON scalar
    /// (`0.1`, `true`, `null`), else a string.
    fn from_str(s: &str) -> Result<Self> {
        let (p, vals) = s.split_once('=').ok_or_else(|| {
            CoreError::Generator(format!(
                "bad grid `{s}`: expected PATH=V1,V2,... (e.g. model.kwargs.loss=mse,huber)"
            ))
        })?;
        let p = p.trim();
        if p.is_empty() || p.split('.').any(str::is_empty) {
            return Err(CoreError::Generator(format!(
                "bad grid `{s}`: `{p}` is not a dotted path"
            )));
        }
        let values: Vec<Value> = vals
            .split(',')
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(|v| match crate::json::parse(v) {
                Ok(j) if !j.is_object() && !j.is_array() => j,
                _ => Value::String(v.to_string()),
            })
            .collect();
        if values.is_empty() {
            return Err(CoreError::Generator(format!(
                "bad grid `{s}`: no values after `=`"
            )));
        }
        Ok(Self {
            path: p.to_string(),
            values,
        })
    }
}

/// The cartesian product of its axes, the first axis varying slowest.
#[derive(Debug, Clone, Default)]
pub struct GridGen {
    /// The axes.
    pub axes: Vec<GridAxis>,
}

impl TaskGen for GridGen {
    fn generate(&self, task: &Value) -> Result<Vec<Value>> {
        let mut out = vec![task.clone()];
        for axis in &self.axes {
            let mut next = Vec::with_capacity(out.len() * axis.values.len());
            for t in &out {
                for v in &axis.values {
                    let mut t = t.clone();
                    path::set(&mut t, &axis.path, v.clone()).map_err(|seg| {
                        CoreError::Generator(format!(
                            "grid path `{}`: cannot enter `{seg}` (not a map or list index)",
                            axis.path
                        ))
                    })?;
                    next.push(t);
                }
            }
            out = next;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_values_as_json_scalars_or_strings() {
        let a: GridAxis = "model.kwargs.lr=0.1, 1e-3,true,null,mse".parse().unwrap();
        assert_eq!(a.path, "model.kwargs.lr");
        assert_eq!(
            a.values,
            vec![
                json!(0.1),
                json!(1e-3),
                json!(true),
                json!(null),
                json!("mse")
            ]
        );
        assert!("model.kwargs.lr".parse::<GridAxis>().is_err());
        assert!("a..b=1".parse::<GridAxis>().is_err());
        assert!("a=".parse::<GridAxis>().is_err());
    }

    #[test]
    fn product_first_axis_slowest() {
        let g = GridGen {
            axes: vec!["a=1,2".parse().unwrap(), "b.c=x,y".parse().unwrap()],
        };
        let out = g.generate(&json!({"a": 0})).unwrap();
        let pairs: Vec<_> = out
            .iter()
            .map(|t| (t["a"].clone(), t["b"]["c"].clone()))
            .collect();
        assert_eq!(
            pairs,
            vec![
                (json!(1), json!("x")),
                (json!(1), json!("y")),
                (json!(2), json!("x")),
                (json!(2), json!("y"))
            ]
        );
    }

    #[test]
    fn path_through_scalar_is_an_error() {
        let g = GridGen {
            axes: vec!["a.b=1".parse().unwrap()],
        };
        let err = g.generate(&json!({"a": 3})).unwrap_err().to_string();
        assert!(err.contains("cannot enter `b`"), "{err}");
    }
}
