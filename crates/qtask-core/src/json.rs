//! JSON numbers as qtask keeps them: integers exactly, whatever their size, and floats as the
//! shortest text of their `f64` value.
//!
//! serde_json is built with `arbitrary_precision`, so a parsed number keeps the text it was
//! written with: `18446744073709551617` stays itself instead of becoming `1.8446744073709552e19`
//! (which would make two different tasks hash alike). Every other number is normalised when it
//! enters qtask ([`parse`], [`normalize`]): `1e-3`, `0.0010` and `1.0e-3` all become `0.001`, as
//! they did before, so values compare, print and hash as plain `f64` values would. A float
//! outside the `f64` range (`1e400`) is refused, as serde_json refuses it without the feature.

use serde_json::{Number, Value};

/// A number qtask cannot keep: a float beyond the `f64` range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("number {text} {at}is out of range (a float must be finite; quote it to keep it as text)")]
pub struct NumberError {
    /// The number as written.
    pub text: String,
    /// `at `a.b.0` ` when the number is inside a document, else empty.
    pub at: String,
}

/// Why JSON text was refused.
#[derive(Debug, thiserror::Error)]
pub enum JsonError {
    /// The text is not JSON.
    #[error(transparent)]
    Syntax(#[from] serde_json::Error),
    /// A number is out of range.
    #[error(transparent)]
    Number(#[from] NumberError),
}

/// Parses JSON text and normalises its numbers (see the module docs).
pub fn parse(text: &str) -> Result<Value, JsonError> {
    let mut v: Value = serde_json::from_str(text)?;
    normalize(&mut v)?;
    Ok(v)
}

/// Normalises every number of `v` in place (see the module docs); a float beyond the `f64`
/// range is an error naming its dotted path.
pub fn normalize(v: &mut Value) -> Result<(), NumberError> {
    let mut path = Vec::new();
    walk(v, &mut path)
}

fn walk(v: &mut Value, path: &mut Vec<String>) -> Result<(), NumberError> {
    match v {
        Value::Number(n) => {
            *n = normalized(n).map_err(|text| NumberError {
                text,
                at: if path.is_empty() {
                    String::new()
                } else {
                    format!("at `{}` ", path.join("."))
                },
            })?;
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                path.push(i.to_string());
                walk(item, path)?;
                path.pop();
            }
        }
        Value::Object(map) => {
            for (k, item) in map.iter_mut() {
                path.push(k.clone());
                walk(item, path)?;
                path.pop();
            }
        }
        _ => {}
    }
    Ok(())
}

/// Checks, without changing anything, that every number of `v` can be kept (see
/// [`normalize`]).
pub fn check(v: &Value) -> Result<(), NumberError> {
    normalize(&mut v.clone())
}

/// Whether `text` is a JSON integer literal (`-?digits`).
fn is_integer_literal(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// The normal form of a number; `Err(text)` for a float beyond the `f64` range.
fn normalized(n: &Number) -> Result<Number, String> {
    let text = n.to_string();
    if is_integer_literal(&text) {
        if text == "-0" {
            // serde_json reads `-0` as the float -0.0.
            return Ok(Number::from_f64(-0.0).expect("finite"));
        }
        if let Some(u) = n.as_u64() {
            return Ok(Number::from(u));
        }
        if let Some(i) = n.as_i64() {
            return Ok(Number::from(i));
        }
        // Beyond 64 bits: kept exactly as written.
        return Ok(n.clone());
    }
    match text.parse::<f64>() {
        Ok(f) if f.is_finite() => Ok(Number::from_f64(f).expect("finite")),
        _ => Err(text),
    }
}

/// The text of a number in canonical JSON: its normal form, or the text as written when it
/// has none (a float beyond the `f64` range, which [`normalize`] would have refused).
pub fn number_text(n: &Number) -> String {
    normalized(n).unwrap_or_else(|_| n.clone()).to_string()
}

/// Whether `n` is an integer too large for 64 bits (kept exactly as written).
pub fn is_big_integer(n: &Number) -> bool {
    n.as_i64().is_none() && n.as_u64().is_none() && is_integer_literal(&n.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn big_integers_are_kept_exactly() {
        let v =
            parse(r#"{"a": 18446744073709551617, "b": -123456789012345678901234567890}"#).unwrap();
        assert_eq!(v["a"].to_string(), "18446744073709551617");
        assert_eq!(v["b"].to_string(), "-123456789012345678901234567890");
        assert!(is_big_integer(v["a"].as_number().unwrap()));
        let w = parse(r#"{"a": 18446744073709551616}"#).unwrap();
        assert_ne!(v["a"], w["a"]);
    }

    #[test]
    fn other_numbers_are_normalised_as_f64_values() {
        let v =
            parse(r#"[1e-3, 0.0010, 1.0e-3, 1.00, 1e2, 7, -0, 18446744073709551615, -5]"#).unwrap();
        assert_eq!(
            v,
            json!([
                0.001,
                0.001,
                0.001,
                1.0,
                100.0,
                7,
                -0.0,
                18446744073709551615u64,
                -5
            ])
        );
        assert_eq!(
            v.to_string(),
            "[0.001,0.001,0.001,1.0,100.0,7,-0.0,18446744073709551615,-5]"
        );
    }

    #[test]
    fn floats_beyond_f64_are_refused_with_their_path() {
        let err = parse(r#"{"model": {"lr": [0.1, 1e400]}}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "number 1e+400 at `model.lr.1` is out of range (a float must be finite; quote it to \
             keep it as text)"
        );
        assert!(parse("-1e400").is_err());
        assert!(parse("[1").is_err());
    }
}
