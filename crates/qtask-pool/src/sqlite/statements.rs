//! The SQL texts of the claim and commit paths, built once per handle with the pool literal
//! spliced in, and the priority key lease tokens carry.

use super::rows::{ANY_LANE, locate};
use super::schema::{STATE_COLUMNS, lane, lane_cond, lane_sql, quote};
use crate::status::Status;

/// Distinct claim queries kept per handle (beyond this many, the cache restarts).
pub(super) const CLAIM_SQL_CACHE: usize = 32;

/// The priority key a lease token carries after its 32 unique hex digits: the running task's
/// state key is then known without reading its definition, so a fenced commit reads and
/// writes nothing but the state page it changes. A key gone stale (the task was prioritized
/// while running) or a token from schema 1 only sends the commit the slow way, through the
/// definition: the token itself is still compared in full.
pub(super) struct TokenKey {
    pub(super) prio_null: bool,
    pub(super) prio: i64,
}

impl TokenKey {
    pub(super) fn parse(token: &str) -> Option<Self> {
        let key = token.get(32..)?;
        if key == "n" {
            return Some(TokenKey {
                prio_null: true,
                prio: 0,
            });
        }
        Some(TokenKey {
            prio_null: false,
            prio: key.strip_prefix('p')?.parse().ok()?,
        })
    }
}

/// The statements of one kind of claim (a claimed-from status and a query condition).
///
/// A claim is a `SELECT` of the best candidate's state row, then the change of that one row
/// by its full key: measured against one `UPDATE ... WHERE key = (SELECT ...) RETURNING ...`,
/// which SQLite runs through two temporary tables (the rows to change, as the key itself
/// changes, and the rows to return), it is less than half the time of a claim, all of it
/// inside the write lock. A claim that moves the row to lane 0 deletes it and inserts it
/// again from the values the pick read (see [`HotSql`]): two B-tree seeks, where an `UPDATE`
/// of the key takes four (find the row, check the new key is free, find the row again,
/// find the new key's place).
///
/// The pool and lane are SQL literals here, not parameters: this SQLite is built with
/// STAT4, which re-prepares a statement at every new binding of a parameter compared with
/// an indexed column, and that re-parse was most of a claim's cost.
pub(super) struct ClaimSql {
    /// The best task of the origin status, provided the pool's lease check is not due (an
    /// expired lease must be dealt with first): the common case in one statement (`?1` now).
    pub(super) fresh_unless_due: String,
    /// The best task of the origin status.
    pub(super) fresh: String,
    /// Whether the pool's lease check is due (`?1` now): see the module documentation.
    pub(super) check_due: String,
    /// Marks failed the expired leases that were on their last allowed attempt
    /// (`?1` now, `?2` the pool's attempt limit).
    pub(super) fail_expired: String,
    /// The best task of this origin status whose lease expired (`?1` now).
    pub(super) expired: String,
    /// Claims the fresh task picked where it is, for origins in lane 0 (see [`CLAIM_SET`]
    /// and [`CLAIM_KEY`]).
    pub(super) take_in_place: String,
    /// Claims the expired task picked, `?9` the error to record.
    pub(super) take_expired: String,
}

/// What a pick reads: the columns of [`read_task`] (with the times as stored), then the rest
/// of the state key; [`ClaimSql::new`] adds the pool's lease hint (see [`read_picked`]).
pub(super) const PICK_COLUMNS: &str = "id, (SELECT def FROM qtask_defs WHERE task_id = id), status, CASE WHEN prio_null THEN NULL ELSE prio END, \
    res, attempts, max_attempts, error, lease_owner, lease_expires_at, created_at, started_at, \
    finished_at, prio_null, prio";

/// The SET list of a claim: `?1` the status claimed from, `?2` now, `?3` owner, `?4` token,
/// `?5` lease expiry.
pub(super) const CLAIM_SET: &str = "status = 'running', claimed_from = ?1, attempts = attempts + 1, \
    lease_owner = ?3, lease_token = ?4, lease_expires_at = ?5, started_at = ?2";

/// The rest of the picked row's key, after the pool and lane literals: `?6` prio_null,
/// `?7` prio, `?8` id.
pub(super) const CLAIM_KEY: &str = "prio_null = ?6 AND prio = ?7 AND id = ?8";

