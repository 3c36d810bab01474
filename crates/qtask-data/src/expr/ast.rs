//! The expression tree and its operators, named as in Qlib.

use std::fmt;

/// Element-wise operators of one operand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnaryOp {
    /// `-x`.
    Neg,
    /// `Abs(x)`.
    Abs,
    /// `Log(x)` (natural logarithm).
    Log,
    /// `Sign(x)`.
    Sign,
    /// `Not(x)`: 1 where x is 0, else 0.
    Not,
}

/// Element-wise operators of two operands (infix or Qlib's named form).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    /// `+`, `Add`.
    Add,
    /// `-`, `Sub`.
    Sub,
    /// `*`, `Mul`.
    Mul,
    /// `/`, `Div`.
    Div,
    /// `Power(x, y)`.
    Power,
    /// `Greater(x, y)`: element-wise maximum (NaN if either is NaN).
    Greater,
    /// `Less(x, y)`: element-wise minimum (NaN if either is NaN).
    Less,
    /// `>`, `Gt`.
    Gt,
    /// `>=`, `Ge`.
    Ge,
    /// `<`, `Lt`.
    Lt,
    /// `<=`, `Le`.
    Le,
    /// `==`, `Eq`.
    Eq,
    /// `!=`, `Ne`.
    Ne,
    /// `&`, `And`.
    And,
    /// `|`, `Or`.
    Or,
}

impl BinaryOp {
    /// Whether the result is a 0/1 condition rather than a number.
    pub fn is_boolean(self) -> bool {
        matches!(
            self,
            BinaryOp::Gt
                | BinaryOp::Ge
                | BinaryOp::Lt
                | BinaryOp::Le
                | BinaryOp::Eq
                | BinaryOp::Ne
                | BinaryOp::And
                | BinaryOp::Or
        )
    }

    fn name(self) -> &'static str {
        match self {
            BinaryOp::Add => "Add",
            BinaryOp::Sub => "Sub",
            BinaryOp::Mul => "Mul",
            BinaryOp::Div => "Div",
            BinaryOp::Power => "Power",
            BinaryOp::Greater => "Greater",
            BinaryOp::Less => "Less",
            BinaryOp::Gt => "Gt",
            BinaryOp::Ge => "Ge",
            BinaryOp::Lt => "Lt",
            BinaryOp::Le => "Le",
            BinaryOp::Eq => "Eq",
            BinaryOp::Ne => "Ne",
            BinaryOp::And => "And",
            BinaryOp::Or => "Or",
        }
    }
}

/// Rolling-window operators over one series: `Op(x, N)`; `N = 0` means expanding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RollOp {
    /// `Ref(x, N)`: the value N days earlier (N < 0 looks ahead; N = 0 is the first value).
    Ref,
    /// `Mean(x, N)`.
    Mean,
    /// `Sum(x, N)`.
    Sum,
    /// `Std(x, N)` (sample, ddof = 1).
    Std,
    /// `Var(x, N)` (sample, ddof = 1).
    Var,
    /// `Skew(x, N)`.
    Skew,
    /// `Kurt(x, N)` (excess kurtosis).
    Kurt,
    /// `Max(x, N)`.
    Max,
    /// `Min(x, N)`.
    Min,
    /// `Med(x, N)`.
    Med,
    /// `Mad(x, N)`: mean absolute deviation.
    Mad,
    /// `Rank(x, N)`: percentile of today's value in its window.
    Rank,
    /// `IdxMax(x, N)`: 1-based position of the maximum in the window.
    IdxMax,
    /// `IdxMin(x, N)`: 1-based position of the minimum in the window.
    IdxMin,
    /// `Slope(x, N)`: least-squares slope against time.
    Slope,
    /// `Rsquare(x, N)`: R² of the regression against time.
    Rsquare,
    /// `Resi(x, N)`: today's residual of the regression against time.
    Resi,
    /// `WMA(x, N)`: Qlib's linearly weighted mean.
    Wma,
    /// `EMA(x, N)`: exponential mean (span N; 0 < N < 1 is alpha).
    Ema,
    /// `Delta(x, N)`: x minus its value N days earlier.
    Delta,
    /// `Count(x, N)`: number of non-missing values.
    Count,
}

