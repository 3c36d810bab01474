//! YAML documents as JSON values, with the parser's safety limits stated in words.
//!
//! Every YAML qtask reads (templates, MLflow `meta.yaml` files) goes through [`parse_yaml`], so
//! the limits are the same everywhere and their messages say what was exceeded and how to
//! raise it, instead of the parser's internal names.

use serde_json::Value;

/// The most YAML nodes (scalars, lists, maps; an alias counts again each time it is used) one
/// document may hold, unless [`MAX_NODES_ENV`] says otherwise. It guards against alias bombs
/// (a few lines that expand to billions of nodes).
pub const DEFAULT_MAX_NODES: usize = 250_000;

/// The environment variable that raises (or lowers) [`DEFAULT_MAX_NODES`].
pub const MAX_NODES_ENV: &str = "QTASK_YAML_MAX_NODES";

/// The deepest nesting of lists and maps a document may have (Qlib configs nest about 10
/// deep). The parser recurses once per level: this bound keeps a document from overflowing
/// the stack of any thread that reads it (checked on 2 MiB threads, debug builds included).
pub const MAX_DEPTH: usize = 64;

/// Why a YAML document was refused, with its position (1-based; 0 when unknown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    /// Line of the problem.
    pub line: u64,
    /// Column of the problem.
    pub column: u64,
    /// What is wrong, in one line.
    pub message: String,
}

/// The node limit in force: [`MAX_NODES_ENV`] when it holds a positive number, else
/// [`DEFAULT_MAX_NODES`].
pub fn max_nodes() -> usize {
    std::env::var(MAX_NODES_ENV)
        .ok()
        .and_then(|v| v.trim().replace('_', "").parse().ok())
        .filter(|&n: &usize| n > 0)
        .unwrap_or(DEFAULT_MAX_NODES)
}

/// Parses one YAML document (anchors, aliases and `<<:` merge keys applied like PyYAML).
/// Integers beyond 64 bits are kept exactly, as in JSON (see [`crate::json`]).
pub fn parse_yaml(text: &str) -> Result<Value, YamlError> {
    let protected = protect_big_integers(text);
    let mut value = parse_plain(protected.as_deref().unwrap_or(text))?;
    if protected.is_some() {
        restore_big_integers(&mut value);
    }
    Ok(value)
}

/// Marks a plain integer scalar beyond 64 bits so that the YAML parser (which reads such
/// scalars as floats) hands it through as a string; [`restore_big_integers`] turns it back.
/// U+E000 is a private-use character no template holds.
const BIG_INTEGER_MARK: &str = "\u{E000}qtask-integer:";

/// The text with every plain integer scalar beyond 64 bits quoted and marked, or `None` when
/// there is none (or the text cannot be scanned: the parser then reports why).
fn protect_big_integers(text: &str) -> Option<String> {
    use serde_saphyr::granit_parser::{Event, Parser, ScalarStyle};
    if text.contains(BIG_INTEGER_MARK) {
        return None;
    }
    let mut ranges = Vec::new();
    for item in Parser::new_from_str(text) {
        let (event, span) = item.ok()?;
        if let Event::Scalar(value, ScalarStyle::Plain, _, None) = &event
            && is_big_integer_text(value)
        {
            ranges.push(span.byte_range()?);
        }
    }
    if ranges.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(text.len() + 32 * ranges.len());
    let mut at = 0;
    for r in ranges {
        let literal = text.get(r.clone())?;
        out.push_str(&text[at..r.start]);
        out.push('"');
        out.push_str(BIG_INTEGER_MARK);
        out.push_str(literal.trim_start_matches('+'));
        out.push('"');
        at = r.end;
    }
    out.push_str(&text[at..]);
    Some(out)
}

/// A decimal integer literal that fits neither `i64` nor `u64`.
fn is_big_integer_text(s: &str) -> bool {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && s.trim_start_matches('+').parse::<i64>().is_err()
        && s.trim_start_matches('+').parse::<u64>().is_err()
}

