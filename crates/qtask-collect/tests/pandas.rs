//! The ensembles against pandas running Qlib's own ensemble code, value for value.
//! Runs when `QTASK_TEST_PANDAS=1`, with `$QTASK_PYTHON` (default `python3`).

use std::path::Path;
use std::process::Command;

use qtask_collect::{average_ensemble, rolling_ensemble};
use qtask_table::{PredTable, TableBuilder};

/// Qlib's RollingEnsemble and AverageEnsemble bodies (qlib/model/ens/ensemble.py) on the
/// files given, in order; writes both results as Parquet.
const QLIB_ENSEMBLES: &str = r#"
import sys, pandas as pd
out_rolling, out_average, files = sys.argv[1], sys.argv[2], sys.argv[3:]
frames = [pd.read_parquet(f) for f in files]

artifact_list = list(frames)
artifact_list.sort(key=lambda x: x.index.get_level_values("datetime").min())
artifact = pd.concat(artifact_list)
artifact = artifact[~artifact.index.duplicated(keep="last")]
artifact = artifact.sort_index()
artifact.to_parquet(out_rolling)

results = pd.concat(frames, axis=1)
results = results.groupby("datetime", group_keys=False).apply(lambda df: (df - df.mean()) / df.std())
results = results.mean(axis=1)
results = results.sort_index()
results.to_frame("score").to_parquet(out_average)
"#;

/// A small deterministic generator (no external crate): 64-bit LCG.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Piece `p` of `n`: overlapping date windows, 150 instruments per day (more than numpy's
/// 128-value block), some rows missing, some NaN, a constant day, a one-row day.
fn piece(p: usize, rng: &mut Lcg, unique: bool) -> PredTable {
    let mut b = TableBuilder::new(["score"]);
    let base = chrono::NaiveDate::from_ymd_opt(2020, 1, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap();
    for day in (p * 2)..(p * 2 + 5) {
        let dt = base + chrono::Duration::days(day as i64);
        let n = if day == 3 { 1 } else { 150 };
        for i in 0..n {
            if rng.next() < 0.1 {
                continue;
            }
            let v = if day == 5 {
                0.1
            } else if rng.next() < 0.05 {
                f64::NAN
            } else {
                rng.next() * 2.0 - 1.0
            };
            b.push(dt, &format!("SH{:06}", (i * 7919) % 1000), &[v])
                .unwrap();
        }
        if !unique && day == p * 2 {
            b.push(dt, "SH000000", &[42.0 + p as f64]).unwrap();
        }
    }
    b.finish()
}

fn assert_same(label: &str, got: &PredTable, want: &PredTable) {
    assert_eq!(got.len(), want.len(), "{label}: row count");
    for r in 0..got.len() {
        assert_eq!(got.datetime(r), want.datetime(r), "{label}: row {r}");
        assert_eq!(got.instrument(r), want.instrument(r), "{label}: row {r}");
        let (g, w) = (got.column_at(0)[r], want.column_at(0)[r]);
        assert!(
            (g.is_nan() && w.is_nan()) || g.to_bits() == w.to_bits(),
            "{label}: row {r} ({} {}): got {g:e}, pandas {w:e}",
            got.datetime(r),
            got.instrument(r)
        );
    }
}

fn run(dir: &Path, tables: &[PredTable], python: &str) -> (PredTable, PredTable) {
    let mut files = Vec::new();
    for (i, t) in tables.iter().enumerate() {
        let f = dir.join(format!("p{i}.parquet"));
        t.write_parquet(&f).unwrap();
        files.push(f);
    }
    let (ro, ao) = (dir.join("rolling.parquet"), dir.join("average.parquet"));
    let out = Command::new(python)
        .arg("-c")
        .arg(QLIB_ENSEMBLES)
        .arg(&ro)
        .arg(&ao)
        .args(&files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        PredTable::read_parquet(&ro).unwrap(),
        PredTable::read_parquet(&ao).unwrap(),
    )
}

#[test]
fn ensembles_match_qlib_bit_for_bit() {
    if qtask_testkit::enabled(
        qtask_testkit::Suite::Pandas,
        "ensembles_match_qlib_bit_for_bit",
    )
    .is_none()
    {
        return;
    }
    let python = std::env::var("QTASK_PYTHON").unwrap_or_else(|_| "python3".into());
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Lcg(7);
    // 10 pieces: the row mean then spans more than numpy's 8-way unrolled block.
    let tables: Vec<PredTable> = (0..10).map(|p| piece(p % 4, &mut rng, true)).collect();
    let labelled: Vec<(String, &PredTable)> = tables
        .iter()
        .enumerate()
        .map(|(i, t)| (format!("p{i}"), t))
        .collect();
    let refs: Vec<(&str, &PredTable)> = labelled.iter().map(|(l, t)| (l.as_str(), *t)).collect();
    let (want_rolling, want_average) = run(dir.path(), &tables, &python);
    assert_same("average", &average_ensemble(&refs).unwrap(), &want_average);
    assert_same("rolling", &rolling_ensemble(&refs).unwrap(), &want_rolling);

    // Duplicates inside pieces only matter to the rolling ensemble (pandas refuses to
    // average them); 3 pieces keep the row mean below 8 columns.
    let dups: Vec<PredTable> = (0..3).map(|p| piece(p, &mut rng, false)).collect();
    let dir2 = tempfile::tempdir().unwrap();
    let refs: Vec<(&str, &PredTable)> = dups.iter().map(|t| ("d", t)).collect();
    let mut files = Vec::new();
    for (i, t) in dups.iter().enumerate() {
        let f = dir2.path().join(format!("d{i}.parquet"));
        t.write_parquet(&f).unwrap();
        files.push(f);
    }
    let ro = dir2.path().join("rolling.parquet");
    // Only the rolling half of the script.
    let script = QLIB_ENSEMBLES.split("results = ").next().unwrap();
    let out = Command::new(&python)
        .arg("-c")
        .arg(script)
        .arg(&ro)
        .arg("unused")
        .args(&files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_same(
        "rolling with duplicates",
        &rolling_ensemble(&refs).unwrap(),
        &PredTable::read_parquet(&ro).unwrap(),
    );
}
