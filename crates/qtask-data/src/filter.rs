//! Qlib's dynamic instrument filters (`filter_pipe`, `qlib/data/filter.py`): `NameDFilter`
//! and `ExpressionDFilter` narrow the days each instrument of a market is listed for.
//!
//! As in Qlib, filters run over the whole calendar (not the query's range), one after the
//! other, each on the previous one's result:
//!
//! - the filter's days are the trading days from the earliest listed day to the latest one
//!   of all instruments, cut to `filter_start_time..=filter_end_time`;
//! - an instrument keeps a listed day outside the filter's days; inside them it keeps it when
//!   the rule holds on that day;
//! - `NameDFilter`: the rule is `re.match(name_rule_re, symbol)` (anchored at the start);
//! - `ExpressionDFilter`: the rule is the expression computed on the instrument's listed days
//!   within the filter's days; it is judged only from the first to the last day the
//!   instrument has a row (a missing value counts as true, as pandas' `astype(bool)` does;
//!   a day without a row as false); an instrument without any row keeps its filter days
//!   when `keep` is true and loses them otherwise;
//! - an instrument left with no day is dropped.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{DataError, Result};
use crate::expr::Program;
use crate::features::compute_listed;
use crate::provider::{Listed, Provider, parse_date};

/// One filter of a `filter_pipe`, in Qlib's config shape (`filter_type` names the class).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "filter_type")]
pub enum DFilter {
    /// Keeps instruments whose symbol matches a regular expression.
    NameDFilter {
        /// Python-style regular expression, matched at the start of the symbol.
        name_rule_re: String,
        /// First day the filter applies to (`None`: the instruments' first day).
        filter_start_time: Option<NaiveDate>,
        /// Last day the filter applies to (`None`: the instruments' last day).
        filter_end_time: Option<NaiveDate>,
    },
    /// Keeps the days on which an expression holds.
    ExpressionDFilter {
        /// The rule, e.g. `$close > 5`.
        rule_expression: String,
        /// First day the filter applies to (`None`: the instruments' first day).
        filter_start_time: Option<NaiveDate>,
        /// Last day the filter applies to (`None`: the instruments' last day).
        filter_end_time: Option<NaiveDate>,
        /// Whether an instrument without data in the filter's days keeps them.
        keep: bool,
    },
}

impl DFilter {
    /// Parses one filter of a handler's `filter_pipe` (Qlib's dict form). `where_` names the
    /// filter in errors (e.g. `...filter_pipe[0]`). A missing `filter_start_time`,
    /// `filter_end_time` or `keep` takes Qlib's constructor default (`None`, `None`, false).
    pub fn from_value(v: &Value, where_: &str) -> Result<DFilter> {
        let bad = |msg: String| DataError::Invalid(format!("{where_}: {msg}"));
        let m = v
            .as_object()
            .ok_or_else(|| bad(format!("expected a map with a filter_type, got {v}")))?;
        let kind = m
            .get("filter_type")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("needs a filter_type (NameDFilter or ExpressionDFilter)".into()))?;
        let allowed: &[&str] = match kind {
            "NameDFilter" => &[
                "filter_type",
                "name_rule_re",
                "filter_start_time",
                "filter_end_time",
            ],
            "ExpressionDFilter" => &[
                "filter_type",
                "rule_expression",
                "filter_start_time",
                "filter_end_time",
                "keep",
            ],
            other => {
                return Err(bad(format!(
                    "unknown filter_type `{other}` (supported: NameDFilter, ExpressionDFilter)"
                )));
            }
        };
        if let Some(k) = m.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(bad(format!(
                "unknown key `{k}` for {kind} (it takes {})",
                allowed.join(", ")
            )));
        }
        let date = |k: &str| -> Result<Option<NaiveDate>> {
            match m.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if s.is_empty() => Ok(None),
                Some(v) => v
                    .as_str()
                    .and_then(parse_date)
                    .map(Some)
                    .ok_or_else(|| bad(format!("{k}: `{v}` is not a YYYY-MM-DD date"))),
            }
        };
        let text = |k: &str| -> Result<String> {
            match m.get(k) {
                Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
                other => Err(bad(format!(
                    "{k}: expected a non-empty string, got {}",
                    other.map_or("nothing".to_string(), Value::to_string)
                ))),
            }
        };
        let (filter_start_time, filter_end_time) =
            (date("filter_start_time")?, date("filter_end_time")?);
        if let (Some(s), Some(e)) = (filter_start_time, filter_end_time)
            && s > e
        {
            return Err(bad(format!(
                "filter_start_time {s} is after filter_end_time {e}"
            )));
        }
        let f = match kind {
            "NameDFilter" => DFilter::NameDFilter {
                name_rule_re: text("name_rule_re")?,
                filter_start_time,
                filter_end_time,
            },
            _ => DFilter::ExpressionDFilter {
                rule_expression: text("rule_expression")?,
                filter_start_time,
                filter_end_time,
                keep: match m.get("keep") {
                    None | Some(Value::Null) => false,
                    Some(Value::Bool(b)) => *b,
                    Some(other) => {
                        return Err(bad(format!("keep: `{other}` is not true or false")));
                    }
                },
            },
        };
        // Check the rule now, so a typo fails before any data is read.
        f.rule().map_err(|e| bad(e.to_string()))?;
        Ok(f)
    }

    fn range(&self) -> (Option<NaiveDate>, Option<NaiveDate>) {
        match self {
            DFilter::NameDFilter {
                filter_start_time,
                filter_end_time,
                ..
            }
            | DFilter::ExpressionDFilter {
                filter_start_time,
                filter_end_time,
                ..
            } => (*filter_start_time, *filter_end_time),
        }
    }

    fn rule(&self) -> Result<Rule> {
        Ok(match self {
            DFilter::NameDFilter { name_rule_re, .. } => Rule::Name(
                regex::Regex::new(&format!("^(?:{name_rule_re})")).map_err(|e| {
                    DataError::Invalid(format!(
                        "name_rule_re `{name_rule_re}` is not a regular expression qtask reads: {}",
                        e.to_string().lines().last().unwrap_or_default().trim()
                    ))
                })?,
            ),
            DFilter::ExpressionDFilter {
                rule_expression,
                keep,
                ..
            } => Rule::Expression(
                Program::compile(&[(rule_expression.clone(), rule_expression.clone())])?,
                *keep,
            ),
        })
    }
}

