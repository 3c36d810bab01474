//! Keys of collected maps: strings or tuples, like the hashable keys Qlib's collectors use.

use std::fmt;

/// A key in a collected map: a string, or a tuple of keys (Qlib's `(model, test_segment)`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    /// A plain string key, e.g. an artifact name or a run id.
    Str(String),
    /// A tuple key; [`crate::RollingGroup`] groups by all but its last element.
    Tuple(Vec<Key>),
}

impl Key {
    /// A string key.
    pub fn str(s: impl Into<String>) -> Key {
        Key::Str(s.into())
    }

    /// A tuple key.
    pub fn tuple(parts: impl IntoIterator<Item = Key>) -> Key {
        Key::Tuple(parts.into_iter().collect())
    }

    /// The key for a JSON value: strings stay strings, arrays become tuples (a test segment
    /// `["2017-01-01", "2017-12-31"]` is a 2-tuple), anything else is its JSON text.
    pub fn from_json(value: &serde_json::Value) -> Key {
        match value {
            serde_json::Value::String(s) => Key::Str(s.clone()),
            serde_json::Value::Array(items) => {
                Key::Tuple(items.iter().map(Key::from_json).collect())
            }
            other => Key::Str(qtask_core::canonical_json(other)),
        }
    }

    /// A compact form for file names and summaries: strings as they are, tuple parts joined
    /// by `_` (nested tuples flattened).
    pub fn label(&self) -> String {
        match self {
            Key::Str(s) => s.clone(),
            Key::Tuple(parts) => parts.iter().map(Key::label).collect::<Vec<_>>().join("_"),
        }
    }

    /// The key as JSON: a string, or an array for a tuple.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Key::Str(s) => serde_json::Value::String(s.clone()),
            Key::Tuple(parts) => serde_json::Value::Array(parts.iter().map(Key::to_json).collect()),
        }
    }
}

/// Python's `repr`: `'a'`, `('a', 'b')`, `('a',)`.
impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Str(s) => write!(f, "'{}'", s.replace('\\', "\\\\").replace('\'', "\\'")),
            Key::Tuple(parts) => {
                f.write_str("(")?;
                for (i, p) in parts.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{p}")?;
                }
                if parts.len() == 1 {
                    f.write_str(",")?;
                }
                f.write_str(")")
            }
        }
    }
}

impl From<&str> for Key {
    fn from(s: &str) -> Key {
        Key::Str(s.to_string())
    }
}

impl From<String> for Key {
    fn from(s: String) -> Key {
        Key::Str(s)
    }
}
