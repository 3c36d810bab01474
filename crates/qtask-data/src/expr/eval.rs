//! Compiles many expressions into one graph where each distinct subexpression is a single
//! node (computed once per instrument), and evaluates it over one instrument's series.
//!
//! Qlib computes `.bin` values in float32 and pandas rolling results in float64; each value
//! carries that precision here too (`DType`), so element-wise float32 arithmetic is rounded
//! exactly as numpy rounds it.

use std::collections::HashMap;

use super::ast::{BinaryOp, Expr, PairRollOp, RollOp, UnaryOp, Window};
use super::npmath;
use super::parse::parse;
use super::rolling as k;
use crate::error::Result;

/// The numpy dtype a value would have in Qlib.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DType {
    F32,
    F64,
    Bool,
}

#[derive(Debug, Clone)]
enum Node {
    Const(f64),
    Field(usize),
    /// `Program::foreign_fields()[i]`: another instrument's field (`ChangeInstrument`, `Mask`).
    Foreign(usize),
    Unary(UnaryOp, usize),
    Binary(BinaryOp, usize, usize),
    Rolling(RollOp, usize, Window),
    Quantile(usize, usize, f64),
    Pair(PairRollOp, usize, usize, usize),
    /// Qlib's blanking of Corr/Rsquare: NaN wherever one of the rolling stds is below 2e-5.
    Masked(usize, Vec<usize>),
    If(usize, usize, usize),
    /// A PIT field of an inner `P` program: the period series, in float64 as Qlib reads it.
    PitField(usize),
    /// The daily column of `Program::pit_queries()[i]`, computed outside the graph.
    Pit(usize),
}

impl Node {
    fn children(&self) -> Vec<usize> {
        match *self {
            Node::Const(_)
            | Node::Field(_)
            | Node::Foreign(_)
            | Node::PitField(_)
            | Node::Pit(_) => vec![],
            Node::Unary(_, a) | Node::Rolling(_, a, _) | Node::Quantile(a, _, _) => vec![a],
            Node::Binary(_, a, b) | Node::Pair(_, a, b, _) => vec![a, b],
            Node::If(c, a, b) => vec![c, a, b],
            Node::Masked(t, ref m) => std::iter::once(t).chain(m.iter().copied()).collect(),
        }
    }
}

/// A set of named expressions compiled into one shared graph.
#[derive(Debug, Clone)]
pub struct Program {
    nodes: Vec<Node>,
    fields: Vec<String>,
    foreign: Vec<(String, String)>,
    outputs: Vec<usize>,
    names: Vec<String>,
    exprs: Vec<String>,
    window: (usize, usize),
    last_use: Vec<usize>,
    pits: Vec<PitQuery>,
}

/// One `P(x)` or `PRef(x, period)` of a program: `x` compiled over period series.
#[derive(Debug, Clone)]
pub struct PitQuery {
    /// `x`, whose `fields()` are the PIT field names (lower case, e.g. `roewa_q`).
    pub program: Program,
    /// `Some(period)` for `PRef`, `None` for `P`.
    pub period: Option<u32>,
}

impl PitQuery {
    /// How many periods before the latest one `x` reads (Qlib's `get_extended_window_size`).
    pub fn lookback(&self) -> usize {
        self.program.window.0
    }
}

impl Program {
    fn empty() -> Program {
        Program {
            nodes: Vec::new(),
            fields: Vec::new(),
            foreign: Vec::new(),
            outputs: Vec::new(),
            names: Vec::new(),
            exprs: Vec::new(),
            window: (0, 0),
            last_use: Vec::new(),
            pits: Vec::new(),
        }
    }

    /// Frees each intermediate once its last consumer ran; outputs are kept.
    fn finish(mut self) -> Program {
        let n = self.nodes.len();
        self.last_use = (0..n).collect();
        for (i, node) in self.nodes.iter().enumerate() {
            for c in node.children() {
                self.last_use[c] = self.last_use[c].max(i);
            }
        }
        for &o in &self.outputs {
            self.last_use[o] = usize::MAX;
        }
        self
    }

