//! SQLite-specific checks (the conformance suite is `conformance_sqlite`).

use qtask_pool::{PoolError, open};

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

/// The schema-1 layout (one `qtask_tasks` table), as qtask wrote it before schema 2.
const SCHEMA_1: &str = "
CREATE TABLE qtask_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO qtask_meta VALUES ('schema_version', '1');
CREATE TABLE qtask_tasks (
    id INTEGER PRIMARY KEY AUTOINCREMENT, pool TEXT NOT NULL, def TEXT NOT NULL,
    def_hash TEXT NOT NULL, status TEXT NOT NULL, priority INTEGER, res TEXT,
    attempts INTEGER NOT NULL DEFAULT 0, max_attempts INTEGER, claimed_from TEXT,
    lease_owner TEXT, lease_token TEXT, lease_expires_at INTEGER, error TEXT,
    created_at INTEGER NOT NULL, started_at INTEGER, finished_at INTEGER
);
CREATE UNIQUE INDEX qtask_tasks_def_hash ON qtask_tasks (pool, def_hash);
CREATE INDEX qtask_tasks_claim ON qtask_tasks (pool, status, priority DESC, id);
CREATE TABLE qtask_pools (name TEXT PRIMARY KEY, max_attempts INTEGER);
";

/// A schema-1 row: id, pool, def, status, priority, res, lease token, lease expiry.
type OldRow<'a> = (
    i64,
    &'a str,
    serde_json::Value,
    &'a str,
    Option<i64>,
    Option<&'a str>,
    Option<&'a str>,
    Option<i64>,
);

#[test]
fn a_schema_1_store_is_migrated_on_open_and_keeps_working() {
    use qtask_pool::{CreateOptions, FetchOptions, Query, Status};
    use serde_json::json;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let url = format!("sqlite:{}", path.display());
    let hash = |d: &serde_json::Value| qtask_core::task_hash(d);
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(SCHEMA_1).unwrap();
        let far = chrono::Utc::now().timestamp_millis() + 3_600_000;
        let rows: [OldRow; 6] = [
            (
                1,
                "p",
                json!({"t": "done"}),
                "done",
                None,
                Some("{\"r\":1}"),
                None,
                None,
            ),
            (
                2,
                "p",
                json!({"t": "low"}),
                "waiting",
                None,
                None,
                None,
                None,
            ),
            (
                3,
                "p",
                json!({"t": "high"}),
                "waiting",
                Some(9),
                None,
                None,
                None,
            ),
            (
                4,
                "p",
                json!({"t": "running"}),
                "running",
                None,
                None,
                Some("0123456789abcdef0123456789abcdef"),
                Some(far),
            ),
            (
                5,
                "other",
                json!({"t": "low"}),
                "waiting",
                None,
                None,
                None,
                None,
            ),
            // The highest id was removed: ids must not be reused after the migration.
            (
                9,
                "p",
                json!({"t": "removed"}),
                "waiting",
                None,
                None,
                None,
                None,
            ),
        ];
        for (id, pool, def, status, prio, res, token, expires) in rows {
            conn.execute(
                "INSERT INTO qtask_tasks (id, pool, def, def_hash, status, priority, res, attempts, \
                 claimed_from, lease_owner, lease_token, lease_expires_at, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, 1700000000000)",
                rusqlite::params![
                    id, pool, def.to_string(), hash(&def), status, prio, res,
                    i64::from(token.is_some()),
                    token.map(|_| "waiting"), token.map(|_| "host:1"), token, expires
                ],
            )
            .unwrap();
        }
        conn.execute("DELETE FROM qtask_tasks WHERE id = 9", [])
            .unwrap();
    }

    let p = open(&url, "p").unwrap();
    let tasks = p.query(&Query::all()).unwrap();
    let seen: Vec<(String, Status, Option<i64>)> = tasks
        .iter()
        .map(|t| (t.id.clone(), t.status, t.priority))
        .collect();
    assert_eq!(
        seen,
        vec![
            ("1".into(), Status::Done, None),
            ("2".into(), Status::Waiting, None),
            ("3".into(), Status::Waiting, Some(9)),
            ("4".into(), Status::Running, None),
        ]
    );
    assert_eq!(tasks[0].res, Some(json!({"r": 1})));
    assert_eq!(tasks[0].def, json!({"t": "done"}));
    assert_eq!(
        p.re_query("4").unwrap().lease_owner.as_deref(),
        Some("host:1")
    );
    assert_eq!(
        p.list().unwrap(),
        vec!["other".to_string(), "p".to_string()]
    );

    // Dedup still sees the old definitions; a new one gets an id never used before.
    let created = p
        .create_tasks(
            &[json!({"t": "low"}), json!({"t": "new"})],
            &CreateOptions::default(),
        )
        .unwrap();
    assert_eq!(created[0].id.as_deref(), Some("2"));
    assert!(!created[0].new);
    assert_eq!(created[1].id.as_deref(), Some("10"));

    // The running task's old-style token still fences its commit.
    p.commit_task_res(
        "4",
        Some("0123456789abcdef0123456789abcdef"),
        &json!(4),
        None,
    )
    .unwrap();
    // Claims follow priority, then insertion order.
    let opts = FetchOptions::default();
    let order: Vec<String> = std::iter::from_fn(|| p.fetch_task(&opts).unwrap())
        .map(|c| c.task.id)
        .collect();
    assert_eq!(order, vec!["3", "2", "10"]);
    let other = open(&url, "other").unwrap();
    assert_eq!(other.fetch_task(&opts).unwrap().unwrap().task.id, "5");

    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: String = conn
        .query_row(
            "SELECT value FROM qtask_meta WHERE key = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(version, qtask_pool::sqlite::SCHEMA_VERSION.to_string());
    let old_left: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'qtask_tasks'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(old_left, 0);
}

