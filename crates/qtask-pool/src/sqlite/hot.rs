//! Statements of the claim path, prepared once per connection and kept.
//!
//! rusqlite's statement cache costs each use a hash of the SQL text, a removal from and a
//! re-insertion into its LRU list and a copy of every text parameter; over the six
//! statements of a commit-and-claim that was about 9,000 instructions, an eighth of the
//! claim (callgrind, `qtask bench pool --role claim`). These are bound and stepped through
//! SQLite's C API instead. They hold raw statement handles, no Rust reference into the
//! connection, and [`Hot`] is dropped before the connection it was prepared on.

use std::ffi::{CStr, c_int};
use std::ptr::{self, NonNull};

use rusqlite::{Connection, ffi};

/// A parameter of a [`HotStmt`].
pub(super) enum Arg<'a> {
    Int(i64),
    Text(&'a str),
    Null,
}

impl From<i64> for Arg<'_> {
    fn from(n: i64) -> Self {
        Arg::Int(n)
    }
}

impl From<bool> for Arg<'_> {
    fn from(b: bool) -> Self {
        Arg::Int(i64::from(b))
    }
}

impl<'a> From<&'a str> for Arg<'a> {
    fn from(s: &'a str) -> Self {
        Arg::Text(s)
    }
}

impl<'a, T: Into<Arg<'a>>> From<Option<T>> for Arg<'a> {
    fn from(v: Option<T>) -> Self {
        v.map_or(Arg::Null, Into::into)
    }
}

/// One prepared statement that does not return rows.
pub(super) struct HotStmt {
    stmt: NonNull<ffi::sqlite3_stmt>,
    db: NonNull<ffi::sqlite3>,
    params: usize,
}

// SAFETY: a statement is used only through the `Mutex` that guards its connection, so never
// from two threads at once, which is all SQLite (built thread-safe) asks.
unsafe impl Send for HotStmt {}

/// The error SQLite reports for `rc` on `db`.
fn error(db: NonNull<ffi::sqlite3>, rc: c_int) -> rusqlite::Error {
    // SAFETY: a live connection handle; the message is copied before any other call.
    let msg = unsafe { CStr::from_ptr(ffi::sqlite3_errmsg(db.as_ptr())) }
        .to_string_lossy()
        .into_owned();
    rusqlite::Error::SqliteFailure(ffi::Error::new(rc), Some(msg))
}

impl HotStmt {
    /// Prepares `sql` (one statement) on `conn`.
    pub(super) fn prepare(conn: &Connection, sql: &str) -> rusqlite::Result<Self> {
        // SAFETY: the handle stays valid while `conn` lives, and `Hot` is dropped first.
        let db = NonNull::new(unsafe { conn.handle() }).expect("an open connection");
        let mut stmt = ptr::null_mut();
        // SAFETY: valid handle, pointer and length of a UTF-8 string, out-pointer to a local.
        let rc = unsafe {
            ffi::sqlite3_prepare_v3(
                db.as_ptr(),
                sql.as_ptr().cast(),
                c_int::try_from(sql.len()).expect("short SQL"),
                ffi::SQLITE_PREPARE_PERSISTENT,
                &mut stmt,
                ptr::null_mut(),
            )
        };
        if rc != ffi::SQLITE_OK {
            return Err(error(db, rc));
        }
        let stmt = NonNull::new(stmt).expect("one statement in the SQL");
        // SAFETY: a freshly prepared statement.
        let params = unsafe { ffi::sqlite3_bind_parameter_count(stmt.as_ptr()) } as usize;
        Ok(HotStmt { stmt, db, params })
    }

    /// Binds `args` (all parameters, in order), runs the statement to completion and returns
    /// the number of rows it changed.
    pub(super) fn execute(&mut self, args: &[Arg<'_>]) -> rusqlite::Result<usize> {
        assert_eq!(args.len(), self.params, "every parameter is bound");
        let stmt = self.stmt.as_ptr();
        for (i, arg) in args.iter().enumerate() {
            let n = i as c_int + 1;
            // SAFETY: a live statement, an index in range; SQLITE_TRANSIENT makes SQLite copy
            // the text before the call returns.
            let rc = unsafe {
                match arg {
                    Arg::Int(v) => ffi::sqlite3_bind_int64(stmt, n, *v),
                    Arg::Text(s) => ffi::sqlite3_bind_text(
                        stmt,
                        n,
                        s.as_ptr().cast(),
                        c_int::try_from(s.len()).expect("short text"),
                        ffi::SQLITE_TRANSIENT(),
                    ),
                    Arg::Null => ffi::sqlite3_bind_null(stmt, n),
                }
            };
            if rc != ffi::SQLITE_OK {
                return Err(error(self.db, rc));
            }
        }
        // SAFETY: a live statement with every parameter bound.
        let rc = unsafe { ffi::sqlite3_step(stmt) };
        let out = if rc == ffi::SQLITE_DONE {
            // SAFETY: a live connection handle.
            Ok(unsafe { ffi::sqlite3_changes64(self.db.as_ptr()) } as usize)
        } else {
            Err(error(self.db, rc))
        };
        // SAFETY: a live statement; its error, if any, was read above.
        unsafe { ffi::sqlite3_reset(stmt) };
        out
    }
}

impl Drop for HotStmt {
    fn drop(&mut self) {
        // SAFETY: the statement is live and never used again.
        unsafe { ffi::sqlite3_finalize(self.stmt.as_ptr()) };
    }
}

/// The kept statements of one connection.
pub(super) struct Hot {
    pub(super) begin: HotStmt,
    pub(super) commit: HotStmt,
    /// See [`super::HotSql`], whose statements these are.
    pub(super) commit_keyed: [HotStmt; 2],
    pub(super) take_delete: HotStmt,
    pub(super) take_insert: HotStmt,
    pub(super) lower_hint: HotStmt,
}

impl Hot {
    /// Prepares the statements of `sql` on `conn`.
    pub(super) fn prepare(conn: &Connection, sql: &super::HotSql) -> rusqlite::Result<Self> {
        let p = |s: &str| HotStmt::prepare(conn, s);
        Ok(Hot {
            begin: p("BEGIN IMMEDIATE")?,
            commit: p("COMMIT")?,
            commit_keyed: [p(&sql.commit_keyed[0])?, p(&sql.commit_keyed[1])?],
            take_delete: p(&sql.take_delete)?,
            take_insert: p(&sql.take_insert)?,
            lower_hint: p(&sql.lower_hint)?,
        })
    }
}
