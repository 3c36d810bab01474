//! Rolling and average ensembles, groups and single-key reduction, with expected values
//! derived by hand from Qlib's definitions (spec section 7).

mod common;

use common::{assert_rows, table};
use qtask_collect::{
    AverageEnsemble, CollectError, CollectMap, Collected, Ensemble, Key, Process, RollingEnsemble,
    RollingGroup, SingleKeyEnsemble, average_ensemble, rolling_ensemble,
};

#[test]
fn rolling_orders_by_first_datetime_stably_and_later_piece_wins() {
    // Given order: late, early1, early2. Sorted by first datetime (stable):
    // early1 (01-02), early2 (01-02), late (01-06).
    let late = table(&[
        ("2020-01-06", "A", 30.0),
        ("2020-01-03", "A", 31.0),
        ("2020-01-07", "B", 32.0),
    ]);
    let early1 = table(&[
        ("2020-01-02", "A", 10.0),
        ("2020-01-03", "A", 11.0),
        ("2020-01-03", "B", 12.0),
    ]);
    let early2 = table(&[("2020-01-03", "B", 20.0), ("2020-01-02", "B", 21.0)]);
    // late's first datetime is 01-03 (min over rows, not the first row), so the order is
    // early1 (01-02), early2 (01-02), late (01-03): (01-03, A) -> late's 31, (01-03, B) -> early2's 20.
    let out =
        rolling_ensemble(&[("late", &late), ("early1", &early1), ("early2", &early2)]).unwrap();
    assert_rows(
        &out,
        &[
            ("2020-01-02", "A", 10.0),
            ("2020-01-02", "B", 21.0),
            ("2020-01-03", "A", 31.0),
            ("2020-01-03", "B", 20.0),
            ("2020-01-06", "A", 30.0),
            ("2020-01-07", "B", 32.0),
        ],
        0.0,
    );
    assert_eq!(out.column_names(), ["score"]);
}

#[test]
fn rolling_ties_on_first_datetime_keep_input_order() {
    let a = table(&[("2020-01-02", "A", 1.0)]);
    let b = table(&[("2020-01-02", "A", 2.0)]);
    let ab = rolling_ensemble(&[("a", &a), ("b", &b)]).unwrap();
    assert_rows(&ab, &[("2020-01-02", "A", 2.0)], 0.0);
    let ba = rolling_ensemble(&[("b", &b), ("a", &a)]).unwrap();
    assert_rows(&ba, &[("2020-01-02", "A", 1.0)], 0.0);
}

#[test]
fn rolling_keeps_the_last_of_duplicates_within_one_piece() {
    let a = table(&[
        ("2020-01-02", "A", 1.0),
        ("2020-01-02", "A", 2.0),
        ("2020-01-01", "A", 0.0),
    ]);
    let out = rolling_ensemble(&[("a", &a)]).unwrap();
    assert_rows(
        &out,
        &[("2020-01-01", "A", 0.0), ("2020-01-02", "A", 2.0)],
        0.0,
    );
}

#[test]
fn rolling_with_mismatched_columns_is_an_error() {
    let a = table(&[("2020-01-02", "A", 1.0)]);
    let mut b = table(&[("2020-01-03", "A", 2.0)]);
    b.set_column_names(["label"]).unwrap();
    let err = rolling_ensemble(&[("a.parquet", &a), ("b.parquet", &b)]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "b.parquet has columns [label] but a.parquet has [score]"
    );
    assert!(matches!(rolling_ensemble(&[]), Err(CollectError::Empty)));
}

