//! PostgreSQL-specific checks (the conformance suite is `conformance_postgres`).

use qtask_pool::{PoolError, open};

fn url(test: &str) -> Option<String> {
    qtask_testkit::enabled(qtask_testkit::Suite::Postgres, test)
}

#[test]
fn an_unreachable_server_is_one_clear_error() {
    let err = open("postgres://postgres@127.0.0.1:1/none", "p")
        .err()
        .unwrap();
    assert!(matches!(err, PoolError::Connect { .. }), "{err}");
    assert!(err.to_string().contains("127.0.0.1:1"), "{err}");
}

#[test]
fn a_newer_schema_is_refused() {
    let Some(url) = url("a_newer_schema_is_refused") else {
        return;
    };
    // A private schema, so the shared tables of other tests stay untouched.
    let schema = format!("qtask_test_{}", uuid::Uuid::new_v4().simple());
    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    client
        .batch_execute(&format!(
            "CREATE SCHEMA {schema}; CREATE TABLE {schema}.qtask_meta (key text PRIMARY KEY, value text NOT NULL); \
             INSERT INTO {schema}.qtask_meta VALUES ('schema_version', '99');"
        ))
        .unwrap();
    let sep = if url.contains('?') { '&' } else { '?' };
    let scoped = format!("{url}{sep}options=-csearch_path%3D{schema}");
    let err = open(&scoped, "p").err();
    client
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .unwrap();
    let err = err.expect("a newer schema must be refused");
    assert!(
        matches!(err, PoolError::SchemaTooNew { found: 99, .. }),
        "{err}"
    );
}
