//! Replays the Parquet inputs kept in `fuzz/regressions/readers/` (those whose first byte is
//! 2 mod 3, see `fuzz/fuzz_targets/readers.rs`): each must be read or refused, never crash.

use std::path::Path;

#[test]
fn parquet_regressions_are_read_or_refused() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions/readers");
    for f in std::fs::read_dir(&dir).unwrap().flatten() {
        let data = std::fs::read(f.path()).unwrap();
        if let Some((&kind, rest)) = data.split_first()
            && kind % 3 == 2
        {
            let _ = qtask_table::PredTable::from_parquet_bytes(rest);
        }
    }
}
