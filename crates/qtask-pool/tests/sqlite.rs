//! The conformance suite on SQLite (always), plus SQLite-specific checks.

mod suite;

use std::sync::OnceLock;

use qtask_pool::{PoolError, open};

/// One store file for the whole binary: checks run in parallel in separate pools.
fn url() -> Option<String> {
    static PATH: OnceLock<String> = OnceLock::new();
    let path = PATH.get_or_init(|| {
        let p = format!(
            "{}/conformance-{}.db",
            env!("CARGO_TARGET_TMPDIR"),
            std::process::id()
        );
        let _ = std::fs::remove_file(&p);
        p
    });
    Some(format!("sqlite:{path}"))
}

conformance!(url);

#[test]
fn a_file_that_is_not_a_database_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.db");
    let content = b"these are my notes, not a database\n".repeat(200);
    std::fs::write(&path, &content).unwrap();
    let err = open(&format!("sqlite:{}", path.display()), "p")
        .err()
        .unwrap();
    assert!(matches!(err, PoolError::NotADatabase { .. }), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), content);
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.db");
    let url = format!("sqlite:{}", path.display());
    drop(open(&url, "p").unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "UPDATE qtask_meta SET value = '99' WHERE key = 'schema_version'",
        [],
    )
    .unwrap();
    drop(conn);
    let err = open(&url, "p").err().unwrap();
    assert!(
        matches!(err, PoolError::SchemaTooNew { found: 99, .. }),
        "{err}"
    );
}