    /// The inner program of a `P`: one output, fields are PIT fields.
    fn from_pit_expr(e: &Expr) -> Program {
        let mut p = Program::empty();
        p.window = e.extended_window();
        let id = p.intern(e, &mut HashMap::new(), None);
        p.outputs.push(id);
        p.names.push(e.to_string());
        p.exprs.push(e.to_string());
        p.finish()
    }

    /// Parses and compiles `(name, expression)` pairs. Identical subexpressions (same
    /// canonical form) become one node.
    pub fn compile(named: &[(String, String)]) -> Result<Program> {
        let mut p = Program::empty();
        let mut keys: HashMap<String, usize> = HashMap::new();
        for (name, text) in named {
            let e = parse(text)?;
            let (l, r) = e.extended_window();
            p.window = (p.window.0.max(l), p.window.1.max(r));
            let id = p.intern(&e, &mut keys, None);
            p.outputs.push(id);
            p.names.push(name.clone());
            p.exprs.push(text.clone());
        }
        Ok(p.finish())
    }

    /// Interns `e` evaluated on the instrument being computed (`on` is `None`) or on
    /// instrument `on` (inside `ChangeInstrument`/`Mask`; an inner one wins, as in Qlib).
    fn intern(&mut self, e: &Expr, keys: &mut HashMap<String, usize>, on: Option<&str>) -> usize {
        let key = match on {
            Some(sym) => format!("@{sym}:{e}"),
            None => e.to_string(),
        };
        if let Some(&id) = keys.get(&key) {
            return id;
        }
        let node = match e {
            Expr::Const(c) => Node::Const(*c),
            Expr::OnInstrument(sym, x) => {
                let id = self.intern(x, keys, Some(sym));
                keys.insert(key, id);
                return id;
            }
            Expr::Field(f) if on.is_some() => {
                let pair = (on.unwrap_or_default().to_string(), f.clone());
                let i = match self.foreign.iter().position(|x| *x == pair) {
                    Some(i) => i,
                    None => {
                        self.foreign.push(pair);
                        self.foreign.len() - 1
                    }
                };
                Node::Foreign(i)
            }
            Expr::Field(f) => {
                let i = match self.fields.iter().position(|x| x == f) {
                    Some(i) => i,
                    None => {
                        self.fields.push(f.clone());
                        self.fields.len() - 1
                    }
                };
                Node::Field(i)
            }
            Expr::PitField(f) => {
                // Qlib lower-cases PIT field names before finding their files.
                let f = f.to_lowercase();
                let i = match self.fields.iter().position(|x| *x == f) {
                    Some(i) => i,
                    None => {
                        self.fields.push(f);
                        self.fields.len() - 1
                    }
                };
                Node::PitField(i)
            }
            Expr::Pit(x, period) => {
                self.pits.push(PitQuery {
                    program: Program::from_pit_expr(x),
                    period: *period,
                });
                Node::Pit(self.pits.len() - 1)
            }
            Expr::Unary(op, x) => Node::Unary(*op, self.intern(x, keys, on)),
            Expr::Binary(op, a, b) => {
                let a = self.intern(a, keys, on);
                let b = self.intern(b, keys, on);
                Node::Binary(*op, a, b)
            }
            Expr::Rolling(RollOp::Rsquare, x, Window::Days(n)) if *n != 0 => {
                // The std mask is its own node so Std(x, N) is shared with other columns.
                let raw = self.push_node(format!("raw:{key}"), keys, |p, keys| {
                    Node::Rolling(RollOp::Rsquare, p.intern(x, keys, on), Window::Days(*n))
                });
                let sd = self.intern(
                    &Expr::Rolling(RollOp::Std, x.clone(), Window::Days(*n)),
                    keys,
                    on,
                );
                Node::Masked(raw, vec![sd])
            }
            Expr::Rolling(op, x, w) => Node::Rolling(*op, self.intern(x, keys, on), *w),
            Expr::Quantile(x, n, q) => Node::Quantile(self.intern(x, keys, on), *n as usize, *q),
            Expr::PairRolling(PairRollOp::Corr, a, b, n) => {
                let raw = self.push_node(format!("raw:{key}"), keys, |p, keys| {
                    let (ai, bi) = (p.intern(a, keys, on), p.intern(b, keys, on));
                    Node::Pair(PairRollOp::Corr, ai, bi, *n as usize)
                });
                let w = Window::Days(*n);
                let sa = self.intern(&Expr::Rolling(RollOp::Std, a.clone(), w), keys, on);
                let sb = self.intern(&Expr::Rolling(RollOp::Std, b.clone(), w), keys, on);
                Node::Masked(raw, vec![sa, sb])
            }
            Expr::PairRolling(op, a, b, n) => {
                let a = self.intern(a, keys, on);
                let b = self.intern(b, keys, on);
                Node::Pair(*op, a, b, *n as usize)
            }
            Expr::If(c, a, b) => {
                let c = self.intern(c, keys, on);
                let a = self.intern(a, keys, on);
                let b = self.intern(b, keys, on);
                Node::If(c, a, b)
            }
        };
        self.nodes.push(node);
        let id = self.nodes.len() - 1;
        keys.insert(key, id);
        id
    }

