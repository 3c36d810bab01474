//! PIT data against Qlib's documented `roewa_q` example for SH600519 (fixtures produced by
//! Qlib's `dump_pit.py` and `D.features`): files byte for byte, then expression values.

use std::path::{Path, PathBuf};

use qtask_data::pit::{NA_INDEX, import_pit_csv, pit_paths, read_pit};
use qtask_data::{Instruments, NaiveDate, Program, Provider, Query, compute};
use serde_json::Value;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/pit")
}

fn json(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join(name)).unwrap()).unwrap()
}

/// A provider folder holding the fixture calendar and the imported fixture CSV.
fn provider_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("calendars")).unwrap();
    std::fs::copy(
        fixtures().join("calendars/day.txt"),
        dir.path().join("calendars/day.txt"),
    )
    .unwrap();
    import_pit_csv(
        &fixtures().join("roewa_q_input.csv"),
        dir.path(),
        &|_, _| {},
    )
    .unwrap();
    dir
}

fn u32s(b: &[u8]) -> Vec<u32> {
    b.chunks_exact(4)
        .map(|c| u32::from_ne_bytes(c.try_into().unwrap()))
        .collect()
}

#[test]
fn import_writes_qlib_index_records_and_bytes() {
    let dir = provider_dir();
    let want = json("expected_roewa_q_files.json");
    let (data, index) = pit_paths(dir.path(), "SH600519", "roewa_q").unwrap();
    assert!(data.ends_with("financial/sh600519/roewa_q.data"));
    let index_bytes = std::fs::read(&index).unwrap();
    let idx = u32s(&index_bytes);
    assert_eq!(u64::from(idx[0]), want["first_year"].as_u64().unwrap());
    let want_entries: Vec<u64> = want["index_entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(
        idx[1..].iter().map(|&v| u64::from(v)).collect::<Vec<_>>(),
        want_entries
    );

    let bytes = std::fs::read(&data).unwrap();
    let rows = want["data_rows"].as_array().unwrap();
    assert_eq!(bytes.len(), rows.len() * 20);
    for (i, (rec, row)) in bytes.chunks_exact(20).zip(rows).enumerate() {
        let r = row.as_array().unwrap();
        let u = |k: usize| u64::from(u32::from_ne_bytes(rec[k..k + 4].try_into().unwrap()));
        let value = f64::from_ne_bytes(rec[8..16].try_into().unwrap());
        assert_eq!(u(0), r[0].as_u64().unwrap(), "record {i} date");
        assert_eq!(u(4), r[1].as_u64().unwrap(), "record {i} period");
        // serde_json's float parsing may be one ulp off; the stored value is an f32 widened
        // to f64, so rounding the JSON number through f32 recovers it bit for bit.
        let json_value = r[2].as_f64().unwrap();
        assert_eq!(value, f64::from(json_value as f32), "record {i} value");
        assert!(
            (value - json_value).abs() <= f64::EPSILON * json_value.abs(),
            "record {i}"
        );
        assert_eq!(u(16), r[3].as_u64().unwrap(), "record {i} next");
    }
    let hex: String = bytes[..40].iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hex, want["first_40_bytes_hex"].as_str().unwrap());
}

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn query(
    root: &Path,
    exprs: &[&str],
    start: &str,
    end: &str,
    symbols: &[&str],
) -> qtask_data::Frame {
    let provider = Provider::open(root).unwrap();
    let named: Vec<(String, String)> = exprs
        .iter()
        .map(|e| (e.to_string(), e.to_string()))
        .collect();
    let program = Program::compile(&named).unwrap();
    let q = Query {
        instruments: Instruments::List(symbols.iter().map(|s| s.to_string()).collect()),
        start: Some(d(start)),
        end: Some(d(end)),
    };
    compute(&provider, &program, &q, &|| {}).unwrap()
}

fn close(a: f32, b: Option<f64>) -> bool {
    match b {
        None => a.is_nan(),
        Some(b) => (f64::from(a) - b).abs() <= 1e-6,
    }
}