#[test]
fn average_zscores_per_datetime_with_sample_std_and_skips_nan() {
    // Day 1: p1 = X1 Y3 Z5 -> mean 3, std sqrt((4+0+4)/2) = 2 -> z -1, 0, 1.
    //        p2 = X2 Y4 (Z missing) -> mean 3, std sqrt((1+1)/1) -> z -1/sqrt2, 1/sqrt2, NaN.
    // Day 2: p1 has only X, p2 only Y (X is NaN): single values -> std NaN -> all NaN.
    let p1 = table(&[
        ("2020-01-02", "X", 1.0),
        ("2020-01-02", "Y", 3.0),
        ("2020-01-02", "Z", 5.0),
        ("2020-01-03", "X", 2.0),
    ]);
    let p2 = table(&[
        ("2020-01-03", "Y", 4.0),
        ("2020-01-03", "X", f64::NAN),
        ("2020-01-02", "Y", 4.0),
        ("2020-01-02", "X", 2.0),
    ]);
    let out = average_ensemble(&[("p1", &p1), ("p2", &p2)]).unwrap();
    let r = 1.0 / 2f64.sqrt();
    assert_rows(
        &out,
        &[
            ("2020-01-02", "X", (-1.0 - r) / 2.0),
            ("2020-01-02", "Y", (0.0 + r) / 2.0),
            ("2020-01-02", "Z", 1.0),
            ("2020-01-03", "X", f64::NAN),
            ("2020-01-03", "Y", f64::NAN),
        ],
        1e-15,
    );
    assert_eq!(out.column_names(), ["score"]);
}

#[test]
fn average_constant_column_gives_nan_not_infinity() {
    // p1 is constant on the day: (x - mean) / 0 = 0 / 0 = NaN, so rows take p2's z only.
    let p1 = table(&[("2020-01-02", "A", 0.5), ("2020-01-02", "B", 0.5)]);
    let p2 = table(&[("2020-01-02", "A", 1.0), ("2020-01-02", "B", 3.0)]);
    let out = average_ensemble(&[("p1", &p1), ("p2", &p2)]).unwrap();
    let r = 1.0 / 2f64.sqrt();
    assert_rows(
        &out,
        &[("2020-01-02", "A", -r), ("2020-01-02", "B", r)],
        1e-15,
    );
}

#[test]
fn average_uses_every_column_of_every_piece() {
    // One piece with two columns is the same as two pieces with one column each.
    let mut b = qtask_table::TableBuilder::new(["s1", "s2"]);
    let d = chrono::NaiveDate::from_ymd_opt(2020, 1, 2)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap();
    b.push(d, "A", &[1.0, 10.0]).unwrap();
    b.push(d, "B", &[2.0, 30.0]).unwrap();
    b.push(d, "C", &[3.0, 20.0]).unwrap();
    let two = b.finish();
    // s1: mean 2, std 1 -> -1, 0, 1. s2: mean 20, std 10 -> -1, 1, 0. Means: -1, 0.5, 0.5.
    let out = average_ensemble(&[("two", &two)]).unwrap();
    assert_rows(
        &out,
        &[
            ("2020-01-02", "A", -1.0),
            ("2020-01-02", "B", 0.5),
            ("2020-01-02", "C", 0.5),
        ],
        0.0,
    );
}

#[test]
fn average_rejects_duplicate_keys_in_a_piece() {
    let p = table(&[("2020-01-02", "A", 1.0), ("2020-01-02", "A", 2.0)]);
    let err = average_ensemble(&[("p.parquet", &p)]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "p.parquet has (2020-01-02 00:00:00, A) more than once; an average ensemble needs unique keys"
    );
}

#[test]
fn nested_inputs_are_flattened_in_insertion_order() {
    let t1 = table(&[("2020-01-02", "A", 1.0), ("2020-01-02", "B", 2.0)]);
    let t2 = table(&[("2020-01-02", "A", 5.0), ("2020-01-02", "B", 3.0)]);
    let t3 = table(&[("2020-01-03", "A", 7.0)]);
    let mut inner = CollectMap::new();
    inner.insert(Key::str("x"), t1.clone());
    inner.insert(Key::str("y"), t2.clone());
    let mut outer = CollectMap::new();
    outer.insert(Key::str("a"), inner);
    outer.insert(Key::str("b"), t3.clone());

    // Average: day 1 has t1 (z -r, r) and t2 (z r, -r): both rows average to 0.
    let out = AverageEnsemble.ensemble(outer.clone()).unwrap();
    let out = out.as_table().unwrap();
    assert_rows(
        out,
        &[
            ("2020-01-02", "A", 0.0),
            ("2020-01-02", "B", 0.0),
            ("2020-01-03", "A", f64::NAN),
        ],
        1e-15,
    );

    // Rolling over the same nesting: t1 and t2 start together, t2 (later) wins.
    let out = RollingEnsemble.ensemble(outer).unwrap();
    assert_rows(
        out.as_table().unwrap(),
        &[
            ("2020-01-02", "A", 5.0),
            ("2020-01-02", "B", 3.0),
            ("2020-01-03", "A", 7.0),
        ],
        0.0,
    );
}