impl RollOp {
    /// Qlib's name of the operator.
    pub fn name(self) -> &'static str {
        match self {
            RollOp::Ref => "Ref",
            RollOp::Mean => "Mean",
            RollOp::Sum => "Sum",
            RollOp::Std => "Std",
            RollOp::Var => "Var",
            RollOp::Skew => "Skew",
            RollOp::Kurt => "Kurt",
            RollOp::Max => "Max",
            RollOp::Min => "Min",
            RollOp::Med => "Med",
            RollOp::Mad => "Mad",
            RollOp::Rank => "Rank",
            RollOp::IdxMax => "IdxMax",
            RollOp::IdxMin => "IdxMin",
            RollOp::Slope => "Slope",
            RollOp::Rsquare => "Rsquare",
            RollOp::Resi => "Resi",
            RollOp::Wma => "WMA",
            RollOp::Ema => "EMA",
            RollOp::Delta => "Delta",
            RollOp::Count => "Count",
        }
    }
}

/// Rolling-window operators over two series: `Op(x, y, N)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PairRollOp {
    /// `Corr(x, y, N)`.
    Corr,
    /// `Cov(x, y, N)`.
    Cov,
}

/// A window length: whole days, or an EMA smoothing factor in (0, 1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Window {
    /// N days (0 = expanding; negative only for `Ref`).
    Days(i64),
    /// EMA's alpha.
    Alpha(f64),
}

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A number.
    Const(f64),
    /// `$field`, read from `<field>.day.bin`.
    Field(String),
    /// An element-wise function of one operand.
    Unary(UnaryOp, Box<Expr>),
    /// An element-wise function of two operands.
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    /// A rolling operator.
    Rolling(RollOp, Box<Expr>, Window),
    /// `Quantile(x, N, q)`.
    Quantile(Box<Expr>, i64, f64),
    /// A two-series rolling operator.
    PairRolling(PairRollOp, Box<Expr>, Box<Expr>, i64),
    /// `If(cond, a, b)`: a where cond is non-zero (or NaN), else b.
    If(Box<Expr>, Box<Expr>, Box<Expr>),
    /// `$$field`: a point-in-time financial field, only valid inside `P` or `PRef`.
    PitField(String),
    /// `P(x)` (period `None`) or `PRef(x, period)`: evaluates `x` over the period series
    /// visible on each trading day and yields a daily value.
    Pit(Box<Expr>, Option<u32>),
    /// `ChangeInstrument('SYMBOL', x)` or `Mask(x, 'SYMBOL')`: `x` computed on another
    /// instrument's data (upper-case symbol), on the same days.
    OnInstrument(String, Box<Expr>),
}

impl Expr {
    /// How many days before and after the requested range this expression reads
    /// (Qlib's `get_extended_window_size`).
    pub fn extended_window(&self) -> (usize, usize) {
        match self {
            // P collapses its period series to one value per day: no daily look-back.
            Expr::Const(_) | Expr::Field(_) | Expr::PitField(_) | Expr::Pit(..) => (0, 0),
            Expr::Unary(_, x) | Expr::OnInstrument(_, x) => x.extended_window(),
            Expr::Binary(_, a, b) | Expr::PairRolling(_, a, b, 0) => {
                max2(a.extended_window(), b.extended_window())
            }
            Expr::PairRolling(_, a, b, n) => {
                let (l, r) = max2(a.extended_window(), b.extended_window());
                (l + (*n as usize).saturating_sub(1), r)
            }
            Expr::If(c, a, b) => max2(
                c.extended_window(),
                max2(a.extended_window(), b.extended_window()),
            ),
            Expr::Quantile(x, n, _) => {
                let (l, r) = x.extended_window();
                (l + (*n as usize).saturating_sub(1), r)
            }
            Expr::Rolling(op, x, w) => {
                let (l, r) = x.extended_window();
                match (op, w) {
                    (RollOp::Ref, Window::Days(n)) => {
                        if *n >= 0 {
                            (l + *n as usize, r)
                        } else {
                            (l, r + n.unsigned_abs() as usize)
                        }
                    }
                    (_, Window::Days(n)) => (l + (*n as usize).saturating_sub(1), r),
                    (_, Window::Alpha(a)) => {
                        let size = ((1e-6f64).ln() / (1.0 - a).ln()) as usize;
                        (l + size.saturating_sub(1), r)
                    }
                }
            }
        }
    }

