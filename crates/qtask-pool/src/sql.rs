//! Compiles a [`Query`] to a parameterised SQL condition for SQLite or PostgreSQL.
//!
//! Values and JSON paths always travel as bound parameters; only fixed fragments are spliced.
//! Each comparison is wrapped in `COALESCE(..., 1=0)` so it is never SQL NULL, which keeps
//! `$ne`/`$nin` (written as `NOT eq`) true for missing fields, as in MongoDB.

use serde_json::Value;

use crate::query::{Cond, Field, Op, Query};

/// The SQL flavour to emit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

/// A bound parameter.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Param {
    Int(i64),
    Text(String),
    /// A JSON value (PostgreSQL binds it as jsonb; SQLite binds its scalar form).
    Json(Value),
    /// A JSON path: SQLite `$."a"[0]` text, PostgreSQL `text[]`.
    Path(Vec<String>),
    /// A list of integers (SQLite: a JSON array for `json_each`; PostgreSQL: `bigint[]`).
    Ints(Vec<i64>),
    /// A list of strings (SQLite: a JSON array for `json_each`; PostgreSQL: `text[]`).
    Texts(Vec<String>),
}

/// Above this many values, `$in`/`$nin` compile to one bound list (`IN (SELECT value FROM
/// json_each(?))`, `= ANY(?)`) instead of one comparison per value: the SQL stays the same
/// size, and no database parser recurses once per value (SQLite refuses expression trees
/// deeper than 1,000).
pub(crate) const MAX_INLINE_VALUES: usize = 32;

/// Accumulates parameters while compiling; placeholders are numbered from `first`.
pub(crate) struct Compiler {
    pub dialect: Dialect,
    pub params: Vec<Param>,
    first: usize,
}

const FALSE: &str = "1=0";
const TRUE: &str = "1=1";

impl Compiler {
    /// A compiler whose first placeholder is number `first` (1-based).
    pub fn new(dialect: Dialect, first: usize) -> Self {
        Compiler {
            dialect,
            params: Vec::new(),
            first,
        }
    }

    /// Adds a parameter and returns its placeholder.
    pub fn bind(&mut self, p: Param) -> String {
        self.params.push(p);
        let n = self.first + self.params.len() - 1;
        match self.dialect {
            Dialect::Sqlite => format!("?{n}"),
            Dialect::Postgres => format!("${n}"),
        }
    }

    /// The condition for a whole query (`1=1` when empty).
    pub fn query(&mut self, q: &Query) -> String {
        if q.conds.is_empty() {
            return TRUE.to_string();
        }
        let parts: Vec<String> = q.conds.iter().map(|c| self.cond(c)).collect();
        balanced(&parts, "AND")
    }

    fn cond(&mut self, c: &Cond) -> String {
        match &c.op {
            Op::Eq(v) => self.eq(&c.field, v),
            Op::Ne(v) => format!("NOT ({})", self.eq(&c.field, v)),
            Op::In(vs) => self.any_eq(&c.field, vs),
            Op::Nin(vs) => format!("NOT ({})", self.any_eq(&c.field, vs)),
            Op::Exists(b) => {
                let e = self.exists(&c.field);
                if *b { e } else { format!("NOT ({e})") }
            }
            Op::Gt(v) => self.order(&c.field, ">", v),
            Op::Gte(v) => self.order(&c.field, ">=", v),
            Op::Lt(v) => self.order(&c.field, "<", v),
            Op::Lte(v) => self.order(&c.field, "<=", v),
        }
    }

    fn any_eq(&mut self, f: &Field, vs: &[Value]) -> String {
        if vs.is_empty() {
            return FALSE.to_string();
        }
        if vs.len() > MAX_INLINE_VALUES {
            return self.in_list(f, vs);
        }
        let parts: Vec<String> = vs.iter().map(|v| self.eq(f, v)).collect();
        format!("({})", balanced(&parts, "OR"))
    }