/// The schema-2 layout (state keyed on the status text), as qtask wrote it before schema 3.
const SCHEMA_2: &str = "
CREATE TABLE qtask_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO qtask_meta VALUES ('schema_version', '2');
CREATE TABLE qtask_defs (task_id INTEGER PRIMARY KEY AUTOINCREMENT, task_pool INTEGER NOT NULL,
    def TEXT NOT NULL, def_hash TEXT NOT NULL, priority INTEGER);
CREATE UNIQUE INDEX qtask_defs_hash ON qtask_defs (task_pool, def_hash);
CREATE TABLE qtask_state (pool INTEGER NOT NULL, status TEXT NOT NULL, prio_null INTEGER NOT NULL,
    prio INTEGER NOT NULL, id INTEGER NOT NULL, res TEXT, attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER, claimed_from TEXT, lease_owner TEXT, lease_token TEXT,
    lease_expires_at INTEGER, error TEXT, created_at INTEGER NOT NULL, started_at INTEGER,
    finished_at INTEGER, PRIMARY KEY (pool, status, prio_null, prio DESC, id)) WITHOUT ROWID;
CREATE TABLE qtask_pools (name TEXT PRIMARY KEY, max_attempts INTEGER);
CREATE TABLE qtask_pool_ids (pool_id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
INSERT INTO qtask_pool_ids VALUES (1, 'p');
";

/// A schema-2 row: id, status, priority, res, attempts, lease token, lease expiry.
type V2Row<'a> = (
    i64,
    &'a str,
    Option<i64>,
    Option<&'a str>,
    i64,
    Option<&'a str>,
    Option<i64>,
);

