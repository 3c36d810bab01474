//! The SQLite store's tables, the lanes of the state key, and the migrations from older
//! schemas.

use crate::status::Status;

/// The schema version this build writes in SQLite stores (PostgreSQL and MongoDB stores have
/// their own, [`crate::SCHEMA_VERSION`]). Versions 1 (one `qtask_tasks` table) and 2 (state
/// keyed on the status) are migrated on open; a higher version is refused.
pub const SCHEMA_VERSION: i64 = 3;

/// The lane of the state key that holds tasks of `status`: statuses a claim may take from
/// get a lane of their own, ordered so that a claimed task (moved from lane 1 to the end of
/// lane 0) stays next to where it came from. Running and done share lane 0, so a commit
/// does not move its row.
pub(super) fn lane(status: Status) -> i64 {
    match status {
        Status::Running | Status::Done => 0,
        Status::Waiting => 1,
        Status::PartDone => 2,
        Status::Failed => 3,
    }
}

/// [`lane`] in SQL, of the status `expr` evaluates to.
pub(super) fn lane_sql(expr: &str) -> String {
    format!(
        "CASE {expr} WHEN 'waiting' THEN 1 WHEN 'part_done' THEN 2 WHEN 'failed' THEN 3 ELSE 0 END"
    )
}

/// The key condition of the lane holding `status` (lane 0 also holds another status).
pub(super) fn lane_cond(status: Status) -> String {
    match lane(status) {
        0 => format!("lane = 0 AND status = {}", quote(status.as_str())),
        n => format!("lane = {n}"),
    }
}

/// SQL string literal of `s`.
pub(super) fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS qtask_defs (
    task_id INTEGER PRIMARY KEY AUTOINCREMENT,
    task_pool INTEGER NOT NULL,
    def TEXT NOT NULL,
    def_hash TEXT NOT NULL,
    priority INTEGER
);
CREATE UNIQUE INDEX IF NOT EXISTS qtask_defs_hash ON qtask_defs (task_pool, def_hash);
CREATE TABLE IF NOT EXISTS qtask_state (
    pool INTEGER NOT NULL,
    lane INTEGER NOT NULL,
    prio_null INTEGER NOT NULL,
    prio INTEGER NOT NULL,
    id INTEGER NOT NULL,
    status TEXT NOT NULL,
    res TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER,
    claimed_from TEXT,
    lease_owner TEXT,
    lease_token TEXT,
    lease_expires_at INTEGER,
    error TEXT,
    created_at INTEGER NOT NULL,
    started_at INTEGER,
    finished_at INTEGER,
    PRIMARY KEY (pool, lane, prio_null, prio DESC, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS qtask_pools (name TEXT PRIMARY KEY, max_attempts INTEGER);
CREATE TABLE IF NOT EXISTS qtask_pool_ids (
    pool_id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    lease_check_at INTEGER
);
";

/// The state columns after the key, in table order (migrations copy them by name).
pub(super) const STATE_COLUMNS: &str = "res, attempts, max_attempts, claimed_from, lease_owner, \
    lease_token, lease_expires_at, error, created_at, started_at, finished_at";

/// Sets every pool's lease hint to its earliest lease expiry (the end of a migration).
const RESET_LEASE_HINTS: &str = "UPDATE qtask_pool_ids SET lease_check_at = \
    (SELECT min(lease_expires_at) FROM qtask_state WHERE pool = pool_id AND lane = 0 AND status = 'running');";

/// Schema 1 to 3 (run after [`SCHEMA`]): the one task table split into definitions and
/// state. Task ids are kept, and so is the id counter (ids are never reused, even those of
/// removed tasks).
pub(super) fn migrate_1() -> String {
    format!(
        "INSERT OR IGNORE INTO qtask_pool_ids (name) SELECT DISTINCT pool FROM qtask_tasks;
INSERT INTO qtask_defs (task_id, task_pool, def, def_hash, priority)
    SELECT id, pool_id, def, def_hash, priority FROM qtask_tasks JOIN qtask_pool_ids ON name = pool;
INSERT INTO qtask_state (pool, lane, prio_null, prio, id, status, {STATE_COLUMNS})
    SELECT pool_id, {lane}, priority IS NULL, COALESCE(priority, 0), id, status, {STATE_COLUMNS}
    FROM qtask_tasks JOIN qtask_pool_ids ON name = pool;
DELETE FROM sqlite_sequence WHERE name = 'qtask_defs';
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'qtask_defs', seq FROM sqlite_sequence WHERE name = 'qtask_tasks';
DROP TABLE qtask_tasks;
{RESET_LEASE_HINTS}",
        lane = lane_sql("status")
    )
}

/// Schema 2 to 3 (run before [`SCHEMA`]): the state keyed on the lane instead of the
/// status, and the pools' lease hints.
pub(super) fn migrate_2() -> String {
    format!(
        "ALTER TABLE qtask_state RENAME TO qtask_state_v2;
ALTER TABLE qtask_pool_ids ADD COLUMN lease_check_at INTEGER;
{SCHEMA}
INSERT INTO qtask_state (pool, lane, prio_null, prio, id, status, {STATE_COLUMNS})
    SELECT pool, {lane}, prio_null, prio, id, status, {STATE_COLUMNS} FROM qtask_state_v2;
DROP TABLE qtask_state_v2;
{RESET_LEASE_HINTS}",
        lane = lane_sql("status")
    )
}
