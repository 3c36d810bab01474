//! The WAL checkpoint policy of qtask's SQLite connections (see [`Checkpoints`]).

use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use rusqlite::Connection;

use super::busy_wait;

/// WAL frames after which the writer that saw them checkpoints (SQLite's default).
const CHECKPOINT_FRAMES: i32 = 1000;

/// The WAL hook that replaces SQLite's autocheckpoint: it only records the WAL's length
/// (`arg` is a [`Checkpoints::frames`]).
unsafe extern "C" fn record_wal_frames(
    arg: *mut std::ffi::c_void,
    _db: *mut rusqlite::ffi::sqlite3,
    _name: *const std::ffi::c_char,
    frames: std::ffi::c_int,
) -> std::ffi::c_int {
    // SAFETY: `arg` points at the boxed `AtomicI32` of the `Checkpoints` installed on this
    // connection, which its owner keeps alive for as long as the connection.
    unsafe { &*(arg as *const AtomicI32) }.store(frames, Ordering::Relaxed);
    rusqlite::ffi::SQLITE_OK
}

/// When and how a qtask connection checkpoints the WAL, in place of SQLite's autocheckpoint
/// (the raw-rate baseline of `qtask bench pool` uses the same, see [`crate::bench`]).
///
/// The autocheckpoint is replaced because of what it does with several processes writing
/// without pause (measured with `qtask bench pool`, 4 workers): a passive checkpoint never
/// catches up with writers that keep appending, so the WAL is never restarted, keeps
/// growing, and every later commit starts another checkpoint with its two `fsync`s
/// (hundreds per second, most of a claim's time). Here a checkpoint is due only once the WAL
/// grew by [`CHECKPOINT_FRAMES`] since this connection's last one, and it runs in two steps:
/// a passive one that does the bulk (the `fsync`s included) while the others go on writing,
/// then a `RESTART` one with at most a few milliseconds of waiting, which copies the few
/// frames written meanwhile (writers wait that long) and lets the next writer restart the
/// WAL from its beginning. If a reader stays in the way, it is tried again at the next due
/// point. SQLite's own checkpoint when the last connection closes remains the backstop.
pub(crate) struct Checkpoints {
    /// The WAL's length after the connection's last commit, written by its WAL hook.
    frames: Box<AtomicI32>,
    /// `frames` at the last checkpoint.
    done_at: AtomicI32,
}

impl Checkpoints {
    /// Installs the policy on `conn`. The caller must keep the result alive as long as
    /// `conn` (the connection's WAL hook writes into it).
    pub(crate) fn install(conn: &Connection) -> Self {
        let frames = Box::new(AtomicI32::new(0));
        // SAFETY: a valid handle; the hook only stores into `frames`, which the caller keeps
        // alive as long as the connection.
        unsafe {
            rusqlite::ffi::sqlite3_wal_hook(
                conn.handle(),
                Some(record_wal_frames),
                &*frames as *const AtomicI32 as *mut std::ffi::c_void,
            );
        }
        Checkpoints {
            frames,
            done_at: AtomicI32::new(0),
        }
    }

    /// Checkpoints if due; call after a write, outside any transaction.
    pub(crate) fn after_write(&self, conn: &mut Connection) {
        let frames = self.frames.load(Ordering::Relaxed);
        let mut last = self.done_at.load(Ordering::Relaxed);
        if frames < last {
            // A WAL shorter than at the last checkpoint was restarted since. (A restart by
            // another process that this one only notices later just delays its next turn.)
            last = 0;
            self.done_at.store(0, Ordering::Relaxed);
        }
        if frames < last + CHECKPOINT_FRAMES || !conn.is_autocommit() {
            return;
        }
        self.done_at.store(frames, Ordering::Relaxed);
        if checkpoint(conn, rusqlite::ffi::SQLITE_CHECKPOINT_PASSIVE) {
            let _ = conn.busy_handler(Some(restart_wait));
            checkpoint(conn, rusqlite::ffi::SQLITE_CHECKPOINT_RESTART);
            let _ = conn.busy_handler(Some(busy_wait));
        }
    }
}

/// Busy handler of the `RESTART` step: a few short waits (at most about 2 ms) for the
/// current writer and readers to finish, then it gives up until the next due point.
fn restart_wait(count: i32) -> bool {
    if count >= 20 {
        return false;
    }
    std::thread::sleep(Duration::from_micros(100));
    true
}

/// Runs a checkpoint of `mode`; false if another one was running (or it failed: checkpoints
/// are an optimisation here, SQLite's own on close is the backstop).
fn checkpoint(conn: &Connection, mode: std::ffi::c_int) -> bool {
    // SAFETY: a valid connection handle, the main database, no out-pointers.
    let rc = unsafe {
        rusqlite::ffi::sqlite3_wal_checkpoint_v2(
            conn.handle(),
            std::ptr::null(),
            mode,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    };
    rc == rusqlite::ffi::SQLITE_OK
}
