//! Qlib's expression syntax: `$field`, numbers, `+ - * /`, comparisons, `&`, `|`, unary minus
//! and named operators such as `Mean($close, 5)`. Precedence follows Python, which Qlib
//! evaluates expressions with: comparisons bind loosest, then `|`, `&`, `+ -`, `* /`.
//! Point-in-time fields `$$name` are only valid inside `P(...)` or `PRef(..., period)`.
//! Quoted strings are arguments of `Mask`, `ChangeInstrument` and `Rolling` only.

use super::ast::{BinaryOp, Expr, PairRollOp, RollOp, UnaryOp, Window};
use crate::error::{DataError, Result};

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(f64),
    Field(String),
    PitField(String),
    /// A quoted string: an instrument (`Mask`, `ChangeInstrument`) or a function name
    /// (`Rolling`).
    Str(String),
    Ident(String),
    LParen,
    RParen,
    Comma,
    Op(&'static str),
    Eof,
}

struct Parser<'a> {
    src: &'a str,
    toks: Vec<(Tok, usize)>,
    at: usize,
    /// Parser calls open on the current path (parentheses, operator calls, signs).
    open: usize,
    /// Depth of the tree of the expression parsed last.
    last: usize,
    /// Deepest argument of the operator call being parsed (see [`Parser::primary`]).
    deepest_arg: usize,
}

/// The longest rolling window (and `Ref` offset), in days: about 40,000 years of trading
/// days, far past any calendar, and small enough that window arithmetic never overflows.
pub const MAX_WINDOW: i64 = 9_999_999;

/// The deepest an expression may nest as written: parentheses, operator calls and signs
/// (Alpha158's deepest nests 6). The parser recurses once per level: this bound keeps any
/// expression from overflowing the stack of the thread that parses it (2 MiB for spawned
/// threads, debug builds included).
pub const MAX_NESTING: usize = 64;

/// The deepest an expression may be as a tree: each further operand of a chain such as
/// `a + b + c` is one level deeper. Everything that walks an expression (checking, compiling,
/// printing, dropping it) recurses once per level; this bound keeps that within any thread's
/// stack too.
pub const MAX_DEPTH: usize = 256;

/// Parses one expression; errors name the character position of the problem.
pub fn parse(src: &str) -> Result<Expr> {
    let toks = lex(src)?;
    let mut p = Parser {
        src,
        toks,
        at: 0,
        open: 0,
        last: 0,
        deepest_arg: 0,
    };
    let e = p.comparison()?;
    match p.peek() {
        Tok::Eof => {
            check_pit(src, &e, false)?;
            check_conditions(src, &e)?;
            Ok(e)
        }
        t => Err(p.err(p.pos(), format!("unexpected {}", describe(&t)))),
    }
}

