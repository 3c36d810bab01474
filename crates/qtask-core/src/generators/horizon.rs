//! Qlib's `MultiHorizonGen`: one task per label horizon, with the label leak gap cut out of
//! every non-test segment.

use serde_json::Value;

use super::TaskGen;
use super::segments::{SEGMENTS_PATH, find, read_segments, write_segments};
use crate::calendar::TimeAdjuster;
use crate::error::{CoreError, Result};
use crate::path;

/// One task per horizon `h`: label `Ref($close, -(h+1)) / Ref($close, -1) - 1`, `extra.horizon = h`,
/// every non-test segment truncated to `h + label_leak_n` trading days before the test start.
#[derive(Debug, Clone)]
pub struct MultiHorizonGen<'a> {
    /// Calendar used for alignment.
    pub ta: &'a TimeAdjuster,
    /// Horizons in trading days (Qlib's default `[5]`).
    pub horizons: Vec<i64>,
    /// Extra days between train data and the test start (Qlib's default 2).
    pub label_leak_n: i64,
    /// Name of the test segment.
    pub test_key: String,
}

impl<'a> MultiHorizonGen<'a> {
    /// Qlib's defaults: horizon 5, leak 2, test key `test`.
    pub fn new(ta: &'a TimeAdjuster) -> Self {
        Self {
            ta,
            horizons: vec![5],
            label_leak_n: 2,
            test_key: "test".into(),
        }
    }
}

/// The label expression of horizon `h` (exactly Qlib's spacing).
pub fn horizon_label(h: i64) -> String {
    format!("Ref($close, -{}) / Ref($close, -1) - 1", h + 1)
}

/// Sets the label of `task` for horizon `h` and records `extra.horizon`.
pub fn set_horizon(task: &mut Value, h: i64) -> Result<()> {
    const HANDLER: &str = "dataset.kwargs.handler";
    match path::get(task, HANDLER) {
        Some(Value::Object(_)) => {}
        _ => {
            return Err(CoreError::Template(format!(
                "cannot set the label horizon: `{HANDLER}` must be a map with kwargs"
            )));
        }
    }
    let label = Value::Array(vec![Value::String(horizon_label(h))]);
    path::set(task, "dataset.kwargs.handler.kwargs.label", label)
        .and_then(|_| path::set(task, "extra.horizon", Value::from(h)))
        .map_err(|seg| {
            CoreError::Template(format!(
                "cannot set the label horizon: `{seg}` is not a map"
            ))
        })
}

impl TaskGen for MultiHorizonGen<'_> {
    fn generate(&self, task: &Value) -> Result<Vec<Value>> {
        let mut out = Vec::with_capacity(self.horizons.len());
        for &h in &self.horizons {
            if h < 1 {
                return Err(CoreError::Generator(format!(
                    "horizon {h} must be at least 1 trading day"
                )));
            }
            let mut t = task.clone();
            set_horizon(&mut t, h)?;
            let mut segs = read_segments(&t, self.ta, "the horizon generator")?;
            let test_start = find(&segs, &self.test_key)
                .ok_or_else(|| CoreError::MissingPath {
                    path: format!("{SEGMENTS_PATH}.{}", self.test_key),
                    context: " (the horizon generator needs a test segment)".into(),
                })?
                .start
                .ok_or_else(|| {
                    CoreError::Template(format!(
                        "`{SEGMENTS_PATH}.{}` needs a start date",
                        self.test_key
                    ))
                })?;
            for (k, seg) in segs.iter_mut() {
                if *k != self.test_key {
                    *seg = self
                        .ta
                        .truncate(*seg, test_start, h + self.label_leak_n, k)?;
                }
            }
            write_segments(&mut t, &segs);
            out.push(t);
        }
        Ok(out)
    }
}
