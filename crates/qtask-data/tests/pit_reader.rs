//! The PIT writer's append path, and the reader on truncated, inconsistent and random files.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use qtask_data::pit::{Interval, NA_INDEX, PitFile, import_pit_csv, pit_paths, read_pit};
use qtask_data::{DataError, Program};

fn fixture_csv() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/pit/roewa_q_input.csv")
}

fn import(dir: &Path, csv_text: &str) -> qtask_data::Result<qtask_data::pit::ImportSummary> {
    let csv = dir.join("in.csv");
    std::fs::write(&csv, csv_text).unwrap();
    import_pit_csv(&csv, dir, &|_, _| {})
}

fn files(dir: &Path) -> (Vec<u8>, Vec<u8>) {
    let (d, i) = pit_paths(dir, "SH600519", "roewa_q").unwrap();
    (std::fs::read(d).unwrap(), std::fs::read(i).unwrap())
}

#[test]
fn appending_in_batches_gives_the_same_bytes_as_one_import() {
    let text = std::fs::read_to_string(fixture_csv()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let whole = tempfile::tempdir().unwrap();
    import(whole.path(), &text).unwrap();

    // Split so that the 2019-07-18 revision of 201902 arrives in its own later batch and
    // must be linked into the chain started by the 2019-07-13 record.
    let cut = lines.iter().position(|l| l.contains("2019-07-18")).unwrap();
    let parts = tempfile::tempdir().unwrap();
    let s1 = import(parts.path(), &lines[..cut].join("\n")).unwrap();
    let batch2 = [lines[0], lines[cut], lines[cut + 1]].join("\n");
    let s2 = import(parts.path(), &batch2).unwrap();
    assert_eq!((s1.written, s2.written, s2.skipped), (cut - 1, 2, 0));
    assert_eq!(files(parts.path()), files(whole.path()));

    let f = read_pit(parts.path(), "sh600519", "roewa_q")
        .unwrap()
        .unwrap();
    let chain = f.chain(Interval::Quarterly.offset(2007, 201902).unwrap());
    let dates: Vec<u32> = chain.iter().map(|&i| f.records[i].date).collect();
    assert_eq!(dates, vec![20190713, 20190718]);

    // Re-importing already stored publications adds nothing (Qlib keeps only newer dates).
    let s3 = import(parts.path(), &text).unwrap();
    assert_eq!((s3.written, s3.skipped), (0, lines.len() - 1));
    assert_eq!(files(parts.path()), files(whole.path()));
}

#[test]
fn bad_csv_rows_name_the_line_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let err = import(
        dir.path(),
        "symbol,date,period,field,value\nSH600519,2007-04-28,200701,roewa_q,0.1\nSH600519,2007-08-17,200705,roewa_q,0.2\n",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("line 3") && err.contains("200705"), "{err}");
    assert!(!dir.path().join("financial").exists());

    let err = import(
        dir.path(),
        "symbol,date,period,field,value\nSH600519,2007-04-28,200701,roewa,0.1\n",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("_q") && err.contains("line 2"), "{err}");
    let err = import(dir.path(), "symbol,date,field,value\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing column `period`"), "{err}");
}

fn expect_format_error(data: &[u8], index: &[u8], needle: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (d, i) = pit_paths(dir.path(), "X", "f_q").unwrap();
    std::fs::create_dir_all(d.parent().unwrap()).unwrap();
    std::fs::write(&d, data).unwrap();
    std::fs::write(&i, index).unwrap();
    match read_pit(dir.path(), "X", "f_q") {
        Err(e @ DataError::Format { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains(needle), "{msg}");
        }
        other => panic!("expected a format error containing {needle}, got {other:?}"),
    }
}