    /// Interns a node under `key` unless present (its children are interned by `make`).
    fn push_node(
        &mut self,
        key: String,
        keys: &mut HashMap<String, usize>,
        make: impl FnOnce(&mut Self, &mut HashMap<String, usize>) -> Node,
    ) -> usize {
        if let Some(&id) = keys.get(&key) {
            return id;
        }
        let node = make(self, keys);
        self.nodes.push(node);
        let id = self.nodes.len() - 1;
        keys.insert(key, id);
        id
    }

    /// The `$fields` read from the instrument being computed, in first-use order.
    pub fn fields(&self) -> &[String] {
        &self.fields
    }

    /// The `(SYMBOL, field)` pairs read from other instruments (`ChangeInstrument`, `Mask`),
    /// in first-use order.
    pub fn foreign_fields(&self) -> &[(String, String)] {
        &self.foreign
    }

    /// Output column names.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The expression texts, in output order.
    pub fn exprs(&self) -> &[String] {
        &self.exprs
    }

    /// Number of distinct nodes (subexpressions) after sharing.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Days needed before and after a requested range (the maximum over all expressions).
    pub fn extended_window(&self) -> (usize, usize) {
        self.window
    }

    /// The `P(...)`/`PRef(...)` subexpressions, whose daily columns `eval_with_pit` takes.
    pub fn pit_queries(&self) -> &[PitQuery] {
        &self.pits
    }

    /// Evaluates every output over series of length `len`; `fields[i]` holds the values of
    /// `self.fields()[i]` (f32 values widened to f64), or `None` when the file is missing
    /// (a column of NaN, as Qlib does). Outputs are rounded to f32, as Qlib returns them.
    /// `P(...)` columns are NaN here: use `eval_with_pit` to supply them.
    pub fn eval(&self, fields: &[Option<Vec<f64>>], len: usize) -> Vec<Vec<f32>> {
        self.eval_with_pit(fields, &[], len)
    }

    /// `eval` with the daily column of each `pit_queries()[i]` in `pits[i]` (`None` or absent:
    /// NaN, as Qlib gives when the instrument has no PIT file).
    pub fn eval_with_pit(
        &self,
        fields: &[Option<Vec<f64>>],
        pits: &[Option<Vec<f64>>],
        len: usize,
    ) -> Vec<Vec<f32>> {
        self.eval_inputs(
            &Inputs {
                fields,
                foreign: &[],
                pits,
            },
            len,
        )
    }

