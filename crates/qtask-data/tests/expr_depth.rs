//! No recursion without a bound: expressions nested as deep as the parser accepts are parsed,
//! compiled, evaluated and dropped on a 2 MiB thread (the default stack of spawned threads:
//! workers, rayon), and deeper ones are refused with a message stating the limit, never a
//! stack overflow.

use qtask_data::Program;

/// The parser's limits (`qtask_data::expr::parse::{MAX_NESTING, MAX_DEPTH}`): nesting as
/// written, and depth as a tree.
const NESTING: usize = 64;
const DEPTH: usize = 256;

fn on_small_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap();
}

/// Every shape of nesting as written, `n` levels deep.
fn nestings(n: usize) -> Vec<(&'static str, String)> {
    vec![
        (
            "parentheses",
            format!("{}$x{}", "(".repeat(n), ")".repeat(n)),
        ),
        ("signs", format!("{}$x", "- ".repeat(n))),
        ("calls", format!("{}$x{}", "Abs(".repeat(n), ")".repeat(n))),
        (
            "rolling calls",
            format!("{}$x{}", "Mean(".repeat(n), ", 2)".repeat(n)),
        ),
        (
            "mixed",
            format!("{}$x{}", "Mean(-(".repeat(n / 3), "), 3)".repeat(n / 3)),
        ),
    ]
}

/// Every shape of a deep tree, `n` levels deep.
fn trees(n: usize) -> Vec<(&'static str, String)> {
    vec![
        ("sum chain", format!("$x{}", " + $x".repeat(n))),
        ("product chain", format!("$x{}", " * 2".repeat(n))),
        // `&` binds tighter than a comparison, as in Python: each condition is parenthesized.
        ("and chain", format!("($x > 0){}", " & ($x > 0)".repeat(n))),
        // Chains whose first operand is a chain, 32 groups deep: the tree is far deeper than
        // the nesting as written (32 * L + 1 levels).
        (
            "nested chains",
            format!(
                "{}$x{}",
                "(".repeat(32),
                format!("{}) ", " + $x".repeat((n - 1) / 32)).repeat(32)
            ),
        ),
        // The same inside calls (32 * (L + 1) + 1 levels).
        (
            "chains inside calls",
            format!(
                "{}$x{}",
                "Abs(".repeat(32),
                format!("{})", " * $x".repeat((n - 1) / 32 - 1)).repeat(32)
            ),
        ),
    ]
}

fn eval(expr: &str) -> Vec<f32> {
    let p = Program::compile(&[("out".into(), expr.into())]).unwrap();
    let fields: Vec<Option<Vec<f64>>> = p.fields().iter().map(|_| Some(vec![1.0; 4])).collect();
    p.eval(&fields, 4).remove(0)
}

#[test]
fn expressions_at_the_limits_evaluate_on_a_small_stack() {
    on_small_stack(|| {
        for (shape, expr) in nestings(NESTING - 1).into_iter().chain(trees(DEPTH - 9)) {
            let out = eval(&expr);
            assert_eq!(out.len(), 4, "{shape}");
        }
        // Values, to be sure the deep expressions are the ones written.
        assert_eq!(eval(&format!("$x{}", " + $x".repeat(200)))[0], 201.0);
        assert_eq!(eval(&format!("{}$x", "- ".repeat(61)))[0], -1.0);
    });
}

fn refused(shape: &str, n: usize, expr: String, needle: &str) {
    let err = Program::compile(&[("out".into(), expr)])
        .err()
        .unwrap_or_else(|| panic!("{shape} {n} deep was accepted"))
        .to_string();
    assert!(
        err.contains(needle),
        "{shape} {n}: {}",
        &err[err.len().saturating_sub(300)..]
    );
}

#[test]
fn deeper_expressions_are_refused_with_the_limit_stated() {
    on_small_stack(|| {
        for n in [NESTING + 2, 10_000, 200_000] {
            for (shape, expr) in nestings(n) {
                refused(
                    shape,
                    n,
                    expr,
                    "the expression nests more than 64 levels of parentheses, operator calls and signs",
                );
            }
        }
        for n in [DEPTH + 8, 10_000, 200_000] {
            for (shape, expr) in trees(n) {
                refused(
                    shape,
                    n,
                    expr,
                    "the expression is more than 256 levels deep",
                );
            }
        }
    });
}

#[test]
fn window_limits_are_stated() {
    let err = |expr: &str| {
        Program::compile(&[("out".into(), expr.into())])
            .err()
            .unwrap_or_else(|| panic!("{expr} was accepted"))
            .to_string()
    };
    assert!(
        err("Mean($x, 10000000)")
            .contains("Mean's window must be a whole number of days from 0 to 9999999"),
        "{}",
        err("Mean($x, 10000000)")
    );
    assert!(err("Std($x, 2.5)").contains("from 0 to 9999999"));
    assert!(
        err("Ref($x, -10000000)")
            .contains("Ref's offset must be a whole number of days from -9999999 to 9999999"),
        "{}",
        err("Ref($x, -10000000)")
    );
    assert!(Program::compile(&[("out".into(), "Mean($x, 9999999)".into())]).is_ok());
    assert!(Program::compile(&[("out".into(), "Ref($x, -9999999)".into())]).is_ok());
}
