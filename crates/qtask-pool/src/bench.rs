//! The baseline for `qtask bench pool`: the store's raw rate for a one-row update and commit,
//! measured on a side table with the same connection settings the pool uses (SQLite: also
//! the pool's checkpoint policy, [`crate::sqlite::Checkpoints`]).

use std::path::Path;

use crate::error::{PoolError, Result};
use crate::store_url::StoreUrl;

enum Conn {
    Sqlite(rusqlite::Connection),
    Postgres(postgres::Client),
}

/// One connection that increments its own row of `qtask_bench_raw`.
pub struct RawWriter {
    conn: Conn,
    slot: i64,
    /// SQLite: the pool's checkpoint policy; after `conn`, which it must outlive.
    checkpoints: Option<crate::sqlite::Checkpoints>,
}

fn sqlite(path: &Path) -> Result<rusqlite::Connection> {
    let mut conn = rusqlite::Connection::open(path)?;
    crate::sqlite::configure(&mut conn)?;
    Ok(conn)
}

impl RawWriter {
    /// Creates the side table with rows `0..slots` (call once, before the writers start).
    pub fn prepare(url: &str, slots: usize) -> Result<()> {
        let slots = slots as i64;
        match StoreUrl::parse(url)? {
            StoreUrl::Sqlite(path) => {
                let conn = sqlite(&path)?;
                conn.execute_batch(
                    "CREATE TABLE IF NOT EXISTS qtask_bench_raw (slot INTEGER PRIMARY KEY, n INTEGER NOT NULL)",
                )?;
                for s in 0..slots {
                    conn.execute(
                        "INSERT OR IGNORE INTO qtask_bench_raw (slot, n) VALUES (?1, 0)",
                        [s],
                    )?;
                }
            }
            StoreUrl::Postgres(u) => {
                let mut c = postgres::Client::connect(&u, postgres::NoTls)?;
                c.batch_execute(
                    "CREATE TABLE IF NOT EXISTS qtask_bench_raw (slot bigint PRIMARY KEY, n bigint NOT NULL)",
                )?;
                for s in 0..slots {
                    c.execute(
                        "INSERT INTO qtask_bench_raw (slot, n) VALUES ($1, 0) ON CONFLICT DO NOTHING",
                        &[&s],
                    )?;
                }
            }
            StoreUrl::Mongo(_) => return Err(unsupported()),
        }
        Ok(())
    }

    /// Connects as writer `slot`.
    pub fn open(url: &str, slot: usize) -> Result<Self> {
        let mut checkpoints = None;
        let conn = match StoreUrl::parse(url)? {
            StoreUrl::Sqlite(path) => {
                let conn = sqlite(&path)?;
                checkpoints = Some(crate::sqlite::Checkpoints::install(&conn));
                Conn::Sqlite(conn)
            }
            StoreUrl::Postgres(u) => {
                Conn::Postgres(postgres::Client::connect(&u, postgres::NoTls)?)
            }
            StoreUrl::Mongo(_) => return Err(unsupported()),
        };
        Ok(RawWriter {
            conn,
            slot: slot as i64,
            checkpoints,
        })
    }

    /// One single-row update in its own transaction.
    pub fn write_once(&mut self) -> Result<()> {
        match &mut self.conn {
            Conn::Sqlite(c) => {
                c.prepare_cached("UPDATE qtask_bench_raw SET n = n + 1 WHERE slot = ?1")?
                    .execute([self.slot])?;
                if let Some(cp) = &self.checkpoints {
                    cp.after_write(c);
                }
            }
            Conn::Postgres(c) => {
                c.execute(
                    "UPDATE qtask_bench_raw SET n = n + 1 WHERE slot = $1",
                    &[&self.slot],
                )?;
            }
        }
        Ok(())
    }
}

/// Marks every task of `pool` done the way a drain leaves it in PostgreSQL: first running with
/// a lease that has since passed, then done (two bulk updates, leaving the running versions as
/// dead index entries until vacuum). Returns how many tasks.
pub fn bulk_drain(url: &str, pool: &str) -> Result<u64> {
    match StoreUrl::parse(url)? {
        StoreUrl::Postgres(u) => {
            let mut c = postgres::Client::connect(&u, postgres::NoTls)?;
            c.execute(
                "UPDATE qtask_tasks SET status = 'running', claimed_from = 'waiting', \
                 attempts = 1, lease_token = 'bench', lease_owner = 'bench', \
                 lease_expires_at = now() - interval '1 second', started_at = now() \
                 WHERE pool = $1 AND status = 'waiting'",
                &[&pool],
            )?;
            Ok(c.execute(
                "UPDATE qtask_tasks SET status = 'done', lease_token = NULL, lease_owner = NULL, \
                 lease_expires_at = NULL, claimed_from = NULL, finished_at = now() \
                 WHERE pool = $1 AND status = 'running'",
                &[&pool],
            )?)
        }
        _ => Err(PoolError::Invalid(
            "the bulk drain is for PostgreSQL stores".into(),
        )),
    }
}

/// Drops PostgreSQL's partial index of running tasks by lease expiry (`qtask_tasks_lease`), so
/// `qtask bench scale` can measure claims with and without it in one build (the next open of
/// a pool creates it again).
pub fn drop_lease_index(url: &str) -> Result<()> {
    match StoreUrl::parse(url)? {
        StoreUrl::Postgres(u) => {
            let mut c = postgres::Client::connect(&u, postgres::NoTls)?;
            c.batch_execute("DROP INDEX IF EXISTS qtask_tasks_lease")?;
            Ok(())
        }
        _ => Err(PoolError::Invalid(
            "only PostgreSQL stores have the lease index".into(),
        )),
    }
}

fn unsupported() -> PoolError {
    PoolError::Invalid("the raw-rate baseline supports SQLite and PostgreSQL stores".into())
}
