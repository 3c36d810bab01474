//! The connection: its settings, busy waiting, write transactions through kept statements,
//! and the lock guard that checkpoints on release.

use std::sync::MutexGuard;
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, Row};

use super::SqlitePool;
use super::hot::Hot;

/// A write transaction begun with `BEGIN IMMEDIATE` through the kept statements (rusqlite's
/// `Transaction` parses `BEGIN` and `COMMIT` afresh each time, a measurable share of a
/// claim); rolled back when dropped uncommitted.
pub(super) struct WriteTx<'c> {
    pub(super) conn: &'c Connection,
    pub(super) hot: &'c mut Hot,
    pub(super) open: bool,
}

impl<'c> WriteTx<'c> {
    pub(super) fn begin(db: &'c mut Db) -> rusqlite::Result<Self> {
        db.hot.begin.execute(&[])?;
        Ok(WriteTx {
            conn: &db.conn,
            hot: &mut db.hot,
            open: true,
        })
    }

    pub(super) fn commit(mut self) -> rusqlite::Result<()> {
        self.hot.commit.execute(&[])?;
        self.open = false;
        Ok(())
    }
}

impl std::ops::Deref for WriteTx<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.conn
    }
}

impl Drop for WriteTx<'_> {
    fn drop(&mut self) {
        if self.open && !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}

/// A connection and the statements kept on it.
pub(super) struct Db {
    /// Declared before `conn`, so the statements are finalized before it closes.
    pub(super) hot: Hot,
    pub(super) conn: Connection,
}

/// The connection, locked; on release it checkpoints if due (see [`Checkpoints`]).
pub(super) struct ConnGuard<'a> {
    pub(super) db: MutexGuard<'a, Db>,
    pub(super) pool: &'a SqlitePool,
}

impl ConnGuard<'_> {
    /// Begins a write transaction.
    pub(super) fn write(&mut self) -> rusqlite::Result<WriteTx<'_>> {
        WriteTx::begin(&mut self.db)
    }

    /// The connection and its kept statements.
    pub(super) fn split(&mut self) -> (&Connection, &mut Hot) {
        let db = &mut *self.db;
        (&db.conn, &mut db.hot)
    }
}

impl std::ops::Deref for ConnGuard<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        &self.db.conn
    }
}

impl std::ops::DerefMut for ConnGuard<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        &mut self.db.conn
    }
}

impl Drop for ConnGuard<'_> {
    fn drop(&mut self) {
        self.pool.checkpoints.after_write(&mut self.db.conn);
    }
}

/// Busy handler: retries a locked database every 400 µs for the first few seconds, then
/// every 2 ms, for about a minute in all. SQLite's own `busy_timeout` backs off to sleeps of
/// up to 100 ms, which leaves the write lock idle most of the time when several processes
/// claim tasks, each holding it for tens of microseconds; much shorter sleeps burn the CPU
/// the lock holder needs (measured with `qtask bench pool`: 50 µs gave 8k claims/s, 400 µs
/// 13k on two cores).
pub(crate) fn busy_wait(count: i32) -> bool {
    const FAST: i32 = 10_000;
    if count < FAST {
        std::thread::sleep(Duration::from_micros(400));
        return true;
    }
    if count - FAST > 28_000 {
        return false;
    }
    std::thread::sleep(Duration::from_millis(2));
    true
}

/// Applies the settings every qtask SQLite connection uses.
pub(crate) fn configure(conn: &mut Connection) -> rusqlite::Result<()> {
    conn.busy_handler(Some(busy_wait))?;
    conn.set_prepared_statement_cache_capacity(64);
    // Reading the header first: a file that is not a database fails here, before any write.
    conn.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()))?;
    enable_wal(conn)?;
    conn.execute_batch("PRAGMA synchronous = NORMAL")
}

/// How long opening a store keeps starting over while the file is busy.
pub(super) const OPEN_PATIENCE: Duration = Duration::from_secs(60);

/// Switches the file to WAL mode. When several processes open a new file at once, each can
/// hold a read lock while asking for the write lock the switch needs; SQLite then fails one
/// of them at once ("database is locked") instead of calling the busy handler, as they would
/// wait on each other. That one lets go of its lock and tries again.
pub(super) fn enable_wal(conn: &Connection) -> rusqlite::Result<()> {
    let start = std::time::Instant::now();
    loop {
        match conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(())) {
            Err(e)
                if e.sqlite_error_code() == Some(ErrorCode::DatabaseBusy)
                    && start.elapsed() < OPEN_PATIENCE =>
            {
                std::thread::sleep(Duration::from_millis(1));
            }
            other => return other,
        }
    }
}

/// `execute` and `query_row` through the statement cache, so hot paths skip SQL parsing.
pub(super) trait Cached {
    fn exec<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize>;
    fn row<T, P: rusqlite::Params>(
        &self,
        sql: &str,
        params: P,
        f: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T>;
}

impl Cached for Connection {
    fn exec<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }

    fn row<T, P: rusqlite::Params>(
        &self,
        sql: &str,
        params: P,
        f: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        self.prepare_cached(sql)?.query_row(params, f)
    }
}