/// Turns the strings [`protect_big_integers`] marked back into exact numbers (and marked
/// map keys back into their digits).
fn restore_big_integers(v: &mut Value) {
    match v {
        Value::String(s) => {
            if let Some(digits) = s.strip_prefix(BIG_INTEGER_MARK)
                && let Ok(n) = serde_json::from_str::<serde_json::Number>(digits)
            {
                *v = Value::Number(n);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(restore_big_integers),
        Value::Object(map) => {
            let marked = map.keys().any(|k| k.starts_with(BIG_INTEGER_MARK));
            if marked {
                let old = std::mem::take(map);
                for (k, item) in old {
                    let k = k
                        .strip_prefix(BIG_INTEGER_MARK)
                        .map(str::to_string)
                        .unwrap_or(k);
                    map.insert(k, item);
                }
            }
            map.values_mut().for_each(restore_big_integers);
        }
        _ => {}
    }
}

fn parse_plain(text: &str) -> Result<Value, YamlError> {
    let max_nodes = max_nodes();
    let mut budget = serde_saphyr::Budget::default();
    budget.max_nodes = max_nodes;
    budget.max_depth = MAX_DEPTH;
    budget.flow_nesting_limit = MAX_DEPTH;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options.with_snippet = false;
    // qrun reads YAML 1.2 (ruamel): only true/false spellings are booleans.
    options.strict_booleans = true;
    serde_saphyr::from_str_with_options::<Value>(text, options).map_err(|e| {
        let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
        YamlError {
            line,
            column,
            message: describe(&e, max_nodes),
        }
    })
}

fn describe(e: &serde_saphyr::Error, max_nodes: usize) -> String {
    use serde_saphyr::budget::BudgetBreach;
    // The error behind an alias replay or a snippet wrapper is the one to describe.
    let mut e = e;
    while let serde_saphyr::Error::AliasError { error, .. }
    | serde_saphyr::Error::WithSnippet { error, .. } = e
    {
        e = error;
    }
    match e {
        serde_saphyr::Error::MultipleDocuments { .. } => {
            "the file holds more than one YAML document (a `---` line): a template is one \
             document; put several tasks in one list"
                .into()
        }
        serde_saphyr::Error::Budget { breach, .. } => match breach {
            BudgetBreach::Nodes { .. } => format!(
                "the document has more than {} YAML nodes (an alias counts again each time it \
                 is used); if it is meant to be this large, raise the limit with {MAX_NODES_ENV}=N",
                thousands(max_nodes)
            ),
            BudgetBreach::Depth { .. } => {
                format!("lists and maps are nested more than {MAX_DEPTH} levels deep")
            }
            BudgetBreach::Aliases { .. } => "the document uses more than 50,000 aliases".into(),
            BudgetBreach::Anchors { .. } => "the document defines more than 50,000 anchors".into(),
            BudgetBreach::Events { .. } => {
                "the document is too large for the YAML parser (more than 1,000,000 events); \
                 write it as JSON"
                    .into()
            }
            BudgetBreach::AliasAnchorRatio { .. } => {
                "the document uses far more aliases than anchors (more than 10 per anchor), as \
                 alias bombs do"
                    .into()
            }
            _ => "the document exceeds the YAML parser's size limits; write it as JSON".into(),
        },
        other => {
            let text = plain(&other.to_string());
            // The flow-collection parser's own depth guard.
            if text == "recursion limit exceeded" {
                format!("lists and maps are nested more than {MAX_DEPTH} levels deep")
            } else {
                text
            }
        }
    }
}

/// The parser's own text without its `error: line L column C:` prefix (the caller shows the
/// position in front) or anything after the first line.
fn plain(msg: &str) -> String {
    let first = msg.lines().next().unwrap_or_default().trim();
    let mut rest = first.strip_prefix("error: ").unwrap_or(first);
    if let Some(after) = rest.strip_prefix("line ")
        && let Some(i) = after.find(": ")
        && after[..i].contains(" column ")
    {
        rest = &after[i + 2..];
    }
    match rest.find(" at line ") {
        Some(i) => rest[..i].to_string(),
        None => rest.to_string(),
    }
}

/// `250000` as `250,000`.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_keys_and_anchors_apply() {
        let v = parse_yaml("a: &x {k: 1}\nb:\n  <<: *x\n  j: 2\n").unwrap();
        assert_eq!(v["b"], serde_json::json!({"k": 1, "j": 2}));
    }

    #[test]
    fn messages_say_what_is_wrong_without_parser_internals() {
        let e = parse_yaml("a: 1\n---\nb: 2\n").unwrap_err();
        assert_eq!(e.line, 3);
        assert!(
            e.message
                .starts_with("the file holds more than one YAML document"),
            "{e:?}"
        );
        assert!(!e.message.contains("from_str_multiple"), "{e:?}");

        let e = parse_yaml("a: [1, 2\n").unwrap_err();
        assert!(!e.message.starts_with("error:"), "{e:?}");
        assert!(!e.message.contains("line "), "{e:?}");
    }

    /// Nested `depth` levels deep, in flow style (`[[[...]]]`) or block style.
    fn nested(depth: usize, flow: bool) -> String {
        if flow {
            format!("a: {}1{}", "[".repeat(depth), "]".repeat(depth))
        } else {
            let mut s = String::new();
            for i in 0..depth {
                s.push_str(&format!("{}k:\n", "  ".repeat(i)));
            }
            s.push_str(&format!("{}1\n", "  ".repeat(depth)));
            s
        }
    }

    #[test]
    fn nesting_is_bounded_on_a_small_thread_stack() {
        // 2 MiB is the default stack of spawned threads (workers, rayon, tests).
        std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(|| {
                for flow in [true, false] {
                    assert!(
                        parse_yaml(&nested(MAX_DEPTH - 1, flow)).is_ok(),
                        "flow {flow}"
                    );
                    // Block style needs depth² bytes of indentation: kept smaller.
                    let depths: &[usize] = if flow {
                        &[MAX_DEPTH + 1, 200, 5_000, 100_000]
                    } else {
                        &[MAX_DEPTH + 1, 200, 2_000]
                    };
                    for &depth in depths {
                        let e = parse_yaml(&nested(depth, flow)).unwrap_err();
                        assert_eq!(
                            e.message, "lists and maps are nested more than 64 levels deep",
                            "{depth} {flow}"
                        );
                    }
                }
            })
            .unwrap()
            .join()
            .unwrap();
    }

    #[test]
    fn an_alias_bomb_names_the_limit_and_how_to_raise_it() {
        let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..8 {
            let p = i - 1;
            bomb.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let e = parse_yaml(&bomb).unwrap_err();
        assert!(
            e.message.contains("more than 250,000 YAML nodes")
                && e.message.contains("QTASK_YAML_MAX_NODES=N"),
            "{e:?}"
        );
        assert!(!e.message.contains("Nodes {"), "{e:?}");
    }

    #[test]
    fn integers_beyond_64_bits_are_kept_exactly() {
        let v = parse_yaml(
            "a: 18446744073709551617\nb: [-123456789012345678901234567890, 7, 1.5]\n\
             c: &x 18446744073709551616\nd: *x\ne: '18446744073709551617'\n\
             18446744073709551618: key\n",
        )
        .unwrap();
        assert_eq!(v["a"].to_string(), "18446744073709551617");
        assert_eq!(
            v["b"],
            serde_json::from_str::<Value>("[-123456789012345678901234567890, 7, 1.5]").unwrap()
        );
        assert_eq!(v["c"].to_string(), "18446744073709551616");
        assert_eq!(v["d"], v["c"]);
        assert_eq!(v["e"], Value::String("18446744073709551617".into()));
        assert_eq!(v["18446744073709551618"], "key");
        assert_ne!(
            crate::task_hash(&serde_json::json!({"a": v["a"]})),
            crate::task_hash(&serde_json::json!({"a": v["c"]}))
        );
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(250_000), "250,000");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000_000), "1,000,000");
    }
}