enum Rule {
    Name(regex::Regex),
    Expression(Program, bool),
}

/// Applies `filters` in order to instruments listed over the whole calendar (their listed
/// ranges as in the market file).
pub fn apply_filters(
    provider: &Provider,
    mut listed: Vec<Listed>,
    filters: &[DFilter],
) -> Result<Vec<Listed>> {
    for f in filters {
        listed = apply_one(provider, listed, f)?;
    }
    Ok(listed)
}

fn apply_one(provider: &Provider, listed: Vec<Listed>, f: &DFilter) -> Result<Vec<Listed>> {
    if listed.is_empty() {
        return Ok(listed);
    }
    let cal = provider.calendar();
    // Qlib's _getTimeBound: the first range's start and the last range's end of each symbol.
    let (mut lo, mut hi) = (cal[cal.len() - 1], cal[0]);
    for l in &listed {
        if let (Some(first), Some(last)) = (l.spans.first(), l.spans.last()) {
            lo = lo.min(first.0);
            hi = hi.max(last.1);
        }
    }
    let (a0, a1) = (provider.align_start(lo), provider.align_end_excl(hi));
    if a0 >= a1 {
        return Ok(Vec::new());
    }
    let (fs, fe) = f.range();
    let fs = fs.map_or(cal[a0], |d| d.max(cal[a0]));
    let fe = fe.map_or(cal[a1 - 1], |d| d.min(cal[a1 - 1]));
    let (f0, f1) = (provider.align_start(fs), provider.align_end_excl(fe));
    if f0 >= f1 {
        return Err(DataError::Invalid(format!(
            "filter_pipe: no trading day between {fs} and {fe}, where the filter applies"
        )));
    }
    // Per instrument: whether the rule holds on each filter day (index t - f0), or `None`
    // to leave the listed days as they are.
    let verdicts: Vec<Vec<bool>> = match f.rule()? {
        Rule::Name(re) => listed
            .iter()
            .map(|l| vec![re.is_match(&l.symbol); f1 - f0])
            .collect(),
        Rule::Expression(program, keep) => {
            let frame = compute_listed(provider, &program, &listed, (f0, f1), &|| {})?;
            // Without a row: `keep` over every filter day.
            let mut out = vec![vec![keep; f1 - f0]; listed.len()];
            let mut r = 0;
            while r < frame.len() {
                let sym = frame.inst[r] as usize;
                let start = r;
                while r < frame.len() && frame.inst[r] as usize == sym {
                    r += 1;
                }
                // Judged only between the instrument's first and last row.
                let idx = |row: usize| provider.align_start(frame.datetime[row]) - f0;
                let (first, last) = (idx(start), idx(r - 1));
                // Outside the first..last rows the listed days stay; inside, a day without a
                // row fails the rule.
                let v = &mut out[sym];
                v.iter_mut().for_each(|x| *x = true);
                v[first..=last].iter_mut().for_each(|x| *x = false);
                for row in start..r {
                    let x = frame.data[0][row];
                    v[idx(row)] = x.is_nan() || x != 0.0;
                }
            }
            out
        }
    };
    let mut out = Vec::new();
    for (l, verdict) in listed.into_iter().zip(verdicts) {
        let mut spans = Vec::new();
        let mut run: Option<(usize, usize)> = None;
        for t in a0..a1 {
            let day = cal[t];
            let listed_day = l.spans.iter().any(|&(s, e)| day >= s && day <= e);
            let keep = listed_day && (t < f0 || t >= f1 || verdict[t - f0]);
            run = match (run, keep) {
                (Some((s, _)), true) => Some((s, t)),
                (None, true) => Some((t, t)),
                (Some((s, e)), false) => {
                    spans.push((cal[s], cal[e]));
                    None
                }
                (None, false) => None,
            };
        }
        if let Some((s, e)) = run {
            spans.push((cal[s], cal[e]));
        }
        if !spans.is_empty() {
            out.push(Listed {
                symbol: l.symbol,
                spans,
            });
        }
    }
    Ok(out)
}
