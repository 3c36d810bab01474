//! Operator semantics on hand-made series, with expected values worked out by hand from
//! Qlib's definitions (pandas `rolling(N, min_periods=1)`, numpy NaN rules, Qlib's Cython
//! regression).

use qtask_data::Program;

const NAN: f64 = f64::NAN;

/// Evaluates one expression over `$x` (and `$y`) given as f32 values.
fn eval(expr: &str, x: &[f64], y: Option<&[f64]>) -> Vec<f64> {
    let program = Program::compile(&[("out".into(), expr.into())]).unwrap();
    let fields: Vec<Option<Vec<f64>>> = program
        .fields()
        .iter()
        .map(|f| match f.as_str() {
            "x" => Some(x.to_vec()),
            "y" => Some(y.expect("expression uses $y").to_vec()),
            other => panic!("unexpected field {other}"),
        })
        .collect();
    program.eval(&fields, x.len())[0]
        .iter()
        .map(|&v| v as f64)
        .collect()
}

fn assert_close(got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        if w.is_nan() {
            assert!(g.is_nan(), "[{i}] got {g}, want NaN ({got:?})");
        } else if w.is_infinite() {
            assert_eq!(g, w, "[{i}] ({got:?})");
        } else {
            assert!(
                (g - w).abs() <= 1e-5 * w.abs().max(1.0),
                "[{i}] got {g}, want {w} ({got:?})"
            );
        }
    }
}

#[test]
fn window_longer_than_data_uses_what_there_is() {
    let x = [1.0, 2.0, 3.0];
    assert_close(&eval("Mean($x, 10)", &x, None), &[1.0, 1.5, 2.0]);
    assert_close(&eval("Sum($x, 10)", &x, None), &[1.0, 3.0, 6.0]);
    // Sample std needs two values.
    assert_close(
        &eval("Std($x, 10)", &x, None),
        &[NAN, std::f64::consts::FRAC_1_SQRT_2, 1.0],
    );
    assert_close(&eval("Max($x, 10)", &x, None), &[1.0, 2.0, 3.0]);
    assert_close(&eval("IdxMin($x, 10)", &x, None), &[1.0, 1.0, 1.0]);
    assert_close(&eval("Count($x, 10)", &x, None), &[1.0, 2.0, 3.0]);
}

#[test]
fn all_missing_windows_give_nan() {
    let x = [1.0, NAN, NAN, 4.0];
    assert_close(&eval("Mean($x, 2)", &x, None), &[1.0, 1.0, NAN, 4.0]);
    assert_close(&eval("Sum($x, 2)", &x, None), &[1.0, 1.0, NAN, 4.0]);
    assert_close(&eval("Max($x, 2)", &x, None), &[1.0, 1.0, NAN, 4.0]);
    assert_close(&eval("Med($x, 2)", &x, None), &[1.0, 1.0, NAN, 4.0]);
    assert_close(&eval("Count($x, 2)", &x, None), &[1.0, 1.0, 0.0, 1.0]);
    // Today's value missing: no rank.
    assert_close(&eval("Rank($x, 2)", &x, None), &[1.0, NAN, NAN, 1.0]);
    // numpy's argmax points at the first NaN of the window.
    assert_close(&eval("IdxMax($x, 2)", &x, None), &[1.0, 2.0, NAN, 1.0]);
}

#[test]
fn zero_variance() {
    let x = [2.0, 2.0, 2.0, 2.0];
    assert_close(&eval("Std($x, 3)", &x, None), &[NAN, 0.0, 0.0, 0.0]);
    assert_close(&eval("Var($x, 3)", &x, None), &[NAN, 0.0, 0.0, 0.0]);
    assert_close(&eval("Slope($x, 3)", &x, None), &[NAN, 0.0, 0.0, 0.0]);
    // Qlib blanks R² and Corr where a side is constant.
    assert_close(&eval("Rsquare($x, 3)", &x, None), &[NAN, NAN, NAN, NAN]);
    let y = [1.0, 2.0, 3.0, 4.0];
    assert_close(
        &eval("Corr($x, $y, 3)", &x, Some(&y)),
        &[NAN, NAN, NAN, NAN],
    );
    assert_close(&eval("Skew($x, 3)", &x, None), &[NAN, NAN, 0.0, 0.0]);
}

#[test]
fn ties_in_rank_quantile_and_idxmax() {
    let x = [1.0, 2.0, 2.0];
    // Today's 2 shares ranks 2 and 3: average 2.5 of 3.
    assert_close(&eval("Rank($x, 3)", &x, None), &[1.0, 1.0, 2.5 / 3.0]);
    let q = [1.0, 2.0, 2.0, 3.0];
    assert_close(&eval("Quantile($x, 4, 0.5)", &q, None)[3..], &[2.0]);
    let q2 = [1.0, 2.0, 3.0, 4.0];
    assert_close(&eval("Quantile($x, 4, 0.8)", &q2, None)[3..], &[3.4]);
    // The first of equal maxima wins.
    let m = [5.0, 5.0, 1.0];
    assert_close(&eval("IdxMax($x, 3)", &m, None), &[1.0, 1.0, 1.0]);
    assert_close(&eval("IdxMin($x, 3)", &m, None), &[1.0, 1.0, 3.0]);
}