#[test]
fn a_schema_2_store_is_migrated_on_open_and_its_expired_lease_taken_over() {
    use qtask_pool::{FetchOptions, Query, Status};
    use serde_json::json;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v2.db");
    let url = format!("sqlite:{}", path.display());
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(SCHEMA_2).unwrap();
        let past = chrono::Utc::now().timestamp_millis() - 60_000;
        let rows: [V2Row; 5] = [
            (1, "done", None, Some("{\"r\":1}"), 1, None, None),
            (2, "waiting", None, None, 0, None, None),
            (3, "waiting", Some(9), None, 0, None, None),
            (
                4,
                "running",
                None,
                None,
                1,
                Some("0123456789abcdef0123456789abcdefn"),
                Some(past),
            ),
            (5, "failed", None, None, 3, None, None),
        ];
        for (id, status, prio, res, attempts, token, expires) in rows {
            let def = json!({"t": id});
            conn.execute(
                "INSERT INTO qtask_defs (task_id, task_pool, def, def_hash, priority) VALUES (?1, 1, ?2, ?3, ?4)",
                rusqlite::params![id, def.to_string(), qtask_core::task_hash(&def), prio],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO qtask_state (pool, status, prio_null, prio, id, res, attempts, \
                 claimed_from, lease_owner, lease_token, lease_expires_at, created_at) \
                 VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 1700000000000)",
                rusqlite::params![
                    status,
                    prio.is_none(),
                    prio.unwrap_or(0),
                    id,
                    res,
                    attempts,
                    token.map(|_| "waiting"),
                    token.map(|_| "host:1"),
                    token,
                    expires
                ],
            )
            .unwrap();
        }
    }

    let p = open(&url, "p").unwrap();
    let seen: Vec<(String, Status)> = p
        .query(&Query::all())
        .unwrap()
        .into_iter()
        .map(|t| (t.id, t.status))
        .collect();
    let expect = [
        Status::Done,
        Status::Waiting,
        Status::Waiting,
        Status::Running,
        Status::Failed,
    ];
    assert_eq!(
        seen,
        (1..=5)
            .map(|i| i.to_string())
            .zip(expect)
            .collect::<Vec<_>>()
    );
    // The expired lease is dealt with first, then priority order.
    let lease = FetchOptions {
        lease: Some(std::time::Duration::from_secs(60)),
        ..FetchOptions::default()
    };
    let order: Vec<(String, u32)> = std::iter::from_fn(|| p.fetch_task(&lease).unwrap())
        .map(|c| (c.task.id, c.task.attempts))
        .collect();
    assert_eq!(
        order,
        vec![("4".into(), 2), ("3".into(), 1), ("2".into(), 1)]
    );
    assert_eq!(p.retry(&Query::all()).unwrap(), 1);
    assert_eq!(p.fetch_task(&lease).unwrap().unwrap().task.id, "5");
    assert_eq!(p.re_query("1").unwrap().res, Some(json!({"r": 1})));

    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: String = conn
        .query_row(
            "SELECT value FROM qtask_meta WHERE key = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(version, qtask_pool::sqlite::SCHEMA_VERSION.to_string());
}

#[test]
fn the_wal_is_checkpointed_and_restarted_while_claiming() {
    use qtask_pool::{CreateOptions, FetchOptions};

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wal.db");
    let url = format!("sqlite:{}", path.display());
    let p = open(&url, "p").unwrap();
    let defs: Vec<serde_json::Value> = (0..4000).map(|i| serde_json::json!({ "i": i })).collect();
    p.create_tasks(&defs, &CreateOptions::default()).unwrap();
    let opts = FetchOptions::default();
    let mut next = p.fetch_task(&opts).unwrap();
    let mut n = 0;
    while let Some(c) = next {
        next = p
            .commit_and_fetch(&c.task.id, &c.token, &serde_json::Value::Null, None, &opts)
            .unwrap();
        n += 1;
    }
    assert_eq!(n, 4000);
    // 4000 commits write well over 4000 frames; checkpoints every 1000 frames restart the
    // log from its start, so it never holds much more than that.
    let wal = std::fs::metadata(dir.path().join("wal.db-wal"))
        .unwrap()
        .len();
    assert!(
        wal < 2000 * 4120,
        "WAL of {wal} bytes: checkpoints did not restart it"
    );
}

#[test]
fn many_connections_opening_a_new_file_at_once_all_succeed() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..30 {
        let url = format!(
            "sqlite:{}",
            dir.path().join(format!("new{round}.db")).display()
        );
        let start = std::sync::Barrier::new(8);
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    s.spawn(|| {
                        start.wait();
                        open(&url, "p").map(|_| ()).map_err(|e| e.to_string())
                    })
                })
                .collect();
            for h in handles {
                assert_eq!(h.join().unwrap(), Ok(()), "round {round}");
            }
        });
    }
}