#[test]
fn expressions_match_qlib_on_the_fixture_calendar() {
    let dir = provider_dir();
    let want = json("expected_queries.json");
    let columns: Vec<&str> = want["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let rows = want["rows"].as_array().unwrap();
    let first = rows[0][0].as_str().unwrap();
    let last = rows[rows.len() - 1][0].as_str().unwrap();
    let frame = query(dir.path(), &columns, first, last, &["SH600519"]);
    assert_eq!(frame.len(), rows.len());
    for (r, row) in rows.iter().enumerate() {
        let row = row.as_array().unwrap();
        assert_eq!(frame.datetime[r], d(row[0].as_str().unwrap()));
        for (c, name) in columns.iter().enumerate() {
            let got = frame.data[c][r];
            let expected = row[c + 1].as_f64();
            assert!(
                close(got, expected),
                "{name} on {}: got {got}, want {expected:?}",
                row[0]
            );
        }
    }
}

#[test]
fn publication_dates_saturdays_and_revisions() {
    let dir = provider_dir();
    let f = query(
        dir.path(),
        &["P($$roewa_q)", "PRef($$roewa_q, 201104)"],
        "2012-03-22",
        "2012-04-12",
        &["SH600519"],
    );
    let at = |day: &str, c: usize| {
        let r = f.datetime.iter().position(|&x| x == d(day)).unwrap();
        f.data[c][r]
    };
    // Published 2012-03-23 (a trading day): visible that same day, not the day before.
    assert!(close(at("2012-03-22", 0), Some(0.318919)));
    assert!(close(at("2012-03-23", 0), Some(0.4039)));
    // The 2012-04-11 revision of 201104 changes the value on its own date.
    assert!(close(at("2012-04-10", 1), Some(0.4039)));
    assert!(close(at("2012-04-11", 1), Some(0.403925)));

    // 2008-03-01 was a Saturday: the first 200704 value appears on Monday 2008-03-03.
    let f = query(
        dir.path(),
        &["P($$roewa_q)"],
        "2008-02-29",
        "2008-03-03",
        &["SH600519"],
    );
    assert_eq!(f.datetime, vec![d("2008-02-29"), d("2008-03-03")]);
    assert!(close(f.data[0][0], Some(0.245863)));
    assert!(close(f.data[0][1], Some(0.3479)));
}

#[test]
fn before_the_first_publication_values_are_nan_but_rows_exist() {
    let dir = provider_dir();
    let f = query(
        dir.path(),
        &["P($$roewa_q)"],
        "2007-04-26",
        "2007-04-30",
        &["SH600519"],
    );
    assert_eq!(
        f.datetime,
        vec![d("2007-04-26"), d("2007-04-27"), d("2007-04-30")]
    );
    assert!(f.data[0][0].is_nan() && f.data[0][1].is_nan());
    assert!(close(f.data[0][2], Some(0.090219)));
}

#[test]
fn annual_field_with_a_gap_year_gives_nan() {
    let dir = provider_dir();
    let csv = dir.path().join("eps.csv");
    std::fs::write(
        &csv,
        "symbol,date,period,field,value\n\
         SH600519,2016-03-24,2015,eps_a,1.5\n\
         SH600519,2017-04-15,2016,eps_a,2.0\n\
         SH600519,2019-03-29,2018,eps_a,3.0\n",
    )
    .unwrap();
    import_pit_csv(&csv, dir.path(), &|_, _| {}).unwrap();
    let file = read_pit(dir.path(), "SH600519", "eps_a").unwrap().unwrap();
    assert_eq!(file.first_year, 2015);
    assert_eq!(file.slots, vec![0, 20, NA_INDEX, 40]);
    let f = query(
        dir.path(),
        &[
            "P($$eps_a)",
            "P(Ref($$eps_a, 1))",
            "P(Ref($$eps_a, 2))",
            "PRef($$eps_a, 2017)",
            "P(Sum($$eps_a, 3))",
        ],
        "2019-04-01",
        "2019-04-01",
        &["SH600519"],
    );
    assert_eq!(f.len(), 1);
    assert!(close(f.data[0][0], Some(3.0)));
    assert!(f.data[1][0].is_nan(), "2017 was never published");
    assert!(close(f.data[2][0], Some(2.0)));
    assert!(f.data[3][0].is_nan());
    // Rolling sums skip the missing year, as pandas' min_periods=1 does.
    assert!(close(f.data[4][0], Some(5.0)));
}

#[test]
fn pit_mixes_with_daily_fields_and_missing_files() {
    let dir = provider_dir();
    let provider = Provider::open(dir.path()).unwrap();
    let cal = provider.calendar();
    let start = provider.align_start(d("2019-07-15"));
    // $close for SH600519 on 2019-07-15..=2019-07-19, and SZ000001 which has no PIT file.
    for (sym, v) in [("sh600519", 10.0f32), ("sz000001", 4.0f32)] {
        qtask_data::binfile::write_bin(
            &dir.path().join(format!("features/{sym}/close.day.bin")),
            &qtask_data::binfile::BinSeries {
                start,
                values: vec![v, v * 2.0, v * 4.0, v * 5.0, v * 8.0],
            },
        )
        .unwrap();
    }
    assert_eq!(cal[start], d("2019-07-15"));
    let f = query(
        dir.path(),
        &["P($$roewa_q) / $close", "$close"],
        "2019-07-12",
        "2019-07-22",
        &["SH600519", "SZ000001"],
    );
    let sh: Vec<usize> = (0..f.len())
        .filter(|&r| f.symbol(r) == "SH600519")
        .collect();
    let sz: Vec<usize> = (0..f.len())
        .filter(|&r| f.symbol(r) == "SZ000001")
        .collect();
    // SH600519's P column spans the whole query; SZ000001 only has its close days.
    assert_eq!(sh.len(), 7);
    assert_eq!(sz.len(), 5);
    let r = sh
        .iter()
        .copied()
        .find(|&r| f.datetime[r] == d("2019-07-18"))
        .unwrap();
    assert_eq!(f.data[0][r], 0.175322f32 / 50.0f32);
    assert!(
        sz.iter()
            .all(|&r| f.data[0][r].is_nan() && !f.data[1][r].is_nan())
    );

    // Daily operators apply to P's daily column: a 2-day mean across the revision day.
    let f2 = query(
        dir.path(),
        &["Mean(P($$roewa_q), 2)"],
        "2019-07-17",
        "2019-07-18",
        &["SH600519"],
    );
    assert!(close(
        f2.data[0][1],
        Some((0.0 + f64::from(0.175322f32)) / 2.0)
    ));

    // Only PIT columns: an instrument without the file has no rows at all.
    let f = query(
        dir.path(),
        &["P($$roewa_q)"],
        "2019-07-12",
        "2019-07-22",
        &["SH600519", "SZ000001"],
    );
    assert!(f.len() == 7 && (0..f.len()).all(|r| f.symbol(r) == "SH600519"));
}
