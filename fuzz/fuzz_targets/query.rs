//! The query language: any text must parse and compile to SQL that SQLite runs, or be
//! refused; never a crash, never SQL built from the text.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use qtask_pool::{CreateOptions, Query, TaskPool};

fn pool() -> &'static dyn TaskPool {
    static POOL: OnceLock<Box<dyn TaskPool>> = OnceLock::new();
    POOL.get_or_init(|| {
        let path = std::env::temp_dir().join(format!("qtask-fuzz-query-{}.db", std::process::id()));
        let p = qtask_pool::open(&format!("sqlite:{}", path.display()), "fuzz").unwrap();
        let defs: Vec<serde_json::Value> = (0..20)
            .map(|i| serde_json::json!({"a": i, "b": format!("s{i}"), "c": [i, {"d": i % 3 == 0}]}))
            .collect();
        p.create_tasks(&defs, &CreateOptions::default()).unwrap();
        p
    })
    .as_ref()
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(q) = Query::parse_str(text) {
        // Every query that parses must compile and run; a store error would be a bug.
        pool().query(&q).expect("a parsed query runs");
        pool().task_stat(&q).expect("a parsed query counts");
    }
});
