//! Qlib's `fill_placeholder`: replace `<MODEL>`-style strings by given values, and `<a.b.0>`
//! strings by the value at that path of the task itself.

use serde_json::{Map, Value};

use crate::path;

/// Fills placeholders in `config`, breadth-first, in place, exactly as Qlib does:
///
/// - a string equal to a key of `extend` is replaced by its value;
/// - otherwise a string starting with `<path>` is replaced by the value at `path` of `config`
///   as it is at that moment (earlier replacements are visible); an unknown path leaves it;
/// - replaced values are not searched again.
pub fn fill_placeholder(config: &mut Value, extend: &Map<String, Value>) {
    let mut queue: Vec<Vec<String>> = vec![Vec::new()];
    let mut head = 0;
    while head < queue.len() {
        let here = queue[head].clone();
        head += 1;
        let keys: Vec<String> = match node(config, &here) {
            Some(Value::Object(m)) => m.keys().cloned().collect(),
            Some(Value::Array(a)) => (0..a.len()).map(|i| i.to_string()).collect(),
            _ => continue,
        };
        for key in keys {
            let mut child_path = here.clone();
            child_path.push(key);
            let replacement = match node(config, &child_path) {
                Some(Value::Object(_) | Value::Array(_)) => {
                    queue.push(child_path);
                    continue;
                }
                Some(Value::String(s)) => replacement(config, extend, s),
                _ => None,
            };
            if let (Some(v), Some(slot)) = (replacement, node_mut(config, &child_path)) {
                *slot = v;
            }
        }
    }
}

fn replacement(config: &Value, extend: &Map<String, Value>, s: &str) -> Option<Value> {
    if let Some(v) = extend.get(s) {
        return Some(v.clone());
    }
    let name = placeholder_name(s)?;
    path::get(config, name).cloned()
}

/// The `name` of a string that starts with `<name>` (no `<` or `>` inside), as Qlib's regex.
pub fn placeholder_name(s: &str) -> Option<&str> {
    let rest = s.strip_prefix('<')?;
    let end = rest.find(['<', '>'])?;
    (end > 0 && rest.as_bytes()[end] == b'>').then(|| &rest[..end])
}

fn node<'a>(v: &'a Value, p: &[String]) -> Option<&'a Value> {
    p.iter().try_fold(v, |cur, k| match cur {
        Value::Object(m) => m.get(k),
        Value::Array(a) => a.get(k.parse::<usize>().ok()?),
        _ => None,
    })
}

fn node_mut<'a>(v: &'a mut Value, p: &[String]) -> Option<&'a mut Value> {
    p.iter().try_fold(v, |cur, k| match cur {
        Value::Object(m) => m.get_mut(k),
        Value::Array(a) => a.get_mut(k.parse::<usize>().ok()?),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fills_exact_keys_and_paths() {
        let mut task = json!({
            "dataset": {"kwargs": {
                "handler": {"kwargs": {"fit_start_time": "<dataset.kwargs.segments.train.0>",
                                        "fit_end_time": "<dataset.kwargs.segments.train.1>"}},
                "segments": {"train": ["2008-01-02", "2014-12-31"]}}},
            "record": [{"kwargs": {"model": "<MODEL>", "dataset": "<DATASET>", "other": "<nope.x>"}}]
        });
        let mut ext = Map::new();
        ext.insert("<MODEL>".into(), json!({"id": "m1"}));
        ext.insert("<DATASET>".into(), json!("ds"));
        fill_placeholder(&mut task, &ext);
        assert_eq!(
            task["dataset"]["kwargs"]["handler"]["kwargs"]["fit_start_time"],
            "2008-01-02"
        );
        assert_eq!(
            task["dataset"]["kwargs"]["handler"]["kwargs"]["fit_end_time"],
            "2014-12-31"
        );
        assert_eq!(task["record"][0]["kwargs"]["model"], json!({"id": "m1"}));
        assert_eq!(task["record"][0]["kwargs"]["dataset"], "ds");
        assert_eq!(task["record"][0]["kwargs"]["other"], "<nope.x>");
    }

    #[test]
    fn replaced_containers_are_not_searched_again() {
        let mut task = json!({"a": "<b>", "b": {"c": "<MODEL>"}});
        let mut ext = Map::new();
        ext.insert("<MODEL>".into(), json!(1));
        fill_placeholder(&mut task, &ext);
        // `a` was replaced first (BFS order) by b as it was then, and not searched again.
        assert_eq!(task, json!({"a": {"c": "<MODEL>"}, "b": {"c": 1}}));
    }

    #[test]
    fn placeholder_names() {
        assert_eq!(placeholder_name("<a.b.0>"), Some("a.b.0"));
        assert_eq!(placeholder_name("<a>tail"), Some("a"));
        assert_eq!(placeholder_name("<>"), None);
        assert_eq!(placeholder_name("<a<b>"), None);
        assert_eq!(placeholder_name("a>"), None);
    }
}
