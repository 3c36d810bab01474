//! Task rows: the columns read, the join of definitions and state, and their decoding.

use chrono::{DateTime, TimeZone, Utc};
use rusqlite::Row;
use rusqlite::types::Value as SqlValue;
use serde_json::Value;

use crate::error::Result;
use crate::sql::{Param, sqlite_path};
use crate::status::Status;
use crate::task::Task;

/// The columns [`read_task`] reads, as they are named in [`TASKS`].
pub(super) const COLUMNS: &str = "id, def, status, priority, res, attempts, max_attempts, error, \
    lease_owner, lease_expires_at, created_at, started_at, finished_at";

/// Every lane, for seeks on the state key when the status is not known.
pub(super) const ANY_LANE: &str = "lane IN (0, 1, 2, 3)";

/// The task documents: definitions joined to their state. The join terms name the whole
/// state key, so a lookup by id seeks (four probes, one per lane) instead of scanning; the
/// column names are those of the query compiler (`id`, `def`, `status`, `priority`, ...).
pub(super) const TASKS: &str = "qtask_defs JOIN qtask_state ON pool = task_pool \
    AND lane IN (0, 1, 2, 3) \
    AND prio_null = (priority IS NULL) AND prio = COALESCE(priority, 0) AND id = task_id";

/// The state key of task `?{n}` given its lane condition ([`lane_cond`] or [`ANY_LANE`]):
/// pool, priority and id come from its definition.
pub(super) fn locate(pool: &str, lane: &str, n: usize) -> String {
    format!(
        "pool = {pool} AND {lane} \
         AND prio_null = (SELECT priority IS NULL FROM qtask_defs WHERE task_id = ?{n}) \
         AND prio = (SELECT COALESCE(priority, 0) FROM qtask_defs WHERE task_id = ?{n}) \
         AND id = ?{n}"
    )
}

/// Now, in Unix milliseconds (the clock every process sharing the file has in common).
pub(super) fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

pub(super) fn to_time(ms: Option<i64>) -> Option<DateTime<Utc>> {
    ms.and_then(|ms| Utc.timestamp_millis_opt(ms).single())
}

pub(super) fn to_sql(p: &Param) -> SqlValue {
    match p {
        Param::Int(n) => SqlValue::Integer(*n),
        Param::Text(s) => SqlValue::Text(s.clone()),
        Param::Path(segs) => SqlValue::Text(sqlite_path(segs)),
        // Lists travel as one JSON array that `json_each` unpacks.
        Param::Ints(v) => SqlValue::Text(serde_json::to_string(v).expect("integers serialise")),
        Param::Texts(v) => SqlValue::Text(serde_json::to_string(v).expect("strings serialise")),
        Param::Json(v) => match v {
            Value::Null => SqlValue::Null,
            Value::Bool(b) => SqlValue::Integer(i64::from(*b)),
            Value::Number(n) => match n.as_i64() {
                Some(i) => SqlValue::Integer(i),
                None => SqlValue::Real(n.as_f64().unwrap_or(f64::NAN)),
            },
            Value::String(s) => SqlValue::Text(s.clone()),
            other => SqlValue::Text(other.to_string()),
        },
    }
}

/// A row as read, JSON still text: decoding happens in [`finish`] so its errors keep their type.
pub(super) struct RawTask {
    pub(super) task: Task,
    pub(super) status: String,
    pub(super) def: String,
    pub(super) res: Option<String>,
}

pub(super) fn read_task(row: &Row<'_>) -> rusqlite::Result<RawTask> {
    let id: i64 = row.get(0)?;
    Ok(RawTask {
        task: Task {
            id: id.to_string(),
            def: Value::Null,
            status: Status::Waiting,
            priority: row.get(3)?,
            res: None,
            attempts: row.get::<_, i64>(5)?.max(0) as u32,
            max_attempts: row.get::<_, Option<i64>>(6)?.map(|n| n.max(0) as u32),
            error: row.get(7)?,
            lease_owner: row.get(8)?,
            lease_expires_at: to_time(row.get(9)?),
            created_at: to_time(Some(row.get(10)?)).unwrap_or_default(),
            started_at: to_time(row.get(11)?),
            finished_at: to_time(row.get(12)?),
        },
        status: row.get(2)?,
        def: row.get(1)?,
        res: row.get(4)?,
    })
}

pub(super) fn finish(raw: RawTask) -> Result<Task> {
    let mut task = raw.task;
    task.status = raw.status.parse()?;
    task.def = serde_json::from_str(&raw.def)?;
    task.res = raw.res.as_deref().map(serde_json::from_str).transpose()?;
    Ok(task)
}