/// Enforces where PIT constructs may appear: `$$field` only inside `P`/`PRef`, daily `$field`
/// and nested `P` never inside them, and no look-ahead (Qlib raises on future periods).
fn check_pit(src: &str, e: &Expr, inside: bool) -> Result<()> {
    let err = |needle: &str, msg: String| DataError::Parse {
        expr: src.to_string(),
        pos: src.find(needle).unwrap_or(0),
        msg,
    };
    match e {
        Expr::Const(_) => Ok(()),
        Expr::Field(f) if inside => Err(err(
            &format!("${f}"),
            format!("daily field ${f} cannot be used inside P()/PRef(); apply it outside"),
        )),
        Expr::Field(_) => Ok(()),
        Expr::PitField(f) if !inside => Err(err(
            &format!("$${f}"),
            format!("PIT field $${f} must be wrapped in P(...) or PRef(..., period)"),
        )),
        Expr::PitField(f) => {
            let l = f.to_ascii_lowercase();
            if l.ends_with("_q") || l.ends_with("_a") {
                Ok(())
            } else {
                Err(err(
                    &format!("$${f}"),
                    format!("PIT field $${f} must end with _q (quarterly) or _a (annual)"),
                ))
            }
        }
        Expr::Pit(x, period) => {
            let name = if period.is_some() { "PRef" } else { "P" };
            if inside {
                return Err(err(
                    name,
                    format!("{name}() cannot be nested inside P()/PRef()"),
                ));
            }
            if x.extended_window().1 > 0 {
                return Err(err(
                    name,
                    "PIT data cannot refer to a future period (e.g. Ref($$x_q, -1))".into(),
                ));
            }
            check_pit(src, x, true)
        }
        Expr::OnInstrument(sym, x) => {
            if inside {
                return Err(err(
                    sym,
                    "ChangeInstrument()/Mask() cannot be used inside P()/PRef()".into(),
                ));
            }
            if contains_pit(x) {
                return Err(err(
                    sym,
                    "P()/PRef() cannot be used inside ChangeInstrument()/Mask()".into(),
                ));
            }
            check_pit(src, x, inside)
        }
        Expr::Unary(_, x) | Expr::Rolling(_, x, _) | Expr::Quantile(x, _, _) => {
            check_pit(src, x, inside)
        }
        Expr::Binary(_, a, b) | Expr::PairRolling(_, a, b, _) => {
            check_pit(src, a, inside)?;
            check_pit(src, b, inside)
        }
        Expr::If(c, a, b) => {
            check_pit(src, c, inside)?;
            check_pit(src, a, inside)?;
            check_pit(src, b, inside)
        }
    }
}

/// `Not`, `And` and `Or` are numpy's bitwise functions in Qlib: they fail on numbers, so
/// only conditions are accepted (a 0/1 constant too, which numpy combines with a condition).
fn check_conditions(src: &str, e: &Expr) -> Result<()> {
    let err = |needle: &str, msg: String| DataError::Parse {
        expr: src.to_string(),
        pos: src.find(needle).unwrap_or(0),
        msg,
    };
    let bool_const = |x: &Expr| matches!(x, Expr::Const(c) if *c == 0.0 || *c == 1.0);
    match e {
        Expr::Unary(UnaryOp::Not, x) if !x.is_condition() => {
            return Err(err(
                "Not",
                format!("Not needs a condition (e.g. `Not($close > $open)`), got `{x}`"),
            ));
        }
        Expr::Binary(op @ (BinaryOp::And | BinaryOp::Or), a, b) => {
            let (name, infix) = if *op == BinaryOp::And {
                ("And", "&")
            } else {
                ("Or", "|")
            };
            if let Some(bad) = [a, b]
                .into_iter()
                .find(|x| !x.is_condition() && !bool_const(x))
            {
                let at = if src.contains(name) { name } else { infix };
                return Err(err(
                    at,
                    format!(
                        "{name} (`{infix}`) combines conditions (e.g. `$close > $open`), got `{bad}`"
                    ),
                ));
            }
        }
        // numpy refuses `-`, `/` and `**` between two boolean arrays.
        Expr::Binary(op @ (BinaryOp::Sub | BinaryOp::Div | BinaryOp::Power), a, b)
            if a.is_condition() && b.is_condition() =>
        {
            let (name, infix) = match op {
                BinaryOp::Sub => ("Sub", "-"),
                BinaryOp::Div => ("Div", "/"),
                _ => ("Power", "Power"),
            };
            let at = if src.contains(name) { name } else { infix };
            return Err(err(
                at,
                format!(
                    "{name} of two conditions (`{a}`, `{b}`) fails in Qlib (numpy has no \
                     boolean {name}); use numbers, e.g. If(cond, 1, 0)"
                ),
            ));
        }
        _ => {}
    }
    e.children()
        .into_iter()
        .try_for_each(|c| check_conditions(src, c))
}

