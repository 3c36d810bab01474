//! MongoDB-style task queries (`{"status": "done", "def.model.class": {"$in": [...]}}`),
//! parsed into a small backend-independent form that each backend compiles.

use serde_json::{Map, Value};

use crate::status::Status;

/// Why a query was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// The text is not JSON.
    #[error("query is not valid JSON: {0}")]
    Json(String),
    /// The query is JSON but not a map.
    #[error("query must be a JSON object, got {0}")]
    NotAnObject(String),
    /// An operator outside the supported set.
    #[error(
        "unknown query operator {op:?} on {field:?} (supported: $in $nin $ne $exists $gt $gte $lt $lte)"
    )]
    UnknownOperator {
        /// The field it was applied to.
        field: String,
        /// The operator.
        op: String,
    },
    /// A field outside `_id status priority attempts def.* filter.* res.*`.
    #[error(
        "unknown query field {0:?} (queryable: _id, status, priority, attempts, def.*, filter.*, res.*)"
    )]
    UnknownField(String),
    /// More conditions than [`MAX_CONDITIONS`].
    #[error("a query may hold at most {max} conditions, this one has {found}")]
    TooManyConditions {
        /// How many it has.
        found: usize,
        /// The limit.
        max: usize,
    },
    /// An operand of the wrong type.
    #[error("bad value for {field:?}: {reason}")]
    BadValue {
        /// The field.
        field: String,
        /// What is wrong.
        reason: String,
    },
}

/// The most conditions (field/operator pairs) one query may hold; every backend compiles a
/// query into one statement, whose parameters are limited (SQLite: 32,766).
pub const MAX_CONDITIONS: usize = 1000;

/// A field a condition applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    /// `_id`.
    Id,
    /// `status`.
    Status,
    /// `priority` (nullable integer).
    Priority,
    /// `attempts`.
    Attempts,
    /// A path into the definition (`def.a.b` or `filter.a.b`); empty: the whole definition.
    Def(Vec<String>),
    /// A path into the result (`res.a.b`); empty: the whole result.
    Res(Vec<String>),
}

/// One comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// Equal (a plain value, Mongo's implicit `$eq`); `null` also matches a missing field.
    Eq(Value),
    /// `$ne`: not equal (a missing field is not equal).
    Ne(Value),
    /// `$in`: equal to one of.
    In(Vec<Value>),
    /// `$nin`: equal to none of.
    Nin(Vec<Value>),
    /// `$exists`.
    Exists(bool),
    /// `$gt`.
    Gt(Value),
    /// `$gte`.
    Gte(Value),
    /// `$lt`.
    Lt(Value),
    /// `$lte`.
    Lte(Value),
}

/// A condition on one field.
#[derive(Debug, Clone, PartialEq)]
pub struct Cond {
    /// The field.
    pub field: Field,
    /// The comparison.
    pub op: Op,
}

/// A parsed query: every condition must hold (an empty query matches everything).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Query {
    /// The conditions, ANDed.
    pub conds: Vec<Cond>,
}

impl Query {
    /// The query that matches every task.
    pub fn all() -> Self {
        Query::default()
    }

    /// Parses query text (empty or blank text is the empty query).
    pub fn parse_str(text: &str) -> Result<Self, QueryError> {
        if text.trim().is_empty() {
            return Ok(Query::all());
        }
        let v: Value =
            qtask_core::json::parse(text).map_err(|e| QueryError::Json(e.to_string()))?;
        Query::parse(&v)
    }

    /// Parses a query given as JSON.
    pub fn parse(v: &Value) -> Result<Self, QueryError> {
        let map = match v {
            Value::Object(m) => m,
            Value::Null => return Ok(Query::all()),
            other => return Err(QueryError::NotAnObject(kind(other).to_string())),
        };
        let mut conds = Vec::new();
        for (key, val) in map {
            let field = parse_field(key)?;
            for op in parse_ops(key, val)? {
                check_operand(key, &field, &op)?;
                conds.push(Cond {
                    field: field.clone(),
                    op,
                });
            }
            if conds.len() > MAX_CONDITIONS {
                let found: usize = map
                    .iter()
                    .map(|(_, v)| match v {
                        Value::Object(m) if m.keys().any(|k| k.starts_with('$')) => m.len(),
                        _ => 1,
                    })
                    .sum();
                return Err(QueryError::TooManyConditions {
                    found,
                    max: MAX_CONDITIONS,
                });
            }
        }
        Ok(Query { conds })
    }