    /// Collects the `$fields` the expression reads from the instrument being computed.
    pub fn fields(&self, out: &mut Vec<String>) {
        match self {
            // PIT fields live in `financial/`, not in `.day.bin` files; another instrument's
            // fields are `foreign_fields`.
            Expr::Const(_) | Expr::PitField(_) | Expr::Pit(..) | Expr::OnInstrument(..) => {}
            Expr::Field(f) => {
                if !out.contains(f) {
                    out.push(f.clone());
                }
            }
            Expr::Unary(_, x) | Expr::Rolling(_, x, _) | Expr::Quantile(x, _, _) => x.fields(out),
            Expr::Binary(_, a, b) | Expr::PairRolling(_, a, b, _) => {
                a.fields(out);
                b.fields(out);
            }
            Expr::If(c, a, b) => {
                c.fields(out);
                a.fields(out);
                b.fields(out);
            }
        }
    }

    /// The direct subexpressions, in argument order.
    pub fn children(&self) -> Vec<&Expr> {
        match self {
            Expr::Const(_) | Expr::Field(_) | Expr::PitField(_) => vec![],
            Expr::Unary(_, x)
            | Expr::Rolling(_, x, _)
            | Expr::Quantile(x, _, _)
            | Expr::Pit(x, _)
            | Expr::OnInstrument(_, x) => vec![x],
            Expr::Binary(_, a, b) | Expr::PairRolling(_, a, b, _) => vec![a, b],
            Expr::If(c, a, b) => vec![c, a, b],
        }
    }

    /// Whether the value is a numpy boolean array in Qlib (a comparison, `And`, `Or`, `Not`,
    /// or `If` choosing between two such): what `Not`, `And` and `Or` accept, since Qlib
    /// computes them with numpy's bitwise functions, which fail on numbers.
    pub fn is_condition(&self) -> bool {
        match self {
            Expr::Binary(op, ..) => op.is_boolean(),
            Expr::Unary(UnaryOp::Not, _) => true,
            Expr::If(_, a, b) => a.is_condition() && b.is_condition(),
            _ => false,
        }
    }
}

fn max2(a: (usize, usize), b: (usize, usize)) -> (usize, usize) {
    (a.0.max(b.0), a.1.max(b.1))
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Window::Days(n) => write!(f, "{n}"),
            Window::Alpha(a) => write!(f, "{a}"),
        }
    }
}

/// A canonical text of the expression, used as the key for computing a subexpression once.
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Const(c) => write!(f, "{c:?}"),
            Expr::Field(name) => write!(f, "${name}"),
            Expr::Unary(op, x) => {
                let name = match op {
                    UnaryOp::Neg => "Neg",
                    UnaryOp::Abs => "Abs",
                    UnaryOp::Log => "Log",
                    UnaryOp::Sign => "Sign",
                    UnaryOp::Not => "Not",
                };
                write!(f, "{name}({x})")
            }
            Expr::Binary(op, a, b) => write!(f, "{}({a},{b})", op.name()),
            Expr::Rolling(op, x, w) => write!(f, "{}({x},{w})", op.name()),
            Expr::Quantile(x, n, q) => write!(f, "Quantile({x},{n},{q:?})"),
            Expr::PairRolling(op, a, b, n) => {
                let name = match op {
                    PairRollOp::Corr => "Corr",
                    PairRollOp::Cov => "Cov",
                };
                write!(f, "{name}({a},{b},{n})")
            }
            Expr::If(c, a, b) => write!(f, "If({c},{a},{b})"),
            Expr::PitField(name) => write!(f, "$${name}"),
            Expr::Pit(x, None) => write!(f, "P({x})"),
            Expr::Pit(x, Some(p)) => write!(f, "PRef({x},{p})"),
            Expr::OnInstrument(s, x) => write!(f, "ChangeInstrument('{s}',{x})"),
        }
    }
}