fn contains_pit(e: &Expr) -> bool {
    matches!(e, Expr::Pit(..) | Expr::PitField(_)) || e.children().into_iter().any(contains_pit)
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Num(n) => format!("number {n}"),
        Tok::Field(f) => format!("field ${f}"),
        Tok::PitField(f) => format!("PIT field $${f}"),
        Tok::Str(s) => format!("string '{s}'"),
        Tok::Ident(i) => format!("name `{i}`"),
        Tok::LParen => "`(`".into(),
        Tok::RParen => "`)`".into(),
        Tok::Comma => "`,`".into(),
        Tok::Op(o) => format!("`{o}`"),
        Tok::Eof => "end of expression".into(),
    }
}

fn lex(src: &str) -> Result<Vec<(Tok, usize)>> {
    let chars: Vec<char> = src.chars().collect();
    let err = |pos: usize, msg: String| DataError::Parse {
        expr: src.to_string(),
        pos,
        msg,
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
                let mut j = i + 1;
                if j < chars.len() && (chars[j] == '+' || chars[j] == '-') {
                    j += 1;
                }
                if j < chars.len() && chars[j].is_ascii_digit() {
                    i = j;
                    while i < chars.len() && chars[i].is_ascii_digit() {
                        i += 1;
                    }
                }
            }
            let text: String = chars[start..i].iter().collect();
            let v: f64 = text
                .parse()
                .map_err(|_| err(start, format!("bad number `{text}`")))?;
            out.push((Tok::Num(v), start));
            continue;
        }
        if c == '\'' || c == '"' {
            i += 1;
            let body_start = i;
            while i < chars.len() && chars[i] != c {
                i += 1;
            }
            if i == chars.len() {
                return Err(err(
                    start,
                    format!("unterminated string (missing closing {c})"),
                ));
            }
            out.push((Tok::Str(chars[body_start..i].iter().collect()), start));
            i += 1;
            continue;
        }
        if c == '$' {
            i += 1;
            let pit = chars.get(i) == Some(&'$');
            if pit {
                i += 1;
            }
            let name_start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            if i == name_start {
                return Err(err(start, "`$` must be followed by a field name".into()));
            }
            let name: String = chars[name_start..i].iter().collect();
            out.push((
                if pit {
                    Tok::PitField(name)
                } else {
                    Tok::Field(name)
                },
                start,
            ));
            continue;
        }
        if c.is_ascii_alphabetic() || c == '_' {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push((Tok::Ident(chars[start..i].iter().collect()), start));
            continue;
        }
        let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
        let op: Option<(&'static str, usize)> = match two.as_str() {
            ">=" => Some((">=", 2)),
            "<=" => Some(("<=", 2)),
            "==" => Some(("==", 2)),
            "!=" => Some(("!=", 2)),
            _ => match c {
                '+' => Some(("+", 1)),
                '-' => Some(("-", 1)),
                '*' => Some(("*", 1)),
                '/' => Some(("/", 1)),
                '>' => Some((">", 1)),
                '<' => Some(("<", 1)),
                '&' => Some(("&", 1)),
                '|' => Some(("|", 1)),
                _ => None,
            },
        };
        let tok = match (c, op) {
            ('(', _) => (Tok::LParen, 1),
            (')', _) => (Tok::RParen, 1),
            (',', _) => (Tok::Comma, 1),
            (_, Some((o, n))) => (Tok::Op(o), n),
            _ => return Err(err(start, format!("unexpected character `{c}`"))),
        };
        out.push((tok.0, start));
        i += tok.1;
    }
    out.push((Tok::Eof, chars.len()));
    Ok(out)
}