    /// A query for one id.
    pub fn by_id(id: &str) -> Self {
        Query {
            conds: vec![Cond {
                field: Field::Id,
                op: Op::Eq(Value::String(id.to_string())),
            }],
        }
    }

    /// Whether any condition constrains `status`.
    pub fn mentions_status(&self) -> bool {
        self.conds.iter().any(|c| c.field == Field::Status)
    }

    /// This query with every `status` condition removed (fetch's `status` argument overrides).
    pub fn without_status(&self) -> Self {
        Query {
            conds: self
                .conds
                .iter()
                .filter(|c| c.field != Field::Status)
                .cloned()
                .collect(),
        }
    }

    /// This query with one more condition `status == st`.
    pub fn with_status(&self, st: Status) -> Self {
        let mut q = self.clone();
        q.conds.push(Cond {
            field: Field::Status,
            op: Op::Eq(Value::String(st.as_str().to_string())),
        });
        q
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn parse_field(key: &str) -> Result<Field, QueryError> {
    let path = |rest: &str| -> Result<Vec<String>, QueryError> {
        let segs: Vec<String> = rest.split('.').map(str::to_string).collect();
        if segs.iter().any(String::is_empty) {
            return Err(QueryError::UnknownField(key.to_string()));
        }
        Ok(segs)
    };
    Ok(match key {
        "_id" => Field::Id,
        "status" => Field::Status,
        "priority" => Field::Priority,
        "attempts" => Field::Attempts,
        "def" | "filter" => Field::Def(Vec::new()),
        "res" => Field::Res(Vec::new()),
        _ => {
            if let Some(rest) = key
                .strip_prefix("def.")
                .or_else(|| key.strip_prefix("filter."))
            {
                Field::Def(path(rest)?)
            } else if let Some(rest) = key.strip_prefix("res.") {
                Field::Res(path(rest)?)
            } else if key.starts_with('$') {
                return Err(QueryError::UnknownOperator {
                    field: "(top level)".into(),
                    op: key.to_string(),
                });
            } else {
                return Err(QueryError::UnknownField(key.to_string()));
            }
        }
    })
}

fn parse_ops(key: &str, val: &Value) -> Result<Vec<Op>, QueryError> {
    let Value::Object(m) = val else {
        return Ok(vec![Op::Eq(val.clone())]);
    };
    let has_ops = m.keys().any(|k| k.starts_with('$'));
    if !has_ops {
        return Ok(vec![Op::Eq(val.clone())]);
    }
    m.iter()
        .map(|(op, arg)| parse_op(key, m, op, arg))
        .collect()
}

fn parse_op(key: &str, m: &Map<String, Value>, op: &str, arg: &Value) -> Result<Op, QueryError> {
    let bad = |reason: &str| QueryError::BadValue {
        field: key.to_string(),
        reason: reason.to_string(),
    };
    let list = |arg: &Value| -> Result<Vec<Value>, QueryError> {
        match arg {
            Value::Array(items) => Ok(items.clone()),
            _ => Err(bad(&format!("{op} needs an array"))),
        }
    };
    Ok(match op {
        "$eq" => Op::Eq(arg.clone()),
        "$ne" => Op::Ne(arg.clone()),
        "$in" => Op::In(list(arg)?),
        "$nin" => Op::Nin(list(arg)?),
        "$exists" => match arg {
            Value::Bool(b) => Op::Exists(*b),
            Value::Number(n) => Op::Exists(n.as_f64() != Some(0.0)),
            _ => return Err(bad("$exists needs true or false")),
        },
        "$gt" => Op::Gt(arg.clone()),
        "$gte" => Op::Gte(arg.clone()),
        "$lt" => Op::Lt(arg.clone()),
        "$lte" => Op::Lte(arg.clone()),
        other if other.starts_with('$') => {
            return Err(QueryError::UnknownOperator {
                field: key.to_string(),
                op: other.to_string(),
            });
        }
        other => {
            let _ = m;
            return Err(bad(&format!(
                "cannot mix operators with the plain key {other:?}"
            )));
        }
    })
}

/// Rejects operands the backends cannot compare faithfully, with a message naming the field.
fn check_operand(key: &str, field: &Field, op: &Op) -> Result<(), QueryError> {
    let bad = |reason: String| QueryError::BadValue {
        field: key.to_string(),
        reason,
    };
    let scalars: Vec<&Value> = match op {
        Op::Eq(v) | Op::Ne(v) => vec![v],
        Op::In(vs) | Op::Nin(vs) => vs.iter().collect(),
        Op::Gt(v) | Op::Gte(v) | Op::Lt(v) | Op::Lte(v) => {
            if !(v.is_number() || v.is_string()) {
                return Err(bad(format!(
                    "order comparisons need a number or a string, got {}",
                    kind(v)
                )));
            }
            vec![v]
        }
        Op::Exists(_) => vec![],
    };
    for v in scalars {
        if v.is_object() || v.is_array() {
            return Err(bad(format!(
                "only scalar values (string, number, boolean, null) can be compared, got {}",
                kind(v)
            )));
        }
        match field {
            Field::Status => match v {
                Value::String(s) => {
                    s.parse::<Status>().map_err(|e| bad(e.to_string()))?;
                }
                _ => return Err(bad(format!("a status is a string, got {}", kind(v)))),
            },
            Field::Id if !(v.is_string() || v.is_i64()) => {
                return Err(bad(format!("an _id is a string, got {}", kind(v))));
            }
            Field::Priority | Field::Attempts
                if !(v.is_i64() || (v.is_null() && *field == Field::Priority)) =>
            {
                return Err(bad(format!("expected an integer, got {}", kind(v))));
            }
            Field::Def(p) | Field::Res(p) if p.is_empty() && !v.is_null() => {
                return Err(bad(
                    "the whole document can only be tested with null or $exists".into(),
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn filter_is_an_alias_of_def_and_operators_parse() {
        let q = Query::parse(&json!({
            "filter.model.class": "LGBModel",
            "def.x": {"$in": [1, 2], "$ne": 3},
            "priority": {"$gte": 1}
        }))
        .unwrap();
        assert_eq!(q.conds.len(), 4);
        assert_eq!(
            q.conds[0].field,
            Field::Def(vec!["model".into(), "class".into()])
        );
        assert_eq!(q.conds[1].op, Op::In(vec![json!(1), json!(2)]));
        assert_eq!(q.conds[2].op, Op::Ne(json!(3)));
        assert_eq!(q.conds[3].op, Op::Gte(json!(1)));
    }

    #[test]
    fn unknown_operator_is_named() {
        let err = Query::parse_str(r#"{"def.a": {"$regex": "x"}}"#).unwrap_err();
        assert!(err.to_string().contains("\"$regex\""), "{err}");
        let err = Query::parse_str(r#"{"$or": []}"#).unwrap_err();
        assert!(err.to_string().contains("\"$or\""), "{err}");
    }

    #[test]
    fn malformed_and_non_object_queries_are_errors() {
        assert!(matches!(
            Query::parse_str("{\"a\""),
            Err(QueryError::Json(_))
        ));
        assert!(matches!(
            Query::parse_str("[1]"),
            Err(QueryError::NotAnObject(_))
        ));
        assert!(matches!(
            Query::parse_str(r#"{"colour": 1}"#),
            Err(QueryError::UnknownField(_))
        ));
        assert!(matches!(
            Query::parse_str(r#"{"status": "finished"}"#),
            Err(QueryError::BadValue { .. })
        ));
        assert!(Query::parse_str("  ").unwrap().conds.is_empty());
    }

    #[test]
    fn the_number_of_conditions_is_bounded_and_stated() {
        let many: serde_json::Map<String, Value> =
            (0..1500).map(|i| (format!("def.k{i}"), json!(1))).collect();
        let err = Query::parse(&Value::Object(many)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "a query may hold at most 1000 conditions, this one has 1500"
        );
    }

    #[test]
    fn status_override_removes_status_conditions() {
        let q = Query::parse_str(r#"{"status": "done", "def.a": 1}"#).unwrap();
        assert!(q.mentions_status());
        let w = q.without_status();
        assert!(!w.mentions_status());
        assert_eq!(w.conds.len(), 1);
    }
}