impl ClaimSql {
    pub(super) fn new(pool: &str, status: Status, cond: &str) -> Self {
        let origin = lane_cond(status);
        let from_status = quote(status.as_str());
        let hint = format!("(SELECT lease_check_at FROM qtask_pool_ids WHERE pool_id = {pool})");
        // The state key in claim order: the first match is the best task. A condition on
        // the definition or the priority needs the definitions too; the common empty one
        // reads nothing but the state. The query's parameters start at ?2.
        let pick = |lane_cond: &str| {
            let from = if cond == "1=1" {
                "qtask_state"
            } else {
                "qtask_state JOIN qtask_defs ON task_id = id"
            };
            format!(
                "SELECT {PICK_COLUMNS}, {hint} FROM {from} \
                 WHERE pool = {pool} AND {lane_cond} AND ({cond}) \
                 ORDER BY prio_null, prio DESC, id LIMIT 1"
            )
        };
        let due = format!("{hint} < ?1");
        let running = lane_cond(Status::Running);
        ClaimSql {
            fresh_unless_due: pick(&format!("{origin} AND NOT COALESCE({due}, 0)")),
            // `?1` (now) is bound to every pick; this one has no use for it.
            fresh: pick(&format!("{origin} AND ?1 IS NOT NULL")),
            check_due: format!("SELECT COALESCE({due}, 0)"),
            fail_expired: format!(
                "UPDATE qtask_state SET lane = {failed}, status = 'failed', finished_at = ?1, \
                 error = 'lease expired (held by ' || COALESCE(lease_owner, '?') || ') on attempt ' || attempts || ' of ' || COALESCE(max_attempts, ?2), \
                 lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, claimed_from = NULL \
                 WHERE pool = {pool} AND {running} AND lease_expires_at < ?1 \
                 AND attempts >= COALESCE(max_attempts, ?2)",
                failed = lane(Status::Failed)
            ),
            expired: pick(&format!(
                "{running} AND claimed_from = {from_status} AND lease_expires_at < ?1"
            )),
            take_in_place: format!(
                "UPDATE qtask_state SET {CLAIM_SET} WHERE pool = {pool} AND {origin} AND {CLAIM_KEY}"
            ),
            take_expired: format!(
                "UPDATE qtask_state SET {CLAIM_SET}, error = ?9 \
                 WHERE pool = {pool} AND {running} AND {CLAIM_KEY}"
            ),
        }
    }
}

/// Statements on one task by id, and the pool's lease hint, with the pool literal spliced in.
pub(super) struct HotSql {
    /// A fenced commit by the state key in the token (`?1` res, `?2` status, `?3` finished?,
    /// `?4` now, `?5` id, `?6` token, `?7` prio_null, `?8` prio): `[0]` for a status that
    /// stays in lane 0 (the row is rewritten where it is), `[1]` for one that moves it.
    pub(super) commit_keyed: [String; 2],
    /// A fenced commit, the task found through its definition (`?1`..`?6` as above).
    pub(super) commit_fenced: [String; 2],
    /// The same without a token (`?6` unused but bound), from any lane.
    pub(super) commit_any: String,
    /// The first half of moving a claimed task to lane 0 (`?1` lane, `?2` prio_null,
    /// `?3` prio, `?4` id).
    pub(super) take_delete: String,
    /// The second half: the running task's row (`?1` prio_null, `?2` prio, `?3` id, `?4` res,
    /// `?5` attempts, `?6` max_attempts, `?7` claimed from, `?8` owner, `?9` token,
    /// `?10` lease expiry, `?11` error, `?12` created, `?13` started, `?14` finished).
    pub(super) take_insert: String,
    /// Lowers the pool's lease hint to `?1`.
    pub(super) lower_hint: String,
    /// Sets the pool's lease hint to its earliest lease expiry.
    pub(super) reset_hint: String,
}

impl HotSql {
    pub(super) fn new(pool: &str) -> Self {
        let commit = |key: &str, fence: &str, moves: bool| {
            let lane = if moves {
                format!("lane = {}, ", lane_sql("?2"))
            } else {
                String::new()
            };
            format!(
                "UPDATE qtask_state SET {lane}res = ?1, status = ?2, \
                 finished_at = CASE WHEN ?3 THEN ?4 ELSE finished_at END, \
                 lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, claimed_from = NULL \
                 WHERE {key} AND {fence}"
            )
        };
        let running = lane_cond(Status::Running);
        let keyed =
            format!("pool = {pool} AND {running} AND prio_null = ?7 AND prio = ?8 AND id = ?5");
        let fenced = locate(pool, &running, 5);
        HotSql {
            commit_keyed: [false, true].map(|m| commit(&keyed, "lease_token = ?6", m)),
            commit_fenced: [false, true].map(|m| commit(&fenced, "lease_token = ?6", m)),
            commit_any: commit(&locate(pool, ANY_LANE, 5), "?6 IS NULL", true),
            take_delete: format!(
                "DELETE FROM qtask_state WHERE pool = {pool} AND lane = ?1 \
                 AND prio_null = ?2 AND prio = ?3 AND id = ?4"
            ),
            take_insert: format!(
                "INSERT INTO qtask_state (pool, lane, prio_null, prio, id, status, {STATE_COLUMNS}) \
                 VALUES ({pool}, {lane}, ?1, ?2, ?3, 'running', ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                lane = lane(Status::Running)
            ),
            lower_hint: format!(
                "UPDATE qtask_pool_ids SET lease_check_at = ?1 WHERE pool_id = {pool}"
            ),
            reset_hint: format!(
                "UPDATE qtask_pool_ids SET lease_check_at = (SELECT min(lease_expires_at) \
                 FROM qtask_state WHERE pool = {pool} AND {running}) WHERE pool_id = {pool}"
            ),
        }
    }
}
