//! The provider on Qlib's layout, and one clear error for each kind of bad input.

use std::path::{Path, PathBuf};

use qtask_data::{Instruments, NaiveDate, Program, Provider, Query, compute};

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/market_small")
}

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let to = dst.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to);
        } else {
            std::fs::copy(e.path(), to).unwrap();
        }
    }
}

fn close_frame(root: &Path, sel: Instruments) -> qtask_data::Result<qtask_data::Frame> {
    let provider = Provider::open(root)?;
    let program = Program::compile(&[("close".into(), "$close".into())]).unwrap();
    let q = Query {
        instruments: sel,
        start: None,
        end: None,
    };
    compute(&provider, &program, &q, &|| {})
}

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

#[test]
fn rows_follow_listing_ranges_and_data() {
    let f = close_frame(&fixture(), Instruments::Market("all".into())).unwrap();
    let rows = |sym: &str| -> Vec<NaiveDate> {
        (0..f.len())
            .filter(|&r| f.symbol(r) == sym)
            .map(|r| f.datetime[r])
            .collect()
    };
    // SH600002 lists on 2018-06-29 (its files start there); SH600001 delists 2019-09-12.
    assert_eq!(rows("SH600002")[0], d("2018-06-29"));
    assert_eq!(*rows("SH600001").last().unwrap(), d("2019-09-12"));
    assert_eq!(rows("SH600000").len(), 504);
    // First stored close of SH600000 (f32 9.921097755432129).
    let r0 = (0..f.len()).find(|&r| f.symbol(r) == "SH600000").unwrap();
    assert_eq!(f.data[0][r0], 9.921_098_f32);
}

#[test]
fn a_symbol_list_is_limited_by_all_txt() {
    let f = close_frame(&fixture(), Instruments::List(vec!["sh600001".into()])).unwrap();
    assert_eq!(f.symbols, vec!["SH600001"]);
    assert_eq!(*f.datetime.last().unwrap(), d("2019-09-12"));
}

#[test]
fn truncated_bin_file_is_an_error_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&fixture(), tmp.path());
    let bin = tmp.path().join("features/sh600000/close.day.bin");
    let bytes = std::fs::read(&bin).unwrap();
    std::fs::write(&bin, &bytes[..bytes.len() - 2]).unwrap();
    let err = close_frame(tmp.path(), Instruments::Market("all".into()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("sh600000/close.day.bin"), "{err}");
    assert!(err.contains("truncated .bin file"), "{err}");
}

#[test]
fn missing_calendar_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&fixture(), tmp.path());
    std::fs::remove_file(tmp.path().join("calendars/day.txt")).unwrap();
    let err = Provider::open(tmp.path()).unwrap_err().to_string();
    assert!(
        err.ends_with("calendars/day.txt: calendar file is missing"),
        "{err}"
    );
}

#[test]
fn instrument_without_data_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&fixture(), tmp.path());
    let all = tmp.path().join("instruments/all.txt");
    let mut text = std::fs::read_to_string(&all).unwrap();
    text.push_str("SH699999\t2018-01-02\t2019-12-31\n");
    std::fs::write(&all, text).unwrap();
    let err = close_frame(tmp.path(), Instruments::Market("all".into()))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(&format!(
            "instrument SH699999 (listed in {}) has no data",
            all.display()
        )),
        "{err}"
    );
}

#[test]
fn unknown_market_and_field_are_errors() {
    let err = close_frame(&fixture(), Instruments::Market("csi9".into()))
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("unknown market `csi9`"), "{err}");
    let provider = Provider::open(fixture()).unwrap();
    let program = Program::compile(&[("x".into(), "$nope + 1".into())]).unwrap();
    let q = Query {
        instruments: Instruments::Market("all".into()),
        start: None,
        end: None,
    };
    let err = compute(&provider, &program, &q, &|| {})
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("unknown field $nope"), "{err}");
}

#[test]
fn empty_date_range_is_an_error() {
    let provider = Provider::open(fixture()).unwrap();
    let program = Program::compile(&[("c".into(), "$close".into())]).unwrap();
    let q = Query {
        instruments: Instruments::Market("all".into()),
        start: Some(d("2021-01-01")),
        end: None,
    };
    let err = compute(&provider, &program, &q, &|| {})
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("no trading day between 2021-01-01"),
        "{err}"
    );
}

#[test]
fn windows_reach_before_the_requested_start() {
    // Mean over 5 days on the 10th day uses the 5 days before it, as Qlib extends the query.
    let provider = Provider::open(fixture()).unwrap();
    let program = Program::compile(&[
        ("m".into(), "Mean($close, 5)".into()),
        ("c".into(), "$close".into()),
    ])
    .unwrap();
    let cal = provider.calendar();
    let full = compute(
        &provider,
        &program,
        &Query {
            instruments: Instruments::List(vec!["SH600000".into()]),
            start: None,
            end: None,
        },
        &|| {},
    )
    .unwrap();
    let part = compute(
        &provider,
        &program,
        &Query {
            instruments: Instruments::List(vec!["SH600000".into()]),
            start: Some(cal[10]),
            end: Some(cal[20]),
        },
        &|| {},
    )
    .unwrap();
    assert_eq!(part.datetime[0], cal[10]);
    assert_eq!(part.len(), 11);
    assert_eq!(part.data[0][0], full.data[0][10]);
}
