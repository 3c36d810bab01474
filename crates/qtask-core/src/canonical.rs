//! Canonical JSON (sorted keys, no whitespace) and the task hash used for deduplication.
//!
//! Two task definitions are "the same task" when their canonical JSON is equal, whatever
//! the key order of the file they came from (Qlib compares key-order-sensitively).

use serde_json::Value;
use sha2::{Digest, Sha256};

/// Writes `v` as canonical JSON: object keys sorted by their UTF-8 bytes, no whitespace.
pub fn canonical_json(v: &Value) -> String {
    let mut out = String::new();
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(&map[k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        // Numbers in their normal form, whatever text they were written with (an integer
        // beyond 64 bits is exact; see `crate::json`).
        Value::Number(n) => out.push_str(&crate::json::number_text(n)),
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// SHA-256 of the canonical JSON, as 64 lower-case hex digits.
pub fn task_hash(v: &Value) -> String {
    let digest = Sha256::digest(canonical_json(v).as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_order_does_not_matter() {
        let a: Value = serde_json::from_str(r#"{"b": 1, "a": {"y": [1, 2], "x": null}}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"a": {"x": null, "y": [1, 2]}, "b": 1}"#).unwrap();
        assert_eq!(canonical_json(&a), r#"{"a":{"x":null,"y":[1,2]},"b":1}"#);
        assert_eq!(task_hash(&a), task_hash(&b));
    }

    #[test]
    fn different_values_hash_differently() {
        assert_ne!(task_hash(&json!({"a": 1})), task_hash(&json!({"a": 2})));
        assert_ne!(task_hash(&json!([1, 2])), task_hash(&json!([2, 1])));
        assert_eq!(task_hash(&json!("x")).len(), 64);
    }

    #[test]
    fn numbers_hash_by_value_and_big_integers_exactly() {
        // The hash of every number qtask could represent before is unchanged: floats by their
        // f64 value, however written.
        let a: Value = serde_json::from_str(r#"{"lr": 1e-3, "n": 1.00, "k": 5}"#).unwrap();
        assert_eq!(canonical_json(&a), r#"{"k":5,"lr":0.001,"n":1.0}"#);
        assert_eq!(
            task_hash(&a),
            task_hash(&json!({"lr": 0.001, "n": 1.0, "k": 5}))
        );
        // Integers beyond 64 bits are exact: these two differ in their last digit.
        let b: Value = serde_json::from_str(r#"{"a": 18446744073709551616}"#).unwrap();
        let c: Value = serde_json::from_str(r#"{"a": 18446744073709551617}"#).unwrap();
        assert_eq!(canonical_json(&c), r#"{"a":18446744073709551617}"#);
        assert_ne!(task_hash(&b), task_hash(&c));
    }

    #[test]
    fn strings_are_escaped() {
        assert_eq!(canonical_json(&json!({"k\"": "a\nb"})), r#"{"k\"":"a\nb"}"#);
    }
}
