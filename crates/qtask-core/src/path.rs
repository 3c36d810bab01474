//! Dotted paths into JSON task documents (`dataset.kwargs.segments.test.0`).
//!
//! A path segment indexes a map by key, or a list by a non-negative integer, as Qlib's
//! `get_item_from_obj` does.

use serde_json::Value;

/// Splits a dotted path into its segments (an empty path names the document itself).
pub fn segments(path: &str) -> Vec<&str> {
    if path.is_empty() {
        Vec::new()
    } else {
        path.split('.').collect()
    }
}

/// Returns the value at `path`, or `None` when any segment is missing.
pub fn get<'a>(doc: &'a Value, path: &str) -> Option<&'a Value> {
    segments(path)
        .into_iter()
        .try_fold(doc, |cur, seg| match cur {
            Value::Object(map) => map.get(seg),
            Value::Array(items) => seg.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        })
}

/// Returns a mutable reference to the value at `path`, or `None` when any segment is missing.
pub fn get_mut<'a>(doc: &'a mut Value, path: &str) -> Option<&'a mut Value> {
    segments(path)
        .into_iter()
        .try_fold(doc, |cur, seg| match cur {
            Value::Object(map) => map.get_mut(seg),
            Value::Array(items) => seg.parse::<usize>().ok().and_then(|i| items.get_mut(i)),
            _ => None,
        })
}

/// Sets the value at `path`, creating intermediate maps where a key is missing.
///
/// Fails (returning the first segment that cannot be entered) when the path runs through a
/// scalar or an out-of-range list index.
pub fn set(doc: &mut Value, path: &str, value: Value) -> Result<(), String> {
    let segs = segments(path);
    let Some((last, parents)) = segs.split_last() else {
        *doc = value;
        return Ok(());
    };
    let mut cur = doc;
    for seg in parents {
        cur = match cur {
            Value::Object(map) => map
                .entry(seg.to_string())
                .or_insert_with(|| Value::Object(Default::default())),
            Value::Array(items) => match seg.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                Some(v) => v,
                None => return Err(seg.to_string()),
            },
            _ => return Err(seg.to_string()),
        };
    }
    match cur {
        Value::Object(map) => {
            map.insert(last.to_string(), value);
            Ok(())
        }
        Value::Array(items) => match last.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
            Some(slot) => {
                *slot = value;
                Ok(())
            }
            None => Err(last.to_string()),
        },
        _ => Err(last.to_string()),
    }
}

/// Flattens nested maps into `a.b.c -> leaf` pairs, as Qlib's `flatten_dict` does
/// (lists are leaves).
pub fn flatten(doc: &Value) -> Vec<(String, Value)> {
    fn walk(prefix: &str, v: &Value, out: &mut Vec<(String, Value)>) {
        match v {
            Value::Object(map) if !map.is_empty() => {
                for (k, child) in map {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&key, child, out);
                }
            }
            _ => out.push((prefix.to_string(), v.clone())),
        }
    }
    let mut out = Vec::new();
    walk("", doc, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn get_walks_maps_and_lists() {
        let doc = json!({"a": {"b": [10, {"c": "x"}]}});
        assert_eq!(get(&doc, "a.b.0"), Some(&json!(10)));
        assert_eq!(get(&doc, "a.b.1.c"), Some(&json!("x")));
        assert_eq!(get(&doc, "a.b.2"), None);
        assert_eq!(get(&doc, "a.z"), None);
        assert_eq!(get(&doc, ""), Some(&doc));
    }

    #[test]
    fn set_creates_maps_and_refuses_scalars() {
        let mut doc = json!({"a": 1, "l": [1, 2]});
        set(&mut doc, "x.y.z", json!(3)).unwrap();
        set(&mut doc, "l.1", json!(9)).unwrap();
        assert_eq!(doc, json!({"a": 1, "l": [1, 9], "x": {"y": {"z": 3}}}));
        assert_eq!(set(&mut doc, "a.b", json!(0)), Err("b".into()));
        assert_eq!(set(&mut doc, "l.5", json!(0)), Err("5".into()));
    }

    #[test]
    fn flatten_joins_keys_with_dots() {
        let doc = json!({"model": {"class": "LGB", "kwargs": {"lr": 0.1}}, "seg": [1, 2], "e": {}});
        let flat = flatten(&doc);
        assert_eq!(
            flat,
            vec![
                ("model.class".to_string(), json!("LGB")),
                ("model.kwargs.lr".to_string(), json!(0.1)),
                ("seg".to_string(), json!([1, 2])),
                ("e".to_string(), json!({})),
            ]
        );
    }
}
