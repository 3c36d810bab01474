//! Atomic file writes, the store lock, and directory helpers of the file store.

use std::fs::{self, File, OpenOptions};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use crate::error::{RecordError, Result};

pub(crate) use qtask_core::fsutil::is_tmp_name as is_temp_name;

/// Writes `bytes` to `path` through a temporary sibling, fsync and rename: readers (and a
/// crash) see the old content or the new one, never half of it. Creates missing parents.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(|e| RecordError::io("cannot create", dir, e))?;
    qtask_core::fsutil::write_atomic(path, bytes)
        .map_err(|e| RecordError::io("cannot write", path, e))
}

/// Reads a file; `Ok(None)` when it does not exist.
pub(crate) fn read_optional(path: &Path) -> Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(RecordError::io("cannot read", path, e)),
    }
}

/// Reads a UTF-8 text file; `Ok(None)` when it does not exist.
pub(crate) fn read_text_optional(path: &Path) -> Result<Option<String>> {
    match read_optional(path)? {
        None => Ok(None),
        Some(bytes) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| RecordError::Corrupt {
                path: path.to_path_buf(),
                what: "text file",
                message: "not UTF-8".into(),
            }),
    }
}

/// Names of the sub-folders of `dir` (empty when `dir` does not exist), sorted.
pub(crate) fn subdirs(dir: &Path) -> Result<Vec<String>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(RecordError::io("cannot list", dir, e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| RecordError::io("cannot list", dir, e))?;
        if entry.path().is_dir()
            && let Some(name) = entry.file_name().to_str()
        {
            out.push(name.to_string());
        }
    }
    out.sort();
    Ok(out)
}

/// Every file under `dir`, as `/`-joined paths relative to it (temporary files skipped).
pub(crate) fn files_under(dir: &Path) -> Result<Vec<String>> {
    fn walk(base: &Path, rel: &str, out: &mut Vec<String>) -> Result<()> {
        let here = if rel.is_empty() {
            base.to_path_buf()
        } else {
            base.join(rel)
        };
        let entries = match fs::read_dir(&here) {
            Ok(e) => e,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(RecordError::io("cannot list", &here, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| RecordError::io("cannot list", &here, e))?;
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if is_temp_name(&name) {
                continue;
            }
            let child = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            if entry.path().is_dir() {
                walk(base, &child, out)?;
            } else {
                out.push(child);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, "", &mut out)?;
    out.sort();
    Ok(out)
}

/// An exclusive lock on a file, held until dropped (an OS lock: released if the process dies).
pub(crate) struct StoreLock {
    file: File,
}

impl StoreLock {
    /// Blocks until the lock on `path` is ours.
    pub(crate) fn acquire(path: &Path) -> Result<StoreLock> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|e| RecordError::io("cannot open lock file", path, e))?;
        // Fully qualified: std's inherent `File::lock` is newer than the workspace MSRV.
        fs4::FileExt::lock(&file).map_err(|e| RecordError::io("cannot lock", path, e))?;
        Ok(StoreLock { file })
    }
}

impl Drop for StoreLock {
    fn drop(&mut self) {
        let _ = fs4::FileExt::unlock(&self.file);
    }
}

/// `dir/a/b` for the `/`-separated relative path `rel` (already validated).
pub(crate) fn join_rel(dir: &Path, rel: &str) -> PathBuf {
    rel.split('/').fold(dir.to_path_buf(), |p, seg| p.join(seg))
}