#[test]
fn ref_offsets() {
    let x = [1.0, 2.0, 3.0, 4.0];
    assert_close(&eval("Ref($x, -2)", &x, None), &[3.0, 4.0, NAN, NAN]);
    assert_close(&eval("Ref($x, 1)", &x, None), &[NAN, 1.0, 2.0, 3.0]);
    // Qlib: Ref(x, 0) is the first value of the series.
    assert_close(&eval("Ref($x, 0)", &x, None), &[1.0, 1.0, 1.0, 1.0]);
    assert_close(&eval("Delta($x, 2)", &x, None), &[NAN, NAN, 2.0, 2.0]);
    let p = Program::compile(&[("l".into(), "Ref($x, -2)/Ref($x, -1) - 1".into())]).unwrap();
    assert_eq!(p.extended_window(), (0, 2));
    let p = Program::compile(&[("m".into(), "Mean(Ref($x, 3), 5)".into())]).unwrap();
    assert_eq!(p.extended_window(), (7, 0));
}

#[test]
fn division_by_zero_and_infinities() {
    let x = [1.0, 0.0, -1.0, 2.0];
    let y = [0.0, 0.0, 0.0, 1.0];
    assert_close(
        &eval("$x/$y", &x, Some(&y)),
        &[f64::INFINITY, NAN, f64::NEG_INFINITY, 2.0],
    );
    // Rolling operators treat infinities as missing, as pandas does.
    assert_close(&eval("Mean($x/$y, 2)", &x, Some(&y)), &[NAN, NAN, NAN, 2.0]);
}

#[test]
fn comparisons_are_zero_one_and_false_on_nan() {
    let x = [1.0, 2.0, NAN, 1.0];
    assert_close(&eval("$x > Ref($x, 1)", &x, None), &[0.0, 1.0, 0.0, 0.0]);
    assert_close(
        &eval("Mean($x > Ref($x, 1), 2)", &x, None),
        &[0.0, 0.5, 0.5, 0.0],
    );
    assert_close(
        &eval("($x >= 1) & ($x < 2)", &x, None),
        &[1.0, 0.0, 0.0, 1.0],
    );
    assert_close(
        &eval("If($x > 1, $x, -$x)", &x, None),
        &[-1.0, 2.0, NAN, -1.0],
    );
    // Greater/Less propagate NaN like numpy's maximum/minimum.
    assert_close(&eval("Greater($x, 1.5)", &x, None), &[1.5, 2.0, NAN, 1.5]);
}

#[test]
fn regression_and_weighted_means() {
    let x = [1.0, 2.0, 4.0];
    assert_close(&eval("Slope($x, 3)", &x, None)[2..], &[1.5]);
    assert_close(&eval("Resi($x, 3)", &x, None)[2..], &[1.0 / 6.0]);
    assert_close(
        &eval("Rsquare($x, 3)", &x, None)[2..],
        &[9.0 / (2.0 * 42.0 / 9.0)],
    );
    // ewm(span=3): weights 1/4, 1/2, 1.
    assert_close(
        &eval("EMA($x, 3)", &[1.0, 2.0, 3.0], None),
        &[1.0, 5.0 / 3.0, 4.25 / 1.75],
    );
    // Qlib's WMA is nanmean(w * x) with w = (1, 2, 3) / 6.
    assert_close(
        &eval("WMA($x, 3)", &[1.0, 2.0, 3.0], None)[2..],
        &[14.0 / 18.0],
    );
    let y = [2.0, 4.0, 8.0];
    assert_close(&eval("Corr($x, $y, 3)", &x, Some(&y))[1..], &[1.0, 1.0]);
    assert_close(
        &eval("Cov($x, $y, 3)", &x, Some(&y))[2..],
        &[2.0 * 7.0 / 3.0],
    );
    assert_close(
        &eval("Mad($x, 3)", &x, None)[2..],
        &[(4.0 / 3.0 + 1.0 / 3.0 + 5.0 / 3.0) / 3.0],
    );
}

#[test]
fn common_subexpressions_are_computed_once() {
    let p = Program::compile(&[
        ("a".into(), "Mean($x, 5)/$x".into()),
        ("b".into(), "Mean($x, 5) + Mean($x,5)".into()),
    ])
    .unwrap();
    // $x, Mean($x, 5) (shared by both outputs, spacing aside), the division and the sum.
    assert_eq!(p.node_count(), 4);
}

