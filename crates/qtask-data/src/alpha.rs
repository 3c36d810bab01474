//! The feature lists of Qlib's Alpha158 and Alpha360 handlers (their default configs), and the
//! default label.

/// Qlib's default label: the return from tomorrow's close to the day after's.
pub const DEFAULT_LABEL: &str = "Ref($close, -2)/Ref($close, -1) - 1";
/// Name of the default label column.
pub const DEFAULT_LABEL_NAME: &str = "LABEL0";

/// Alpha158's 158 `(name, expression)` pairs, in Qlib's order and spelling.
pub fn alpha158() -> Vec<(String, String)> {
    let mut f: Vec<(String, String)> = Vec::new();
    let mut add = |n: String, e: String| f.push((n, e));
    let kbar = [
        ("KMID", "($close-$open)/$open"),
        ("KLEN", "($high-$low)/$open"),
        ("KMID2", "($close-$open)/($high-$low+1e-12)"),
        ("KUP", "($high-Greater($open, $close))/$open"),
        ("KUP2", "($high-Greater($open, $close))/($high-$low+1e-12)"),
        ("KLOW", "(Less($open, $close)-$low)/$open"),
        ("KLOW2", "(Less($open, $close)-$low)/($high-$low+1e-12)"),
        ("KSFT", "(2*$close-$high-$low)/$open"),
        ("KSFT2", "(2*$close-$high-$low)/($high-$low+1e-12)"),
    ];
    for (n, e) in kbar {
        add(n.into(), e.into());
    }
    for field in ["open", "high", "low", "vwap"] {
        add(
            format!("{}0", field.to_uppercase()),
            format!("${field}/$close"),
        );
    }
    let windows = [5, 10, 20, 30, 60];
    type Gen = fn(usize) -> String;
    let rolling: [(&str, Gen); 29] = [
        ("ROC", |d| format!("Ref($close, {d})/$close")),
        ("MA", |d| format!("Mean($close, {d})/$close")),
        ("STD", |d| format!("Std($close, {d})/$close")),
        ("BETA", |d| format!("Slope($close, {d})/$close")),
        ("RSQR", |d| format!("Rsquare($close, {d})")),
        ("RESI", |d| format!("Resi($close, {d})/$close")),
        ("MAX", |d| format!("Max($high, {d})/$close")),
        ("MIN", |d| format!("Min($low, {d})/$close")),
        ("QTLU", |d| format!("Quantile($close, {d}, 0.8)/$close")),
        ("QTLD", |d| format!("Quantile($close, {d}, 0.2)/$close")),
        ("RANK", |d| format!("Rank($close, {d})")),
        ("RSV", |d| {
            format!("($close-Min($low, {d}))/(Max($high, {d})-Min($low, {d})+1e-12)")
        }),
        ("IMAX", |d| format!("IdxMax($high, {d})/{d}")),
        ("IMIN", |d| format!("IdxMin($low, {d})/{d}")),
        ("IMXD", |d| {
            format!("(IdxMax($high, {d})-IdxMin($low, {d}))/{d}")
        }),
        ("CORR", |d| format!("Corr($close, Log($volume+1), {d})")),
        ("CORD", |d| {
            format!("Corr($close/Ref($close,1), Log($volume/Ref($volume, 1)+1), {d})")
        }),
        ("CNTP", |d| format!("Mean($close>Ref($close, 1), {d})")),
        ("CNTN", |d| format!("Mean($close<Ref($close, 1), {d})")),
        ("CNTD", |d| {
            format!("Mean($close>Ref($close, 1), {d})-Mean($close<Ref($close, 1), {d})")
        }),
        ("SUMP", |d| {
            format!(
                "Sum(Greater($close-Ref($close, 1), 0), {d})/(Sum(Abs($close-Ref($close, 1)), {d})+1e-12)"
            )
        }),
        ("SUMN", |d| {
            format!(
                "Sum(Greater(Ref($close, 1)-$close, 0), {d})/(Sum(Abs($close-Ref($close, 1)), {d})+1e-12)"
            )
        }),
        ("SUMD", |d| {
            format!(
                "(Sum(Greater($close-Ref($close, 1), 0), {d})-Sum(Greater(Ref($close, 1)-$close, 0), {d}))/(Sum(Abs($close-Ref($close, 1)), {d})+1e-12)"
            )
        }),
        ("VMA", |d| format!("Mean($volume, {d})/($volume+1e-12)")),
        ("VSTD", |d| format!("Std($volume, {d})/($volume+1e-12)")),
        ("WVMA", |d| {
            format!(
                "Std(Abs($close/Ref($close, 1)-1)*$volume, {d})/(Mean(Abs($close/Ref($close, 1)-1)*$volume, {d})+1e-12)"
            )
        }),
        ("VSUMP", |d| {
            format!(
                "Sum(Greater($volume-Ref($volume, 1), 0), {d})/(Sum(Abs($volume-Ref($volume, 1)), {d})+1e-12)"
            )
        }),
        ("VSUMN", |d| {
            format!(
                "Sum(Greater(Ref($volume, 1)-$volume, 0), {d})/(Sum(Abs($volume-Ref($volume, 1)), {d})+1e-12)"
            )
        }),
        ("VSUMD", |d| {
            format!(
                "(Sum(Greater($volume-Ref($volume, 1), 0), {d})-Sum(Greater(Ref($volume, 1)-$volume, 0), {d}))/(Sum(Abs($volume-Ref($volume, 1)), {d})+1e-12)"
            )
        }),
    ];
    for (name, gen_expr) in rolling {
        for d in windows {
            f.push((format!("{name}{d}"), gen_expr(d)));
        }
    }
    f
}

/// Alpha360's 360 `(name, expression)` pairs: the last 60 days of close, open, high, low and
/// vwap divided by today's close, and of volume divided by today's volume.
pub fn alpha360() -> Vec<(String, String)> {
    let mut f = Vec::with_capacity(360);
    for field in ["close", "open", "high", "low", "vwap"] {
        let up = field.to_uppercase();
        for i in (1..60).rev() {
            f.push((format!("{up}{i}"), format!("Ref(${field}, {i})/$close")));
        }
        f.push((format!("{up}0"), format!("${field}/$close")));
    }
    for i in (1..60).rev() {
        f.push((
            format!("VOLUME{i}"),
            format!("Ref($volume, {i})/($volume+1e-12)"),
        ));
    }
    f.push(("VOLUME0".into(), "$volume/($volume+1e-12)".into()));
    f
}

/// The `(name, expression)` pairs of a built-in handler (`Alpha158` or `Alpha360`, any case),
/// or of the given expressions (each named by itself); `with_label` adds [`DEFAULT_LABEL`].
pub fn requested_fields(
    handler: Option<&str>,
    exprs: &[String],
    with_label: bool,
) -> crate::Result<Vec<(String, String)>> {
    let mut fields = match handler {
        Some(h) if h.eq_ignore_ascii_case("alpha158") => alpha158(),
        Some(h) if h.eq_ignore_ascii_case("alpha360") => alpha360(),
        Some(h) => {
            return Err(crate::DataError::Invalid(format!(
                "unknown handler `{h}` (Alpha158 or Alpha360)"
            )));
        }
        None => exprs.iter().map(|e| (e.clone(), e.clone())).collect(),
    };
    if with_label {
        fields.push((DEFAULT_LABEL_NAME.to_string(), DEFAULT_LABEL.to_string()));
    }
    Ok(fields)
}