fn seg(a: &str, b: &str) -> Key {
    Key::tuple([Key::str(a), Key::str(b)])
}

#[test]
fn rolling_group_groups_by_all_but_the_last_key_element() {
    let mut m = CollectMap::new();
    m.insert(
        Key::tuple([Key::str("LGB"), seg("2020-01-03", "2020-01-03")]),
        table(&[("2020-01-03", "A", 2.0)]),
    );
    m.insert(
        Key::tuple([Key::str("Linear"), seg("2020-01-02", "2020-01-02")]),
        table(&[("2020-01-02", "A", 9.0)]),
    );
    m.insert(
        Key::tuple([Key::str("LGB"), seg("2020-01-02", "2020-01-02")]),
        table(&[("2020-01-02", "A", 1.0)]),
    );
    let out = RollingGroup::new().process(Collected::Map(m)).unwrap();
    let out = out.as_map().unwrap();
    let keys: Vec<String> = out.keys().map(|k| k.to_string()).collect();
    assert_eq!(keys, ["('LGB',)", "('Linear',)"]);
    let lgb = out
        .get(&Key::tuple([Key::str("LGB")]))
        .unwrap()
        .as_table()
        .unwrap();
    assert_rows(
        lgb,
        &[("2020-01-02", "A", 1.0), ("2020-01-03", "A", 2.0)],
        0.0,
    );
}

#[test]
fn rolling_group_on_non_tuple_keys_is_a_clear_error() {
    let mut m = CollectMap::new();
    m.insert(Key::str("run-1"), table(&[("2020-01-02", "A", 1.0)]));
    let err = RollingGroup::new().process(Collected::Map(m)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "RollingGroup needs tuple keys (model, segment, ...), got 'run-1'"
    );
}

#[test]
fn single_key_ensemble_unwraps_one_entry_maps_recursively() {
    let t = table(&[("2020-01-02", "A", 1.0)]);
    let mut inner = CollectMap::new();
    inner.insert(Key::tuple([Key::str("LGB")]), t.clone());
    let mut two = CollectMap::new();
    two.insert(Key::str("x"), t.clone());
    two.insert(Key::str("y"), t.clone());
    let mut outer = CollectMap::new();
    outer.insert(Key::str("pred"), inner);
    outer.insert(Key::str("label"), two);
    let out = SingleKeyEnsemble.apply(Collected::Map(outer));
    let out = out.as_map().unwrap();
    assert!(out.get(&Key::str("pred")).unwrap().as_table().is_some());
    assert_eq!(
        out.get(&Key::str("label")).unwrap().as_map().unwrap().len(),
        2
    );

    let mut only = CollectMap::new();
    only.insert(Key::str("pred"), t);
    assert!(
        SingleKeyEnsemble
            .apply(Collected::Map(only))
            .as_table()
            .is_some()
    );
}

#[test]
fn key_repr_matches_python() {
    assert_eq!(Key::tuple([Key::str("a")]).to_string(), "('a',)");
    assert_eq!(seg("x", "y").to_string(), "('x', 'y')");
    assert_eq!(Key::str("it's").to_string(), "'it\\'s'");
    let k = Key::from_json(&serde_json::json!(["LGBModel", ["2017-01-01", null]]));
    assert_eq!(k.to_string(), "('LGBModel', ('2017-01-01', 'null'))");
}