    /// `$in` over a long list: one bound list per kind of value, whatever the list's length.
    fn in_list(&mut self, f: &Field, vs: &[Value]) -> String {
        let mut parts = Vec::new();
        match f {
            Field::Id | Field::Priority | Field::Attempts => {
                let ints: Vec<i64> = vs
                    .iter()
                    .filter_map(|v| match f {
                        Field::Id => Self::id_value(v),
                        _ => v.as_i64(),
                    })
                    .collect();
                let col = Self::column(f);
                if !ints.is_empty() {
                    let set = self.int_set(ints);
                    parts.push(match f {
                        Field::Id => format!("{col} {set}"),
                        _ => format!("COALESCE({col} {set}, {FALSE})"),
                    });
                }
                if !matches!(f, Field::Id) && vs.iter().any(Value::is_null) {
                    parts.push(format!("{col} IS NULL"));
                }
            }
            Field::Status => {
                let texts: Vec<String> = vs
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect();
                let set = self.text_set(texts);
                parts.push(format!("status {set}"));
            }
            Field::Def(path) | Field::Res(path) => {
                let col = Self::column(f);
                if path.is_empty() {
                    // Only null reaches here (checked at parse time).
                    return format!("{col} IS NULL");
                }
                // Booleans and null keep their own comparisons (at most three of them).
                let mut few: Vec<&Value> = Vec::new();
                for v in vs.iter().filter(|v| v.is_boolean() || v.is_null()) {
                    if !few.contains(&v) {
                        few.push(v);
                    }
                }
                for v in few {
                    parts.push(self.json_eq(col, path, v));
                }
                let numbers: Vec<Value> = vs.iter().filter(|v| v.is_number()).cloned().collect();
                let strings: Vec<Value> = vs.iter().filter(|v| v.is_string()).cloned().collect();
                match self.dialect {
                    Dialect::Sqlite => {
                        for (list, types) in
                            [(numbers, "('integer', 'real')"), (strings, "('text')")]
                        {
                            if list.is_empty() {
                                continue;
                            }
                            let p = self.bind(Param::Path(path.clone()));
                            let x = self.bind(Param::Text(Value::Array(list).to_string()));
                            parts.push(format!(
                                "COALESCE(json_type({col}, {p}) IN {types} AND json_extract({col}, {p}) \
                                 IN (SELECT value FROM json_each({x})), {FALSE})"
                            ));
                        }
                    }
                    Dialect::Postgres => {
                        let mut list = numbers;
                        list.extend(strings);
                        if !list.is_empty() {
                            let p = self.bind(Param::Path(path.clone()));
                            let x = self.bind(Param::Json(Value::Array(list)));
                            parts.push(format!(
                                "COALESCE(({col} #> {p}) IN (SELECT jsonb_array_elements({x})), {FALSE})"
                            ));
                        }
                    }
                }
            }
        }
        if parts.is_empty() {
            return FALSE.to_string();
        }
        format!("({})", balanced(&parts, "OR"))
    }

    /// `IN (...)` over a bound list of integers.
    fn int_set(&mut self, ints: Vec<i64>) -> String {
        let x = self.bind(Param::Ints(ints));
        match self.dialect {
            Dialect::Sqlite => format!("IN (SELECT value FROM json_each({x}))"),
            Dialect::Postgres => format!("= ANY({x})"),
        }
    }

    /// `IN (...)` over a bound list of strings.
    fn text_set(&mut self, texts: Vec<String>) -> String {
        let x = self.bind(Param::Texts(texts));
        match self.dialect {
            Dialect::Sqlite => format!("IN (SELECT value FROM json_each({x}))"),
            Dialect::Postgres => format!("= ANY({x})"),
        }
    }

