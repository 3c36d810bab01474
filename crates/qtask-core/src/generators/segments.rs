//! Reading and writing the `dataset.kwargs.segments` map of a task.

use serde_json::Value;

use crate::calendar::{Segment, TimeAdjuster};
use crate::date::{day_to_json, point_from_json};
use crate::error::{CoreError, Result};
use crate::path;

/// Where Qlib keeps a task's segments.
pub const SEGMENTS_PATH: &str = "dataset.kwargs.segments";

/// Reads and aligns every segment of `task`, in the document's key order.
///
/// `"-1"` as an end means "open", like `None`.
pub fn read_segments(
    task: &Value,
    ta: &TimeAdjuster,
    needed_by: &str,
) -> Result<Vec<(String, Segment)>> {
    let segs = path::get(task, SEGMENTS_PATH).ok_or_else(|| CoreError::MissingPath {
        path: SEGMENTS_PATH.into(),
        context: format!(" (needed by {needed_by})"),
    })?;
    let map = segs.as_object().ok_or_else(|| {
        CoreError::Template(format!(
            "`{SEGMENTS_PATH}` must be a map of name -> [start, end], found {segs}"
        ))
    })?;
    let mut out = Vec::with_capacity(map.len());
    for (name, seg) in map {
        let where_ = format!("{SEGMENTS_PATH}.{name}");
        let pair = seg.as_array().filter(|a| a.len() == 2).ok_or_else(|| {
            CoreError::Template(format!(
                "`{where_}` must be a [start, end] pair, found {seg}"
            ))
        })?;
        let start = point_from_json(&pair[0], &format!("{where_}.0"))?;
        let end = if pair[1].as_str() == Some("-1") {
            None
        } else {
            point_from_json(&pair[1], &format!("{where_}.1"))?
        };
        out.push((name.clone(), ta.align_seg(start, end, name)?));
    }
    Ok(out)
}

/// Writes segments back as `[YYYY-MM-DD | null, YYYY-MM-DD | null]` pairs.
pub fn write_segments(task: &mut Value, segs: &[(String, Segment)]) {
    let map = segs
        .iter()
        .map(|(k, s)| {
            (
                k.clone(),
                Value::Array(vec![day_to_json(s.start), day_to_json(s.end)]),
            )
        })
        .collect();
    path::set(task, SEGMENTS_PATH, Value::Object(map))
        .expect("segments path exists in a task that had segments");
}

/// Finds a segment by name.
pub fn find<'a>(segs: &'a [(String, Segment)], key: &str) -> Option<&'a Segment> {
    segs.iter().find(|(k, _)| k == key).map(|(_, s)| s)
}