    /// `eval_with_pit` with the series of `foreign_fields()` too (`None` or absent: NaN), all
    /// over the same `len` days.
    pub fn eval_inputs(&self, inputs: &Inputs<'_>, len: usize) -> Vec<Vec<f32>> {
        let mut vals: Vec<Option<Val>> = vec![None; self.nodes.len()];
        let mut out: Vec<Option<Vec<f32>>> = vec![None; self.outputs.len()];
        for (i, node) in self.nodes.iter().enumerate() {
            let v = eval_node(node, &vals, inputs, len);
            vals[i] = Some(v);
            for c in node.children() {
                if self.last_use[c] == i {
                    vals[c] = None;
                }
            }
        }
        // Outputs are kept to the end (their last use is "never"), so read them now.
        for (o, &id) in self.outputs.iter().enumerate() {
            let v = vals[id].as_ref().expect("outputs are kept").values(len);
            out[o] = Some(v.iter().map(|&x| x as f32).collect());
        }
        out.into_iter().map(|c| c.unwrap_or_default()).collect()
    }
}

/// The input series of one instrument, each over the same days.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// `Program::fields()` of the instrument (`None`: no file).
    pub fields: &'a [Option<Vec<f64>>],
    /// `Program::foreign_fields()` (`None`: no file).
    pub foreign: &'a [Option<Vec<f64>>],
    /// The daily column of each `Program::pit_queries()`.
    pub pits: &'a [Option<Vec<f64>>],
}

#[derive(Debug, Clone)]
struct Column {
    v: Vec<f64>,
    dt: DType,
}

#[derive(Debug, Clone)]
enum Val {
    Scalar(f64),
    Col(Column),
}

impl Val {
    fn dtype(&self) -> DType {
        match self {
            Val::Scalar(_) => DType::F64,
            Val::Col(c) => c.dt,
        }
    }
    fn values(&self, len: usize) -> std::borrow::Cow<'_, [f64]> {
        match self {
            Val::Scalar(c) => std::borrow::Cow::Owned(vec![*c; len]),
            Val::Col(c) => std::borrow::Cow::Borrowed(&c.v),
        }
    }
}

fn round(dt: DType, v: f64) -> f64 {
    if dt == DType::F32 { v as f32 as f64 } else { v }
}

fn col(v: Vec<f64>, dt: DType) -> Val {
    let v = if dt == DType::F32 {
        v.into_iter().map(|x| x as f32 as f64).collect()
    } else {
        v
    };
    Val::Col(Column { v, dt })
}