    fn column(f: &Field) -> &'static str {
        match f {
            Field::Id => "id",
            Field::Status => "status",
            Field::Priority => "priority",
            Field::Attempts => "attempts",
            Field::Def(_) => "def",
            Field::Res(_) => "res",
        }
    }

    fn id_value(v: &Value) -> Option<i64> {
        match v {
            Value::String(s) => s.parse().ok(),
            Value::Number(n) => n.as_i64(),
            _ => None,
        }
    }

    fn eq(&mut self, f: &Field, v: &Value) -> String {
        match f {
            Field::Id => match Self::id_value(v) {
                // An id this store could never have issued matches nothing.
                Some(n) => format!("id = {}", self.bind(Param::Int(n))),
                None => FALSE.to_string(),
            },
            Field::Status => {
                let s = v.as_str().unwrap_or_default().to_string();
                format!("status = {}", self.bind(Param::Text(s)))
            }
            Field::Priority | Field::Attempts => {
                let col = Self::column(f);
                match v.as_i64() {
                    Some(n) => format!("COALESCE({col} = {}, {FALSE})", self.bind(Param::Int(n))),
                    None => format!("{col} IS NULL"),
                }
            }
            Field::Def(path) | Field::Res(path) => {
                let col = Self::column(f);
                if path.is_empty() {
                    // Only null reaches here (checked at parse time).
                    return format!("{col} IS NULL");
                }
                self.json_eq(col, path, v)
            }
        }
    }

    fn json_eq(&mut self, col: &str, path: &[String], v: &Value) -> String {
        let p = self.bind(Param::Path(path.to_vec()));
        match self.dialect {
            Dialect::Sqlite => {
                let ty = format!("json_type({col}, {p})");
                match v {
                    Value::Null => format!("COALESCE({ty} IS NULL OR {ty} = 'null', {FALSE})"),
                    Value::Bool(b) => {
                        format!(
                            "COALESCE({ty} = '{}', {FALSE})",
                            if *b { "true" } else { "false" }
                        )
                    }
                    Value::Number(_) => {
                        let x = self.bind(Param::Json(v.clone()));
                        format!(
                            "COALESCE({ty} IN ('integer', 'real') AND json_extract({col}, {p}) = {x}, {FALSE})"
                        )
                    }
                    _ => {
                        let x = self.bind(Param::Json(v.clone()));
                        format!(
                            "COALESCE({ty} = 'text' AND json_extract({col}, {p}) = {x}, {FALSE})"
                        )
                    }
                }
            }
            Dialect::Postgres => {
                let at = format!("({col} #> {p})");
                match v {
                    Value::Null => {
                        format!("COALESCE({at} IS NULL OR jsonb_typeof({at}) = 'null', {FALSE})")
                    }
                    _ => {
                        let x = self.bind(Param::Json(v.clone()));
                        format!("COALESCE({at} = {x}, {FALSE})")
                    }
                }
            }
        }
    }

    fn exists(&mut self, f: &Field) -> String {
        match f {
            Field::Id | Field::Status | Field::Attempts => TRUE.to_string(),
            Field::Priority => "priority IS NOT NULL".to_string(),
            Field::Def(path) | Field::Res(path) => {
                let col = Self::column(f);
                if path.is_empty() {
                    return format!("{col} IS NOT NULL");
                }
                let p = self.bind(Param::Path(path.clone()));
                match self.dialect {
                    Dialect::Sqlite => format!("json_type({col}, {p}) IS NOT NULL"),
                    Dialect::Postgres => format!("({col} #> {p}) IS NOT NULL"),
                }
            }
        }
    }

    fn order(&mut self, f: &Field, op: &str, v: &Value) -> String {
        match f {
            Field::Id => match Self::id_value(v) {
                Some(n) => format!("id {op} {}", self.bind(Param::Int(n))),
                None => FALSE.to_string(),
            },
            Field::Status => {
                let s = v.as_str().unwrap_or_default().to_string();
                format!("status {op} {}", self.bind(Param::Text(s)))
            }
            Field::Priority | Field::Attempts => {
                let col = Self::column(f);
                match v.as_i64() {
                    Some(n) => {
                        format!("COALESCE({col} {op} {}, {FALSE})", self.bind(Param::Int(n)))
                    }
                    None => FALSE.to_string(),
                }
            }
            Field::Def(path) | Field::Res(path) => {
                let col = Self::column(f);
                if path.is_empty() {
                    return FALSE.to_string();
                }
                let p = self.bind(Param::Path(path.clone()));
                let x = self.bind(Param::Json(v.clone()));
                // MongoDB compares only values of the same type: a string never exceeds a number.
                match self.dialect {
                    Dialect::Sqlite => {
                        let types = if v.is_number() {
                            "('integer', 'real')"
                        } else {
                            "('text')"
                        };
                        format!(
                            "COALESCE(json_type({col}, {p}) IN {types} AND json_extract({col}, {p}) {op} {x}, {FALSE})"
                        )
                    }
                    Dialect::Postgres => {
                        let ty = if v.is_number() { "number" } else { "string" };
                        format!(
                            "COALESCE(jsonb_typeof({col} #> {p}) = '{ty}' AND ({col} #> {p}) {op} {x}, {FALSE})"
                        )
                    }
                }
            }
        }
    }
}

/// Joins `parts` with `op` as a balanced tree of parentheses, so the expression's depth grows
/// with the logarithm of the number of parts, never linearly.
fn balanced(parts: &[String], op: &str) -> String {
    match parts {
        [] => TRUE.to_string(),
        [one] => one.clone(),
        _ if parts.len() <= 4 => parts.join(&format!(" {op} ")),
        _ => {
            let (a, b) = parts.split_at(parts.len() / 2);
            format!("({}) {op} ({})", balanced(a, op), balanced(b, op))
        }
    }
}

/// The SQLite JSON path text for `segments` (`$."a"."b"[0]`): numeric segments index arrays.
pub(crate) fn sqlite_path(segments: &[String]) -> String {
    let mut s = String::from("$");
    for seg in segments {
        if !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) {
            s.push_str(&format!("[{seg}]"));
        } else {
            s.push_str(&format!(".\"{}\"", seg.replace('"', "\\\"")));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_are_bound_never_spliced() {
        let q = Query::parse(&json!({"def.name": "x' OR 1=1 --", "_id": {"$in": ["3", "nope"]}}))
            .unwrap();
        let mut c = Compiler::new(Dialect::Sqlite, 1);
        let sql = c.query(&q);
        assert!(!sql.contains("OR 1=1 --"), "{sql}");
        assert!(c.params.contains(&Param::Json(json!("x' OR 1=1 --"))));
        // "nope" can never be an id of this store: that alternative is constant false.
        assert!(sql.contains("id = ?3 OR 1=0"), "{sql}");
    }

    #[test]
    fn postgres_placeholders_start_where_asked() {
        let q = Query::parse(&json!({"status": "done"})).unwrap();
        let mut c = Compiler::new(Dialect::Postgres, 4);
        assert_eq!(c.query(&q), "status = $4");
    }

    #[test]
    fn sqlite_paths_index_arrays_and_quote_keys() {
        let segs: Vec<String> = ["segments", "test", "0"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(sqlite_path(&segs), "$.\"segments\".\"test\"[0]");
    }
}