/// Operator name -> (what it is, the argument list shown in arity errors).
fn lookup(name: &str) -> Option<(Kind, &'static str)> {
    use Kind::*;
    Some(match name {
        "Abs" => (Unary(UnaryOp::Abs), "(x)"),
        "Log" => (Unary(UnaryOp::Log), "(x)"),
        "Sign" => (Unary(UnaryOp::Sign), "(x)"),
        "Not" => (Unary(UnaryOp::Not), "(x)"),
        "Add" => (Binary(BinaryOp::Add), "(x, y)"),
        "Sub" => (Binary(BinaryOp::Sub), "(x, y)"),
        "Mul" => (Binary(BinaryOp::Mul), "(x, y)"),
        "Div" => (Binary(BinaryOp::Div), "(x, y)"),
        "Power" => (Binary(BinaryOp::Power), "(x, y)"),
        "Greater" => (Binary(BinaryOp::Greater), "(x, y)"),
        "Less" => (Binary(BinaryOp::Less), "(x, y)"),
        "Gt" => (Binary(BinaryOp::Gt), "(x, y)"),
        "Ge" => (Binary(BinaryOp::Ge), "(x, y)"),
        "Lt" => (Binary(BinaryOp::Lt), "(x, y)"),
        "Le" => (Binary(BinaryOp::Le), "(x, y)"),
        "Eq" => (Binary(BinaryOp::Eq), "(x, y)"),
        "Ne" => (Binary(BinaryOp::Ne), "(x, y)"),
        "And" => (Binary(BinaryOp::And), "(x, y)"),
        "Or" => (Binary(BinaryOp::Or), "(x, y)"),
        "Ref" => (Rolling(RollOp::Ref), "(x, N)"),
        "Mean" => (Rolling(RollOp::Mean), "(x, N)"),
        "Sum" => (Rolling(RollOp::Sum), "(x, N)"),
        "Std" => (Rolling(RollOp::Std), "(x, N)"),
        "Var" => (Rolling(RollOp::Var), "(x, N)"),
        "Skew" => (Rolling(RollOp::Skew), "(x, N)"),
        "Kurt" => (Rolling(RollOp::Kurt), "(x, N)"),
        "Max" => (Rolling(RollOp::Max), "(x, N)"),
        "Min" => (Rolling(RollOp::Min), "(x, N)"),
        "Med" => (Rolling(RollOp::Med), "(x, N)"),
        "Mad" => (Rolling(RollOp::Mad), "(x, N)"),
        "Rank" => (Rolling(RollOp::Rank), "(x, N)"),
        "IdxMax" => (Rolling(RollOp::IdxMax), "(x, N)"),
        "IdxMin" => (Rolling(RollOp::IdxMin), "(x, N)"),
        "Slope" => (Rolling(RollOp::Slope), "(x, N)"),
        "Rsquare" => (Rolling(RollOp::Rsquare), "(x, N)"),
        "Resi" => (Rolling(RollOp::Resi), "(x, N)"),
        "WMA" => (Rolling(RollOp::Wma), "(x, N)"),
        "EMA" => (Rolling(RollOp::Ema), "(x, N)"),
        "Delta" => (Rolling(RollOp::Delta), "(x, N)"),
        "Count" => (Rolling(RollOp::Count), "(x, N)"),
        "Quantile" => (Quantile, "(x, N, q)"),
        "Corr" => (Pair(PairRollOp::Corr), "(x, y, N)"),
        "Cov" => (Pair(PairRollOp::Cov), "(x, y, N)"),
        "If" => (If, "(cond, x, y)"),
        "P" => (Pit, "(x)"),
        "PRef" => (PitRef, "(x, period)"),
        "Mask" => (Mask, "(x, 'instrument')"),
        "ChangeInstrument" => (ChangeInstrument, "('instrument', x)"),
        "Rolling" => (RollingFunc, "(x, N, 'func')"),
        "TResample" => (TResample, "(x, freq, func)"),
        _ => return None,
    })
}

#[derive(Clone, Copy)]
enum Kind {
    Unary(UnaryOp),
    Binary(BinaryOp),
    Rolling(RollOp),
    Quantile,
    Pair(PairRollOp),
    If,
    Pit,
    PitRef,
    Mask,
    ChangeInstrument,
    RollingFunc,
    TResample,
}

/// One argument of an operator call: an expression, or a quoted string.
enum Arg {
    Expr(Expr),
    Str(String),
}