#[test]
fn truncated_or_inconsistent_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    import(dir.path(), &std::fs::read_to_string(fixture_csv()).unwrap()).unwrap();
    let (data, index) = files(dir.path());

    expect_format_error(
        &data[..data.len() - 3],
        &index,
        "not a whole number of 20-byte records",
    );
    expect_format_error(&data, &index[..2], "truncated PIT index");
    // An index slot pointing past the data.
    let mut bad = index.clone();
    bad[4..8].copy_from_slice(&(data.len() as u32 + 20).to_ne_bytes());
    expect_format_error(&data, &bad, "slot of period 200701");
    // A revision link pointing backwards (a cycle in Qlib's reader).
    let mut bad = data.clone();
    bad[3 * 20 + 16..3 * 20 + 20].copy_from_slice(&0u32.to_ne_bytes());
    expect_format_error(&bad, &index, "next revision offset 0");
    // Records out of publication order.
    let mut bad = data.clone();
    bad[20..24].copy_from_slice(&20000101u32.to_ne_bytes());
    expect_format_error(&bad, &index, "publication order");
    // A first year after the records' periods.
    let mut bad = index.clone();
    bad[0..4].copy_from_slice(&2010u32.to_ne_bytes());
    expect_format_error(&data, &bad, "outside the index");

    // A missing file is "no data" (NaN), not an error.
    assert!(
        read_pit(dir.path(), "SZ000001", "roewa_q")
            .unwrap()
            .is_none()
    );
}

#[test]
fn misplaced_pit_syntax_is_rejected_when_compiling() {
    let err = |e: &str| {
        Program::compile(&[("x".into(), e.into())])
            .unwrap_err()
            .to_string()
    };
    assert!(err("$$roewa_q").contains("must be wrapped in P("));
    assert!(err("P(Ref($$roewa_q, -1))").contains("future period"));
    assert!(err("P($close)").contains("daily field $close"));
    assert!(err("P(P($$roewa_q))").contains("nested"));
    assert!(err("P($$roewa)").contains("_q (quarterly) or _a (annual)"));
    assert!(err("PRef($$roewa_q, 2019.5)").contains("PRef's period"));
    let p = Program::compile(&[("x".into(), "P($$roewa_q) / $close".into())]).unwrap();
    assert_eq!(p.fields(), &["close".to_string()]);
    assert_eq!(p.pit_queries().len(), 1);
    assert_eq!(
        p.pit_queries()[0].program.fields(),
        &["roewa_q".to_string()]
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Random bytes never panic the reader; whatever it accepts is internally consistent.
    #[test]
    fn reader_never_panics_on_random_bytes(
        data in proptest::collection::vec(any::<u8>(), 0..200),
        index in proptest::collection::vec(any::<u8>(), 0..40),
        quarterly in any::<bool>(),
    ) {
        let interval = if quarterly { Interval::Quarterly } else { Interval::Annual };
        if let Ok(f) = PitFile::parse(interval, &data, &index, Path::new("d"), Path::new("i")) {
            prop_assert_eq!(f.data_bytes(), data);
            prop_assert_eq!(f.index_bytes(), index);
            for s in 0..f.slots.len() {
                for i in f.chain(s) {
                    prop_assert!(i < f.records.len());
                }
            }
            let t = qtask_data::pit::Timeline::new(&f);
            for n in 0..=f.records.len() {
                let (periods, values) = t.series(n, 3, None);
                prop_assert_eq!(periods.len(), values.len());
            }
        }
    }

    /// Records built from structured random fields (so many parse) are read back as written.
    #[test]
    fn structured_random_files_never_panic(
        recs in proptest::collection::vec((0u32..5, 0u32..6, any::<u32>()), 0..8),
        first in 0u32..3,
        slots in proptest::collection::vec(prop_oneof![Just(NA_INDEX), (0u32..8).prop_map(|i| i * 20), any::<u32>()], 0..12),
    ) {
        let mut data = Vec::new();
        for (k, (day, q, next)) in recs.iter().enumerate() {
            data.extend_from_slice(&(20000101 + day + k as u32).to_ne_bytes());
            data.extend_from_slice(&(200000 + (first + day / 2) * 100 + q).to_ne_bytes());
            data.extend_from_slice(&1.5f64.to_ne_bytes());
            let next = if next % 3 == 0 { NA_INDEX } else { next % 200 };
            data.extend_from_slice(&next.to_ne_bytes());
        }
        let mut index = (2000 + first).to_ne_bytes().to_vec();
        for s in &slots {
            index.extend_from_slice(&s.to_ne_bytes());
        }
        if let Ok(f) = PitFile::parse(Interval::Quarterly, &data, &index, Path::new("d"), Path::new("i")) {
            prop_assert_eq!(f.data_bytes(), data);
            let t = qtask_data::pit::Timeline::new(&f);
            for n in 0..=f.records.len() {
                let _ = t.series(n, 2, Some(200101));
                let _ = t.series(n, 4, None);
            }
        }
    }
}
