//! qtask-pool: the shared task pool that generators fill and workers drain.
//!
//! [`TaskPool`] has every operation of Qlib's `TaskManager` plus leases (a claim expires
//! unless renewed, and a stale holder can no longer write: fencing), bounded attempts
//! (`failed` after `max_attempts`) and timestamps. Backends: SQLite (default, one machine),
//! PostgreSQL (many machines), MongoDB (feature `mongodb`). Open one with [`open`].

#![warn(missing_docs)]

pub mod bench;
pub mod claim;
pub mod error;
#[cfg(feature = "mongodb")]
pub mod mongo;
pub mod overview;
pub mod pool;
pub mod postgres;
pub mod query;
mod sql;
pub mod sqlite;
pub mod status;
pub mod store_url;
pub mod task;

pub use claim::{Claim, SafeFetchError, safe_fetch};
pub use error::{PoolError, Result};
pub use overview::{PageRequest, PoolOverview, SortKey};
pub use pool::{
    CreateOptions, DEFAULT_LEASE, DEFAULT_MAX_ATTEMPTS, FetchOptions, TaskPool, TaskStat,
    default_owner, unfinished,
};
pub use query::{Query, QueryError};
pub use status::Status;
pub use store_url::{DEFAULT_STORE, StoreUrl, open};
pub use task::{ClaimedTask, Created, Task};

/// The schema version this build writes in PostgreSQL and MongoDB stores; a store with a
/// higher one is refused. SQLite stores have their own, [`sqlite::SCHEMA_VERSION`].
pub const SCHEMA_VERSION: i64 = 1;

/// Refuses pool names that are empty or hold control characters (NUL included).
fn check_pool_name(pool: &str) -> Result<()> {
    if pool.is_empty() || pool.chars().any(char::is_control) {
        return Err(PoolError::Invalid(format!(
            "bad pool name {pool:?}: it must be non-empty, without control characters"
        )));
    }
    Ok(())
}

/// Checks that every definition is a JSON object and returns their hashes.
fn check_defs(defs: &[serde_json::Value]) -> Result<Vec<String>> {
    defs.iter()
        .enumerate()
        .map(|(index, d)| {
            if d.is_object() {
                qtask_core::json::check(d).map_err(|e| PoolError::BadTask {
                    index,
                    reason: e.to_string(),
                })?;
                Ok(qtask_core::task_hash(d))
            } else {
                Err(PoolError::BadTask {
                    index,
                    reason: "a task definition must be a JSON object".into(),
                })
            }
        })
        .collect()
}