fn bool_of(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

/// numpy's result type of an element-wise operation (Python scalars are "weak").
fn promote(a: &Val, b: &Val) -> DType {
    match (a, b) {
        (Val::Col(x), Val::Col(y)) => match (x.dt, y.dt) {
            (DType::F64, _) | (_, DType::F64) | (DType::Bool, DType::Bool) => DType::F64,
            _ => DType::F32,
        },
        (Val::Col(x), Val::Scalar(_)) | (Val::Scalar(_), Val::Col(x)) => match x.dt {
            DType::F32 => DType::F32,
            _ => DType::F64,
        },
        (Val::Scalar(_), Val::Scalar(_)) => DType::F64,
    }
}

fn apply_binary(op: BinaryOp, x: f64, y: f64) -> f64 {
    match op {
        BinaryOp::Add => x + y,
        BinaryOp::Sub => x - y,
        BinaryOp::Mul => x * y,
        BinaryOp::Div => x / y,
        BinaryOp::Power => x.powf(y),
        BinaryOp::Greater => {
            if x.is_nan() || y.is_nan() {
                f64::NAN
            } else {
                x.max(y)
            }
        }
        BinaryOp::Less => {
            if x.is_nan() || y.is_nan() {
                f64::NAN
            } else {
                x.min(y)
            }
        }
        BinaryOp::Gt => bool_of(x > y),
        BinaryOp::Ge => bool_of(x >= y),
        BinaryOp::Lt => bool_of(x < y),
        BinaryOp::Le => bool_of(x <= y),
        BinaryOp::Eq => bool_of(x == y),
        BinaryOp::Ne => bool_of(x != y),
        BinaryOp::And => bool_of(x != 0.0 && y != 0.0),
        BinaryOp::Or => bool_of(x != 0.0 || y != 0.0),
    }
}

fn eval_node(node: &Node, vals: &[Option<Val>], inputs: &Inputs<'_>, len: usize) -> Val {
    let (fields, pits) = (inputs.fields, inputs.pits);
    let get = |j: usize| vals[j].as_ref().expect("children are evaluated first");
    match *node {
        Node::Const(c) => Val::Scalar(c),
        Node::PitField(i) => match &fields[i] {
            Some(v) => Val::Col(Column {
                v: v.clone(),
                dt: DType::F64,
            }),
            None => col(vec![f64::NAN; len], DType::F64),
        },
        // Qlib's P stores its daily values in a float32 array.
        Node::Pit(i) => match pits.get(i) {
            Some(Some(v)) => col(v.clone(), DType::F32),
            _ => col(vec![f64::NAN; len], DType::F32),
        },
        Node::Field(i) => match &fields[i] {
            Some(v) => Val::Col(Column {
                v: v.clone(),
                dt: DType::F32,
            }),
            None => col(vec![f64::NAN; len], DType::F32),
        },
        Node::Foreign(i) => match inputs.foreign.get(i) {
            Some(Some(v)) => Val::Col(Column {
                v: v.clone(),
                dt: DType::F32,
            }),
            _ => col(vec![f64::NAN; len], DType::F32),
        },
        Node::Unary(op, a) => {
            let a = get(a);
            let (adt, x) = (a.dtype(), a.values(len));
            let dt = match op {
                UnaryOp::Not => DType::Bool,
                UnaryOp::Sign => DType::F32,
                UnaryOp::Log if adt == DType::Bool => DType::F32,
                UnaryOp::Neg if adt == DType::Bool => DType::F64,
                _ => adt,
            };
            let f = |x: f64| match op {
                UnaryOp::Neg => -x,
                UnaryOp::Abs => x.abs(),
                UnaryOp::Log if dt == DType::F32 => npmath::log_f32(x as f32) as f64,
                UnaryOp::Log => x.ln(),
                UnaryOp::Sign => {
                    if x.is_nan() || x == 0.0 {
                        x
                    } else {
                        x.signum()
                    }
                }
                UnaryOp::Not => bool_of(x == 0.0),
            };
            col(x.iter().map(|&v| f(v)).collect(), dt)
        }
        Node::Binary(op, a, b) => {
            let (a, b) = (get(a), get(b));
            // numpy on two boolean arrays: `+` is or, `*` is and, maximum/minimum too, and the
            // result stays boolean.
            let op = match (a.dtype(), b.dtype(), op) {
                (DType::Bool, DType::Bool, BinaryOp::Add | BinaryOp::Greater) => BinaryOp::Or,
                (DType::Bool, DType::Bool, BinaryOp::Mul | BinaryOp::Less) => BinaryOp::And,
                _ => op,
            };
            let dt = if op.is_boolean() {
                DType::Bool
            } else {
                promote(a, b)
            };
            // In float32 arithmetic numpy first casts a Python scalar to float32.
            let work = if op.is_boolean() { promote(a, b) } else { dt };
            let sc = |c: f64| round(work, c);
            match (a, b) {
                (Val::Scalar(x), Val::Scalar(y)) => Val::Scalar(apply_binary(op, *x, *y)),
                (Val::Col(x), Val::Scalar(y)) => {
                    let y = sc(*y);
                    col(x.v.iter().map(|&p| apply_binary(op, p, y)).collect(), dt)
                }
                (Val::Scalar(x), Val::Col(y)) => {
                    let x = sc(*x);
                    col(y.v.iter().map(|&q| apply_binary(op, x, q)).collect(), dt)
                }
                (Val::Col(x), Val::Col(y)) => col(
                    x.v.iter()
                        .zip(&y.v)
                        .map(|(&p, &q)| apply_binary(op, p, q))
                        .collect(),
                    dt,
                ),
            }
        }
        Node::If(c, a, b) => {
            let (cv, av, bv) = (get(c), get(a), get(b));
            // np.where between two boolean arrays stays boolean.
            let dt = match (av.dtype(), bv.dtype()) {
                (DType::Bool, DType::Bool) => DType::Bool,
                _ => promote(av, bv),
            };
            let (cx, ax, bx) = (cv.values(len), av.values(len), bv.values(len));
            col(
                (0..len)
                    .map(|i| if cx[i] != 0.0 { ax[i] } else { bx[i] })
                    .collect(),
                dt,
            )
        }
        Node::Quantile(a, n, q) => {
            col(k::quantile(&k::prep(&get(a).values(len)), n, q), DType::F64)
        }
        Node::Pair(op, a, b, n) => {
            let (av, bv) = (get(a).values(len), get(b).values(len));
            col(k::corr_cov(&av, &bv, n, op == PairRollOp::Corr), DType::F64)
        }
        Node::Masked(t, ref masks) => {
            let mut r = get(t).values(len).into_owned();
            for &m in masks {
                let sd = get(m).values(len);
                for (ri, si) in r.iter_mut().zip(sd.iter()) {
                    if si.abs() <= 2e-5 {
                        *ri = f64::NAN;
                    }
                }
            }
            col(r, DType::F64)
        }
        Node::Rolling(op, a, w) => rolling(op, get(a), w, len),
    }
}

fn rolling(op: RollOp, a: &Val, w: Window, len: usize) -> Val {
    let in_dt = a.dtype();
    let xv = a.values(len);
    let x: &[f64] = &xv;
    let n = match w {
        Window::Days(d) => d,
        Window::Alpha(_) => 0,
    };
    let nu = n.max(0) as usize;
    let f64col = |v: Vec<f64>| col(v, DType::F64);
    match op {
        RollOp::Ref => {
            let v = if x.is_empty() {
                Vec::new()
            } else if n == 0 {
                vec![x[0]; len]
            } else {
                (0..len as i64)
                    .map(|i| {
                        let j = i - n;
                        if j >= 0 && j < len as i64 {
                            x[j as usize]
                        } else {
                            f64::NAN
                        }
                    })
                    .collect()
            };
            col(v, in_dt)
        }
        RollOp::Delta => {
            let dt = if in_dt == DType::Bool {
                DType::F64
            } else {
                in_dt
            };
            let v = (0..len)
                .map(|i| {
                    let base = if nu == 0 {
                        x[0]
                    } else if i >= nu {
                        x[i - nu]
                    } else {
                        f64::NAN
                    };
                    x[i] - base
                })
                .collect();
            col(v, dt)
        }
        RollOp::Slope => f64col(k::regression(x, nu, k::Regression::Slope)),
        RollOp::Resi => f64col(k::regression(x, nu, k::Regression::Resi)),
        // Qlib's blanking of constant windows is a separate `Masked` node.
        RollOp::Rsquare => f64col(k::regression(x, nu, k::Regression::Rsquare)),
        _ => {
            let p = k::prep(x);
            let v = match op {
                RollOp::Mean => k::mean(&p, nu),
                RollOp::Sum => k::sum(&p, nu),
                RollOp::Std => k::std(&p, nu),
                RollOp::Var => k::var(&p, nu),
                RollOp::Skew => k::skew(&p, nu),
                RollOp::Kurt => k::kurt(&p, nu),
                RollOp::Max => k::extreme(&p, nu, true),
                RollOp::Min => k::extreme(&p, nu, false),
                RollOp::Med => k::median(&p, nu),
                RollOp::Mad => k::apply(&p, nu, k::mad_of),
                RollOp::Rank => k::rank(&p, nu),
                RollOp::IdxMax => k::apply(&p, nu, |w| (k::arg_extreme(w, true) + 1) as f64),
                RollOp::IdxMin => k::apply(&p, nu, |w| (k::arg_extreme(w, false) + 1) as f64),
                RollOp::Wma => k::apply(&p, nu, k::wma_of),
                RollOp::Count => k::count(&p, nu),
                RollOp::Ema => match w {
                    Window::Alpha(alpha) => k::ewm_mean(&p, alpha),
                    Window::Days(0) => k::apply(&p, 0, k::ema_expanding_of),
                    Window::Days(d) => k::ewm_mean(&p, 2.0 / (d as f64 + 1.0)),
                },
                RollOp::Ref | RollOp::Delta | RollOp::Slope | RollOp::Resi | RollOp::Rsquare => {
                    unreachable!("handled above")
                }
            };
            f64col(v)
        }
    }
}