#[test]
fn parse_errors_name_the_position() {
    let err = |e: &str| {
        Program::compile(&[("e".into(), e.into())])
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        err("$close +* 2"),
        "expression `$close +* 2`: expected a value, found `*` at position 8"
    );
    assert!(err("Foo($close)").contains("unknown operator `Foo` at position 0"));
    assert!(err("Mean($close)").contains("Mean takes 2 arguments (x, N), got 1"));
    assert!(err("Mean($close, 5").contains("expected `,` or `)`"));
    assert!(err("Mean($close, 2.5)").contains("window must be a whole number"));
    assert!(err("Quantile($close, 5, 2)").contains("q must be a number in [0, 1]"));
    assert!(err("$a > $b > $c").contains("chained comparison"));
    assert!(err("$close # 1").contains("unexpected character `#` at position 7"));
}

#[test]
fn what_qlib_cannot_compute_is_refused_with_the_position() {
    let err = |e: &str| {
        Program::compile(&[("e".into(), e.into())])
            .unwrap_err()
            .to_string()
    };
    // numpy's bitwise functions fail on numbers in Qlib.
    assert_eq!(
        err("Not($close)"),
        "expression `Not($close)`: Not needs a condition (e.g. `Not($close > $open)`), got \
         `$close` at position 0"
    );
    assert!(err("And($close, $open > 1)").contains("And (`&`) combines conditions"));
    assert!(err("$close > 1 | $open").contains("Or (`|`) combines conditions"));
    assert!(err("($close > 1) & 2").contains("got `2.0`"));
    assert!(err("($close > 1) / ($open > 1)").contains("Div of two conditions"));
    assert!(err("Sub($close > 1, $open > 1)").contains("Sub of two conditions"));
    // An expanding pair window and time resampling fail in Qlib too.
    assert!(err("Corr($close, $open, 0)").contains("Corr's window must be at least 1 day"));
    assert!(err("TResample($close, '1w', 'last')").contains("TResample needs a series indexed"));
    // Strings only where an operator takes one.
    assert!(err("Rolling($close, 5, 'rank')").contains("unsupported function 'rank'"));
    assert!(err("Mask($close, 5)").contains("needs a quoted string here"));
    assert!(err("Mean('SH600000', 5)").contains("takes no string here"));
    assert!(err("Mask($close, 'SH6 00')").contains("is not an instrument"));
    assert!(err("Mask($close, 'SH600000").contains("unterminated string"));
    assert!(err("P(ChangeInstrument('SH600000', $$roe_q))").contains("inside P()"));
    // Conditions combine, also through If and with 0/1 constants, as in Qlib.
    for ok in [
        "Not(If($close > 1, $open > 1, $high > 1))",
        "And($close > 1, 1)",
        "Rolling($close, 0.5, 'sum')",
    ] {
        Program::compile(&[("e".into(), ok.into())]).unwrap();
    }
}

#[test]
fn generic_rolling_is_the_named_operator() {
    let x = [1.0, 3.0, NAN, 2.0, 8.0];
    for (generic, named) in [
        ("Rolling($x, 3, 'mean')", "Mean($x, 3)"),
        ("Rolling($x, 0, 'max')", "Max($x, 0)"),
        ("Rolling($x, 3, 'median')", "Med($x, 3)"),
        ("Rolling($x, 0.5, 'min')", "EMA($x, 0.5)"),
    ] {
        assert_close(&eval(generic, &x, None), &eval(named, &x, None));
    }
    let p = Program::compile(&[
        ("a".into(), "Rolling($x, 3, 'std')".into()),
        ("b".into(), "Std($x, 3)".into()),
    ])
    .unwrap();
    assert_eq!(p.node_count(), 2, "one shared node for both spellings");
}

#[test]
fn other_instruments_are_inputs_of_their_own() {
    let p = Program::compile(&[
        (
            "a".into(),
            "$close / ChangeInstrument('sh000300', $close)".into(),
        ),
        // An inner Mask wins over the outer instrument, as in Qlib.
        (
            "b".into(),
            "ChangeInstrument('SH000300', Mask($open, 'SH600000') + $close)".into(),
        ),
    ])
    .unwrap();
    assert_eq!(p.fields(), &["close".to_string()]);
    assert_eq!(
        p.foreign_fields(),
        &[
            ("SH000300".to_string(), "close".to_string()),
            ("SH600000".to_string(), "open".to_string())
        ]
    );
    let own = [Some(vec![2.0, 4.0])];
    let foreign = [Some(vec![1.0, 2.0]), Some(vec![10.0, 20.0])];
    let out = p.eval_inputs(
        &qtask_data::expr::Inputs {
            fields: &own,
            foreign: &foreign,
            pits: &[],
        },
        2,
    );
    assert_eq!(out[0], vec![2.0, 2.0]);
    assert_eq!(out[1], vec![11.0, 22.0]);
}