impl Parser<'_> {
    fn peek(&self) -> Tok {
        self.toks[self.at].0.clone()
    }
    fn pos(&self) -> usize {
        self.toks[self.at].1
    }
    fn bump(&mut self) -> (Tok, usize) {
        let t = self.toks[self.at].clone();
        if self.at + 1 < self.toks.len() {
            self.at += 1;
        }
        t
    }
    fn err(&self, pos: usize, msg: String) -> DataError {
        DataError::Parse {
            expr: self.src.to_string(),
            pos,
            msg,
        }
    }

    fn too_deep(&self) -> DataError {
        self.err(
            self.pos(),
            format!(
                "the expression is more than {MAX_DEPTH} levels deep (each further operand of \
                 a chain like `a + b + c` is one level deeper); split it into named parts"
            ),
        )
    }

    fn too_nested(&self) -> DataError {
        self.err(
            self.pos(),
            format!(
                "the expression nests more than {MAX_NESTING} levels of parentheses, operator \
                 calls and signs"
            ),
        )
    }

    /// Records that the expression just built is `depth` deep, refusing past [`MAX_DEPTH`].
    fn built(&mut self, depth: usize) -> Result<()> {
        if depth > MAX_DEPTH {
            return Err(self.too_deep());
        }
        self.last = depth;
        Ok(())
    }

    /// Runs `f` one parser level deeper, refusing past [`MAX_NESTING`].
    fn nested<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        self.open += 1;
        if self.open > MAX_NESTING {
            return Err(self.too_nested());
        }
        let out = f(self)?;
        self.open -= 1;
        Ok(out)
    }

    fn comparison(&mut self) -> Result<Expr> {
        let e = self.nested(Self::comparison_at)?;
        self.deepest_arg = self.deepest_arg.max(self.last);
        Ok(e)
    }

    /// Builds a binary node over operands `da` and `db` deep.
    fn binary_at(&mut self, op: BinaryOp, a: Expr, da: usize, b: Expr) -> Result<(Expr, usize)> {
        let d = da.max(self.last) + 1;
        self.built(d)?;
        Ok((binary(op, a, b), d))
    }

    fn comparison_at(&mut self) -> Result<Expr> {
        let left = self.or_expr()?;
        let dl = self.last;
        let op = match self.peek() {
            Tok::Op(">") => BinaryOp::Gt,
            Tok::Op(">=") => BinaryOp::Ge,
            Tok::Op("<") => BinaryOp::Lt,
            Tok::Op("<=") => BinaryOp::Le,
            Tok::Op("==") => BinaryOp::Eq,
            Tok::Op("!=") => BinaryOp::Ne,
            _ => return Ok(left),
        };
        self.bump();
        let right = self.or_expr()?;
        if let Tok::Op(o @ (">" | ">=" | "<" | "<=" | "==" | "!=")) = self.peek() {
            return Err(self.err(
                self.pos(),
                format!("chained comparison `{o}`: add parentheses and combine with `&`"),
            ));
        }
        Ok(self.binary_at(op, left, dl, right)?.0)
    }

    fn or_expr(&mut self) -> Result<Expr> {
        let mut e = self.and_expr()?;
        let mut d = self.last;
        while self.peek() == Tok::Op("|") {
            self.bump();
            let r = self.and_expr()?;
            (e, d) = self.binary_at(BinaryOp::Or, e, d, r)?;
        }
        self.last = d;
        Ok(e)
    }

    fn and_expr(&mut self) -> Result<Expr> {
        let mut e = self.additive()?;
        let mut d = self.last;
        while self.peek() == Tok::Op("&") {
            self.bump();
            let r = self.additive()?;
            (e, d) = self.binary_at(BinaryOp::And, e, d, r)?;
        }
        self.last = d;
        Ok(e)
    }

    fn additive(&mut self) -> Result<Expr> {
        let mut e = self.term()?;
        let mut d = self.last;
        loop {
            let op = match self.peek() {
                Tok::Op("+") => BinaryOp::Add,
                Tok::Op("-") => BinaryOp::Sub,
                _ => {
                    self.last = d;
                    return Ok(e);
                }
            };
            self.bump();
            let r = self.term()?;
            (e, d) = self.binary_at(op, e, d, r)?;
        }
    }

    fn term(&mut self) -> Result<Expr> {
        let mut e = self.unary()?;
        let mut d = self.last;
        loop {
            let op = match self.peek() {
                Tok::Op("*") => BinaryOp::Mul,
                Tok::Op("/") => BinaryOp::Div,
                _ => {
                    self.last = d;
                    return Ok(e);
                }
            };
            self.bump();
            let r = self.unary()?;
            (e, d) = self.binary_at(op, e, d, r)?;
        }
    }

    fn unary(&mut self) -> Result<Expr> {
        match self.peek() {
            Tok::Op("-") => {
                self.bump();
                let x = self.nested(Self::unary)?;
                let d = self.last + 1;
                self.built(d)?;
                Ok(match x {
                    Expr::Const(c) => Expr::Const(-c),
                    x => Expr::Unary(UnaryOp::Neg, Box::new(x)),
                })
            }
            Tok::Op("+") => {
                self.bump();
                self.nested(Self::unary)
            }
            _ => self.primary(),
        }
    }

    fn primary(&mut self) -> Result<Expr> {
        let (tok, pos) = self.bump();
        if matches!(tok, Tok::Num(_) | Tok::Field(_) | Tok::PitField(_)) {
            self.last = 1;
        }
        match tok {
            Tok::Num(v) => Ok(Expr::Const(v)),
            Tok::Field(f) => Ok(Expr::Field(f)),
            Tok::PitField(f) => Ok(Expr::PitField(f)),
            Tok::LParen => {
                let e = self.comparison()?;
                match self.bump() {
                    (Tok::RParen, _) => Ok(e),
                    (t, p) => Err(self.err(p, format!("expected `)`, found {}", describe(&t)))),
                }
            }
            Tok::Ident(name) => {
                // The call is one level above its deepest argument.
                let outer = std::mem::replace(&mut self.deepest_arg, 0);
                let e = self.call(&name, pos)?;
                let d = self.deepest_arg + 1;
                self.deepest_arg = outer;
                self.built(d)?;
                Ok(e)
            }
            t => Err(self.err(pos, format!("expected a value, found {}", describe(&t)))),
        }
    }

    fn call(&mut self, name: &str, pos: usize) -> Result<Expr> {
        let Some((kind, sig)) = lookup(name) else {
            return Err(self.err(pos, format!("unknown operator `{name}`")));
        };
        match self.bump() {
            (Tok::LParen, _) => {}
            (t, p) => {
                return Err(self.err(
                    p,
                    format!("expected `(` after `{name}`, found {}", describe(&t)),
                ));
            }
        }
        if let Kind::TResample = kind {
            return Err(self.err(
                pos,
                "TResample needs a series indexed by time, which Qlib's expression engine does not \
                 give it (pandas: \"Only valid with DatetimeIndex\"): it cannot run on daily \
                 features in Qlib either"
                    .into(),
            ));
        }
        let mut args: Vec<(Arg, usize)> = Vec::new();
        if self.peek() != Tok::RParen {
            loop {
                let p = self.pos();
                let arg = match (self.peek(), self.toks.get(self.at + 1).map(|t| &t.0)) {
                    (Tok::Str(s), Some(Tok::Comma | Tok::RParen)) => {
                        self.bump();
                        Arg::Str(s)
                    }
                    _ => Arg::Expr(self.comparison()?),
                };
                args.push((arg, p));
                match self.bump() {
                    (Tok::Comma, _) => continue,
                    (Tok::RParen, _) => break,
                    (t, p) => {
                        return Err(self.err(
                            p,
                            format!("expected `,` or `)` in {name}(...), found {}", describe(&t)),
                        ));
                    }
                }
            }
        } else {
            self.bump();
        }
        let want = sig.matches(',').count() + 1;
        if args.len() != want {
            return Err(self.err(
                pos,
                format!(
                    "{name} takes {want} argument{} {sig}, got {}",
                    if want == 1 { "" } else { "s" },
                    args.len()
                ),
            ));
        }
        let string_at = |i: usize| match kind {
            Kind::Mask | Kind::RollingFunc => i + 1 == want,
            Kind::ChangeInstrument => i == 0,
            _ => false,
        };
        for (i, (a, p)) in args.iter().enumerate() {
            match (a, string_at(i)) {
                (Arg::Str(s), false) => {
                    return Err(
                        self.err(*p, format!("{name} takes no string here {sig}, got '{s}'"))
                    );
                }
                (Arg::Expr(e), true) => {
                    return Err(self.err(
                        *p,
                        format!("{name} needs a quoted string here {sig}, got `{e}`"),
                    ));
                }
                _ => {}
            }
        }
        let mut strings = Vec::new();
        let mut exprs = Vec::new();
        for (a, p) in args {
            match a {
                Arg::Str(s) => strings.push((s, p)),
                Arg::Expr(e) => exprs.push((e, p)),
            }
        }
        let mut strings = strings.into_iter();
        let mut it = exprs.into_iter();
        let mut next = || it.next().expect("arity checked");
        Ok(match kind {
            Kind::Mask | Kind::ChangeInstrument => {
                let (x, _) = next();
                let (sym, spos) = strings.next().expect("arity checked");
                let sym = sym.trim().to_uppercase();
                if sym.is_empty()
                    || !sym
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "_-.^".contains(c))
                {
                    return Err(self.err(spos, format!("{name}: `{sym}` is not an instrument")));
                }
                Expr::OnInstrument(sym, Box::new(x))
            }
            Kind::RollingFunc => {
                let (x, _) = next();
                let (n, npos) = next();
                let (func, fpos) = strings.next().expect("arity checked");
                // Qlib: a window in (0, 1) is an EMA's alpha whatever the function.
                if let Expr::Const(a) = n
                    && a > 0.0
                    && a < 1.0
                {
                    return Ok(Expr::Rolling(RollOp::Ema, Box::new(x), Window::Alpha(a)));
                }
                let op = match func.as_str() {
                    "mean" => RollOp::Mean,
                    "sum" => RollOp::Sum,
                    "std" => RollOp::Std,
                    "var" => RollOp::Var,
                    "skew" => RollOp::Skew,
                    "kurt" => RollOp::Kurt,
                    "max" => RollOp::Max,
                    "min" => RollOp::Min,
                    "median" => RollOp::Med,
                    "count" => RollOp::Count,
                    other => {
                        return Err(self.err(
                            fpos,
                            format!(
                                "Rolling: unsupported function '{other}' (supported: mean, sum, \
                                 std, var, skew, kurt, max, min, median, count)"
                            ),
                        ));
                    }
                };
                let n = self.days(name, n, npos)?;
                Expr::Rolling(op, Box::new(x), Window::Days(n))
            }
            Kind::TResample => unreachable!("refused above"),
            Kind::Unary(op) => {
                let (x, _) = next();
                match (op, x) {
                    (UnaryOp::Abs, Expr::Const(c)) => Expr::Const(c.abs()),
                    (op, x) => Expr::Unary(op, Box::new(x)),
                }
            }
            Kind::Binary(op) => {
                let (a, _) = next();
                let (b, _) = next();
                binary(op, a, b)
            }
            Kind::Rolling(op) => {
                let (x, _) = next();
                let (n, npos) = next();
                let w = self.window(op, name, n, npos)?;
                Expr::Rolling(op, Box::new(x), w)
            }
            Kind::Quantile => {
                let (x, _) = next();
                let (n, npos) = next();
                let n = self.days(name, n, npos)?;
                let (q, qpos) = next();
                let q = match q {
                    Expr::Const(q) if (0.0..=1.0).contains(&q) => q,
                    _ => {
                        return Err(
                            self.err(qpos, "Quantile's q must be a number in [0, 1]".into())
                        );
                    }
                };
                Expr::Quantile(Box::new(x), n, q)
            }
            Kind::Pair(op) => {
                let (a, _) = next();
                let (b, _) = next();
                let (n, npos) = next();
                let n = self.days(name, n, npos)?;
                if n == 0 {
                    // Qlib's expanding pair window has an infinite look-back and fails.
                    return Err(self.err(
                        npos,
                        format!("{name}'s window must be at least 1 day (Qlib fails on 0)"),
                    ));
                }
                Expr::PairRolling(op, Box::new(a), Box::new(b), n)
            }
            Kind::If => {
                let (c, _) = next();
                let (a, _) = next();
                let (b, _) = next();
                Expr::If(Box::new(c), Box::new(a), Box::new(b))
            }
            Kind::Pit => Expr::Pit(Box::new(next().0), None),
            Kind::PitRef => {
                let (x, _) = next();
                let (p, ppos) = next();
                let period = match p {
                    Expr::Const(v)
                        if v.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&v) =>
                    {
                        v as u32
                    }
                    _ => {
                        return Err(self.err(
                            ppos,
                            "PRef's period must be a whole number such as 201902 (quarter) or 2019 (year)"
                                .into(),
                        ));
                    }
                };
                Expr::Pit(Box::new(x), Some(period))
            }
        })
    }

    fn days(&self, name: &str, n: Expr, pos: usize) -> Result<i64> {
        match n {
            Expr::Const(v) if v.fract() == 0.0 && (0.0..=MAX_WINDOW as f64).contains(&v) => {
                Ok(v as i64)
            }
            _ => Err(self.err(
                pos,
                format!("{name}'s window must be a whole number of days from 0 to {MAX_WINDOW}"),
            )),
        }
    }

    fn window(&self, op: RollOp, name: &str, n: Expr, pos: usize) -> Result<Window> {
        match (op, n) {
            (RollOp::Ref, Expr::Const(v)) if v.fract() == 0.0 && v.abs() <= MAX_WINDOW as f64 => {
                Ok(Window::Days(v as i64))
            }
            (RollOp::Ref, _) => Err(self.err(
                pos,
                format!(
                    "Ref's offset must be a whole number of days from -{MAX_WINDOW} to {MAX_WINDOW}"
                ),
            )),
            (RollOp::Ema, Expr::Const(v)) if v > 0.0 && v < 1.0 => Ok(Window::Alpha(v)),
            (_, n) => self.days(name, n, pos).map(Window::Days),
        }
    }
}

