//! Replays the query inputs kept in `fuzz/regressions/query/` (see `scripts/fuzz.sh`): each
//! must be refused, or parse, compile and run against a real SQLite pool.

use std::path::Path;

use qtask_pool::{CreateOptions, Query};

#[test]
fn query_regressions_run_or_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let pool = qtask_pool::open(
        &format!("sqlite:{}", tmp.path().join("q.db").display()),
        "fuzz",
    )
    .unwrap();
    let defs: Vec<serde_json::Value> = (0..20)
        .map(|i| serde_json::json!({"a": i, "b": format!("s{i}")}))
        .collect();
    pool.create_tasks(&defs, &CreateOptions::default()).unwrap();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions/query");
    let mut n = 0;
    for f in std::fs::read_dir(&dir).unwrap().flatten() {
        let Ok(text) = std::fs::read_to_string(f.path()) else {
            continue;
        };
        n += 1;
        if let Ok(q) = Query::parse_str(&text) {
            pool.query(&q)
                .unwrap_or_else(|e| panic!("{}: {e}", f.path().display()));
            pool.task_stat(&q).unwrap();
        }
    }
    assert!(n > 0, "no regression inputs in {}", dir.display());
}
