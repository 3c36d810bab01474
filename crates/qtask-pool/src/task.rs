//! Task documents as stored in a pool, and the records returned by create and fetch.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

use crate::status::Status;

/// One task of a pool.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    /// Unique id within the store (sortable; insertion order within a backend).
    pub id: String,
    /// The task definition (Qlib's `def`, also queryable as `filter`).
    pub def: Value,
    /// Lifecycle state.
    pub status: Status,
    /// Claim priority: higher first, `None` after every number.
    pub priority: Option<i64>,
    /// The committed result, if any.
    pub res: Option<Value>,
    /// How many times a worker has started this task (a voluntary return gives the attempt back).
    pub attempts: u32,
    /// Per-task attempt limit (`None`: the pool's, else 3).
    pub max_attempts: Option<u32>,
    /// The last error text (kept after retries for diagnosis).
    pub error: Option<String>,
    /// Who holds the current lease (`host:pid` by default).
    pub lease_owner: Option<String>,
    /// When the current lease expires (`None` while running: no lease, Qlib's behaviour).
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// When the task was inserted.
    pub created_at: DateTime<Utc>,
    /// When the task was last claimed.
    pub started_at: Option<DateTime<Utc>>,
    /// When the task was last committed or marked failed.
    pub finished_at: Option<DateTime<Utc>>,
}

fn time(t: Option<DateTime<Utc>>) -> Value {
    t.map_or(Value::Null, |t| {
        Value::String(t.to_rfc3339_opts(SecondsFormat::Millis, true))
    })
}

impl Task {
    /// The JSON document printed by `qtask manage --json`, keys in a fixed order:
    /// `_id, def, status, priority, res, attempts, error, created_at, started_at, finished_at`.
    pub fn to_document(&self) -> Value {
        let mut m = Map::new();
        m.insert("_id".into(), json!(self.id));
        m.insert("def".into(), self.def.clone());
        m.insert("status".into(), json!(self.status.as_str()));
        m.insert("priority".into(), json!(self.priority));
        m.insert("res".into(), self.res.clone().unwrap_or(Value::Null));
        m.insert("attempts".into(), json!(self.attempts));
        m.insert("error".into(), json!(self.error));
        m.insert("created_at".into(), time(Some(self.created_at)));
        m.insert("started_at".into(), time(self.started_at));
        m.insert("finished_at".into(), time(self.finished_at));
        Value::Object(m)
    }
}

/// What `create_task` did with one definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    /// The task's id (`None` only for a new task in a dry run).
    pub id: Option<String>,
    /// Whether this definition is new (inserted, or would be in a dry run).
    pub new: bool,
}

/// A task claimed by `fetch_task`: the task, the lease token that fences later writes,
/// and the status it was claimed from (where a failure or return puts it back).
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedTask {
    /// The task as it is after the claim (status `running`).
    pub task: Task,
    /// The lease token; commits and returns carrying an older token are refused.
    pub token: String,
    /// The status the task had before the claim.
    pub from: Status,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn document_has_the_documented_keys_in_order() {
        let t = Task {
            id: "7".into(),
            def: json!({"a": 1}),
            status: Status::PartDone,
            priority: None,
            res: None,
            attempts: 2,
            max_attempts: None,
            error: Some("boom".into()),
            lease_owner: None,
            lease_expires_at: None,
            created_at: Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap(),
            started_at: None,
            finished_at: None,
        };
        let doc = t.to_document();
        let keys: Vec<&str> = doc
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "_id",
                "def",
                "status",
                "priority",
                "res",
                "attempts",
                "error",
                "created_at",
                "started_at",
                "finished_at"
            ]
        );
        assert_eq!(doc["status"], "part_done");
        assert_eq!(doc["created_at"], "2026-01-02T03:04:05.000Z");
        assert_eq!(doc["res"], Value::Null);
    }
}