/// Builds a binary node, folding constants so `Ref($close, -(5+1))` gets a plain window.
fn binary(op: BinaryOp, a: Expr, b: Expr) -> Expr {
    if let (Expr::Const(x), Expr::Const(y)) = (&a, &b) {
        let (x, y) = (*x, *y);
        let b2f = |b: bool| if b { 1.0 } else { 0.0 };
        let v = match op {
            BinaryOp::Add => x + y,
            BinaryOp::Sub => x - y,
            BinaryOp::Mul => x * y,
            BinaryOp::Div => x / y,
            BinaryOp::Power => x.powf(y),
            BinaryOp::Greater => x.max(y),
            BinaryOp::Less => x.min(y),
            BinaryOp::Gt => b2f(x > y),
            BinaryOp::Ge => b2f(x >= y),
            BinaryOp::Lt => b2f(x < y),
            BinaryOp::Le => b2f(x <= y),
            BinaryOp::Eq => b2f(x == y),
            BinaryOp::Ne => b2f(x != y),
            BinaryOp::And => b2f(x != 0.0 && y != 0.0),
            BinaryOp::Or => b2f(x != 0.0 || y != 0.0),
        };
        return Expr::Const(v);
    }
    Expr::Binary(op, Box::new(a), Box::new(b))
}
